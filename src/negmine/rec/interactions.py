"""The interactions of a recommendation data set, as arrays: :class:`Interactions` (every
``(user, item, rating, time)`` row, deduplicated and sorted) and :class:`RecData` (split into
train / test positives and the items never to be a negative), and :func:`from_arrays`, which
builds and validates :class:`Interactions` from ids in memory.

Users and items are numbered in order of their (sorted) ids and the rows are stored sorted by
``(user, item)``, so nothing downstream depends on the order of the input. Known positives are CSR
(:class:`~negmine.core.positives.Qrels`, users as queries). Every problem is a one-line
:class:`~negmine.core.errors.DataError` (what, where, how to fix).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from negmine.core.errors import DataError, examples
from negmine.core.keys import string_keys
from negmine.core.positives import Qrels

__all__ = ["Interactions", "RecData", "from_arrays"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Interactions:
    """Deduplicated interactions, sorted by ``(user, item)``.

    ``user_ids int64[n_users]`` and ``item_ids int64[n_items]`` (sorted) map rows to ids;
    ``users``/``items int64[n]`` are rows, ``ratings float32[n]``, ``times int64[n]`` (``0`` where
    the file has no time column), ``positive bool[n]`` (rating ``>= min_rating``).
    ``low_ratings`` says what a below-threshold interaction is: ``"negative"`` (it may be sampled
    as a negative) or ``"ignore"`` (it is never a negative, nor a positive).
    """

    user_ids: np.ndarray
    item_ids: np.ndarray
    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    times: np.ndarray
    positive: np.ndarray
    low_ratings: str = "negative"
    has_time: bool = True
    stats: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def __len__(self) -> int:
        return len(self.users)

    def positives(self) -> Qrels:
        """CSR user -> positive items."""
        m = self.positive
        return Qrels.from_pairs(self.n_users, self.users[m], self.items[m], self.ratings[m])

    def user_keys(self) -> np.ndarray:
        """``uint64[n_users]`` hash of each user id (as text): the seed of position-free randomness."""
        return string_keys([str(x) for x in self.user_ids.tolist()])

    def item_keys(self) -> np.ndarray:
        return string_keys([str(x) for x in self.item_ids.tolist()])

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for a in (self.user_ids, self.item_ids, self.users, self.items, self.ratings, self.times, self.positive):
            h.update(np.ascontiguousarray(a).tobytes())
        h.update(self.low_ratings.encode())
        return h.hexdigest()


@dataclass(frozen=True)
class RecData:
    """Interactions split for mining: ``train`` and ``test`` positives (CSR, users as rows) and
    ``exclude``, every item that must never be a negative of a user — the positives of every split,
    plus the below-threshold interactions when ``low_ratings == "ignore"``."""

    interactions: Interactions
    train: Qrels
    test: Qrels
    exclude: Qrels
    split: dict[str, Any] = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return self.interactions.n_users

    @property
    def n_items(self) -> int:
        return self.interactions.n_items

    def item_counts(self) -> np.ndarray:
        """``int64[n_items]``: training positives per item (the popularity of an item)."""
        return np.bincount(self.train.indices, minlength=self.n_items).astype(np.int64)


def from_arrays(
    user_ids: np.ndarray, item_ids: np.ndarray, ratings: np.ndarray | None = None, times: np.ndarray | None = None,
    *, min_rating: float | None = None, low_ratings: str = "negative", has_time: bool | None = None,
    source: str = "<arrays>", drop_users_without_positives: bool | None = None, require_positives: bool = False,
) -> Interactions:
    """:class:`Interactions` from parallel arrays of ids ``int64[n]`` (and ratings, times).

    Users without a positive (no rating ``>= min_rating``) are skipped and counted in
    ``stats["users_without_positives_dropped"]``, unless ``require_positives`` (or the older
    ``drop_users_without_positives=False``) asks for an error instead."""
    strict = bool(require_positives) or drop_users_without_positives is False
    if min_rating is not None:
        from negmine.rec.options import check

        min_rating = check("min_rating", min_rating, source)
    u = np.asarray(user_ids, dtype=np.int64)
    i = np.asarray(item_ids, dtype=np.int64)
    n = len(u)
    if n == 0:
        raise DataError(f"{source}: no interactions; pass at least one")
    r = np.ones(n, np.float32) if ratings is None else np.asarray(ratings, dtype=np.float32)
    if not np.isfinite(r).all():
        bad = np.flatnonzero(~np.isfinite(r))
        raise DataError(f"{source}: {len(bad)} rating(s) are not finite numbers (e.g. row {int(bad[0])}: "
                        f"{float(np.asarray(ratings)[bad[0]])!r}, float32 range ±3.4e38); fix those ratings")
    t = np.zeros(n, np.int64) if times is None else np.asarray(times, dtype=np.int64)
    positive = np.ones(n, bool) if min_rating is None else r >= min_rating
    # dedupe (user, item): the highest rating, then the latest time
    order = np.lexsort((-t, -r, i, u))
    u, i, r, t, positive = u[order], i[order], r[order], t[order], positive[order]
    first = np.ones(n, bool)
    first[1:] = (u[1:] != u[:-1]) | (i[1:] != i[:-1])
    dups = int(n - first.sum())
    if dups:
        log.warning("%s: %d duplicate (user, item) rows kept once (highest rating, then latest time)", source, dups)
    u, i, r, t, positive = u[first], i[first], r[first], t[first], positive[first]
    pos_users = np.unique(u[positive])
    all_users = np.unique(u)
    without = np.setdiff1d(all_users, pos_users)
    if len(without):
        if strict:
            raise DataError(
                f"{source}: {len(without)} user(s) have no interaction rated >= {min_rating:g} (e.g. "
                f"{examples(without.tolist())}); lower --min-rating or drop --require-positives (such users "
                "are then skipped and counted)"
            )
        log.info("%s: %d user(s) without an interaction rated >= %s skipped (e.g. %s)", source, len(without),
                 min_rating, examples(without.tolist()))
        keep = np.isin(u, without, invert=True)
        u, i, r, t, positive = u[keep], i[keep], r[keep], t[keep], positive[keep]
    if not len(u):
        raise DataError(f"{source}: no user has an interaction rated >= {min_rating:g} ({len(without)} user(s) "
                        "skipped): 0 interactions to mine; lower --min-rating")
    user_ids_s, ur = np.unique(u, return_inverse=True)
    item_ids_s, ir = np.unique(i, return_inverse=True)
    stats = {"rows": int(n), "duplicates": dups, "users_without_positives_dropped": len(without),
             "interactions": len(u), "positives": int(positive.sum()), "low_ratings": int((~positive).sum()),
             "users": len(user_ids_s), "items": len(item_ids_s), "min_rating": min_rating}
    return Interactions(user_ids_s.astype(np.int64), item_ids_s.astype(np.int64), ur.astype(np.int64).ravel(),
                        ir.astype(np.int64).ravel(), r, t, positive, low_ratings,
                        bool(times is not None) if has_time is None else has_time, stats, source)
