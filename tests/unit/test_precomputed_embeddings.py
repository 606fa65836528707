"""Precomputed embeddings as input (``doc_embeddings`` / ``query_embeddings``): the same
candidates as encoding the texts, aligned by position (.npy, memory-mapped) or by id (parquet, any
row order), validated with one-line errors; and sharded retrieval encodes the corpus once."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

import negmine
from negmine.encoders import HashingEncoder
from negmine.errors import DataError
from negmine.retrievers.embedding import load_embeddings

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
    ref = negmine.retrievers.Dense(encoder=HashingEncoder(dim=16)).retrieve(data, 4)
    pre = negmine.retrievers.Dense(encoder=HashingEncoder(dim=16), doc_embeddings=str(tmp_path / "d.npy"),
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
        r = negmine.retrievers.Dense(encoder=HashingEncoder(dim=16), doc_embeddings=str(tmp_path / "d.npy"),
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
    negmine.mine(data, negmine.retrievers.Dense(encoder=enc), num_negatives=2, query_shard=2)
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
    r = negmine.retrievers.Dense(encoder=HashingEncoder(dim=16), doc_embeddings=str(tmp_path / "d.npy"))
    with pytest.raises(DataError, match=r"8 dimensions|16 dimensions"):
        r.retrieve(data, 3)
    with pytest.raises(DataError, match="not found"):
        load_embeddings(str(tmp_path / "nope.npy"), data.corpus.ids, "corpus")
