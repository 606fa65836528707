"""The compiled BM25 search (numba) computes exactly what bm25s' numpy scoring does: the same
candidates, scores, positive scores and ``mined.parquet`` bytes, ties to the lower row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import negmine
from negmine.core.errors import ConfigError

pytest.importorskip("bm25s")
pytest.importorskip("numba")
from negmine.text.retrievers.bm25 import BM25

SAMPLE = Path(negmine.__file__).parent / "sample"


def both(data, k: int, **kw):  # type: ignore[no-untyped-def]
    return [BM25(backend=b, **kw).retrieve(data, k) for b in ("numpy", "numba")]


def assert_same(a, b) -> None:  # type: ignore[no-untyped-def]
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_array_equal(a.positive_scores, b.positive_scores)


@pytest.mark.parametrize("split", ["train", "test"])
def test_compiled_search_equals_the_numpy_path_on_the_sample(split: str) -> None:
    data = negmine.load_beir(SAMPLE, split=split)
    for k in (1, 10, 200):
        assert_same(*both(data, k))


def test_many_tied_scores_empty_queries_and_k_beyond_the_corpus(make_data) -> None:
    # duplicated documents tie exactly; a query of unknown words scores every document 0.0 (the
    # first rows win); a query matching two documents fills the rest with the lowest unmatched rows
    docs = ["apple pie"] * 7 + ["river boat"] * 5 + ["apple river"] * 3 + ["zebra"] + ["pie"] * 4
    queries = ["apple", "river apple apple", "unknownword", "zebra", "pie river"]
    pos = {"q0": ["d3"], "q1": ["d12"], "q2": ["d0"], "q3": ["d15"], "q4": ["d19", "d8"]}
    data = make_data(docs, queries, pos)
    for k in (1, 3, 8, 20, 25):
        a, b = both(data, k)
        assert_same(a, b)
    a, _ = both(data, 25)
    assert (a.ids[:, 20:] == -1).all() and np.isneginf(a.scores[:, 20:]).all()
    np.testing.assert_array_equal(a.ids[2, :20], np.arange(20))  # all zero: rows in order
    assert a.ids[3, 0] == 15 and a.ids[3, 1:4].tolist() == [0, 1, 2]


@pytest.mark.parametrize("method", ["robertson", "atire", "lucene"])
def test_other_variants_and_parameters(make_data, method: str) -> None:
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(30)]
    docs = [" ".join(rng.choice(words, size=rng.integers(1, 12))) for _ in range(300)]
    docs[100:140] = [docs[3]] * 40  # a run of 40 copies
    queries = [" ".join(rng.choice(words, size=rng.integers(1, 5))) for _ in range(60)]
    pos = {f"q{i}": [f"d{int(rng.integers(0, 300))}"] for i in range(60)}
    data = make_data(docs, queries, pos)
    for k in (5, 50):
        assert_same(*both(data, k, method=method, k1=1.2, b=0.6))


def test_mined_file_bytes_are_the_same_with_either_backend(tmp_path: Path) -> None:
    data = negmine.load_beir(SAMPLE, split="train")
    for b in ("numpy", "numba"):
        negmine.mine(data, BM25(backend=b), num_negatives=5, seed=3).save(tmp_path / b)
    assert (tmp_path / "numpy" / "mined.parquet").read_bytes() == (tmp_path / "numba" / "mined.parquet").read_bytes()


def test_bm25l_needs_the_numpy_path() -> None:
    data = negmine.load_beir(SAMPLE, split="test")
    with pytest.raises(ConfigError, match="does not support method 'bm25l'"):
        BM25(method="bm25l", backend="numba").retrieve(data, 5)
    r = BM25(method="bm25l")  # auto: falls back to numpy
    assert r.retrieve(data, 5).ids.shape == (len(data.queries), 5)
    with pytest.raises(ConfigError, match="unknown BM25 backend"):
        BM25(backend="java")


def test_mined_file_bytes_are_the_same_on_scifact(scifact: Path, tmp_path: Path) -> None:
    data = negmine.load_beir(scifact, split="train")
    for b in ("numpy", "numba"):
        negmine.mine(data, BM25(backend=b), num_negatives=5, seed=0).save(tmp_path / b)
    assert (tmp_path / "numpy" / "mined.parquet").read_bytes() == (tmp_path / "numba" / "mined.parquet").read_bytes()


def test_score_cells_equal_the_numpy_path() -> None:
    data = negmine.load_beir(SAMPLE, split="train")
    ids = np.random.default_rng(1).integers(-1, len(data.corpus), size=(len(data.queries), 17))
    a, b = (BM25(backend=x).score_cells(data, ids) for x in ("numpy", "numba"))
    np.testing.assert_array_equal(a, b)
    assert np.isneginf(a[ids < 0]).all() and (a[ids >= 0] >= 0).all()
