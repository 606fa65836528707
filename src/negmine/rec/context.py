"""The sampling context every recommendation sampler draws through: the split data, the seed,
hashed ids, the excluded pairs and an optional scorer.

Every draw is a pure function of ``(seed, user id, positive item id, slot, round)`` through the
core's keyed hash (:func:`negmine.core.keys.uniform`), so the output does not depend on the order
of the interactions, on chunking or on other users. A draw that hits one of the user's excluded
items (positives of every split; low ratings when they are ignored) is redrawn in vectorised
rounds, and after :data:`MAX_ROUNDS` the few cells left are drawn exactly from the user's allowed
items. A user with no allowed item gets ``-1`` (a shortfall, reported). Weighted proposals draw
through a Walker alias table.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from negmine.core.errors import ConfigError
from negmine.core.keys import mix, uniform
from negmine.rec.interactions import RecData
from negmine.rec.live import LiveScorer
from negmine.rec.scorers import Scorer

__all__ = ["DENSE_MAX_BITS", "MAX_ROUNDS", "Context"]

MAX_ROUNDS = 32
DENSE_MAX_BITS = 1 << 30  # user x item grids up to this many cells get an exact bitmap (<= 128 MiB)
_C = np.uint64(0xD6E8FEB86659FD93)  # odd multiplier: the pair key of (u, i) differs from that of (i, u)


@dataclass
class Context:
    """What every sampler reads: the split data, the seed, hashed ids, sorted excluded pair keys
    ``user * n_items + item`` and an optional scorer: a fixed :class:`Scorer` (with each user's
    reference score) or a :class:`~negmine.rec.live.LiveScorer` over the model being trained.
    ``guard_refused`` / ``guard_fallback`` count the candidates ``live-dns``'s guard refused and
    the negatives it had to take from refused candidates (every candidate of the slot refused)."""

    data: RecData
    seed: int
    scorer: Scorer | LiveScorer | None = None
    user_keys: np.ndarray = field(init=False)
    item_keys: np.ndarray = field(init=False)
    excluded: np.ndarray = field(init=False)
    rejected: int = field(default=0, init=False)
    _tables: dict[bytes, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, init=False, repr=False)
    exact_fallback: int = field(default=0, init=False)
    guard_refused: int = field(default=0, init=False)
    guard_fallback: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        inter = self.data.interactions
        self.user_keys = inter.user_keys()
        self.item_keys = inter.item_keys()
        ex = self.data.exclude
        self.excluded = ex.query_of_pair() * self.data.n_items + ex.indices  # sorted: CSR rows are sorted
        self._filter = _PairFilter(self.excluded, self.data.n_users * self.data.n_items)

    def pair_keys(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """``uint64[n]`` key of each ``(user, positive item)`` from the hashed ids."""
        with np.errstate(over="ignore"):
            return self.user_keys[users] ^ (self.item_keys[items] * _C)

    def is_excluded(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """``bool`` (broadcast shape): whether ``item`` is excluded for ``user`` (exact)."""
        key = users * self.data.n_items + items
        out = self._filter.maybe(key)
        if self._filter.exact or not out.any():
            return out
        idx = np.flatnonzero(out)
        k = key.reshape(-1)[idx]
        pos = np.minimum(np.searchsorted(self.excluded, k), len(self.excluded) - 1)
        out.reshape(-1)[idx] = self.excluded[pos] == k
        return out

    def draw(self, users: np.ndarray, pair_keys: np.ndarray, n_cols: int, stream: int,
             weights: np.ndarray | None) -> np.ndarray:
        """``int64[n, n_cols]`` items not excluded for each row's user, drawn from ``weights``
        (``None``: uniform over the catalogue), ``-1`` where the user has no allowed item."""
        n_items = self.data.n_items
        table = None if weights is None else self._alias(weights)
        cols = np.arange(n_cols, dtype=np.uint64)
        if len(users) == 0:
            return np.zeros((0, n_cols), np.int64)

        def items_of(u: np.ndarray) -> np.ndarray:
            x = u * n_items
            k = np.minimum(x.astype(np.int64), n_items - 1)
            if table is None:
                return k
            return np.where(x - k < table[0][k], k, table[1][k])  # the bits below the bucket pick the side

        slot = cols + np.uint64(stream << 40)
        out = items_of(uniform(self.seed, pair_keys, slot))
        flat = out.reshape(-1)
        idx = np.flatnonzero(self.is_excluded(users[:, None], out))  # cells to redraw, as flat indices
        for r in range(1, MAX_ROUNDS):
            if len(idx) == 0:
                return out
            self.rejected += len(idx)
            rows, cc = np.divmod(idx, n_cols)
            slot_r = cc.astype(np.uint64) + np.uint64((stream << 40) | (r << 24))
            flat[idx] = new = items_of(uniform(self.seed, pair_keys[rows], slot_r[:, None])[:, 0])
            idx = idx[self.is_excluded(users[rows], new)]
        self.exact_fallback += len(idx)
        for r, c in zip(*(x.tolist() for x in np.divmod(idx, n_cols))):  # rare: users who excluded almost everything
            out[r, c] = self._exact(int(users[r]), pair_keys[r], c, stream, weights)
        return out

    def _alias(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Walker/Vose alias table ``(prob float64[n], alias int64[n])`` of ``weights``, cached."""
        key = hashlib.blake2b(np.ascontiguousarray(weights, np.float64).tobytes(), digest_size=16).digest()
        if key not in self._tables:
            n = len(weights)
            q = np.asarray(weights, np.float64) * n / weights.sum()
            prob, alias = np.ones(n), np.arange(n, dtype=np.int64)
            small = [i for i in range(n) if q[i] < 1.0]
            large = [i for i in range(n) if q[i] >= 1.0]
            while small and large:
                s_, l_ = small.pop(), large.pop()
                prob[s_], alias[s_] = q[s_], l_
                q[l_] -= 1.0 - q[s_]
                (small if q[l_] < 1.0 else large).append(l_)
            self._tables[key] = (prob, alias)  # leftovers keep prob 1 (float rounding)
        return self._tables[key]

    def _exact(self, user: int, pair_key: np.uint64, col: int, stream: int, weights: np.ndarray | None) -> int:
        ex = self.data.exclude
        allowed = np.setdiff1d(np.arange(self.data.n_items), ex.indices[ex.indptr[user]:ex.indptr[user + 1]])
        w = np.ones(len(allowed)) if weights is None else weights[allowed]
        if len(allowed) == 0 or w.sum() <= 0:
            return -1
        u = uniform(self.seed, np.array([pair_key]), np.array([col + ((stream << 40) | (MAX_ROUNDS << 24))],
                                                             np.uint64))[0, 0]
        return int(allowed[min(int(np.searchsorted(np.cumsum(w) / w.sum(), u, side="right")), len(allowed) - 1)])

    def scores(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        if self.scorer is None:
            raise ConfigError("this sampler needs a scorer; pass --scorer als|bpr|embeddings")
        s = self.scorer.score(users, np.maximum(items, 0))
        return np.where(items >= 0, s, -np.inf).astype(np.float32)


class _PairFilter:
    """Membership of ``user * n_items + item`` keys in the excluded set, as a packed bitmap:
    exact over the whole user x item grid when it has at most :data:`DENSE_MAX_BITS` cells,
    otherwise a one-hash Bloom filter of ~16 bits per key (false positives ~6%, confirmed by
    binary search; never a false negative)."""

    def __init__(self, keys: np.ndarray, cells: int) -> None:
        self.exact = cells <= DENSE_MAX_BITS
        if self.exact:
            self.shift = 0
            size = max(cells, 8)
        else:
            log2 = max(3, int(np.ceil(np.log2(max(16 * len(keys), 8)))))
            self.shift = 64 - log2
            size = 1 << log2
        self.bits = np.zeros((size + 7) // 8, np.uint8)
        h = self._slot(keys)
        np.bitwise_or.at(self.bits, h >> 3, (np.uint8(1) << (h & 7).astype(np.uint8)))

    def _slot(self, keys: np.ndarray) -> np.ndarray:
        k = np.asarray(keys, np.int64)
        if self.exact:
            return k
        with np.errstate(over="ignore"):
            return (mix(k.astype(np.uint64)) >> np.uint64(self.shift)).astype(np.int64)

    def maybe(self, keys: np.ndarray) -> np.ndarray:
        h = self._slot(keys)
        return ((self.bits[h >> 3] >> (h & 7).astype(np.uint8)) & 1).astype(bool)
