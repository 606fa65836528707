"""Interactions for recommendation: load, validate, split.

A file of ``(user, item[, rating][, time])`` rows becomes :class:`Interactions`: integer rows
inside, numeric ids only at the edges. Users and items are numbered in order of their (sorted)
ids, and the rows are stored sorted by ``(user, item)``, so nothing downstream depends on the
order of the file. Known positives are CSR (:class:`~negmine.text.types.Qrels`, users as queries).

Every problem is a one-line :class:`~negmine.core.errors.DataError` (what, where, how to fix).
"""

from __future__ import annotations

import csv
import hashlib
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from negmine.core.errors import ConfigError, DataError, examples
from negmine.core.keys import string_keys, uniform
from negmine.core.optional import require
from negmine.core.positives import Qrels

__all__ = ["FORMATS", "SPLITS", "Interactions", "RecData", "from_splits", "load_interactions", "split_interactions"]

log = logging.getLogger(__name__)

FORMATS = ("csv", "tsv", "parquet", "movielens")
SPLITS = ("random", "time", "leave-last")
LOW_RATINGS = ("negative", "ignore")
DEFAULT_COLUMNS = {"user": "user_id", "item": "item_id", "rating": "rating", "time": "timestamp"}


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


# ------------------------------------------------------------------------------------- reading
def _read_table(path: Path, fmt: str) -> tuple[dict[str, list[Any]], int]:
    """Columns of the file as lists (values as read) and the line of its first data row."""
    if fmt == "parquet":
        pq = require("pyarrow.parquet")
        try:
            table = pq.read_table(path)
        except Exception as exc:  # ArrowInvalid / OSError subclasses for unreadable files
            raise DataError(f"{path}: not a readable parquet file ({exc.__class__.__name__}); check the file") from None
        return {name: table.column(name).to_pylist() for name in table.column_names}, 1
    raw = path.read_bytes()
    if raw[:4] == b"PAR1":
        raise DataError(f"{path}: is a parquet file, not {fmt} text; pass --format parquet (or drop --format)")
    try:
        text = raw.decode("utf-8-sig")  # a UTF-8 byte-order mark is accepted and stripped
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not valid UTF-8 (byte 0x{raw[exc.start]:02x}); re-save the file as "
                        "UTF-8, e.g. iconv -f latin1 -t utf-8") from None
    if fmt == "movielens":
        names = ["user_id", "item_id", "rating", "timestamp"]
        if "::" in text[:1000]:  # ml-1m / ml-10m ratings.dat
            rows = [line.split("::") for line in text.splitlines() if line.strip()]
        else:
            rows = [line.split("\t") for line in text.splitlines() if line.strip()]
        start = 1
    else:
        reader = csv.reader(text.splitlines(), delimiter="," if fmt == "csv" else "\t")
        all_rows = [r for r in reader if r]
        if not all_rows:
            return {}, 2
        names, rows, start = [c.strip() for c in all_rows[0]], all_rows[1:], 2
        twice = sorted({c for c in names if names.count(c) > 1})
        if twice:
            raise DataError(f"{path}:1: the header names column(s) {examples(twice)} twice; give each column "
                            "its own name")
    for i, r in enumerate(rows):
        if len(r) != len(names):
            raise DataError(f"{path}:{i + start}: expected {len(names)} fields, got {len(r)}; fix or remove this line")
    return {n: [r[j].strip() for r in rows] for j, n in enumerate(names)}, start


def _separator_hint(cols: dict[str, Any], fmt: str) -> str:
    """A hint when the header looks split by the wrong separator (one column holding commas or tabs)."""
    if len(cols) == 1:
        only = next(iter(cols))
        if "," in only and fmt != "csv":
            return " (the header holds commas: pass --format csv)"
        if "\t" in only and fmt != "tsv":
            return " (the header holds tabs: pass --format tsv)"
    return ""


def _numbers(values: list[Any], integer: bool, path: Path, col: str, start: int) -> np.ndarray:
    """``int64`` or ``float64`` array of a column; a one-line error at the first bad value."""
    what = "an integer (64-bit)" if integer else "a number"
    try:
        arr = np.asarray(values)
        if arr.dtype == object or arr.dtype == bool:
            raise ValueError
        f = arr.astype(np.float64)
        if not np.isfinite(f).all() or (integer and arr.dtype.kind == "f" and not np.all(f == np.floor(f))):
            raise ValueError
        return arr.astype(np.int64) if integer else f
    except (ValueError, TypeError, OverflowError):
        for i, v in enumerate(values):
            try:
                x = float(v)
                ok = math.isfinite(x) and not isinstance(v, bool) and (not integer or (x.is_integer() and _int_ok(v)))
            except (ValueError, TypeError, OverflowError):
                ok = False
            if not ok:
                raise DataError(
                    f"{path}:{i + start}: column {col!r} holds {v!r}, not {what}"
                    f"{' (a finite one)' if _infinite(v) else ''}; fix that row "
                    "or point --user-col/--item-col/--rating-col/--time-col at the right column"
                ) from None
        raise DataError(f"{path}: column {col!r} is not {what}; fix the file") from None


