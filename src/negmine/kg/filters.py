"""Known-triple filters: which corrupted triples are (possibly) true facts, so never emitted.

Both filters answer ``contains(keys)`` for ``int64`` triple keys (:func:`negmine.kg.data.triple_keys`):

- :class:`ExactFilter` — a sorted array of the keys of every known triple; exact.
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

from negmine.errors import ConfigError
from negmine.samplers import _mix

__all__ = ["FILTERS", "BloomFilter", "ExactFilter", "KnownFilter", "NoFilter", "make_filter"]

FILTERS = ("exact", "bloom", "none")
_DENSE_MAX = 1 << 25  # keys below this: a bool table (32 MB at most) instead of a binary search
_SALT1 = np.uint64(0x5851F42D4C957F2D)
_SALT2 = np.uint64(0x14057B7EF767814F)


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
    """Exact membership of ``int64`` triple keys (a sorted array and a binary search).

    Examples
    --------
    >>> f = ExactFilter(np.array([7, 3, 3]))
    >>> f.contains(np.array([[3, 4], [7, 0]])).tolist()
    [[True, False], [True, False]]
    """

    name = "exact"

    def __init__(self, keys: np.ndarray) -> None:
        self.keys_ = np.unique(np.asarray(keys, dtype=np.int64))
        # small key spaces (Nations, Kinships, UMLS...): a dense table, one lookup per key
        top = int(self.keys_[-1]) + 1 if len(self.keys_) else 0
        self.table_: np.ndarray | None = None
        if len(self.keys_) and self.keys_[0] >= 0 and top <= _DENSE_MAX:
            self.table_ = np.zeros(top, dtype=bool)
            self.table_[self.keys_] = True

    def contains(self, keys: np.ndarray) -> np.ndarray:
        k = np.asarray(keys, dtype=np.int64)
        if not len(self.keys_):
            return np.zeros(k.shape, dtype=bool)
        if self.table_ is not None:
            inside = (k >= 0) & (k < len(self.table_))
            return inside & self.table_[np.where(inside, k, 0)]
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
            h1 = _mix(x ^ _SALT1)
            h2 = _mix(x ^ _SALT2) | np.uint64(1)
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
