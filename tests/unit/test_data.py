"""Loading and validating inputs (``negmine.text.data``): every problem is a DataError that says where."""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from negmine import DataError, from_pairs, load_beir, load_files, load_pairs
from negmine.text.data import _text_id

CORPUS = [
    {"_id": "d1", "title": "T1", "text": "alpha"},
    {"_id": "d2", "text": "beta"},
    {"_id": "d3", "title": "", "text": "gamma"},
    {"_id": "d4", "text": "delta"},
    {"_id": "d5", "text": "epsilon"},
]
QUERIES = [{"_id": f"q{i}", "text": t} for i, t in enumerate(["zero", "first", "second", "third", "fourth"])]
TRAIN = [
    ("q2", "d1", 1),
    ("q2", "d3", 2),
    ("q1", "d2", 1),
    ("q3", "d4", 0),  # q3 has only a grade-0 row: skipped
    ("q1", "d5", 0),  # judged non-relevant: not a positive
]
TEST = [("q1", "d4", 1), ("q4", "d5", 1)]  # q1's d4 is excluded too; q4 is not mined


def _pairs(data, qrels):
    """{query id: sorted doc ids} of a Qrels."""
    out: dict[str, list[str]] = {}
    for q, d in zip(qrels.query_of_pair().tolist(), qrels.indices.tolist()):
        out.setdefault(data.queries.ids[q], []).append(data.corpus.ids[d])
    return {q: sorted(ds) for q, ds in out.items()}


@pytest.fixture
def beir(tmp_path, make_beir):
    return make_beir(tmp_path / "ds", CORPUS, QUERIES, {"train": TRAIN, "test": TEST})


# --------------------------------------------------------------------------------------- happy path
def test_load_beir_builds_rows_positives_and_exclusions(beir):
    data = load_beir(beir, split="train")
    assert data.corpus.ids == ["d1", "d2", "d3", "d4", "d5"]
    assert data.corpus.titles == ["T1", "", "", "", ""]
    assert data.corpus.full_texts() == ["T1 alpha", "beta", "gamma", "delta", "epsilon"]
    assert data.queries.ids == ["q2", "q1"]  # order of first appearance; q3 (grade 0 only) skipped
    assert data.queries.texts == ["second", "first"]
    assert _pairs(data, data.positives) == {"q2": ["d1", "d3"], "q1": ["d2"]}  # q1's grade-0 d5 is not
    assert _pairs(data, data.exclude) == {"q2": ["d1", "d3"], "q1": ["d2", "d4"]}  # + test split's d4
    np.testing.assert_array_equal(data.positives.grades, np.array([1, 2, 1], np.float32))
    np.testing.assert_array_equal(data.positives.indptr, [0, 2, 3])
    assert data.stats["queries_skipped_no_positive"] == 1
    assert data.stats["skipped_query_ids"] == ["q3"]
    assert data.stats["qrels_unknown_dropped"] == 0
    assert data.sources["corpus"].endswith("corpus.jsonl")


def test_load_beir_exclude_splits_selects_the_extra_qrels(beir):
    only_train = load_beir(beir, "train", exclude_splits=[])
    assert _pairs(only_train, only_train.exclude) == _pairs(only_train, only_train.positives)
    named = load_beir(beir, "train", exclude_splits=["test"])
    assert _pairs(named, named.exclude) == {"q2": ["d1", "d3"], "q1": ["d2", "d4"]}


def test_load_beir_min_relevance(beir):
    data = load_beir(beir, "train", min_relevance=2)
    assert data.queries.ids == ["q2"]
    assert _pairs(data, data.positives) == {"q2": ["d3"]}
    assert data.stats["queries_skipped_no_positive"] == 2  # q1 (grade 1 only) and q3


def test_load_beir_other_split(beir):
    data = load_beir(beir, "test")
    assert data.queries.ids == ["q1", "q4"]
    # q1's train positive d2 is excluded when mining the test split; its grade-0 d5 is not
    assert _pairs(data, data.exclude) == {"q1": ["d2", "d4"], "q4": ["d5"]}


