"""``negmine report DIR``: render the report of a mining output."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from negmine.errors import DataError
from negmine.report.stats import render_text


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("directory", help="a 'negmine mine --out' directory")
    p.add_argument("--json", action="store_true", help="print report.json as is")


def run(args: argparse.Namespace) -> int:
    path = Path(args.directory) / "report.json"
    if not path.is_file():
        raise DataError(f"{path}: not found; pass the --out directory of a 'negmine mine' run")
    report = json.loads(path.read_text())
    sys.stdout.write((json.dumps(report, indent=2) if args.json else render_text(report)) + "\n")
    return 0
