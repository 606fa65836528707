"""Splitting each user's positives into train and test (random, by time, leave-last), or taking a
split made elsewhere: both give :class:`~negmine.rec.interactions.RecData`, whose ``exclude``
holds every item that must never be a negative of a user."""

from __future__ import annotations

import numpy as np

from negmine.core.errors import ConfigError, DataError
from negmine.core.keys import uniform
from negmine.core.positives import Qrels
from negmine.rec.interactions import Interactions, RecData, from_arrays

__all__ = ["SPLITS", "from_splits", "split_interactions"]

SPLITS = ("random", "time", "leave-last")


def split_interactions(inter: Interactions, method: str = "time", test_fraction: float = 0.2,
                       seed: int = 0) -> RecData:
    """Split each user's positives into train and test.

    ``random``: ``round(f · n)`` of a user's ``n`` positives chosen by a hash of
    ``(seed, user, item)``; ``time``: the user's latest ``round(f · n)`` (ties: larger item id
    later); ``leave-last``: the user's single latest. A user always keeps at least one training
    positive. ``exclude`` (never negatives) holds the positives of both splits.
    """
    if method not in SPLITS:
        raise ConfigError(f"unknown split {method!r}; use one of {', '.join(SPLITS)}")
    if method != "leave-last" and not 0 <= test_fraction < 1:
        raise ConfigError(f"test_fraction must be in [0, 1), got {test_fraction}; e.g. --test-fraction 0.2")
    if method in ("time", "leave-last") and not inter.has_time:
        raise ConfigError(f"{inter.source}: split {method!r} needs a time column; pass --time-col or --split random")
    m = inter.positive
    pu, pi, pt = inter.users[m], inter.items[m], inter.times[m]
    counts = np.bincount(pu, minlength=inter.n_users)
    if method == "random":
        key = uniform(seed, inter.user_keys()[pu], inter.item_keys()[pi][:, None])[:, 0]
        order = np.lexsort((key, pu))
        n_test = np.minimum(np.rint(test_fraction * counts), counts - 1).astype(np.int64)
    else:
        order = np.lexsort((-inter.item_ids[pi], -pt, pu))  # latest first within each user
        n_test = (np.minimum(np.rint(test_fraction * counts), counts - 1) if method == "time"
                  else np.minimum(1, counts - 1)).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(len(pu), np.int64)
    rank[order] = np.arange(len(pu)) - starts[pu[order]]
    test = rank < n_test[pu]
    train_q = Qrels.from_pairs(inter.n_users, pu[~test], pi[~test])
    test_q = Qrels.from_pairs(inter.n_users, pu[test], pi[test])
    ex = m if inter.low_ratings == "negative" else np.ones(len(inter), bool)
    exclude = Qrels.from_pairs(inter.n_users, inter.users[ex], inter.items[ex])
    info = {"method": method, "test_fraction": test_fraction if method != "leave-last" else None, "seed": seed,
            "train": len(train_q.indices), "test": len(test_q.indices), "exclude": len(exclude.indices)}
    return RecData(inter, train_q, test_q, exclude, info)


def from_splits(train_users: np.ndarray, train_items: np.ndarray, test_users: np.ndarray, test_items: np.ndarray,
                *, source: str = "<splits>") -> RecData:
    """:class:`RecData` from a split made elsewhere (e.g. the LightGCN / SimpleX files of Gowalla,
    Yelp2018, Amazon-Book): ids ``int64[n]`` of the training and test positives. The catalogue is
    every user and item of either split; ``exclude`` holds both splits; a pair in both stays a
    training positive only."""
    tu, ti = np.asarray(train_users, np.int64), np.asarray(train_items, np.int64)
    su, si = np.asarray(test_users, np.int64), np.asarray(test_items, np.int64)
    if len(tu) != len(ti) or len(su) != len(si):
        raise DataError(f"{source}: users and items of a split must have the same length")
    inter = from_arrays(np.concatenate([tu, su]), np.concatenate([ti, si]), source=source)
    ur_tr, ir_tr = np.searchsorted(inter.user_ids, tu), np.searchsorted(inter.item_ids, ti)
    ur_te, ir_te = np.searchsorted(inter.user_ids, su), np.searchsorted(inter.item_ids, si)
    train_q = Qrels.from_pairs(inter.n_users, ur_tr, ir_tr)
    in_train = np.isin(ur_te * inter.n_items + ir_te, ur_tr * inter.n_items + ir_tr)
    test_q = Qrels.from_pairs(inter.n_users, ur_te[~in_train], ir_te[~in_train])
    exclude = Qrels.from_pairs(inter.n_users, inter.users, inter.items)
    info = {"method": "given", "test_fraction": None, "seed": None, "train": len(train_q.indices),
            "test": len(test_q.indices), "exclude": len(exclude.indices), "test_also_in_train": int(in_train.sum())}
    return RecData(inter, train_q, test_q, exclude, info)
