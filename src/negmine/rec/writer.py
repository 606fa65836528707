"""Writing a recommendation mining run: one small function, atomic files (temp + rename).

Kept in one place so it can follow the text pipeline's run-directory layout when that changes.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

from negmine.errors import ConfigError
from negmine.writers._atomic import write_json, write_parquet

if TYPE_CHECKING:
    from negmine.rec.mining import RecMiningResult

__all__ = ["write_run"]

FILES = ("mined.parquet", "report.json", "manifest.json")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("negmine", "numpy", "implicit", "scipy", "pyarrow", "torch"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def _check_directory(directory: Path, run_id: str, overwrite: bool) -> None:
    """Refuse a directory that holds another run or unrelated files, unless ``overwrite``; the
    same run may be written again into its own directory."""
    if overwrite or not directory.exists():
        return
    if not directory.is_dir():
        raise ConfigError(f"{directory}: exists and is not a directory; choose another --out")
    manifest = directory / "manifest.json"
    if manifest.is_file():
        try:
            previous = json.loads(manifest.read_text()).get("run_id")
        except (OSError, json.JSONDecodeError):
            previous = None
        if previous == run_id:
            return
        raise ConfigError(f"{directory}: holds a different run (run_id {previous}); choose another --out "
                          "or pass --overwrite")
    if any(directory.iterdir()):
        raise ConfigError(f"{directory}: is not empty and holds no negmine run; "
                          "choose another --out or pass --overwrite")


def write_run(result: RecMiningResult, directory: Path, *, overwrite: bool = False) -> Path:
    """``mined.parquet``, ``report.json``, then ``manifest.json`` (last: a directory with a
    manifest is complete). Everything is computed before the first byte is written."""
    rid = result.run_id()
    _check_directory(directory, rid, overwrite)
    report = result.report
    columns = result.columns()
    source = Path(result.data.interactions.source)
    inputs: dict[str, Any] = ({"interactions": {"path": str(source), "bytes": source.stat().st_size,
                                                "sha256": _sha256(source)}} if source.is_file() else {})
    mined = directory / "mined.parquet"
    write_parquet(mined, columns)
    write_json(directory / "report.json", report)
    write_json(directory / "manifest.json", {
        "negmine": _versions().get("negmine", "unknown"),
        "kind": "rec",
        "run_id": rid,
        "versions": _versions(),
        "config": result.config(),
        "seed": result.seed,
        "num_negatives": result.num_negatives,
        "data_fingerprint": result.data.interactions.fingerprint(),
        "inputs": inputs,
        "files": {mined.name: _sha256(mined)},
        "timings": result.timings,
    })
    return directory