def test_trec_four_column_qrels_and_numeric_ids(tmp_path, make_beir):
    corpus = [{"_id": 7, "text": "seven"}, {"_id": "x", "text": "ex"}]
    root = make_beir(tmp_path, corpus, [{"_id": 1, "text": "one"}],
                     {"train": "query-id\tQ0\tcorpus-id\tscore\n1\t0\t7\t1\n1\t0\tx\t0\n"})
    data = load_beir(root, "train")
    assert data.corpus.ids == ["7", "x"] and data.queries.ids == ["1"]
    assert _pairs(data, data.positives) == {"1": ["7"]}


def test_load_files_takes_paths_one_by_one(beir):
    data = load_files(beir / "corpus.jsonl", beir / "queries.jsonl", beir / "qrels" / "train.tsv",
                      exclude_qrels=[beir / "qrels" / "test.tsv"])
    assert _pairs(data, data.exclude) == {"q2": ["d1", "d3"], "q1": ["d2", "d4"]}


def test_scifact_train_split(scifact):
    data = load_beir(scifact, "train")
    with (scifact / "qrels" / "train.tsv").open() as fh:
        rows = list(csv.reader(fh, delimiter="\t"))[1:]
    with (scifact / "corpus.jsonl").open() as fh:
        n_docs = sum(1 for line in fh if line.strip())
    assert len(data.corpus) == n_docs
    assert sorted(data.queries.ids) == sorted({r[0] for r in rows if float(r[2]) >= 1})
    assert len(data.positives.indices) == len({(r[0], r[1]) for r in rows if float(r[2]) >= 1})
    assert (data.positives.counts() >= 1).all()


# -------------------------------------------------------------------------------------- bad input
def _raises(match: str):
    return pytest.raises(DataError, match=match)


def test_malformed_json_names_file_and_line(tmp_path, make_beir):
    raw = '{"_id": "d1", "text": "a"}\n\n{"_id": "d2", "text": }\n'  # line 2 blank, line 3 broken
    root = make_beir(tmp_path, raw, QUERIES, {"train": TRAIN})
    with _raises(r"corpus\.jsonl:3: malformed JSON"):
        load_beir(root)


def test_non_object_json_line_names_file_and_line(tmp_path, make_beir):
    raw = '{"_id": "q1", "text": "a"}\n["q2", "b"]\n'
    root = make_beir(tmp_path, CORPUS, raw, {"train": TRAIN})
    with _raises(r"queries\.jsonl:2: expected a JSON object"):
        load_beir(root)


@pytest.mark.parametrize(("part", "field"), [("corpus", "_id"), ("corpus", "text"), ("queries", "_id"),
                                            ("queries", "text")])
def test_missing_field_names_file_line_and_field(tmp_path, make_beir, part, field):
    records = [dict(r) for r in (CORPUS if part == "corpus" else QUERIES)]
    del records[1][field]
    parts = {"corpus": CORPUS, "queries": QUERIES, part: records}
    root = make_beir(tmp_path, parts["corpus"], parts["queries"], {"train": TRAIN})
    with _raises(rf"{part}\.jsonl:2: missing field '{field}'"):
        load_beir(root)


def test_non_string_field_names_file_and_line(tmp_path, make_beir):
    corpus = [*CORPUS[:3], {"_id": "d4", "text": ["not", "a", "string"]}, CORPUS[4]]
    root = make_beir(tmp_path, corpus, QUERIES, {"train": TRAIN})
    with _raises(r"corpus\.jsonl:4: field 'text' must be a string"):
        load_beir(root)


def test_duplicate_document_ids_are_named(tmp_path, make_beir):
    corpus = [*CORPUS, {"_id": "d2", "text": "again"}, {"_id": "d5", "text": "again"}]
    root = make_beir(tmp_path, corpus, QUERIES, {"train": TRAIN})
    with pytest.raises(DataError, match=r"corpus\.jsonl: 2 duplicate document id") as exc:
        load_beir(root)
    assert "'d2'" in str(exc.value) and "'d5'" in str(exc.value)


