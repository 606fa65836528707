"""TextColumn (Arrow-backed strings) and the Arrow corpus reader."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from negmine.core.errors import DataError
from negmine.text.readers import _read_corpus_arrow, read_corpus
from negmine.text.textcol import TextColumn, row_lookup, take_rows
from negmine.text.types import Corpus, MiningData, Qrels, Queries

texts = st.lists(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12), max_size=40)


@settings(max_examples=60, deadline=None)
@given(strings=texts, batch=st.integers(1, 7), data=st.data())
def test_a_column_reads_like_the_list_it_was_built_from(strings: list[str], batch: int, data: st.DataObject) -> None:
    col = TextColumn.from_iter(strings, batch=batch)  # several chunks when batch < len
    assert len(col) == len(strings)
    assert list(col) == strings
    assert col == strings and strings == col
    if strings:
        i = data.draw(st.integers(-len(strings), len(strings) - 1))
        assert col[i] == strings[i]
    a = data.draw(st.integers(-5, len(strings) + 5))
    b = data.draw(st.integers(-5, len(strings) + 5))
    step = data.draw(st.sampled_from([None, 1, 2, -1]))
    assert col[a:b:step] == strings[a:b:step]
    rows = data.draw(st.lists(st.integers(0, max(0, len(strings) - 1)), max_size=10)) if strings else []
    assert col.take(rows) == [strings[r] for r in rows]
    assert take_rows(col, rows) == take_rows(strings, rows) == [strings[r] for r in rows]
    assert pickle.loads(pickle.dumps(col)) == strings


def test_out_of_range_and_inequality() -> None:
    col = TextColumn.from_iter(["a", "b"])
    with pytest.raises(IndexError):
        col[2]
    with pytest.raises(IndexError):
        col.take([0, 5])
    assert col + ["c"] == ["a", "b", "c"] and ["z"] + col == ["z", "a", "b"]  # noqa: RUF005 (the operator is the test)
    assert col != ["a"]
    assert col != ["a", "c"]
    assert col == TextColumn.from_iter(["a", "b"], batch=1)
    assert len(TextColumn.from_iter([])) == 0
    assert "TextColumn(['a', 'b'], n=2)" == repr(col)


def test_row_lookup_finds_rows_and_marks_the_absent() -> None:
    ids = ["d3", "d1", "d2", "é"]
    want = [1, -1, 3, 0, 1]
    names = ["d1", "nope", "é", "d3", "d1"]
    assert row_lookup(TextColumn.from_iter(ids, batch=2), names).tolist() == want
    assert row_lookup(ids, names).tolist() == want
    assert row_lookup(TextColumn.from_iter(ids), []).tolist() == []


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _slow(path: Path, monkeypatch: pytest.MonkeyPatch) -> Corpus:
    monkeypatch.setattr("negmine.text.readers._read_corpus_arrow", lambda p: None)
    try:
        return read_corpus(path)
    finally:
        monkeypatch.undo()


@pytest.mark.parametrize("records, fast", [
    ([{"_id": "a", "title": "T", "text": "x y"}, {"_id": "b", "text": "z"}], True),
    ([{"_id": "a", "title": None, "text": "naïve \u2028 ∑ \\n"}, {"_id": "b", "text": "", "meta": {"k": [1]}}], True),
    ([{"_id": 1, "text": "numbers as ids take the checking reader"}, {"_id": 2.5, "text": "b"}], False),
    ([{"_id": "a", "text": "x"}, {"_id": "b", "text": 3}], False),
])
def test_the_arrow_reader_gives_what_the_checking_reader_gives(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, records: list[dict[str, object]], fast: bool) -> None:
    path = _write(tmp_path / "corpus.jsonl", [json.dumps(r) for r in records])
    assert (_read_corpus_arrow(path) is not None) is fast
    got, want = read_corpus(path), _slow(path, monkeypatch)
    assert isinstance(got.texts, TextColumn) and isinstance(want.texts, TextColumn)
    assert (list(got.ids), list(got.titles), list(got.texts)) == (list(want.ids), list(want.titles), list(want.texts))
    # parquet: the same columns through the parquet reader
    table = pa.table({"_id": list(want.ids), "title": list(want.titles), "text": list(want.texts)})
    pq.write_table(table, tmp_path / "corpus.parquet")
    assert _read_corpus_arrow(tmp_path / "corpus.parquet") is not None
    again = read_corpus(tmp_path / "corpus.parquet")
    assert (again.ids, again.titles, again.texts) == (want.ids, want.titles, want.texts)


@pytest.mark.parametrize("lines, message", [
    (['{"_id": "a", "text": "x"}', '{"_id": "a", "text": "y"}'], "1 duplicate document id"),
    (['{"_id": " ", "text": "x"}'], "field '_id' is empty"),
    (['{"_id": "a"}'], "missing field 'text'"),
    (['{"_id": "a", "text": "\\ud800"}'], "lone surrogate"),
    (['{"_id": "a", "text": "x"', '{"_id": "b", "text": "y"}'], ":1: malformed JSON"),
])
def test_files_the_arrow_reader_declines_get_the_checking_readers_error(
        tmp_path: Path, lines: list[str], message: str) -> None:
    path = _write(tmp_path / "corpus.jsonl", lines)
    assert _read_corpus_arrow(path) is None
    with pytest.raises(DataError, match=message):
        read_corpus(path)


def test_invalid_utf8_is_refused_with_the_line(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_bytes(b'{"_id": "a", "text": "x"}\n{"_id": "b", "text": "\xff"}\n')
    assert _read_corpus_arrow(path) is None
    with pytest.raises(DataError, match=r"corpus.jsonl:2: not valid UTF-8"):
        read_corpus(path)


def test_an_arrow_corpus_and_a_list_corpus_have_one_fingerprint(tmp_path: Path) -> None:
    path = _write(tmp_path / "corpus.jsonl", [json.dumps({"_id": f"d{i}", "title": "t" * (i % 2), "text": f"x{i}"})
                                              for i in range(5)])
    arrow = read_corpus(path)
    listed = Corpus(ids=list(arrow.ids), texts=list(arrow.texts), titles=list(arrow.titles))
    queries = Queries(ids=["q"], texts=["x"])
    pos = Qrels.from_pairs(1, np.array([0]), np.array([2]), np.array([1.0], dtype=np.float32))
    a = MiningData(arrow, queries, pos, pos)
    b = MiningData(listed, queries, pos, pos)
    assert a.fingerprint() == b.fingerprint()
    assert arrow.full_texts() == listed.full_texts()
    assert np.array_equal(arrow.duplicate_groups(), listed.duplicate_groups())


def test_a_spilled_column_reads_the_same_after_its_pages_are_released(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from negmine.text.textcol import spill

    monkeypatch.setenv("NEGMINE_TMPDIR", str(tmp_path))
    strings = [f"document {i} " + "x" * (i % 5000) for i in range(3000)]  # several pages per batch
    schema = pa.schema([("text", pa.string())])
    batches = (pa.record_batch([pa.array(strings[lo:lo + 700])], schema=schema) for lo in range(0, 3000, 700))
    col = spill(batches, schema, ["text"])["text"]
    assert col.mapped and len(col._chunks) == 5
    assert list(tmp_path.iterdir()) == []  # the spill file is unlinked from the start
    for _ in range(2):  # the second pass re-reads pages the first one released
        assert list(col) == strings
    assert col[2999] == strings[2999] and col.take([5, 0]) == [strings[5], strings[0]]
    copy = pickle.loads(pickle.dumps(col))
    assert not copy.mapped and copy == strings


def test_a_loaded_corpus_is_memory_mapped(tmp_path: Path) -> None:
    path = _write(tmp_path / "corpus.jsonl", [json.dumps({"_id": f"d{i}", "text": f"t{i}"}) for i in range(10)])
    corpus = read_corpus(path)
    assert isinstance(corpus.texts, TextColumn) and corpus.texts.mapped and corpus.ids.mapped


def test_per_row_hashes_agree_with_the_whole_corpus_ones() -> None:
    from negmine.text.samplers import string_keys

    texts = ["Alpha  beta", "alpha beta", "gamma", "GAMMA ", "delta", "alpha\tbeta"]
    titles = ["", "", "", "", "t", ""]
    for corpus in (Corpus(ids=[f"d{i}" for i in range(6)], texts=texts, titles=titles),
                   Corpus(ids=TextColumn.from_iter([f"d{i}" for i in range(6)], batch=4),
                          texts=TextColumn.from_iter(texts, batch=4), titles=TextColumn.from_iter(titles, batch=4))):
        rows = np.array([[5, 0], [3, 3], [1, 4]])
        groups = corpus.duplicate_groups()
        h = corpus.text_hashes(rows)
        assert h.shape == rows.shape
        for a in rows.reshape(-1):
            for b in rows.reshape(-1):
                assert (corpus.text_hashes(np.array([a]))[0] == corpus.text_hashes(np.array([b]))[0]) == (
                    groups[a] == groups[b])
        assert np.array_equal(corpus.id_keys(rows), string_keys(list(corpus.ids))[rows])
