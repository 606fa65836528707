"""Known-triple filters: which corrupted triples are (possibly) true facts, so never emitted.

Both filters answer ``contains(keys)`` for ``int64`` triple keys (:func:`negmine.kg.data.triple_keys`):

- :class:`ExactFilter` — every known triple's key; exact. A dense bit table for small key spaces,
  else an open-addressing hash table (Fibonacci hashing, linear probing, load ≤ 0.4): one or two
  vectorised probes per lookup, so filtering millions of candidates costs tens of milliseconds.
- :class:`BloomFilter` — a Bloom filter (Bloom 1970) over the same keys, for graphs whose key set
  does not fit in memory: ``m`` bits and ``k`` hash functions chosen for a target false-positive
  rate ``p`` (``m = ⌈−n ln p / ln² 2⌉``, ``k = round(m/n · ln 2)``). A known triple always
  answers ``True`` (no false negatives), so a true triple is never emitted; a valid corruption
  answers ``True`` with probability ``(1 − e^{−kn/m})^k`` ≈ ``p`` (the stated rate), so the filter
  errs only towards dropping a valid corruption.

PyKEEN's ``filtered=True`` offers the same two (``PythonSetFilterer``, ``BloomFilterer``); these
work on negmine's ``int64`` keys without torch.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np

from negmine.core.errors import ConfigError
from negmine.core.keys import BLOOM_SALTS, mix

__all__ = ["FILTERS", "BloomFilter", "ExactFilter", "KnownFilter", "NoFilter", "make_filter"]

FILTERS = ("exact", "bloom", "none")
_DENSE_MAX = 1 << 25  # keys below this: a bool table (32 MB at most) instead of a binary search
_SALT1, _SALT2 = BLOOM_SALTS
_FIB = np.uint64(0x9E3779B97F4A7C15)


class KnownFilter(Protocol):
    name: str

    def contains(self, keys: np.ndarray) -> np.ndarray: ...

    def config(self) -> dict[str, Any]: ...


class NoFilter:
    """Filters nothing (PyKEEN's default ``filtered=False``): corruptions may be true facts."""

    name = "none"

    def contains(self, keys: np.ndarray) -> np.ndarray:
        return np.zeros(np.shape(keys), dtype=bool)

    def config(self) -> dict[str, Any]:
        return {"name": self.name}


class ExactFilter:
    """Exact membership of ``int64`` triple keys.

    Small key spaces (Nations, Kinships, UMLS...): a dense ``bool`` table, one lookup per key.
    Otherwise an open-addressing hash table of ``2^b ≥ 2.5·n`` slots (Fibonacci hashing, linear
    probing): a lookup is a few vectorised gathers, never a binary search.

    Examples
    --------
    >>> f = ExactFilter(np.array([7, 3, 3]))
    >>> f.contains(np.array([[3, 4], [7, 0]])).tolist()
    [[True, False], [True, False]]
    """

    name = "exact"

    def __init__(self, keys: np.ndarray) -> None:
        self.keys_ = np.unique(np.asarray(keys, dtype=np.int64))
        top = int(self.keys_[-1]) + 1 if len(self.keys_) else 0
        self.table_: np.ndarray | None = None
        self.slots_: np.ndarray | None = None
        if len(self.keys_) and self.keys_[0] >= 0 and top <= _DENSE_MAX:
            self.table_ = np.zeros(top, dtype=bool)
            self.table_[self.keys_] = True
        elif len(self.keys_) and self.keys_[0] > np.iinfo(np.int64).min:
            self._build_hash()

    def _slot(self, keys: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            h = keys.view(np.uint64) * _FIB
        return (h >> np.uint64(64 - self.bits_)).astype(np.int64)

    def _build_hash(self) -> None:
        n = len(self.keys_)
        self.bits_ = max(10, math.ceil(math.log2(2.5 * n)))
        size = 1 << self.bits_
        self.empty_ = np.int64(np.iinfo(np.int64).min)  # below every key (keys_[0] > min)
        slots = np.full(size, self.empty_, dtype=np.int64)
        pending = self.keys_
        pos = self._slot(pending)
        while len(pending):
            free = slots[pos] == self.empty_
            # of the keys aiming at the same free slot, the first (lowest key) takes it
            cand = np.flatnonzero(free)
            _, first = np.unique(pos[cand], return_index=True)
            won = cand[first]
            slots[pos[won]] = pending[won]
            keep = np.ones(len(pending), dtype=bool)
            keep[won] = False
            pending = pending[keep]
            pos = (pos[keep] + 1) & (size - 1)
        self.slots_ = slots

    def contains(self, keys: np.ndarray) -> np.ndarray:
        k = np.asarray(keys, dtype=np.int64)
        if not len(self.keys_):
            return np.zeros(k.shape, dtype=bool)
        if self.table_ is not None:
            inside = (k >= 0) & (k < len(self.table_))
            return inside & self.table_[np.where(inside, k, 0)]
        if self.slots_ is not None:
            flat = k.ravel()
            out = np.zeros(flat.shape, dtype=bool)
            idx = np.arange(len(flat))
            pos = self._slot(flat)
            mask = len(self.slots_) - 1
            while len(idx):
                v = self.slots_[pos]
                q = flat[idx]
                hit = v == q
                out[idx[hit]] = True
                go = ~hit & (v != self.empty_)
                idx, pos = idx[go], (pos[go] + 1) & mask
            return out.reshape(k.shape)
        pos = np.searchsorted(self.keys_, k)
        return self.keys_[np.minimum(pos, len(self.keys_) - 1)] == k

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "known": len(self.keys_)}


class BloomFilter:
    """Bloom filter of ``int64`` triple keys with a stated false-positive rate.

    Parameters
    ----------
    keys
        ``int64[n]`` keys of the known triples.
    error_rate
        Target false-positive rate ``p`` in (0, 1); :attr:`stated_rate` is the rate the chosen
        ``m`` and ``k`` give for these ``n`` keys.

    Hashing: ``k`` indices by double hashing ``g_i = h₁ + i·h₂ mod m`` of two splitmix64 hashes of
    the key (Kirsch & Mitzenmacher 2006).
    """

    name = "bloom"

    def __init__(self, keys: np.ndarray, error_rate: float = 0.001) -> None:
        if not 0.0 < error_rate < 1.0:
            raise ConfigError(f"bloom error_rate must be in (0, 1), got {error_rate}")
        k_arr = np.unique(np.asarray(keys, dtype=np.int64))
        n = max(1, len(k_arr))
        self.error_rate = float(error_rate)
        self.m_ = max(64, math.ceil(-n * math.log(error_rate) / math.log(2) ** 2))
        self.k_ = max(1, round(self.m_ / n * math.log(2)))
        self.n_ = len(k_arr)
        self.bits_ = np.zeros((self.m_ + 63) // 64, dtype=np.uint64)
        idx = self._indices(k_arr).ravel()
        np.bitwise_or.at(self.bits_, idx >> np.uint64(6), np.uint64(1) << (idx & np.uint64(63)))

    @property
    def stated_rate(self) -> float:
        """``(1 − e^{−k·n/m})^k``: the false-positive rate of a key that was never added."""
        return float((1.0 - math.exp(-self.k_ * self.n_ / self.m_)) ** self.k_)

    def _indices(self, keys: np.ndarray) -> np.ndarray:
        x = keys.astype(np.int64).view(np.uint64)
        with np.errstate(over="ignore"):
            h1 = mix(x ^ _SALT1)
            h2 = mix(x ^ _SALT2) | np.uint64(1)
            i = np.arange(self.k_, dtype=np.uint64)
            return (h1[..., None] + i * h2[..., None]) % np.uint64(self.m_)

    def contains(self, keys: np.ndarray) -> np.ndarray:
        k = np.asarray(keys, dtype=np.int64)
        idx = self._indices(k.ravel())
        hit = (self.bits_[idx >> np.uint64(6)] >> (idx & np.uint64(63))) & np.uint64(1)
        return hit.astype(bool).all(axis=-1).reshape(k.shape)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "known": self.n_, "error_rate": self.error_rate, "bits": self.m_,
                "hashes": self.k_, "stated_rate": self.stated_rate}


def make_filter(name: str, keys: np.ndarray, *, error_rate: float = 0.001) -> KnownFilter:
    """``exact``, ``bloom`` or ``none`` over the known-triple ``keys``."""
    if name == "exact":
        return ExactFilter(keys)
    if name == "bloom":
        return BloomFilter(keys, error_rate)
    if name == "none":
        return NoFilter()
    raise ConfigError(f"unknown filter {name!r}; choose one of {', '.join(FILTERS)}")