def test_duplicate_query_ids_are_named(tmp_path, make_beir):
    root = make_beir(tmp_path, CORPUS, [*QUERIES, {"_id": "q3", "text": "dup"}], {"train": TRAIN})
    with _raises(r"queries\.jsonl: 1 duplicate query id.*'q3'"):
        load_beir(root)


def test_unknown_ids_in_qrels_are_named(tmp_path, make_beir):
    root = make_beir(tmp_path, CORPUS, QUERIES, {"train": [*TRAIN, ("qX", "d1", 1), ("q1", "dY", 1)]})
    with pytest.raises(DataError, match=r"train\.tsv") as exc:
        load_beir(root)
    msg = str(exc.value)
    assert "'qX'" in msg and "'dY'" in msg and "drop" in msg


def test_unknown_ids_in_an_exclude_split_name_that_split_file(tmp_path, make_beir):
    # The bad row is in test.tsv; the error must point there, not at the mined split's file.
    root = make_beir(tmp_path, CORPUS, QUERIES, {"train": TRAIN, "test": [*TEST, ("q1", "dZ", 1)]})
    with pytest.raises(DataError, match="'dZ'") as exc:
        load_beir(root, "train")
    assert "test.tsv" in str(exc.value)


def test_drop_unknown_counts_every_dropped_row(tmp_path, make_beir):
    train = [*TRAIN, ("qX", "d1", 1), ("q1", "dY", 1), ("qX", "dY", 0)]
    root = make_beir(tmp_path, CORPUS, QUERIES, {"train": train, "test": [*TEST, ("q2", "dZ", 1)]})
    data = load_beir(root, "train", drop_unknown=True)
    assert data.stats["qrels_unknown_dropped"] == 4  # three in train.tsv + one in test.tsv
    assert data.queries.ids == ["q2", "q1"]
    assert _pairs(data, data.exclude) == {"q2": ["d1", "d3"], "q1": ["d2", "d4"]}


@pytest.mark.parametrize("raw", ["", "\n\n  \n"])
def test_empty_corpus(tmp_path, make_beir, raw):
    root = make_beir(tmp_path, raw, QUERIES, {"train": TRAIN})
    with _raises(r"corpus\.jsonl: the corpus is empty"):
        load_beir(root)


def test_qrels_without_header(tmp_path, make_beir):
    root = make_beir(tmp_path, CORPUS, QUERIES, {"train": "q1\td2\t1\nq2\td1\t1\n"})
    with _raises(r"train\.tsv:1: the qrels file has no header"):
        load_beir(root)


def test_empty_qrels_file(tmp_path, make_beir):
    root = make_beir(tmp_path, CORPUS, QUERIES, {"train": ""})
    with _raises(r"train\.tsv: the qrels file is empty"):
        load_beir(root)


@pytest.mark.parametrize(("body", "line", "what"), [
    ("q1\td2\t1\nq2\td1\tyes\n", 3, "is not a number"),
    ("q1\td2\t1\t0\t9\n", 2, "expected 3 tab-separated columns"),
])
def test_bad_qrels_rows_name_file_and_line(tmp_path, make_beir, body, line, what):
    root = make_beir(tmp_path, CORPUS, QUERIES, {"train": "query-id\tcorpus-id\tscore\n" + body})
    with _raises(rf"train\.tsv:{line}: .*{what}"):
        load_beir(root)


def test_missing_split_lists_available_ones(beir):
    with _raises(r"split 'dev' not found; available splits: test, train"):
        load_beir(beir, "dev")


def test_missing_directory_and_files(tmp_path, make_beir):
    with _raises("dataset directory not found"):
        load_beir(tmp_path / "nope")
    root = make_beir(tmp_path / "x", CORPUS, QUERIES, {"train": TRAIN})
    (root / "queries.jsonl").unlink()
    with _raises(r"queries\.jsonl"):
        load_beir(root)


