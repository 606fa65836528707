"""What the ray engine ships to its workers (no Ray needed): file-backed embeddings travel as a
path and identity, the corpus without its texts; and the exact merge of document shards."""

from __future__ import annotations

import itertools
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from negmine.core.errors import ConfigError
from negmine.text.engines.ray_ship import MappedNpy, ShippedCorpus, for_workers, on_worker
from negmine.text.engines.ray_tasks import merge_top
from negmine.text.retrievers import BM25, Dense, Union
from negmine.text.retrievers.base import top_k
from negmine.text.types import Corpus, MiningData, Qrels, Queries


@pytest.fixture
def npy(tmp_path: Path) -> Path:
    path = tmp_path / "docs.npy"
    np.save(path, np.arange(600, dtype=np.float32).reshape(200, 3))
    return path


def test_whole_file_is_a_handle_and_a_view_is_not(npy: Path) -> None:
    whole = np.load(npy, mmap_mode="r")
    h = MappedNpy.of(whole)
    assert h is not None and h.path == str(npy) and h.shape == (200, 3) and h.size == npy.stat().st_size
    assert MappedNpy.of(whole[10:]) is None  # a slice: its rows are not the file's
    assert MappedNpy.of(whole[:, :2]) is None
    assert MappedNpy.of(np.asarray(whole)) is None  # held in memory
    assert np.array_equal(h.open(), whole)


def test_a_changed_or_missing_file_is_a_one_line_error(npy: Path) -> None:
    h = MappedNpy.of(np.load(npy, mmap_mode="r"))
    assert h is not None
    np.save(npy, np.zeros((200, 3), np.float32))
    os.utime(npy, ns=(h.mtime_ns + 10**9, h.mtime_ns + 10**9))
    with pytest.raises(ConfigError, match=r"sees a different file than the driver.*same path$"):
        h.open()
    npy.unlink()
    with pytest.raises(ConfigError, match=r"cannot read these embeddings \(No such file or directory\)"):
        h.open()


def _data(n_docs: int, n_queries: int) -> MiningData:
    corpus = Corpus(ids=[f"d{i}" for i in range(n_docs)], texts=[f"text {i} word{i % 7}" for i in range(n_docs)])
    queries = Queries(ids=[f"q{i}" for i in range(n_queries)], texts=[f"word{i}" for i in range(n_queries)])
    pos = Qrels.from_pairs(n_queries, np.arange(n_queries), np.arange(n_queries))
    return MiningData(corpus, queries, pos, pos)


@pytest.mark.extra("bm25")
def test_workers_get_paths_not_embeddings_nor_texts(tmp_path: Path, npy: Path) -> None:
    data = _data(200, 4)
    np.save(tmp_path / "q.npy", np.ones((4, 3), np.float32))
    dense = Dense(doc_embeddings=str(npy), query_embeddings=str(tmp_path / "q.npy"))
    union = Union([BM25(), dense])
    union.prepare(data)
    payload, shipped = for_workers(data.corpus, union)
    assert shipped == {"ray_corpus_texts_shipped": False, "ray_mapped_files": 2}
    blob = pickle.dumps(payload)
    assert b"text 199 word3" not in blob and npy.stat().st_size > 2000
    corpus, light = on_worker(pickle.loads(blob))
    assert isinstance(corpus, ShippedCorpus) and len(corpus) == 200
    member = light.members[1]
    assert member.docs_[0] is corpus and light.members[0].state_[0] is corpus  # one object graph
    assert isinstance(member.docs_[1], np.memmap) and np.array_equal(member.docs_[1], np.load(npy))
    assert dense.docs_ is not None and dense.docs_[0] is data.corpus  # the driver's retriever is untouched
    with pytest.raises(AttributeError, match="keeps the corpus texts on the driver"):
        _ = corpus.texts


def test_an_unknown_retriever_is_shipped_whole() -> None:
    class Mine(BM25):
        pass

    class Other:
        name = "other"

    data = _data(10, 2)
    assert for_workers(data.corpus, Mine())[1]["ray_corpus_texts_shipped"] is False
    (corpus, _), shipped = for_workers(data.corpus, Union([Other()]))  # type: ignore[list-item]
    assert corpus is data.corpus and shipped["ray_corpus_texts_shipped"] is True


@pytest.mark.parametrize("cuts", [[0, 50], [0, 7, 13, 50], [0, 1, 2, 3, 50], [0, 49, 50]])
def test_merge_of_document_shards_is_the_whole_top_k(cuts: list[int]) -> None:
    rng = np.random.default_rng(len(cuts))
    scores = rng.integers(0, 6, size=(9, 50)).astype(np.float32)  # many ties: the lower row wins
    scores[2] = -np.inf  # a query with no candidate
    scores[3, 5] = np.nan
    k = 12
    want, _ = top_k(scores, k)
    parts = []
    for lo, hi in itertools.pairwise(cuts):
        ids, s = top_k(scores[:, lo:hi], min(k, hi - lo))
        parts.append((np.where(ids >= 0, ids + lo, -1), s))
    assert np.array_equal(merge_top(parts, k), want)
