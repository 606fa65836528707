"""``negmine mine``: flags or a TOML config (flags win) -> OUT/mined.parquet, manifest, report.

The flags are derived from the option declarations (:data:`negmine.text.options.RUN_OPTIONS` and each
component's registry entry), so they cannot drift from the TOML keys or the Python API.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from negmine.core.atomic import dumps
from negmine.core.errors import ConfigError
from negmine.core.registry import Option

S = argparse.SUPPRESS

#: option groups of the help text, in order: (title, run-option group or component family)
GROUPS = (
    ("input", "input"),
    ("retrieval", "retrieval"),
    ("retrieval", "retrievers"),
    ("filters", "filters"),
    ("judges (false-negative removal)", "scorers"),
    ("sampling", "sampling"),
    ("sampling", "samplers"),
)


def _add(g: Any, o: Option, multi: tuple[str, ...]) -> None:
    default = "" if o.default is None else f" ({o.default})"
    if o.type is bool:
        if o.default:
            g.add_argument("--no-" + o.key.replace("_", "-"), dest=o.key, action="store_false", default=S,
                           help=f"do not: {o.help}")
        else:
            g.add_argument(o.flag, dest=o.key, action="store_true", default=S, help=o.help)
        return
    kind: Any = str if o.key in multi else o.type
    g.add_argument(o.flag, dest=o.key, type=kind, default=S, metavar=o.key.split("_")[-1].upper(),
                   choices=o.choices if o.key not in multi else None, help=o.help + default)


def add_mining_arguments(p: argparse.ArgumentParser, multi: tuple[str, ...] = ()) -> None:
    """The mining options; those named in ``multi`` take comma-separated lists (audits)."""
    from negmine.text import registry
    from negmine.text.options import RUN_OPTIONS

    families = {"retrievers": registry.retrievers, "filters": registry.filters, "scorers": registry.scorers,
                "samplers": registry.samplers}
    from negmine.text.options import RUN_OPTIONS as _RUN

    seen: set[str] = {o.key for g in ("engine", "output") for o in _RUN[g]}  # added by `mine` itself
    groups: dict[str, Any] = {}
    for title, source in GROUPS:
        g = groups.setdefault(title, p.add_argument_group(title))
        opts = RUN_OPTIONS[source] if source in RUN_OPTIONS else families[source].options()
        for o in opts:
            if o.key not in seen:
                seen.add(o.key)
                _add(g, o, multi)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from negmine.text.options import RUN_OPTIONS

    add_mining_arguments(p)
    p.add_argument("--config", help="TOML file with the same options (flags override it)")
    for group in ("engine", "output"):
        g = p.add_argument_group(group)
        for o in RUN_OPTIONS[group]:
            _add(g, o, ())
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    p.add_argument("--html", default=None, help="also write the self-contained HTML report to this file")


def given_options(args: argparse.Namespace, multi: tuple[str, ...] = ()) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(config file options, flags)`` the user gave, each validated (finite numbers in range,
    choices); defaults are not included."""
    from negmine.text.options import DEFAULTS, OPTIONS, load_config

    config = load_config(args.config) if getattr(args, "config", None) else {}
    flags = {k: v for k, v in vars(args).items() if k in DEFAULTS}
    for k, v in flags.items():
        if k not in multi and not isinstance(v, str):
            flags[k] = OPTIONS[k].check(v, OPTIONS[k].flag)
    return config, flags


def resolve_options(args: argparse.Namespace, multi: tuple[str, ...] = ()) -> dict[str, Any]:
    """Defaults < TOML config < flags, every value validated."""
    from negmine.text.options import merge

    return merge(*given_options(args, multi))


#: options naming files or directories that a mining run reads
INPUT_KEYS = ("dataset", "corpus", "queries", "qrels", "pairs", "run", "doc_embeddings", "query_embeddings")


def check_outputs(o: dict[str, Any], out: Path, html: str | None, config: str | None = None) -> None:
    """Before any work: ``--out`` is no input and holds none of the inputs among the files a run
    replaces; ``--html`` is a writable file that is neither an input nor a file of the run."""
    from negmine.core.rundir import META, RUN_FILES
    from negmine.core.targets import check_not_input, check_output_file, is_within

    inputs: list[str] = [str(o[k]) for k in INPUT_KEYS if o.get(k)] + ([config] if config else [])
    check_not_input(out, "--out", inputs=inputs)
    own = [out / name for name in RUN_FILES]
    for src in inputs:
        if is_within(src, out / META) or any(is_within(src, f) for f in own):
            raise ConfigError(f"{src}: this input is a file that mining into --out {out} replaces; "
                              "choose another --out or move the input")
    if html is not None:
        check_output_file(html, "--html", overwrite=True, inputs=[*inputs, *own], read_dirs=[out / META])


def run(args: argparse.Namespace) -> int:
    from negmine.core.rundir import RunDir
    from negmine.text.options import (
        POLICY_KEYS,
        apply_default_policy,
        build_retriever,
        build_scorers,
        check_applicable,
        load_data,
        merge,
        mine_from_options,
        plan_from_options,
        recorded,
    )
    from negmine.text.report.stats import render_text

    config, flags = given_options(args)
    o = merge(config, flags)
    check_applicable(config, o, str(args.config) if args.config else "")  # e.g. --device with bm25: refused
    check_applicable(flags, o)
    if not o["out"]:
        raise ConfigError("--out is required: the directory to write mined.parquet, manifest.json, report.json")
    out = Path(o["out"])
    check_outputs(o, out, args.html, getattr(args, "config", None))
    if o["target_fnr"] is not None and o["relative_margin"] is not None:
        raise ConfigError("--target-fnr chooses the relative margin itself; drop --relative-margin")
    retriever = build_retriever(o)
    scorers = build_scorers(o)
    data = load_data(o)
    policy = None
    if not (set(config) | set(flags)) & POLICY_KEYS:  # no policy asked for: the default one (docs/QUALITY.md)
        o, policy = apply_default_policy(o, data)
    p = plan_from_options(o, data, retriever, scorers, policy)  # every option checked before any work
    rid = p.run_id(data)
    if RunDir(out).committed_run_id() == rid:
        sys.stdout.write(f"{out} already holds this run (run id {rid}); nothing to do\n")
        return 0
    result = mine_from_options(o, data=data, retriever=retriever, scorers=scorers, out=out,
                               extra_manifest={"options": recorded(o)}, policy=policy)
    if args.html:
        from negmine.text.report.html import write_html

        write_html(out, args.html)
    if args.json:
        sys.stdout.write(dumps(result.report, indent=2) + "\n")
    else:
        sys.stdout.write(render_text(result.report) + f"\nwrote {out}/mined.{o['format']}\n")
    return 0