def test_no_query_with_a_positive(tmp_path, make_beir):
    root = make_beir(tmp_path, CORPUS, QUERIES, {"train": [("q1", "d1", 0), ("q2", "d2", 0)]})
    with _raises("no query has a positive"):
        load_beir(root)


def test_data_error_is_a_value_error():
    assert issubclass(DataError, ValueError)


# ------------------------------------------------------------------------------------------- pairs
def test_from_pairs_groups_several_positives_per_anchor():
    data = from_pairs(["a", "b", "a", "a"], ["p1", "p2", "p3", "p1"], corpus=["extra", "p2"])
    qa, qb = _text_id("q", "a"), _text_id("q", "b")
    assert data.queries.ids == [qa, qb] and data.queries.texts == ["a", "b"]
    assert data.corpus.texts == ["p1", "p2", "p3", "extra"]  # positives first, duplicates once
    assert _pairs(data, data.positives) == {
        qa: sorted([_text_id("d", "p1"), _text_id("d", "p3")]), qb: [_text_id("d", "p2")]}
    assert _pairs(data, data.exclude) == _pairs(data, data.positives)
    np.testing.assert_array_equal(data.positives.counts(), [2, 1])


def test_from_pairs_ids_do_not_depend_on_pair_order():
    a = from_pairs(["a", "b", "a", "c"], ["p1", "p2", "p3", "p2"])
    b = from_pairs(["c", "a", "b", "a"], ["p2", "p3", "p2", "p1"])
    assert _pairs(a, a.positives) == _pairs(b, b.positives)
    assert sorted(a.corpus.ids) == sorted(b.corpus.ids)
    assert len(a.corpus) == 3  # p2 shared by b and c is one document


def test_from_pairs_errors():
    with _raises("2 anchors but 1 positives"):
        from_pairs(["a", "b"], ["p"])
    with _raises(r"pairs:2: anchor and positive must be strings"):
        from_pairs(["a", "b"], ["p", None])  # type: ignore[list-item]
    with _raises("no documents"):
        from_pairs([], [])


def test_load_pairs_jsonl_with_extra_corpus(tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps(r) + "\n" for r in [
        {"anchor": "what is x", "positive": "x is y"}, {"anchor": "what is x", "positive": "x is z"}]))
    extra = tmp_path / "extra.jsonl"
    extra.write_text(json.dumps({"title": "T", "text": "other"}) + "\n")
    data = load_pairs(pairs, corpus=extra)
    assert data.corpus.texts == ["x is y", "x is z", "T other"]
    assert data.positives.counts().tolist() == [2]
    assert set(data.sources) == {"pairs", "corpus"}
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"anchor": "a"}) + "\n")
    with _raises(re.escape(f"{bad}:1: missing field 'positive'")):
        load_pairs(bad)


# ------------------------------------------- issue 12 (items 5, 6, 8): ids, grades, text, BOM, access
@pytest.mark.parametrize(("raw_id", "what"), [
    ("NaN", "NaN"), ("Infinity", "Infinity"), ("-Infinity", "-Infinity"), ('""', "empty"), ('"  "', "empty"),
])
def test_non_finite_and_empty_ids_are_refused_with_file_and_line(tmp_path, make_beir, raw_id, what):
    raw = "".join(json.dumps(r) + "\n" for r in CORPUS[:2]) + f'{{"_id": {raw_id}, "text": "x"}}\n'
    root = make_beir(tmp_path, raw, QUERIES, {"train": TRAIN})
    with pytest.raises(DataError, match=rf"corpus\.jsonl:3: field '_id' is .*{what}") as err:
        load_beir(root)
    assert "\n" not in str(err.value)


def test_non_finite_query_id_is_refused(tmp_path, make_beir):
    raw = "".join(json.dumps(r) + "\n" for r in QUERIES) + '{"_id": NaN, "text": "x"}\n'
    root = make_beir(tmp_path, CORPUS, raw, {"train": TRAIN})
    with pytest.raises(DataError, match=r"queries\.jsonl:6: field '_id' is NaN"):
        load_beir(root)


