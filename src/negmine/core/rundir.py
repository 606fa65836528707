"""Run directories: one writer at a time, stages on disk, committed as a whole, verified on read.

Every domain writes its runs this way. Layout of an output directory ``OUT``::

    OUT/<the domain's files>            e.g. text: mined.parquet, texts.parquet, report.json
                                        (FILES_BY_DOMAIN lists them)
    OUT/manifest.json                   written LAST: run id, configuration, and the sha256 of
                                        every file above — readers verify them
    OUT/.negmine/lock                   held (flock) by the process writing the run
    OUT/.negmine/pending.json           the run id being written; removed at commit
    OUT/.negmine/stages/<key>/          stage artifacts (retrieval shards), reused by re-runs

The commit removes the old manifest first, replaces the files atomically one by one, and writes
the new manifest last; a reader therefore sees the previous run, the new one, or a directory it
refuses (exit 2, saying to re-run the command, which resumes) — never a mix it accepts.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

import numpy as np

from negmine.core.atomic import write_atomic, write_json
from negmine.core.errors import ConfigError, DataError, NegmineError
from negmine.core.redact import redact_command

T = TypeVar("T")

META = ".negmine"
MANIFEST = "manifest.json"
#: the files a run of each domain writes; a previous run's files that the new run does not write
#: are removed at commit, and any other file makes a directory "not a run" (never overwritten)
FILES_BY_DOMAIN = {
    "text": ("mined.parquet", "mined.jsonl", "texts.parquet", "texts.jsonl", "report.json", "relabeled-qrels.tsv"),
    "rec": ("mined.parquet", "report.json"),
    "kg": ("negatives.parquet", "report.json"),
}
RUN_FILES = (*dict.fromkeys(name for files in FILES_BY_DOMAIN.values() for name in files), MANIFEST)


def fault(point: str) -> None:
    """Crash-test hook: when the environment variable ``NEGMINE_FAULT`` names ``point``, the
    process kills itself there with SIGKILL (no cleanup, as a power cut or OOM kill would). The
    crash tests use it to stop a real run at exact places: ``encode-document-chunk`` (after an
    embedding chunk is saved to the cache), ``retrieve-shard-N`` (after the N-th
    retrieval shard is stored), ``select``, ``commit-files`` (mid-commit, one file replaced) and
    ``commit-manifest`` (every file replaced, manifest not yet written)."""
    if os.environ.get("NEGMINE_FAULT") == point:
        os.kill(os.getpid(), signal.SIGKILL)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def stage_key(stage: str, *parts: Any) -> str:
    """A stage directory name: the stage and a hash of everything that determines its output."""
    blob = json.dumps(parts, sort_keys=True, default=str)
    return f"{stage}-{hashlib.sha256(blob.encode()).hexdigest()[:20]}"


class StageStore:
    """A stage's results stored by row shard (``q<start>-<stop>.npz``, a set of named arrays),
    each written atomically; an unreadable shard is removed and reads as missing."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, start: int, stop: int) -> Path:
        return self.directory / f"q{start:010d}-{stop:010d}.npz"

    def load(self, start: int, stop: int, decode: Callable[[dict[str, np.ndarray]], T]) -> T | None:
        """``decode(arrays)`` of the shard ``[start, stop)``, or None when it is missing or
        unreadable (``decode`` raising ``KeyError`` / ``ValueError`` counts as unreadable)."""
        path = self._path(start, stop)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                return decode({name: z[name] for name in z.files})
        except (OSError, ValueError, KeyError, json.JSONDecodeError):
            path.unlink(missing_ok=True)  # unreadable: compute this shard again
            return None

    def save(self, start: int, stop: int, arrays: dict[str, np.ndarray]) -> None:
        def w(fh: IO[bytes]) -> None:
            np.savez(fh, allow_pickle=False, **arrays)

        write_atomic(self._path(start, stop), w)


class Claim:
    """The right to write one run into a directory (held while the lock is)."""

    def __init__(self, run: RunDir, run_id: str, finished: bool) -> None:
        self.run = run
        self.run_id = run_id
        self.finished = finished  # the directory already holds this very run, verified
        self.used_stages: set[str] = set()

    def stages(self, key: str) -> StageStore:
        self.used_stages.add(key)
        return StageStore(self.run.meta / "stages" / key)

    def commit_files(self, write: Callable[[Path], tuple[list[str], dict[str, Any]]],
                     extra_manifest: dict[str, Any] | None = None) -> None:
        """Commit a run whose files ``write(directory)`` writes (each atomically), returning their
        names and the manifest body: the old manifest goes first, the new one — with the run id
        and every file's sha256 — last; then the pending marker and the stages this run did not
        use are removed. Any domain (text, recommendation, knowledge graph) commits this way."""
        d = self.run.path
        (d / MANIFEST).unlink(missing_ok=True)  # from here on readers see an unfinished run, never a mix
        files, manifest = write(d)
        fault("commit-manifest")
        manifest["run_id"] = self.run_id
        manifest["files"] = {name: sha256_file(d / name) for name in files}
        manifest.update(extra_manifest or {})
        for stale in RUN_FILES:  # a previous run's files that this run does not write
            if stale != MANIFEST and stale not in files:
                (d / stale).unlink(missing_ok=True)
        write_json(d / MANIFEST, manifest)
        (self.run.meta / "pending.json").unlink(missing_ok=True)
        stages = self.run.meta / "stages"
        if stages.is_dir():
            for old in stages.iterdir():
                if old.name not in self.used_stages:
                    shutil.rmtree(old, ignore_errors=True)
        self.finished = True


