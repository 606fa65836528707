"""Writing a recommendation mining run with the text pipeline's run-directory discipline
(:mod:`negmine.core.rundir`): one writer at a time (a lock), files written atomically, the manifest
written last with the checksums that readers verify, a directory holding another run refused
unless ``overwrite``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from negmine.core.atomic import write_json, write_parquet
from negmine.core.manifest import environment
from negmine.core.rundir import RunDir, sha256_file

if TYPE_CHECKING:
    from negmine.rec.result import RecMiningResult

__all__ = ["write_run"]


#: the libraries whose versions a rec manifest records
DEPENDENCIES = ("numpy", "implicit", "scipy", "pyarrow", "torch")


def write_run(result: RecMiningResult, directory: Path, *, overwrite: bool = False) -> Path:
    """Commit ``mined.parquet`` and ``report.json``, then ``manifest.json`` (last, with their
    checksums). Everything is computed before the first byte is written."""
    rid = result.run_id()
    report = result.report
    columns = result.columns()
    source = Path(result.data.interactions.source)
    inputs: dict[str, Any] = ({"interactions": {"path": str(source), "bytes": source.stat().st_size,
                                                "sha256": sha256_file(source)}} if source.is_file() else {})
    env = environment(DEPENDENCIES)

    def write(d: Path) -> tuple[list[str], dict[str, Any]]:
        write_parquet(d / "mined.parquet", columns)
        write_json(d / "report.json", report)
        return ["mined.parquet", "report.json"], {
            "negmine": env["negmine"],
            "kind": "rec",
            "versions": env["versions"],
            "config": result.config(),
            "seed": result.seed,
            "num_negatives": result.num_negatives,
            "data_fingerprint": result.data.interactions.fingerprint(),
            "inputs": inputs,
            "timings": result.timings,
        }

    with RunDir(directory).claim(rid, overwrite=overwrite) as run:
        if not run.finished:
            run.commit_files(write)
    return directory
