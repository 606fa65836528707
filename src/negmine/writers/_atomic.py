"""Atomic file writes: a temporary file in the same directory, then ``os.replace``."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


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
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    data = text.encode("utf-8")

    def w(fh: IO[bytes]) -> None:
        fh.write(data)

    write_atomic(path, w)


def write_json(path: Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2) + "\n")


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    def w(fh: IO[bytes]) -> None:
        for r in rows:
            fh.write((json.dumps(r, ensure_ascii=False) + "\n").encode("utf-8"))

    write_atomic(path, w)


def write_parquet(path: Path, columns: dict[str, list[Any]], schema: Any = None) -> None:
    from negmine._optional import require

    pa = require("pyarrow")
    pq = require("pyarrow.parquet")
    table = pa.table(columns, schema=schema) if schema is not None else pa.table(columns)

    def w(fh: IO[bytes]) -> None:
        pq.write_table(table, fh, compression="zstd")

    write_atomic(path, w)