def _infinite(v: Any) -> bool:
    try:
        return not math.isfinite(float(v)) and float(v) == float(v)
    except (ValueError, TypeError, OverflowError):
        return False


def _int_ok(v: Any) -> bool:
    """Whether ``v`` reads as an integer that fits int64."""
    try:
        x = int(v)
    except (ValueError, TypeError):
        if not isinstance(v, float):
            return False
        x = int(v)
    return -(2**63) <= x < 2**63


def load_interactions(
    path: str | Path,
    *,
    format: str | None = None,
    user_col: str | None = None,
    item_col: str | None = None,
    rating_col: str | None = None,
    time_col: str | None = None,
    min_rating: float | None = None,
    low_ratings: str = "negative",
    drop_users_without_positives: bool | None = None,
    require_positives: bool = False,
) -> Interactions:
    """Load interactions from a csv/tsv file with a header, a parquet file, or MovieLens
    ``u.data`` (tab-separated ``user item rating time``; a directory holding ``u.data`` works too).

    Parameters
    ----------
    format
        ``csv``, ``tsv``, ``parquet`` or ``movielens``; inferred from the suffix when ``None``.
    user_col, item_col, rating_col, time_col
        Column names (defaults ``user_id``, ``item_id``, ``rating``, ``timestamp``; rating and time
        are optional when the file has no such column). Ids must be integers.
    min_rating
        Interactions rated ``>= min_rating`` are positives; ``None``: every interaction is.
    low_ratings
        ``"negative"``: a below-threshold item may be sampled as a negative; ``"ignore"``: never.
    require_positives
        Users none of whose interactions reaches ``min_rating`` are skipped and counted
        (``stats["users_without_positives_dropped"]``) by default; ``True`` refuses such data with a
        :class:`DataError` naming them instead.
    drop_users_without_positives
        Kept for compatibility: ``True`` (or ``None``) is the default behaviour; ``False`` is the
        strict one (as ``require_positives=True``).

    Duplicate ``(user, item)`` rows are kept once (the highest rating, then the latest time) and
    counted in ``stats["duplicates"]``.
    """
    p = Path(path)
    if p.is_dir() and (p / "u.data").is_file():
        p = p / "u.data"
        format = format or "movielens"
    if not p.is_file():
        raise DataError(f"{p}: file not found; check --interactions")
    fmt = format or {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".data": "movielens"}.get(p.suffix)
    if fmt not in FORMATS:
        raise ConfigError(f"{p}: unknown interactions format {fmt!r}; pass --format {'|'.join(FORMATS)}")
    if low_ratings not in LOW_RATINGS:
        raise ConfigError(f"unknown low_ratings {low_ratings!r}; use {' or '.join(LOW_RATINGS)}")
    cols, start = _read_table(p, fmt)
    n_rows = len(next(iter(cols.values()))) if cols else 0
    if n_rows == 0:
        raise DataError(f"{p}: no interactions (empty file); pass a file with at least one row")
    names = {
        "user": user_col or DEFAULT_COLUMNS["user"], "item": item_col or DEFAULT_COLUMNS["item"],
        "rating": rating_col or DEFAULT_COLUMNS["rating"], "time": time_col or DEFAULT_COLUMNS["time"],
    }
    explicit = {"user": user_col, "item": item_col, "rating": rating_col, "time": time_col}
    for role, name in names.items():
        required = role in ("user", "item") or explicit[role] is not None
        if name not in cols and required:
            raise DataError(
                f"{p}: no column {name!r} for the {role}; the file has {examples(cols, 8)} — "
                f"pass --{role}-col with one of them{_separator_hint(cols, fmt)}"
            )
    users_raw = _numbers(cols[names["user"]], True, p, names["user"], start)
    items_raw = _numbers(cols[names["item"]], True, p, names["item"], start)
    has_rating = names["rating"] in cols
    ratings = (_numbers(cols[names["rating"]], False, p, names["rating"], start)
               if has_rating else np.ones(n_rows))
    has_time = names["time"] in cols
    times = _numbers(cols[names["time"]], True, p, names["time"], start) if has_time else np.zeros(n_rows)
    if min_rating is not None and not has_rating:
        raise ConfigError(f"{p}: --min-rating needs a rating column, and the file has none named {names['rating']!r}")
    return from_arrays(users_raw, items_raw, ratings, times.astype(np.int64), min_rating=min_rating,
                       low_ratings=low_ratings, has_time=has_time, source=str(p),
                       drop_users_without_positives=drop_users_without_positives,
                       require_positives=require_positives)


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


# ------------------------------------------------------------------------------------ splitting
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
