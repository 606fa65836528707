"""negmine.core.membership: exact sets (dense table, hash table, sorted fallback) and the Bloom filter."""

from __future__ import annotations

import math

import numpy as np
import pytest

from negmine.core.errors import ConfigError
from negmine.core.membership import DENSE_MAX, Bloom, ExactSet


@pytest.mark.parametrize("kind", ["dense", "hash", "sorted"])
def test_exact_set_matches_isin(kind: str) -> None:
    rng = np.random.default_rng(11)
    if kind == "dense":
        keys = rng.integers(0, 50_000, size=20_000)
    elif kind == "hash":
        keys = rng.integers(-(2**62), 2**62, size=30_000)
    else:  # int64's minimum is the hash table's empty mark: the sorted fallback
        keys = np.concatenate([rng.integers(-(2**62), 2**62, size=5_000), [np.iinfo(np.int64).min]])
    s = ExactSet(keys)
    assert (s.table_ is not None) == (kind == "dense")
    assert (s.slots_ is not None) == (kind == "hash")
    assert len(s) == len(np.unique(keys))
    span = (0, 60_000) if kind == "dense" else (-(2**62), 2**62)
    edges = [-1, 0, DENSE_MAX, 2**63 - 1, np.iinfo(np.int64).min]
    probe = np.concatenate([keys[:5_000], rng.integers(*span, size=40_000), edges])  # 45,005: [9001, 5]
    got = s.contains(probe.reshape(-1, 5)).ravel()
    np.testing.assert_array_equal(got, np.isin(probe, keys))
    assert got[:5_000].all()  # every stored key found


def test_exact_set_empty_and_shapes() -> None:
    s = ExactSet(np.array([], dtype=np.int64))
    assert s.contains(np.arange(6).reshape(2, 3)).shape == (2, 3)
    assert not s.contains(np.arange(6)).any()
    assert ExactSet(np.array([5, 5, 5])).contains(np.array(5)).item() is True


def test_exact_set_hash_table_collisions_lowest_key_first() -> None:
    """Regularly spaced keys above the dense table: many share a home slot and probe on; every
    stored key is found, and no neighbour."""
    keys = np.arange(DENSE_MAX, DENSE_MAX + 5_000, dtype=np.int64) * 1024  # above the dense table
    s = ExactSet(keys)
    assert s.slots_ is not None
    assert s.contains(keys).all()
    assert not s.contains(keys + 1).any()


@pytest.mark.parametrize("rate", [0.1, 0.01, 0.001])
def test_bloom_never_misses_and_false_positives_near_the_stated_rate(rate: float) -> None:
    rng = np.random.default_rng(7)
    keys = rng.integers(0, 2**40, size=20_000)
    b = Bloom(keys, rate)
    assert b.contains(keys).all()  # no false negatives, ever
    assert b.contains(keys.reshape(100, 200)).all()
    others = rng.integers(2**40, 2**41, size=400_000)  # disjoint from the keys
    fp = float(b.contains(others).mean())
    expected = b.stated_rate
    assert abs(expected - rate) / rate < 0.25  # m and k chosen for the target
    # binomial: 4 standard deviations of 400,000 draws, plus 15% of rounding in m and k
    sd = math.sqrt(expected * (1 - expected) / len(others))
    assert abs(fp - expected) < 4 * sd + 0.15 * expected, (fp, expected)


def test_bloom_sizes_and_bits_are_a_function_of_the_keys() -> None:
    keys = np.arange(1000, dtype=np.int64) * 7919
    a, b = Bloom(keys, 0.01), Bloom(keys[::-1].copy(), 0.01)
    assert (a.m_, a.k_, a.n_) == (math.ceil(-1000 * math.log(0.01) / math.log(2) ** 2), 7, 1000)
    np.testing.assert_array_equal(a.bits_, b.bits_)  # order of the keys does not matter
    assert Bloom(np.array([], dtype=np.int64)).contains(np.arange(10)).sum() == 0


@pytest.mark.parametrize("rate", [0.0, 1.0, -0.5, float("nan")])
def test_bloom_refuses_a_rate_outside_0_1(rate: float) -> None:
    with pytest.raises(ConfigError, match="error_rate must be in"):
        Bloom(np.arange(3), rate)