@pytest.mark.parametrize("grade", ["nan", "NaN", "inf", "-Infinity"])
def test_non_finite_qrels_grades_are_refused(tmp_path, make_beir, grade):
    root = make_beir(tmp_path, CORPUS, QUERIES, {"train": f"query-id\tcorpus-id\tscore\nq1\td2\t1\nq2\td1\t{grade}\n"})
    with pytest.raises(DataError, match=rf"train\.tsv:3: score '{grade}' is not a finite number"):
        load_beir(root)


@pytest.mark.parametrize(("row", "what"), [("\td1\t1", "empty query id"), ("q2\t \t1", "empty document id")])
def test_empty_qrels_ids_are_refused(tmp_path, make_beir, row, what):
    root = make_beir(tmp_path, CORPUS, QUERIES, {"train": f"query-id\tcorpus-id\tscore\nq1\td2\t1\n{row}\n"})
    with pytest.raises(DataError, match=rf"train\.tsv:3: {what}"):
        load_beir(root)


def test_lone_surrogates_are_refused_at_load_naming_file_and_line(tmp_path, make_beir):
    raw = "".join(json.dumps(r) + "\n" for r in CORPUS) + '{"_id": "d9", "text": "bad \\ud800 text"}\n'
    root = make_beir(tmp_path, raw, QUERIES, {"train": TRAIN})
    with pytest.raises(DataError, match=r"corpus\.jsonl:6: field 'text' has a lone surrogate '\\ud800' at character 5"):
        load_beir(root)
    with pytest.raises(DataError, match=r"pairs:2: positive has a lone surrogate"):
        from_pairs(["a", "b"], ["x", "y\udcff"])
    with pytest.raises(DataError, match=r"corpus item 1 has a lone surrogate"):
        from_pairs(["a"], ["x"], ["\ud800"])


def test_a_utf8_bom_is_accepted_in_jsonl_and_qrels(tmp_path, make_beir, beir):
    root = make_beir(tmp_path / "bom", CORPUS, QUERIES, {"train": TRAIN, "test": TEST})
    for name in ("corpus.jsonl", "queries.jsonl", "qrels/train.tsv", "qrels/test.tsv"):
        path = root / name
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    with_bom, plain = load_beir(root), load_beir(beir)
    assert with_bom.corpus.ids == plain.corpus.ids and with_bom.queries.ids == plain.queries.ids
    assert _pairs(with_bom, with_bom.positives) == _pairs(plain, plain.positives)
    assert _pairs(with_bom, with_bom.exclude) == _pairs(plain, plain.exclude)


@pytest.mark.parametrize("name", ["corpus.jsonl", "queries.jsonl", "qrels/train.tsv"])
def test_unreadable_files_are_data_errors(tmp_path, make_beir, monkeypatch, name):
    root = make_beir(tmp_path, CORPUS, QUERIES, {"train": TRAIN})
    target = root / name
    target.chmod(0)
    if os.geteuid() == 0:  # root reads any file: make the operating system's refusal happen anyway
        real_open, real_read = Path.open, Path.read_bytes

        def guard(real):
            def call(self, *a, **kw):
                if self == target:
                    raise PermissionError(13, "Permission denied", str(self))
                return real(self, *a, **kw)
            return call

        monkeypatch.setattr(Path, "open", guard(real_open))
        monkeypatch.setattr(Path, "read_bytes", guard(real_read))
    with pytest.raises(DataError, match=rf"{re.escape(name)}: cannot be read \(Permission denied\)"):
        load_beir(root)


def test_a_directory_given_as_a_file_is_a_data_error(tmp_path, make_beir):
    root = make_beir(tmp_path, CORPUS, QUERIES, {"train": TRAIN})
    with pytest.raises(DataError, match="file not found"):
        load_files(root, root / "queries.jsonl", root / "qrels" / "train.tsv")
    with pytest.raises(DataError, match="file not found"):
        load_files(root / "corpus.jsonl", root / "queries.jsonl", root / "qrels")
