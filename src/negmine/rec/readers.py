"""Reading interactions from a file: csv/tsv with a header, parquet, or MovieLens ``u.data`` /
``ratings.dat``, into :class:`~negmine.rec.interactions.Interactions`.

Every problem with the file is a one-line :class:`~negmine.core.errors.DataError` naming the file
and line (not UTF-8, a short row, a missing column, a value that is not a number) and the remedy.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np

from negmine.core.errors import ConfigError, DataError, examples
from negmine.core.optional import require
from negmine.rec.interactions import Interactions, from_arrays

__all__ = ["DEFAULT_COLUMNS", "FORMATS", "LOW_RATINGS", "load_interactions"]

FORMATS = ("csv", "tsv", "parquet", "movielens")
LOW_RATINGS = ("negative", "ignore")
DEFAULT_COLUMNS = {"user": "user_id", "item": "item_id", "rating": "rating", "time": "timestamp"}


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
