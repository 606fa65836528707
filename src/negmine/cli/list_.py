"""``negmine list retrievers|filters|samplers|formats``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from negmine.core.atomic import dumps
from negmine.core.optional import EXTRAS
from negmine.text.registry import FAMILIES


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("family", choices=sorted(FAMILIES), help="which components to list")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    reg = FAMILIES[args.family]
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
    if args.json:
        sys.stdout.write(dumps(rows, indent=2) + "\n")
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        note = "" if r["available"] else f"   [not installed: {r['install']}]"
        sys.stdout.write(f"{r['name']:<{width}}  {r['summary']}{note}\n")
        for o in r["options"]:
            default = "" if o["default"] is None else f" (default {o['default']})"
            sys.stdout.write(f"{'':<{width}}    {o['flag']}: {o['help']}{default}\n")
    return 0
