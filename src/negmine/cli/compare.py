"""``negmine compare SWEEP.toml [--out DIR] [--json]``: mine → train → evaluate a grid of settings
and write one table (compare.md, compare.json) and a plot (compare.png); a re-run reuses what is
done. The sweep file format is documented in :mod:`negmine.text.compare`."""

from __future__ import annotations

import argparse
import sys

from negmine.core.atomic import dumps


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", metavar="SWEEP.toml",
                   help="sweep file: [sweep], [mine], [train], [evaluate] and [[setting]] tables")
    p.add_argument("--out", default=None, help="output directory (overrides [sweep] out)")
    p.add_argument("--json", action="store_true", help="print compare.json (rows and runs) on stdout")


def run(args: argparse.Namespace) -> int:
    from negmine.text.compare import compare, load_sweep

    sweep = load_sweep(args.config, out=args.out)  # validates everything before any work
    result = compare(sweep)
    if args.json:
        sys.stdout.write(dumps(result.summary, indent=2) + "\n")
        return 0
    done = sum(1 for r in result.runs for step in r["reused"].values() if not step)
    reused = sum(1 for r in result.runs for step in r["reused"].values() if step)
    sys.stdout.write(result.markdown)
    sys.stdout.write(f"\n{done} steps run, {reused} reused; wrote "
                     + ", ".join(str(p) for k, p in result.files.items() if k != "config") + "\n")
    return 0
