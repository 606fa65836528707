"""Command-line flags derived from option declarations (:class:`negmine.text.registry.Option`), and the
check of what argparse parsed against the same declarations, before any work (``negmine rec``,
``negmine kg``). Also the checks of output paths that every command runs before it starts."""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from negmine.core.errors import ConfigError
from negmine.core.registry import Option


def add_options(p: argparse.ArgumentParser, groups: Mapping[str, Iterable[Option]], *,
                required: Iterable[str] = (), extra: Mapping[str, dict[str, Any]] | None = None) -> None:
    """One flag per option (``--key-with-dashes``, ``dest=key``), in argument groups by title.
    Booleans are ``store_true`` flags; numbers are parsed by argparse and range-checked by
    :func:`check_args`; ``extra`` adds argparse keywords for a key (e.g. ``nargs``)."""
    need = set(required)
    for title, options in groups.items():
        g = p.add_argument_group(title)
        for o in options:
            kw = dict((extra or {}).get(o.key, {}))
            if o.type is bool:
                g.add_argument(o.flag, dest=o.key, action="store_true", default=bool(o.default), help=o.help)
                continue
            shown = "" if o.default is None else f" (default: {o.default})"
            rng = o.describe_range()
            kw.setdefault("metavar", "{" + ",".join(o.choices) + "}" if o.choices else o.key.split("_")[-1].upper())
            g.add_argument(o.flag, dest=o.key, type=o.type if o.type in (int, float) else str, default=o.default,
                           required=o.key in need, help=o.help + (f"; {rng}" if rng else "") + shown, **kw)


def names_among(raw: str, allowed: Iterable[str], flag: str) -> list[str]:
    """The items of a comma-separated ``flag`` (e.g. ``compare --samplers``, which also takes the
    live samplers), each one of ``allowed`` and each once; one-line :class:`ConfigError` otherwise."""
    allowed = tuple(allowed)
    names = [x.strip() for x in (raw or "").split(",") if x.strip()]
    if not names:
        raise ConfigError(f"{flag} {raw!r} names nothing; give a comma-separated list, e.g. {flag} {allowed[0]}")
    for n in names:
        if n not in allowed:
            raise ConfigError(f"{flag}: unknown sampler {n!r}; use {', '.join(allowed)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"{flag} {raw!r} names an item twice; list each once")
    return names


def check_args(args: argparse.Namespace, groups: Mapping[str, Iterable[Option]]) -> None:
    """Every declared option's parsed value checked (finite, in range, a valid choice) and
    converted in place; the first problem is a one-line :class:`ConfigError` naming the flag."""
    for options in groups.values():
        for o in options:
            value = getattr(args, o.key, None)
            if isinstance(value, list):
                setattr(args, o.key, [o.check(v, o.flag) for v in value])
            else:
                setattr(args, o.key, o.check(value, o.flag))


def _inputs_under(out: Path, inputs: Iterable[str | Path | None]) -> list[Path]:
    """Inputs that are ``out`` itself or lie inside it."""
    hit = []
    o = out.resolve()
    for raw in inputs:
        if not raw:
            continue
        p = Path(raw)
        r = p.resolve()
        if r == o or o in r.parents:
            hit.append(p)
    return hit


def check_out_file(out: str | Path, flag: str, *, overwrite: bool, inputs: Iterable[str | Path | None] = ()) -> Path:
    """A file output, checked before any work by the shared
    :func:`negmine.core.targets.check_output_file`: never one of the inputs (symbolic links
    resolved, even with ``--overwrite``), not a directory, writable; an existing file needs
    ``--overwrite``."""
    from negmine.core.targets import check_output_file

    check_output_file(out, flag, overwrite=overwrite, inputs=inputs)
    return Path(out)


def check_out_dir(out: str | Path, flag: str, *, overwrite: bool | None, files: Iterable[str] = (),
                  inputs: Iterable[str | Path | None] = ()) -> Path:
    """A directory output: not an existing file; no input inside it; the ``files`` it will write
    already there need ``--overwrite`` (``overwrite=None``: the command's own run-directory
    discipline decides). Checked before any work."""
    p = Path(out)
    if p.exists() and not p.is_dir():
        raise ConfigError(f"{flag} {p}: exists and is not a directory; give a directory path (it will hold "
                          f"{', '.join(files) or 'the outputs'})")
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{flag} {p}: {parent} is not a directory; choose another path")
            break
    clash = _inputs_under(p, inputs)
    if clash:
        raise ConfigError(f"{flag} {p} holds an input of this command ({clash[0]}); choose another output directory")
    if overwrite is False:
        there = [f for f in files if (p / f).exists()]
        if there:
            raise ConfigError(f"{flag} {p}: already holds {', '.join(there)}; pass --overwrite to replace "
                              "them, or choose another directory")
    return p
