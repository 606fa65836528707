"""The bfloat16 screen of the exact dense search (``retrievers/dense_bf16.py``).

Specification: the search gives the bytes of the brute-force answer (float64 elementwise, ties to
the lower row) whatever products it screens with; the bound it settles queries by holds for the
bfloat16 products torch computes, also on inputs built to make the rounding as large as it can be;
a kernel that breaks the bound is caught and the search is redone in float32.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from negmine.text.retrievers import dense
from negmine.text.retrievers.base import BoundBroken, exact_top_k, rescore_exact, resort, row_norms
from negmine.text.retrievers.dense import Dense

pytestmark = pytest.mark.extra("bm25", "st")  # numba (the screen) and torch (the products)

from negmine.text.retrievers import dense_bf16  # noqa: E402


def unit(seed: int, n: int, dim: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute(q: np.ndarray, d: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    every = np.tile(np.arange(len(d)), (len(q), 1))
    return resort(every, rescore_exact(q, d, every), k)


def same(got: tuple[np.ndarray, np.ndarray], want: tuple[np.ndarray, np.ndarray]) -> None:
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1].view(np.uint32), want[1].view(np.uint32))


def bf16_products(q: np.ndarray, d: np.ndarray) -> np.ndarray:
    import torch

    ids, scores = dense_bf16.search(q, d, len(d), 64, 256)  # every product, sorted
    out = np.empty((len(q), len(d)), dtype=np.float64)
    np.put_along_axis(out, ids, scores.astype(np.float64), axis=1)
    # the same products straight from torch, to be sure the screen widens the bits exactly
    direct = (torch.from_numpy(q).to(torch.bfloat16) @ torch.from_numpy(d).to(torch.bfloat16).T).float().numpy()
    np.testing.assert_array_equal(out.astype(np.float32), direct)
    return out


@pytest.mark.parametrize("dim", [8, 384, 1024])
def test_the_bound_holds_where_rounding_is_largest_and_is_not_vacuous(dim):
    # entries at the midpoint between two bfloat16 values (the largest relative rounding: 2^-8 of
    # the magnitude), all rounded down, all positive and the rows parallel, so no error cancels
    # and Σ|q_i d_i| = |q|·|d|: the worst case of the bound
    rng = np.random.default_rng(dim)
    half = np.float32(1 + 2.0**-8)  # 1 + half a bfloat16 ulp: rounds to even (down), error 2^-8
    q = (half * 2.0 ** rng.integers(-3, 3, size=(20, dim))).astype(np.float32)
    d = np.concatenate([q, (half * 2.0 ** rng.integers(-3, 3, size=(20, dim))).astype(np.float32)])
    d[::7] = unit(3, len(d[::7]), dim)  # and ordinary vectors
    raw = bf16_products(q, d)
    exact = q.astype(np.float64) @ d.T.astype(np.float64)
    err = dense_bf16.error_bound(dim) * row_norms(q)[:, None] * row_norms(d)[None, :]
    gap = np.abs(raw - exact)
    assert (gap <= err + dense_bf16.RELATIVE * np.abs(raw)).all()
    # on the all-positive rows the error is a sizeable part of the bound: a bound much too small
    # would be caught here, not trusted
    worst = np.diagonal(gap / (err + dense_bf16.RELATIVE * np.abs(raw)))[1:]
    assert worst.max() > 0.6


@pytest.mark.parametrize("k", [1, 10, 50])
def test_the_bfloat16_screen_gives_the_brute_force_bytes(k):
    d = unit(1, 3000, 48)
    d[2000:2030] = d[17]  # a run of copies across blocks
    d[2500:2510] = 0.0
    q = unit(2, 90, 48)
    q[0] = d[17]
    q[1] = 0.0
    q[2] = d[17] + np.float32(1e-3) * q[2]
    scale = np.float32(2.0) ** np.random.default_rng(0).integers(-12, 12, size=(len(d), 1)).astype(np.float32)
    for dd in (d, (d * scale).astype(np.float32)):  # unit vectors, and norms from 2^-12 to 2^11
        want = brute(q, dd, k)
        for qb, db in ((90, 3000), (7, 333), (1, 64)):
            same(Dense(query_block=qb, doc_block=db, screen_dtype="bfloat16").search(q, dd, k), want)


def test_a_float16_memory_map_is_read_as_is(tmp_path):
    d = unit(4, 1200, 32).astype(np.float16)
    np.save(tmp_path / "d.npy", d)
    mm = np.load(tmp_path / "d.npy", mmap_mode="r")  # read-only: torch must not warn about writing
    q = unit(5, 20, 32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = Dense(query_block=20, doc_block=500, screen_dtype="bfloat16").search(q, mm, 15)
    same(got, Dense(screen_dtype="float32").search(q, d.astype(np.float32), 15))


def test_k_beyond_the_corpus_and_a_first_search_of_every_document():
    d = unit(6, 40, 16)
    q = unit(7, 5, 16)
    for k in (1, 4, 39, 40, 60):  # first(k) = 2k + 32 covers the corpus from k = 4 on
        same(Dense(screen_dtype="bfloat16").search(q, d, k), brute(q, d, k))


def test_a_kernel_beyond_its_bound_is_caught_and_the_search_redone_in_float32(monkeypatch):
    d = unit(8, 500, 16)
    q = unit(9, 12, 16)
    real = dense_bf16.search

    def off(*args, **kwargs):  # products rounded more coarsely than the bound assumes
        ids, scores = real(*args, **kwargs)
        return ids, np.where(ids >= 0, scores + np.float32(0.05), scores).astype(np.float32)

    monkeypatch.setattr(dense_bf16, "search", off)
    monkeypatch.setattr(dense, "_BF16_BROKEN", [])
    with pytest.raises(BoundBroken, match="beyond its bound"):
        exact_top_k(q, d, 5, lambda qs, dd, kk: off(qs, dd, kk, 64, 64), error=dense_bf16.error_bound(16),
                    relative=dense_bf16.RELATIVE, first=42, verify=True)
    with pytest.warns(RuntimeWarning, match="bfloat16 screen broke its bound"):
        got = Dense(screen_dtype="bfloat16").search(q, d, 5)
    same(got, brute(q, d, 5))
    assert dense._BF16_BROKEN
    # auto stays in float32 from now on in this process; an explicit bfloat16 still tries
    calls = []
    monkeypatch.setattr(dense_bf16, "search", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    monkeypatch.setattr(dense_bf16, "WORK_LOADED", 1)
    monkeypatch.setattr(dense_bf16, "WORK_COLD", 1)
    monkeypatch.setattr(dense_bf16, "usable", lambda: True)
    same(Dense().search(q, d, 5), brute(q, d, 5))
    assert calls == []
    same(Dense(screen_dtype="bfloat16").search(q, d, 5), brute(q, d, 5))
    assert calls == [1]


def test_queries_the_first_search_leaves_unsettled_go_on_in_float32(monkeypatch):
    # one document of 30x the others' norm widens the bound of every query 30 times: most stay
    # unsettled after the bfloat16 search, and go on in float32 at once (not in rounds of ever
    # more bfloat16 candidates); auto does not take bfloat16 for such a corpus at all
    d = unit(12, 4000, 32)
    d[-1] *= np.float32(30.0)
    q = unit(13, 60, 32)
    calls: list[tuple[int, int]] = []
    real = dense_bf16.search
    monkeypatch.setattr(dense_bf16, "search", lambda *a, **kw: calls.append((len(a[0]), a[2])) or real(*a, **kw))
    same(Dense(screen_dtype="bfloat16").search(q, d, 10), brute(q, d, 10))
    assert calls == [(60, dense_bf16.first(10))]
    monkeypatch.setattr(dense, "_BF16_BROKEN", [])
    monkeypatch.setattr(dense_bf16, "usable", lambda: True)
    monkeypatch.setattr(dense_bf16, "WORK_LOADED", 1)
    monkeypatch.setattr(dense_bf16, "WORK_COLD", 1)
    calls.clear()
    same(Dense().search(q, d, 10), brute(q, d, 10))
    assert calls == []
    assert dense_bf16.even(row_norms(d[:-1])) and not dense_bf16.even(row_norms(d))


def test_a_few_queries_with_ties_at_their_cut_stay_on_the_bfloat16_search(monkeypatch):
    # 100 copies of the document query 0 equals: its cut is unsettled with first(10) = 52
    # candidates; one query of 40 is under a quarter, so it searches again in bfloat16 with twice
    # as many candidates, not in float32
    d = unit(17, 3000, 24)
    d[np.random.default_rng(0).choice(3000, 100, replace=False)] = d[5]
    q = unit(18, 40, 24)
    q[0] = d[5]
    calls: list[tuple[int, int]] = []
    real = dense_bf16.search
    monkeypatch.setattr(dense_bf16, "search", lambda *a, **kw: calls.append((len(a[0]), a[2])) or real(*a, **kw))
    same(Dense(screen_dtype="bfloat16").search(q, d, 10), brute(q, d, 10))
    assert calls == [(40, 52), (1, 104)]


def test_auto_searches_in_float32_where_torch_cannot_be_imported(monkeypatch):
    import sys

    d = unit(14, 300, 16)
    q = unit(15, 6, 16)
    monkeypatch.setattr(dense, "_BF16_BROKEN", [])
    monkeypatch.setattr(dense_bf16, "usable", lambda: True)
    monkeypatch.setattr(dense_bf16, "WORK_LOADED", 1)
    monkeypatch.setattr(dense_bf16, "WORK_COLD", 1)
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    assert not dense_bf16.torch_native()
    same(Dense().search(q, d, 4), brute(q, d, 4))


def test_auto_takes_the_bfloat16_screen_only_where_it_pays(monkeypatch):
    d = unit(10, 400, 16)
    q = unit(11, 8, 16)
    calls = []
    real = dense_bf16.search
    monkeypatch.setattr(dense_bf16, "search", lambda *a, **kw: calls.append(len(a[0])) or real(*a, **kw))
    monkeypatch.setattr(dense, "_BF16_BROKEN", [])
    monkeypatch.setattr(dense_bf16, "usable", lambda: True)
    Dense().search(q, d, 5)
    assert calls == []  # 51,200 multiply-adds: far below what pays for it
    monkeypatch.setattr(dense_bf16, "WORK_LOADED", 1)
    monkeypatch.setattr(dense_bf16, "WORK_COLD", 1)
    same(Dense().search(q, d, 5), brute(q, d, 5))
    assert calls == [8]
    monkeypatch.setattr(dense_bf16, "usable", lambda: False)  # a CPU without bfloat16 instructions
    Dense().search(q, d, 5)
    Dense(screen_dtype="float32").search(q, d, 5)
    assert calls == [8]


def test_bfloat16_instructions_are_read_from_cpuinfo():
    x86 = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 avx512_vnni\n"
    assert dense_bf16.has_bf16(x86)
    assert dense_bf16.has_bf16("flags : sse avx512f amx_bf16 amx_tile\n")
    assert dense_bf16.has_bf16("Features\t: fp asimd bf16 i8mm\n")
    assert not dense_bf16.has_bf16("flags\t\t: fpu avx2 avx512f avx512_vnni\nmodel name : x bf16 y\n")
    assert not dense_bf16.has_bf16("")


def test_vectors_beyond_float32s_range_in_a_float64_array_are_not_zero_vectors():
    # float64 queries whose entries are below float32's smallest: cast to float32 they vanish,
    # their exact scores do not. Both screens give the brute-force bytes (before: the first
    # rows, as for a zero query, and the bfloat16 screen reported a broken kernel)
    rng = np.random.default_rng(16)
    d = (rng.standard_normal((500, 16)) * 2**30).astype(np.float32)
    q = rng.standard_normal((3, 16)) * 1e-47
    q[1] = 0.0
    for cfg in ("float32", "bfloat16"):
        same(Dense(screen_dtype=cfg).search(q, d, 3), brute(q, d, 3))
    assert not dense._BF16_BROKEN
    norms = row_norms(np.array([[1e-47, 2e-47], [0.0, 0.0], [1e-200, 0.0], [3e300, 4e300]]))
    np.testing.assert_allclose(norms, [np.sqrt(5) * 1e-47, 0.0, 1e-200, 5e300], rtol=1e-6)
    assert (norms >= [np.sqrt(5) * 1e-47, 0.0, 1e-200, 5e300]).all()


def test_norms_outside_the_bounds_range_take_float32():
    assert dense_bf16.in_range(np.array([0.0, 1.0, 2.0**39]), 1.0)
    assert not dense_bf16.in_range(np.array([1.0, 2.0**-41]), 1.0)
    assert not dense_bf16.in_range(np.array([1.0]), 2.0**41)


def test_an_unknown_screen_dtype_is_a_config_error():
    from negmine.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"screen_dtype 'half'.*auto, float32, bfloat16"):
        Dense(screen_dtype="half")
