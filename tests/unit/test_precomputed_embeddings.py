"""Precomputed embeddings as input (``doc_embeddings`` / ``query_embeddings``): the same
candidates as encoding the texts, aligned by position (.npy, memory-mapped) or by id (parquet, any
row order), validated with one-line errors; and sharded retrieval encodes the corpus once."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

import negmine
from negmine.core.errors import DataError
from negmine.text.encoders import HashingEncoder
from negmine.text.retrievers.embedding import load_embeddings

DOCS = ["red apple pie", "green apple", "blue sky river", "river fish swim", "fast red car", "slow blue boat",
        "apple tree", "sky star moon"]
QUERIES = ["apple", "river", "red", "sky moon", "boat"]
POS = {"q0": ["d0"], "q1": ["d3"], "q2": ["d4"], "q3": ["d7"], "q4": ["d5"]}


@pytest.fixture
def data(make_data):
    return make_data(DOCS, QUERIES, POS)


def encoded(data) -> tuple[np.ndarray, np.ndarray]:
    enc = HashingEncoder(dim=16)
    return enc.encode(data.queries.texts, "query"), enc.encode(data.corpus.full_texts(), "document")


def test_npy_embeddings_give_the_same_candidates_as_encoding(data, tmp_path: Path) -> None:
    q, d = encoded(data)
    np.save(tmp_path / "d.npy", d)
    np.save(tmp_path / "q.npy", q)
    ref = negmine.text.retrievers.Dense(encoder=HashingEncoder(dim=16)).retrieve(data, 4)
    pre = negmine.text.retrievers.Dense(encoder=HashingEncoder(dim=16), doc_embeddings=str(tmp_path / "d.npy"),
                                   query_embeddings=str(tmp_path / "q.npy"))
    got = pre.retrieve(data, 4)
    np.testing.assert_array_equal(got.ids, ref.ids)
    np.testing.assert_array_equal(got.scores, ref.scores)
    assert isinstance(pre.docs_[1], np.memmap)  # read from disk, not copied into memory


def test_parquet_embeddings_align_by_id_in_any_row_order(data, tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    _, d = encoded(data)
    order = np.random.default_rng(0).permutation(len(d))
    pq.write_table(pa.table({"_id": [data.corpus.ids[i] for i in order], "embedding": d[order].tolist()}),
                   tmp_path / "d.parquet")
    got = load_embeddings(str(tmp_path / "d.parquet"), data.corpus.ids, "corpus")
    np.testing.assert_array_equal(got, d)


def test_sharded_mining_with_precomputed_queries_equals_one_shard(data, tmp_path: Path) -> None:
    q, d = encoded(data)
    np.save(tmp_path / "d.npy", d)
    np.save(tmp_path / "q.npy", q)

    def run(shard: int) -> negmine.MiningResult:
        r = negmine.text.retrievers.Dense(encoder=HashingEncoder(dim=16), doc_embeddings=str(tmp_path / "d.npy"),
                                     query_embeddings=str(tmp_path / "q.npy"))
        return negmine.mine(data, r, num_negatives=2, query_shard=shard)

    a, b = run(100), run(2)
    np.testing.assert_array_equal(a.negatives()[0], b.negatives()[0])
    assert a.to_rows() == b.to_rows()


def test_sharded_retrieval_encodes_the_corpus_once(data) -> None:
    class Counting(HashingEncoder):
        calls: ClassVar[list[tuple[str, int]]] = []

        def encode(self, texts, kind):  # type: ignore[no-untyped-def]
            self.calls.append((kind, len(texts)))
            return super().encode(texts, kind)

    enc = Counting(dim=16)
    negmine.mine(data, negmine.text.retrievers.Dense(encoder=enc), num_negatives=2, query_shard=2)
    assert [c for c in enc.calls if c[0] == "document"] == [("document", len(DOCS))]
    assert sum(n for kind, n in enc.calls if kind == "query") == len(QUERIES)


@pytest.mark.parametrize(("make", "message"), [
    (lambda d: d[:-1], "shape"),
    (lambda d: np.where(np.arange(len(d))[:, None] == 3, np.nan, d), "row 3 holds NaN"),
    (lambda d: d[:, 0], "shape"),
])
def test_bad_embedding_files_are_one_line_data_errors(data, tmp_path: Path, make, message: str) -> None:
    _, d = encoded(data)
    np.save(tmp_path / "d.npy", make(d).astype(np.float32))
    with pytest.raises(DataError, match=message) as exc:
        load_embeddings(str(tmp_path / "d.npy"), data.corpus.ids, "corpus")
    assert "\n" not in str(exc.value)


def test_dimension_mismatch_and_missing_file(data, tmp_path: Path) -> None:
    _, d = encoded(data)
    np.save(tmp_path / "d.npy", d[:, :8])
    r = negmine.text.retrievers.Dense(encoder=HashingEncoder(dim=16), doc_embeddings=str(tmp_path / "d.npy"))
    with pytest.raises(DataError, match=r"8 dimensions|16 dimensions"):
        r.retrieve(data, 3)
    with pytest.raises(DataError, match="not found"):
        load_embeddings(str(tmp_path / "nope.npy"), data.corpus.ids, "corpus")


# ------------------------------------------------------------------ precomputed vectors at scale
@pytest.mark.parametrize(("make", "message"), [
    (lambda d: np.zeros((len(d), 0), np.float32), "at least one dimension"),
    (lambda d: d.astype(np.complex64), "dtype complex64"),
    (lambda d: (d * 100).astype(np.int32), "dtype int32"),
    (lambda d: np.array([object()] * len(d)), "Python objects"),
])
def test_npy_of_the_wrong_kind_is_refused_in_one_line(data, tmp_path: Path, make, message: str) -> None:
    _, d = encoded(data)
    arr = make(d)
    np.save(tmp_path / "d.npy", arr, allow_pickle=arr.dtype == object)
    with pytest.raises(DataError, match=message) as exc:
        load_embeddings(str(tmp_path / "d.npy"), data.corpus.ids, "corpus")
    assert "\n" not in str(exc.value)


def test_float16_npy_is_searched_block_by_block_without_a_float32_copy(data, tmp_path: Path) -> None:
    q, d = encoded(data)
    half = d.astype(np.float16)
    np.save(tmp_path / "d16.npy", half)
    np.save(tmp_path / "d32.npy", half.astype(np.float32))  # the same values, widened
    np.save(tmp_path / "q.npy", q)
    runs = {}
    for name in ("d16", "d32"):
        r = negmine.text.retrievers.Dense(encoder=HashingEncoder(dim=16), doc_embeddings=str(tmp_path / f"{name}.npy"),
                                     query_embeddings=str(tmp_path / "q.npy"), doc_block=3)
        runs[name] = (r.retrieve(data, 4), r.docs_[1])
    assert isinstance(runs["d16"][1], np.memmap) and runs["d16"][1].dtype == np.float16
    np.testing.assert_array_equal(runs["d16"][0].ids, runs["d32"][0].ids)
    np.testing.assert_array_equal(runs["d16"][0].scores, runs["d32"][0].scores)


def test_parquet_vectors_are_read_per_record_batch_and_duplicate_ids_refused(data, tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    _, d = encoded(data)
    ids = list(data.corpus.ids)
    pq.write_table(pa.table({"_id": ids, "embedding": d.tolist()}), tmp_path / "d.parquet", row_group_size=3)
    np.testing.assert_array_equal(load_embeddings(str(tmp_path / "d.parquet"), ids, "corpus"), d)
    pq.write_table(pa.table({"_id": [*ids, ids[2]], "embedding": [*d.tolist(), d[0].tolist()]}),
                   tmp_path / "dup.parquet")
    with pytest.raises(DataError, match=rf"1 duplicate ids.*{ids[2]}"):
        load_embeddings(str(tmp_path / "dup.parquet"), ids, "corpus")
    pq.write_table(pa.table({"_id": ids[:2], "embedding": [[1.0, 2.0], [1.0]]}), tmp_path / "ragged.parquet")
    with pytest.raises(DataError, match="differ in length"):
        load_embeddings(str(tmp_path / "ragged.parquet"), ids[:2], "corpus")


def test_query_embeddings_aligned_with_the_queries_file_serve_a_split(tmp_path: Path, make_beir) -> None:
    # users align vectors with the file they have: 5 queries in queries.jsonl, a split of 3
    root = make_beir(tmp_path / "beir", [{"_id": f"d{i}", "title": "", "text": t} for i, t in enumerate(DOCS)],
                     [{"_id": f"q{i}", "text": t} for i, t in enumerate(QUERIES)],
                     {"train": [("q1", "d3", 1), ("q3", "d7", 1), ("q4", "d5", 1)]})
    data = negmine.load_beir(root, split="train")
    assert list(data.queries.ids) == ["q1", "q3", "q4"]
    enc = HashingEncoder(dim=16)
    np.save(tmp_path / "q.npy", enc.encode(QUERIES, "query"))  # every query of the file, in its order
    ref = negmine.text.retrievers.Dense(encoder=enc).retrieve(data, 4)
    got = negmine.text.retrievers.Dense(encoder=enc, query_embeddings=str(tmp_path / "q.npy")).retrieve(data, 4)
    np.testing.assert_array_equal(got.ids, ref.ids)
    np.testing.assert_array_equal(got.scores, ref.scores)
    np.save(tmp_path / "q4.npy", enc.encode(QUERIES[:4], "query"))  # neither the split nor the file
    with pytest.raises(DataError, match=r"has 3 rows \(its file 5\)"):
        negmine.text.retrievers.Dense(encoder=enc, query_embeddings=str(tmp_path / "q4.npy")).retrieve(data, 4)
