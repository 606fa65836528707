"""``negmine report DIR``: render the report of a mining output (text, JSON or one HTML file)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from negmine.core.atomic import dumps, write_text
from negmine.core.errors import ConfigError, DataError
from negmine.text.report.stats import render_text


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("directory", help="a 'negmine mine --out' directory")
    p.add_argument("--json", action="store_true", help="print report.json as is")
    p.add_argument("--html", metavar="FILE", default=None,
                   help="write a self-contained HTML report (plots, audit, searchable per-query table) to FILE "
                        "('-': stdout)")
    p.add_argument("--audit", metavar="FILE", default=None,
                   help="an audit.json from 'negmine audit --out' to include in the HTML report "
                        "(default: DIR/audit.json when present)")


def run(args: argparse.Namespace) -> int:
    from negmine.core.rundir import verify
    from negmine.text.writers.mined import check_text_run

    manifest = verify(args.directory)  # a partial, mixed or corrupted run is refused with what to do
    check_text_run(args.directory, manifest)
    path = Path(args.directory) / "report.json"
    if not path.is_file():
        raise DataError(f"{path}: not found; pass the --out directory of a 'negmine mine' run")
    if args.audit is not None and args.html is None:
        raise ConfigError("--audit adds an audit to the HTML report; add --html FILE "
                          "(the audit's text table is in audit.md next to its audit.json)")
    if args.html == "-" and args.json:
        raise ConfigError("--html - and --json both write to stdout; pass one of them, or --html FILE")
    report = _read_report(path)
    if args.html is None:
        sys.stdout.write((dumps(report, indent=2) if args.json else render_text(report)) + "\n")
        return 0
    from negmine.text.report.html import render_html

    if args.html == "-":
        sys.stdout.write(render_html(args.directory, args.audit))
        sys.stdout.flush()
        return 0
    out = Path(args.html)
    _check_writable(out, Path(args.directory), args.audit)
    page = render_html(args.directory, args.audit)
    try:
        write_text(out, page)
    except OSError as exc:
        raise ConfigError(f"{out}: cannot be written ({exc.strerror or exc}); choose another --html FILE") from None
    if args.json:  # stdout stays pure JSON; the note goes to stderr
        sys.stdout.write(dumps(report, indent=2) + "\n")
        sys.stderr.write(f"wrote the HTML report to {out}\n")
    else:
        sys.stdout.write(f"wrote the HTML report to {out}\n")
    return 0


def _read_report(path: Path) -> dict[str, Any]:
    try:
        report = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc}); check its permissions") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not a valid report ({exc.__class__.__name__}); mine again with --overwrite") from None
    if not isinstance(report, dict):
        raise DataError(f"{path}: not a negmine report (expected a JSON object); mine again with --overwrite")
    return report


def _check_writable(out: Path, run: Path, audit: str | None) -> None:
    """``--html`` is a writable file, none of the run's files nor the audit it reads."""
    from negmine.core.rundir import META, RUN_FILES
    from negmine.core.targets import check_output_file

    check_output_file(out, "--html", overwrite=True, inputs=[*(run / f for f in RUN_FILES), audit],
                      read_dirs=[run / META])