class RunDir:
    """An output directory of ``negmine mine``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.meta = self.path / META

    # -- reading -------------------------------------------------------------------------------

    def committed_run_id(self) -> str | None:
        """The run id of the committed run whose files all match the manifest, else ``None``."""
        try:
            return str(verify(self.path)["run_id"])
        except (DataError, KeyError):
            return None

    def _pending(self) -> str | None:
        try:
            return str(json.loads((self.meta / "pending.json").read_text())["run_id"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    # -- writing -------------------------------------------------------------------------------

    def _prepare(self) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"{self.path}: exists and is not a directory; choose another --out")
        try:
            self.meta.mkdir(parents=True, exist_ok=True)
            probe = self.meta / f".probe-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise ConfigError(f"{self.path}: cannot write there ({exc.strerror or exc}); "
                              "choose a writable --out") from None

    @contextlib.contextmanager
    def claim(self, run_id: str, *, overwrite: bool = False) -> Iterator[Claim]:
        """Lock the directory for ``run_id`` (a second writer gets a ConfigError naming the
        holder), and check what it holds: the same run (finished → ``claim.finished``; unfinished
        → resumed), or something else (refused unless ``overwrite``)."""
        created = not self.path.exists()
        meta_created = not self.meta.exists()
        self._prepare()
        lock_path = self.meta / "lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        held = False
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # the holder's record is read, never touched
                raise ConfigError(f"{self.path}: another negmine run is writing here ({_holder(lock_path)}); "
                                  "wait for it to finish or choose another --out") from None
            held = True
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                      "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                      "command": redact_command(sys.argv)[:300]}).encode(), 0)
            try:
                claim = self._check(run_id, overwrite)
            except NegmineError:  # refused: leave the directory as it was
                if created:
                    shutil.rmtree(self.path, ignore_errors=True)
                elif meta_created:
                    shutil.rmtree(self.meta, ignore_errors=True)
                raise
            try:
                yield claim
            except NegmineError:
                # a problem the user can fix (bad data, bad option found late): leave nothing behind
                # (a crash or runtime failure keeps the stages, so the identical re-run resumes)
                if created:
                    shutil.rmtree(self.path, ignore_errors=True)
                elif not claim.finished:
                    (self.meta / "pending.json").unlink(missing_ok=True)
                raise
        finally:
            if held:  # a refused contender leaves the holder's record as it is
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, 0)
            os.close(fd)  # releases the lock

    def _check(self, run_id: str, overwrite: bool) -> Claim:
        committed = None
        has_manifest = (self.path / MANIFEST).is_file()
        if has_manifest:
            committed = self.committed_run_id()
        if committed == run_id:
            return Claim(self, run_id, finished=True)
        pending = self._pending()
        others = [p.name for p in self.path.iterdir() if p.name != META]
        if not overwrite:
            if has_manifest and committed is not None:
                raise ConfigError(f"{self.path}: already holds a different mining run (run_id {committed}); "
                                  "choose another --out or pass --overwrite to replace it")
            if pending is not None and pending != run_id:
                raise ConfigError(f"{self.path}: holds an unfinished different run (run_id {pending}); "
                                  "re-run that command to finish it, choose another --out, or pass --overwrite")
            foreign = [n for n in others if n not in RUN_FILES and not n.startswith(".")]
            if foreign or (has_manifest and committed is None and pending != run_id):
                raise ConfigError(f"{self.path}: is not empty and holds no run of this command "
                                  f"({', '.join(sorted(others)[:3])}); choose another --out or pass --overwrite")
        write_json(self.meta / "pending.json", {"run_id": run_id})
        return Claim(self, run_id, finished=False)


def _holder(lock_path: Path) -> str:
    """Who holds a run directory's lock, from its record (secrets redacted again: a record written
    by an older version may hold a raw command line)."""
    try:
        holder = json.loads(lock_path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        holder = {}
    if not isinstance(holder, dict) or not holder:
        return "another process"
    command = redact_command(str(holder.get("command", "?")).split(" "))
    return (f"process {holder.get('pid', '?')} on {holder.get('host', '?')}, started "
            f"{holder.get('started', '?')}: {command}")


def verify(directory: str | Path) -> dict[str, Any]:
    """The manifest of a committed run whose files all match their checksums; otherwise a
    one-line :class:`DataError` saying what is wrong and what to do."""
    d = Path(directory)
    if not d.is_dir():
        raise DataError(f"{d}: no such directory, so not a negmine output directory; pass the --out of "
                        "'negmine mine'")
    manifest_path = d / MANIFEST
    if not manifest_path.is_file():
        if (d / META / "pending.json").is_file():
            raise DataError(f"{d}: holds an unfinished run (interrupted or failed while mining); re-run the same "
                            "'negmine mine' command to resume and finish it")
        raise DataError(f"{d}: not a negmine output directory (no manifest.json); pass the --out of 'negmine mine'")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        raise DataError(f"{manifest_path}: not a valid manifest (corrupted); mine again into this directory "
                        "with --overwrite") from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or not files:
        raise DataError(f"{manifest_path}: lists no files (corrupted or from an unknown version); mine again "
                        "with --overwrite")
    for name, digest in files.items():
        path = d / str(name)
        if not path.is_file():
            raise DataError(f"{d}: {name} is missing (a partial run); re-run the 'negmine mine' command that "
                            "wrote it, or mine again with --overwrite")
        if sha256_file(path) != digest:
            raise DataError(f"{d}: {name} does not match the manifest (a mixed or partial run); re-run the "
                            "'negmine mine' command that wrote it, or mine again with --overwrite")
    return dict(manifest)
