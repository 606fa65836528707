"""Output paths checked before any work starts, in every domain: a file target must not exist
(unless overwriting), must not be a directory, must sit in a writable directory, and must be
neither one of the command's inputs nor inside a directory the command reads (a run directory:
replacing its files would destroy the very run being read)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from negmine.core.errors import ConfigError


def _real(path: str | Path) -> Path:
    return Path(os.path.realpath(os.fspath(path)))


def is_within(path: str | Path, directory: str | Path) -> bool:
    """Whether ``path`` is ``directory`` or lies below it, symbolic links resolved."""
    p, d = _real(path), _real(directory)
    return p == d or d in p.parents


def check_not_input(path: str | Path, what: str, *, inputs: Iterable[str | Path | None] = (),
                    read_dirs: Iterable[str | Path | None] = ()) -> None:
    """Refuse an output ``path`` (named by the option ``what``) that is one of ``inputs`` or lies
    inside one of ``read_dirs`` (directories the command reads), symbolic links resolved."""
    for src in inputs:
        if src is not None and str(src) != "-" and _real(path) == _real(src):
            raise ConfigError(f"{path}: {what} names an input of this command ({src}), which writing would "
                              f"destroy; choose another {what}")
    for d in read_dirs:
        if d is not None and is_within(path, d):
            raise ConfigError(f"{path}: {what} lies inside {d}, which this command reads (writing there would "
                              f"replace its files); choose another {what} outside it")


def check_output_file(path: str | Path, what: str, *, overwrite: bool = False,
                      inputs: Iterable[str | Path | None] = (), read_dirs: Iterable[str | Path | None] = ()) -> None:
    """Check a file target before any work: a one-line :class:`~negmine.core.errors.ConfigError`
    (what, where, the fix) when it exists and ``overwrite`` is false, is a directory, cannot be
    created (its nearest existing ancestor is not a writable directory), or is an input or inside
    a directory the command reads (:func:`check_not_input`). ``what`` is the option, e.g. ``--out``."""
    p = Path(path)
    check_not_input(p, what, inputs=inputs, read_dirs=read_dirs)
    if p.is_dir():
        raise ConfigError(f"{p}: is a directory; {what} names a file")
    if p.exists() and not overwrite:
        raise ConfigError(f"{p}: already exists; choose another {what} or pass --overwrite")
    probe = p.parent if str(p.parent) else Path(".")
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(f"{p}: cannot write in {probe}, which is not a directory; choose another {what}")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"{p}: cannot write in {probe} (permission denied); choose another {what}")
