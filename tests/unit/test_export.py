"""Export formats from hand-written canonical rows (issue 12, items 9-12): queries without
negatives left out of flag/tevatron exports and counted; scores from a chosen matrix in every
format that can carry them, with a warning when they rank a negative above a positive; Tevatron
2's id-based form with its corpus; FlagEmbedding's prompt/type columns; flag never as parquet."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from negmine.core.errors import ConfigError, DataError
from negmine.text.writers.export import FORMATS, build_export, corpus_path_for, export_file, export_rows

TEXTS = {
    ("query", "q1"): {"title": "", "text": "what is alpha"},
    ("query", "q2"): {"title": "", "text": "what is beta"},
    ("query", "q3"): {"title": "", "text": "what is gamma"},
    ("doc", "d1"): {"title": "A", "text": "alpha doc"},
    ("doc", "d2"): {"title": "", "text": "beta doc"},
    ("doc", "d3"): {"title": "", "text": "gamma doc"},
    ("doc", "d4"): {"title": "T", "text": "other doc"},
}
ROWS: list[dict[str, Any]] = [
    # q1: positive d1 above its negatives by both matrices
    {"query_id": "q1", "positive_ids": ["d1"], "negative_ids": ["d2", "d4"], "negative_scores": [0.5, 0.4],
     "positive_scores": [0.9], "negative_ce_scores": [0.2, 0.1], "positive_ce_scores": [0.8]},
    # q2: retrieval ranks negative d3 (0.95) above the positive d2 (0.6); the cross-encoder does not
    {"query_id": "q2", "positive_ids": ["d2"], "negative_ids": ["d3", "d1"], "negative_scores": [0.95, 0.3],
     "positive_scores": [0.6], "negative_ce_scores": [0.3, 0.1], "positive_ce_scores": [0.7]},
    # q3: no negative survived
    {"query_id": "q3", "positive_ids": ["d3"], "negative_ids": [], "negative_scores": [],
     "positive_scores": [0.7], "negative_ce_scores": [], "positive_ce_scores": [0.9]},
]


def test_queries_without_negatives_are_left_out_of_flag_and_tevatron_and_counted() -> None:
    for fmt in ("flag", "tevatron", "tevatron-ids"):
        exp = build_export(fmt, ROWS, TEXTS, num_negatives=2)
        assert exp.counts["queries_left_out_no_negatives"] == 1 and exp.counts["rows"] == 2
        assert all(r.get("neg", r.get("negative_passages", r.get("negative_document_ids"))) for r in exp.rows)
        kept = build_export(fmt, ROWS, TEXTS, num_negatives=2, keep_empty=True)
        assert kept.counts["queries_left_out_no_negatives"] == 0 and kept.counts["rows"] == 3
    # the sentence-transformers formats keep their own rules: labeled-list still lists q3's positive
    assert build_export("labeled-list", ROWS, TEXTS, num_negatives=2).counts["rows"] == 3
    assert build_export("n-tuple", ROWS, TEXTS, num_negatives=2).counts["queries_left_out_short"] == 1


def test_flag_rows_with_scores_prompt_and_type() -> None:
    rows = export_rows("flag", ROWS, TEXTS, num_negatives=2, scores="cross-encoder", prompt="Represent: ",
                       type_="normal")
    assert rows[0] == {"query": "what is alpha", "pos": ["A alpha doc"], "neg": ["beta doc", "T other doc"],
                       "pos_scores": [0.8], "neg_scores": [0.2, 0.1], "prompt": "Represent: ", "type": "normal"}
    assert rows[1]["pos_scores"] == [0.7] and rows[1]["neg_scores"] == [0.3, 0.1]


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f != "flag"])
def test_prompt_and_type_are_flag_only(fmt: str) -> None:
    with pytest.raises(ConfigError, match="--format flag"):
        build_export(fmt, ROWS, TEXTS, num_negatives=2, prompt="x")


def test_tevatron_carries_scores_per_passage() -> None:
    rows = export_rows("tevatron", ROWS, TEXTS, num_negatives=2, scores="retrieval")
    assert rows[0] == {
        "query_id": "q1", "query": "what is alpha",
        "positive_passages": [{"docid": "d1", "title": "A", "text": "alpha doc", "score": 0.9}],
        "negative_passages": [{"docid": "d2", "title": "", "text": "beta doc", "score": 0.5},
                              {"docid": "d4", "title": "T", "text": "other doc", "score": 0.4}],
    }
    plain = export_rows("tevatron", ROWS, TEXTS, num_negatives=2)
    assert "score" not in plain[0]["positive_passages"][0]


def test_tevatron_ids_rows_and_corpus() -> None:
    exp = build_export("tevatron-ids", ROWS, TEXTS, num_negatives=2, scores="cross-encoder")
    assert exp.rows == [
        {"query_id": "q1", "query_text": "what is alpha", "positive_document_ids": ["d1"],
         "negative_document_ids": ["d2", "d4"], "positive_scores": [0.8], "negative_scores": [0.2, 0.1]},
        {"query_id": "q2", "query_text": "what is beta", "positive_document_ids": ["d2"],
         "negative_document_ids": ["d3", "d1"], "positive_scores": [0.7], "negative_scores": [0.3, 0.1]},
    ]
    # every referenced document once, sorted, title joined to the text as everywhere else
    assert exp.corpus == [{"docid": "d1", "text": "A alpha doc"}, {"docid": "d2", "text": "beta doc"},
                          {"docid": "d3", "text": "gamma doc"}, {"docid": "d4", "text": "T other doc"}]
    assert exp.counts["corpus_documents"] == 4
    assert corpus_path_for(Path("x/train.jsonl")) == Path("x/train.corpus.jsonl")


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_can_carry_scores(fmt: str) -> None:
    rows = export_rows(fmt, ROWS, TEXTS, num_negatives=2, scores="retrieval")
    assert "0.95" in json.dumps(rows)  # q2's negative score is written somewhere in every format


def test_scores_that_rank_a_negative_above_a_positive_warn(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="negmine"):
        exp = build_export("flag", ROWS, TEXTS, num_negatives=2, scores="retrieval")
    assert exp.counts["queries_negative_above_positive"] == 1
    assert "1 of 2 exported queries have a negative with a higher retrieval score" in caplog.text
    assert "'q2'" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="negmine"):
        exp = build_export("flag", ROWS, TEXTS, num_negatives=2, scores="cross-encoder")
    assert exp.counts["queries_negative_above_positive"] == 0 and not caplog.records


def test_missing_or_non_finite_scores_are_refused() -> None:
    no_ce = [{k: v for k, v in r.items() if "_ce_" not in k} for r in ROWS]
    with pytest.raises(ConfigError, match=r"no cross-encoder scores .*--cross-encoder.*--scores retrieval"):
        build_export("flag", no_ce, TEXTS, num_negatives=2, scores="cross-encoder")
    nan = [{**ROWS[0], "positive_scores": [float("nan")]}]
    with pytest.raises(DataError, match="'q1' has a non-finite retrieval score"):
        build_export("triplet", nan, TEXTS, num_negatives=2, scores="retrieval")
    with pytest.raises(ConfigError, match="unknown score matrix 'teacher'"):
        build_export("flag", ROWS, TEXTS, num_negatives=2, scores="teacher")


# -- export_file: checks before reading the run ----------------------------------------------------
# (a directory that is not a run is never read: every refusal below comes first)

@pytest.mark.parametrize("name", ["train.parquet", "train.txt", "train"])
def test_flag_is_only_written_as_json_lines(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError, match=r"FlagEmbedding reads only \.json/\.jsonl.*\*\.jsonl or \*\.json"):
        export_file(tmp_path / "no-run", "flag", tmp_path / name)
    assert not (tmp_path / name).exists()


def test_existing_unwritable_and_directory_targets_are_refused(tmp_path: Path) -> None:
    (tmp_path / "t.jsonl").write_text("keep\n")
    with pytest.raises(ConfigError, match="already exists"):
        export_file(tmp_path / "no-run", "triplet", tmp_path / "t.jsonl")
    assert (tmp_path / "t.jsonl").read_text() == "keep\n"
    (tmp_path / "d.jsonl").mkdir()
    with pytest.raises(ConfigError, match="is a directory"):
        export_file(tmp_path / "no-run", "triplet", tmp_path / "d.jsonl", overwrite=True)
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="is not a directory"):
        export_file(tmp_path / "no-run", "triplet", tmp_path / "file" / "t.jsonl")


def test_tevatron_ids_options(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs --corpus-out"):
        export_file(tmp_path / "no-run", "tevatron-ids", io.StringIO())
    with pytest.raises(ConfigError, match="must differ"):
        export_file(tmp_path / "no-run", "tevatron-ids", tmp_path / "a.jsonl", corpus_out=tmp_path / "a.jsonl")
    with pytest.raises(ConfigError, match="--corpus-out is for --format tevatron-ids"):
        export_file(tmp_path / "no-run", "flag", tmp_path / "a.jsonl", corpus_out=tmp_path / "c.jsonl")


@pytest.mark.parametrize("size", [1, 2, 3, 100])
@pytest.mark.parametrize("fmt", ["triplet", "tevatron", "tevatron-ids", "labeled-list"])
def test_parquet_written_in_record_batches_holds_the_whole_export(tmp_path: Path, fmt: str, size: int) -> None:
    import pyarrow.parquet as pq

    from negmine.core.atomic import write_parquet_batches

    want = build_export(fmt, ROWS, TEXTS, num_negatives=2, scores="retrieval", keep_empty=True).rows
    path = tmp_path / "out.parquet"
    write_parquet_batches(path, iter(want), size)
    assert pq.read_table(path).to_pylist() == want
    assert (pq.ParquetFile(path).metadata.num_row_groups > 1) == (len(want) > size)  # batches, not one table


def test_a_column_empty_in_the_first_batch_is_settled_by_a_later_one(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from negmine.core.atomic import write_parquet_batches

    rows = [{"q": "a", "neg": []}, {"q": "b", "neg": None}, {"q": "c", "neg": ["x", "y"]}, {"q": "d", "neg": []}]
    write_parquet_batches(tmp_path / "o.parquet", rows, 1)
    table = pq.read_table(tmp_path / "o.parquet")
    assert table.to_pylist() == rows and str(table.schema.field("neg").type.value_type) == "string"
    write_parquet_batches(tmp_path / "e.parquet", [], 4)
    assert pq.read_table(tmp_path / "e.parquet").num_rows == 0
