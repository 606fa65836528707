"""The compiled exact re-scoring gives numpy's bytes (negmine.text.retrievers.rescore_jit)."""

from __future__ import annotations

import numpy as np
import pytest

from negmine.text.retrievers import base

numba = pytest.importorskip("numba")


def _arrays(rng: np.random.Generator, n_q: int, n_d: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """float32 rows spanning many magnitudes, where any change of summation order shows."""
    q = (rng.standard_normal((n_q, dim)) * np.exp(rng.normal(0, 2, (n_q, dim)))).astype(np.float32)
    d = (rng.standard_normal((n_d, dim)) * np.exp(rng.normal(0, 2, (n_d, dim)))).astype(np.float32)
    return q, d


def _numpy_path(monkeypatch: pytest.MonkeyPatch, q: np.ndarray, d: np.ndarray, ids: np.ndarray) -> np.ndarray:
    with monkeypatch.context() as m:
        m.setattr(base, "available", lambda name: False if name == "numba" else True)
        return base.rescore_exact(q, d, ids)


@pytest.mark.parametrize("dims", [range(1, 140), range(140, 400, 7), (511, 512, 513, 768, 1024, 1536)])
def test_the_compiled_rescoring_gives_numpys_bytes_at_every_dimension(monkeypatch: pytest.MonkeyPatch, dims):
    """Every branch of numpy's pairwise sum (below 8 terms, one block of up to 128, halves above),
    padding (-1 ids score -inf) and repeated ids: the same bytes as the numpy path."""
    from negmine.text.retrievers import rescore_jit

    rng = np.random.default_rng(next(iter(dims)))
    for dim in dims:
        q, d = _arrays(rng, 3, 40, dim)
        ids = rng.integers(-1, 40, (3, 9))
        # the float64 sums themselves, bit for bit (a float32 result hides most changes of order)
        assert rescore_jit.sums(q, d, ids).tobytes() == base.exact_sums(q, d, ids).tobytes(), dim
        fast = rescore_jit.rescore(q, d, ids)
        assert fast is not None
        assert fast.tobytes() == _numpy_path(monkeypatch, q, d, ids).tobytes(), dim
        assert base.rescore_exact(q, d, ids).tobytes() == fast.tobytes()
        assert np.isneginf(fast[ids < 0]).all()


def test_the_threaded_kernel_gives_the_serial_bytes(monkeypatch: pytest.MonkeyPatch):
    from negmine.text.retrievers import rescore_jit

    rng = np.random.default_rng(9)
    q, d = _arrays(rng, 300, 500, 384)
    ids = rng.integers(-1, 500, (300, 30))
    big = rescore_jit.rescore(q, d, ids)
    # the kernel that fetches rows ahead compiles with this numba, and the hint changes nothing
    assert rescore_jit.threaded() is rescore_jit._rescore_parallel
    plain = np.empty(ids.shape, dtype=np.float32)
    rescore_jit._rescore_plain(q, d, ids, rescore_jit.plan(384), plain)
    assert big is not None and big.tobytes() == plain.tobytes()
    # rows of another layout (a column slice of a wider array) are not fetched ahead: same bytes
    wide = np.zeros((500, 400), dtype=np.float32)
    wide[:, :384] = d
    assert rescore_jit.rescore(q, wide[:, :384], ids).tobytes() == big.tobytes()
    monkeypatch.setattr(rescore_jit, "PARALLEL_WORK", 1 << 62)
    assert big.tobytes() == rescore_jit.rescore(q, d, ids).tobytes()
    assert big.tobytes() == _numpy_path(monkeypatch, q, d, ids).tobytes()


def test_other_dtypes_keep_the_numpy_path():
    from negmine.text.retrievers import rescore_jit

    rng = np.random.default_rng(1)
    q, d = _arrays(rng, 2, 10, 16)
    ids = rng.integers(0, 10, (2, 3))
    assert rescore_jit.rescore(q, d.astype(np.float16), ids) is None
    assert rescore_jit.rescore(q.astype(np.float64), d, ids) is None
    half = base.rescore_exact(q, d.astype(np.float16), ids)
    expect = (d.astype(np.float16).astype(np.float64)[ids] * q.astype(np.float64)[:, None, :]).sum(-1)
    np.testing.assert_array_equal(half, expect.astype(np.float32))


def test_exact_search_gives_the_same_bytes_with_and_without_the_compiled_rescoring(monkeypatch: pytest.MonkeyPatch):
    """Dense.search end to end, with runs of exact duplicates at the cut."""
    from negmine.text.retrievers import Dense

    rng = np.random.default_rng(4)
    d = rng.standard_normal((3000, 48)).astype(np.float32)
    d[1500:1520] = d[7]
    q = rng.standard_normal((64, 48)).astype(np.float32)
    q[:8] = d[7] * 3
    fast = Dense(encoder=None, doc_block=700).search(q, d, 12)
    with monkeypatch.context() as m:
        m.setattr(base, "available", lambda name: False if name == "numba" else True)
        slow = Dense(encoder=None, doc_block=700, screen="numpy").search(q, d, 12)
    assert fast[0].tobytes() == slow[0].tobytes() and fast[1].tobytes() == slow[1].tobytes()


@pytest.mark.parametrize("dim", [3, 8, 16, 200, 384])
def test_a_sum_of_negative_zeros_is_positive_zero_as_in_numpy(dim):
    # a zero query against a document of negative components: every product is -0.0, and numpy's
    # reduction (which adds to +0.0) gives +0.0, so the compiled kernel must too
    from negmine.text.retrievers import rescore_jit

    q = np.zeros((2, dim), dtype=np.float32)
    d = -np.abs(np.random.default_rng(dim).standard_normal((5, dim))).astype(np.float32) - 0.5
    ids = np.tile(np.arange(5), (2, 1))
    assert rescore_jit.sums(q, d, ids).tobytes() == base.exact_sums(q, d, ids).tobytes()
    assert not np.signbit(rescore_jit.sums(q, d, ids)).any()
