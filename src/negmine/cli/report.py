"""``negmine report DIR``: render the report of a mining output (text, JSON or one HTML file)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from negmine.errors import ConfigError, DataError
from negmine.report.stats import render_text


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("directory", help="a 'negmine mine --out' directory")
    p.add_argument("--json", action="store_true", help="print report.json as is")
    p.add_argument("--html", metavar="FILE", default=None,
                   help="write a self-contained HTML report (plots, audit, searchable per-query table) to FILE")
    p.add_argument("--audit", metavar="FILE", default=None,
                   help="an audit.json from 'negmine audit --out' to include in the HTML report "
                        "(default: DIR/audit.json when present)")


def run(args: argparse.Namespace) -> int:
    path = Path(args.directory) / "report.json"
    if not path.is_file():
        raise DataError(f"{path}: not found; pass the --out directory of a 'negmine mine' run")
    if args.audit is not None and args.html is None:
        raise ConfigError("--audit adds an audit to the HTML report; add --html FILE "
                          "(the audit's text table is in audit.md next to its audit.json)")
    report = json.loads(path.read_text())
    if args.html is None:
        sys.stdout.write((json.dumps(report, indent=2) if args.json else render_text(report)) + "\n")
        return 0
    from negmine.report.html import write_html

    out = write_html(args.directory, args.html, args.audit)
    if args.json:  # stdout stays pure JSON; the note goes to stderr
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
        sys.stderr.write(f"wrote the HTML report to {out}\n")
    else:
        sys.stdout.write(f"wrote the HTML report to {out}\n")
    return 0
