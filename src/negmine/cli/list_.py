"""``negmine list [FAMILY]``: the registered components of every domain (text, rec, kg)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from negmine.core.atomic import dumps
from negmine.core.optional import EXTRAS
from negmine.core.registry import Registry
from negmine.kg.registry import FILTER_REGISTRY as KG_FILTERS
from negmine.kg.registry import SAMPLER_REGISTRY as KG_SAMPLERS
from negmine.rec.registry import SAMPLERS as REC_SAMPLERS
from negmine.rec.registry import SCORERS as REC_SCORERS
from negmine.text.engines import ENGINE_REGISTRY
from negmine.text.registry import FAMILIES as TEXT_FAMILIES

#: every domain's registries: text's under their own names (as before), rec's and kg's prefixed
FAMILIES: dict[str, Registry] = {**TEXT_FAMILIES, "engines": ENGINE_REGISTRY, "rec-samplers": REC_SAMPLERS,
                                 "rec-scorers": REC_SCORERS, "kg-samplers": KG_SAMPLERS, "kg-filters": KG_FILTERS}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("family", nargs="?", choices=list(FAMILIES),
                   help="which components to list (default: every family of every domain)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    if args.family is None:
        every = {name: _rows(reg) for name, reg in FAMILIES.items()}
        if args.json:
            sys.stdout.write(dumps(every, indent=2) + "\n")
            return 0
        for name, rows in every.items():
            sys.stdout.write(f"{name}:\n")
            _print(rows, indent="  ")
        return 0
    rows = _rows(FAMILIES[args.family])
    if args.json:
        sys.stdout.write(dumps(rows, indent=2) + "\n")
        return 0
    _print(rows)
    return 0


def _rows(reg: Registry) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name in reg.names():
        e = reg.get(name)
        missing = e.missing()
        extras = sorted({EXTRAS[m][0] for m in missing if m in EXTRAS})
        options = [{"flag": o.flag, "key": o.key, "type": o.type.__name__, "default": o.default, "help": o.help,
                    **({"choices": list(o.choices)} if o.choices else {}),
                    **({"range": o.describe_range()} if o.describe_range() else {})} for o in e.options]
        rows.append({"name": name, "summary": e.summary, "available": not missing,
                     "install": f"pip install 'negmine[{','.join(extras)}]'" if extras else None,
                     "options": options})
    return rows


def _print(rows: list[dict[str, Any]], indent: str = "") -> None:
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        note = "" if r["available"] else f"   [not installed: {r['install']}]"
        sys.stdout.write(f"{indent}{r['name']:<{width}}  {r['summary']}{note}\n")
        for o in r["options"]:
            default = "" if o["default"] is None else f" (default {o['default']})"
            sys.stdout.write(f"{indent}{'':<{width}}    {o['flag']}: {o['help']}{default}\n")
