"""Membership of ``int64`` keys: which candidates are (possibly) known, asked in vectorised batches.

Domain-free: a key is whatever a domain packs into an ``int64`` (a knowledge-graph triple, a
``(query, document)`` or ``(user, item)`` pair). Two sets answer ``contains(keys) -> bool`` of the
shape of ``keys``:

- :class:`ExactSet` — exact. A dense ``bool`` table (one lookup per key) when the keys are
  non-negative and below :data:`DENSE_MAX`; otherwise an open-addressing hash table of
  ``2^b ≥ 2.5·n`` slots (Fibonacci hashing, linear probing, load ≤ 0.4): a lookup is one or two
  vectorised gathers, never a binary search. A key set holding ``int64``'s minimum (the hash
  table's empty mark) falls back to a sorted array and ``searchsorted``.
- :class:`Bloom` — a Bloom filter (Bloom 1970) for key sets that do not fit in memory: ``m`` bits
  and ``k`` hash functions for a target false-positive rate ``p`` (``m = ⌈−n ln p / ln² 2⌉``,
  ``k = round(m/n · ln 2)``), indices by double hashing ``g_i = h₁ + i·h₂ mod m`` of two splitmix64
  hashes salted with :data:`negmine.core.keys.BLOOM_SALTS` (Kirsch & Mitzenmacher 2006). A key
  that was added always answers ``True`` (no false negatives); one that was not answers ``True``
  with probability ``(1 − e^{−kn/m})^k`` ≈ ``p`` (:attr:`Bloom.stated_rate`).
"""

from __future__ import annotations

import math

import numpy as np

from negmine.core.errors import ConfigError
from negmine.core.keys import BLOOM_SALTS, GOLDEN, mix

__all__ = ["DENSE_MAX", "Bloom", "ExactSet"]

DENSE_MAX = 1 << 25  # keys below this: a bool table (32 MB at most) instead of a hash table
_SALT1, _SALT2 = BLOOM_SALTS
_EMPTY = np.int64(np.iinfo(np.int64).min)  # the hash table's empty slot (below every stored key)


class ExactSet:
    """Exact membership of ``int64`` keys (duplicates allowed in ``keys``).

    Attributes
    ----------
    keys_ : int64[n]
        The distinct keys, sorted.
    table_ : bool[max key + 1] or None
        The dense table (small non-negative key spaces).
    slots_ : int64[2^bits_] or None
        The open-addressing hash table (other key sets).

    Examples
    --------
    >>> s = ExactSet(np.array([7, 3, 3]))
    >>> s.contains(np.array([[3, 4], [7, 0]])).tolist()
    [[True, False], [True, False]]
    """

    def __init__(self, keys: np.ndarray) -> None:
        self.keys_ = np.unique(np.asarray(keys, dtype=np.int64))
        top = int(self.keys_[-1]) + 1 if len(self.keys_) else 0
        self.table_: np.ndarray | None = None
        self.slots_: np.ndarray | None = None
        if len(self.keys_) and self.keys_[0] >= 0 and top <= DENSE_MAX:
            self.table_ = np.zeros(top, dtype=bool)
            self.table_[self.keys_] = True
        elif len(self.keys_) and self.keys_[0] > _EMPTY:
            self._build_hash()

    def __len__(self) -> int:
        return len(self.keys_)

    def _slot(self, keys: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            h = keys.view(np.uint64) * GOLDEN
        return (h >> np.uint64(64 - self.bits_)).astype(np.int64)

    def _build_hash(self) -> None:
        n = len(self.keys_)
        self.bits_ = max(10, math.ceil(math.log2(2.5 * n)))
        size = 1 << self.bits_
        self.empty_ = _EMPTY
        slots = np.full(size, _EMPTY, dtype=np.int64)
        pending = self.keys_
        pos = self._slot(pending)
        while len(pending):
            free = slots[pos] == _EMPTY
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
        """``bool`` of the shape of ``keys``: whether each key is in the set."""
        k = np.asarray(keys, dtype=np.int64)
        if not len(self.keys_):
            return np.zeros(k.shape, dtype=bool)
        if self.table_ is not None:
            inside = (k >= 0) & (k < len(self.table_))
            return inside & self.table_[np.where(inside, k, 0)]
        if self.slots_ is not None:
            return self._probe(self.slots_, k)
        pos = np.searchsorted(self.keys_, k)
        return self.keys_[np.minimum(pos, len(self.keys_) - 1)] == k

    def _probe(self, slots: np.ndarray, k: np.ndarray) -> np.ndarray:
        flat = k.ravel()
        out = np.zeros(flat.shape, dtype=bool)
        idx = np.arange(len(flat))
        pos = self._slot(flat)
        mask = len(slots) - 1
        while len(idx):
            v = slots[pos]
            q = flat[idx]
            hit = (v == q) & (q != _EMPTY)  # the empty mark is never a stored key here
            out[idx[hit]] = True
            go = ~hit & (v != _EMPTY)
            idx, pos = idx[go], (pos[go] + 1) & mask
        return out.reshape(k.shape)


class Bloom:
    """Bloom filter of ``int64`` keys with a stated false-positive rate.

    Parameters
    ----------
    keys
        ``int64[n]`` keys (duplicates allowed).
    error_rate
        Target false-positive rate ``p`` in (0, 1); :attr:`stated_rate` is the rate the chosen
        ``m_`` bits and ``k_`` hashes give for these ``n_`` keys.
    """

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

    def __len__(self) -> int:
        return self.n_

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
        """``bool`` of the shape of ``keys``: ``True`` for every added key, and for a key never
        added with probability about :attr:`stated_rate`."""
        k = np.asarray(keys, dtype=np.int64)
        idx = self._indices(k.ravel())
        hit = (self.bits_[idx >> np.uint64(6)] >> (idx & np.uint64(63))) & np.uint64(1)
        return hit.astype(bool).all(axis=-1).reshape(k.shape)
