"""Writing a recommendation mining run: one small function, atomic files (temp + rename)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from negmine.writers._atomic import write_json, write_parquet
from negmine.writers.mined import _sha256, _versions, check_output_dir

if TYPE_CHECKING:
    from negmine.rec.mine import RecMiningResult

__all__ = ["write_run"]


def write_run(result: RecMiningResult, directory: Path, *, overwrite: bool = False) -> Path:
    """``mined.parquet``, ``report.json``, then ``manifest.json`` (last: a directory with a
    manifest is complete). Refuses a directory holding another run unless ``overwrite``."""
    rid = result.run_id()
    check_output_dir(directory, rid, overwrite)
    report = result.report  # computed before anything is written: a failure leaves nothing
    columns = result.columns()
    mined = directory / "mined.parquet"
    write_parquet(mined, columns)
    write_json(directory / "report.json", report)
    source = Path(result.data.interactions.source)
    inputs = ({"interactions": {"path": str(source), "bytes": source.stat().st_size, "sha256": _sha256(source)}}
              if source.is_file() else {})
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
