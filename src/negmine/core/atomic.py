"""Atomic file writes: a temporary file in the same directory, then ``os.replace``."""

from __future__ import annotations

import errno
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from negmine.core.errors import is_short_write


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise at_target(exc, path) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def at_target(exc: OSError, path: Path | str) -> OSError:
    """``exc`` as the user should see it: naming the file being written (never the temporary
    file beside it), and a short write without errno (numpy's ``tofile`` on a full disk) as the
    ENOSPC it is."""
    if is_short_write(exc):
        return OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} ({exc})", str(path))
    if exc.errno is not None:
        return OSError(exc.errno, exc.strerror or str(exc), str(path))
    return exc


def write_text(path: Path, text: str) -> None:
    data = text.encode("utf-8")

    def w(fh: IO[bytes]) -> None:
        fh.write(data)

    write_atomic(path, w)


def strict_json(obj: Any) -> Any:
    """``obj`` with every non-finite float (NaN, ±inf) as ``None`` and numpy values as Python
    ones, so that ``json.dumps(..., allow_nan=False)`` accepts it: strict JSON (``null``, never
    ``NaN``), which every JSON parser reads."""
    if isinstance(obj, dict):
        return {str(k): strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if type(obj).__module__ == "numpy":
        import numpy as np

        if isinstance(obj, np.ndarray):
            return strict_json(obj.tolist())
        if isinstance(obj, np.generic):
            return strict_json(obj.item())
    return obj


def dumps(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` that always writes strict JSON (see :func:`strict_json`); the conversion is
    only paid for an object that needs it."""
    try:
        return json.dumps(obj, allow_nan=False, **kwargs)
    except (ValueError, TypeError):
        return json.dumps(strict_json(obj), allow_nan=False, **kwargs)


def write_json(path: Path, obj: Any) -> None:
    write_text(path, dumps(obj, indent=2) + "\n")


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    def w(fh: IO[bytes]) -> None:
        for r in rows:
            fh.write((dumps(r, ensure_ascii=False) + "\n").encode("utf-8"))

    write_atomic(path, w)


def write_parquet(path: Path, columns: dict[str, list[Any]], schema: Any = None) -> None:
    from negmine.core.optional import require

    pa = require("pyarrow")
    pq = require("pyarrow.parquet")
    table = pa.table(columns, schema=schema) if schema is not None else pa.table(columns)

    def w(fh: IO[bytes]) -> None:
        pq.write_table(table, fh, compression="zstd")

    write_atomic(path, w)


def _batches(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for r in rows:
        batch.append(r)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def write_parquet_batches(path: Path, rows: Iterable[dict[str, Any]], size: int) -> None:
    """Rows (dicts with the keys of the first row) to a zstd parquet file, ``size`` rows per record
    batch, atomically, never holding more than a batch. The schema is inferred from the first
    batch; while it still has a column of unknown type (only empty lists or nulls so far) rows are
    held back until one batch settles it."""
    from negmine.core.optional import require

    pa = require("pyarrow")
    pq = require("pyarrow.parquet")

    def w(fh: IO[bytes]) -> None:
        writer = None
        pending: list[dict[str, Any]] = []
        try:
            for batch in _batches(rows, size):
                if writer is not None:
                    writer.write_table(pa.Table.from_pylist(batch, schema=writer.schema))
                    continue
                pending.extend(batch)
                table = pa.Table.from_pylist(pending)
                if _unsettled(pa, table.schema):
                    continue
                writer = pq.ParquetWriter(fh, table.schema, compression="zstd")
                writer.write_table(table)
                pending = []
            if writer is None:  # every row held back (or none): one table, as a whole-file write
                pq.write_table(pa.Table.from_pylist(pending) if pending else pa.table({}), fh, compression="zstd")
        finally:
            if writer is not None:
                writer.close()

    write_atomic(path, w)


def _unsettled(pa: Any, schema: Any) -> bool:
    """Whether a schema still has a null type anywhere (a column seen only as None or [])."""
    def null(t: Any) -> bool:
        if pa.types.is_null(t):
            return True
        if pa.types.is_list(t) or pa.types.is_large_list(t):
            return null(t.value_type)
        if pa.types.is_struct(t):
            return any(null(t.field(i).type) for i in range(t.num_fields))
        return False

    return any(null(f.type) for f in schema)
