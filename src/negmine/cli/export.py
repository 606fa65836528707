"""``negmine export DIR --format F --out FILE``."""

from __future__ import annotations

import argparse
import json
import sys

from negmine.writers.export import FORMATS, export_file


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("directory", help="a 'negmine mine --out' directory")
    p.add_argument("--format", required=True, choices=FORMATS, help="training-data shape")
    p.add_argument("--out", required=True, help="output file, *.jsonl or *.parquet")
    p.add_argument("--with-scores", action="store_true", help="include mining scores")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--json", action="store_true", help="print counts as JSON")


def run(args: argparse.Namespace) -> int:
    counts = export_file(args.directory, args.format, args.out, with_scores=args.with_scores,
                         overwrite=args.overwrite)
    if args.json:
        sys.stdout.write(json.dumps(counts) + "\n")
    else:
        msg = f"wrote {counts['rows']} {args.format} rows for {counts['queries']} queries to {args.out}"
        if counts["queries_left_out_short"]:
            msg += f" ({counts['queries_left_out_short']} queries left out: fewer negatives than asked)"
        sys.stdout.write(msg + "\n")
    return 0
