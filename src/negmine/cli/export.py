"""``negmine export DIR --format F --out FILE``."""

from __future__ import annotations

import argparse
import sys

from negmine.core.atomic import dumps
from negmine.core.errors import ConfigError
from negmine.text.writers.export import FORMATS, SCORES, export_file


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("directory", help="a 'negmine mine --out' directory")
    p.add_argument("--format", required=True, choices=FORMATS, help="training-data shape")
    p.add_argument("--out", required=True,
                   help="output file, *.jsonl or *.parquet (flag: *.jsonl or *.json); '-' writes jsonl to stdout")
    p.add_argument("--scores", choices=tuple(SCORES), default=None,
                   help="add this score matrix of the run (cross-encoder: when mined with --cross-encoder); "
                        "warns when it ranks a negative above a positive")
    p.add_argument("--with-scores", action="store_true", help="same as --scores retrieval")
    p.add_argument("--keep-empty", action="store_true",
                   help="keep queries without negatives in flag/tevatron exports (their trainers crash on them)")
    p.add_argument("--prompt", default=None,
                   help="flag: FlagEmbedding 'prompt' column (query instruction) on every row")
    p.add_argument("--type", dest="type_", default=None,
                   help="flag: FlagEmbedding 'type' column on every row (e.g. normal, symmetric_class, only_1neg)")
    p.add_argument("--corpus-out", default=None,
                   help="tevatron-ids: the corpus file (default: OUT with .corpus before the suffix)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--json", action="store_true", help="print counts as JSON")


def run(args: argparse.Namespace) -> int:
    if args.with_scores and args.scores not in (None, "retrieval"):
        raise ConfigError(f"--with-scores means --scores retrieval, which conflicts with --scores {args.scores}; "
                          "pass only one")
    to_stdout = args.out == "-"
    counts = export_file(
        args.directory, args.format, sys.stdout if to_stdout else args.out,
        scores=args.scores or ("retrieval" if args.with_scores else None), overwrite=args.overwrite,
        keep_empty=args.keep_empty, prompt=args.prompt, type_=args.type_, corpus_out=args.corpus_out,
    )
    note = sys.stderr if to_stdout else sys.stdout  # stdout carries the rows when --out is '-'
    if args.json:
        note.write(dumps(counts) + "\n")
        return 0
    msg = f"wrote {counts['rows']} {args.format} rows for {counts['queries']} queries to {counts['out']}"
    left = []
    if counts["queries_left_out_short"]:
        left.append(f"{counts['queries_left_out_short']} queries left out: fewer negatives than asked")
    if counts["queries_left_out_no_negatives"]:
        left.append(f"{counts['queries_left_out_no_negatives']} queries left out: no negatives "
                    "(--keep-empty keeps them)")
    if left:
        msg += f" ({'; '.join(left)})"
    if "corpus_out" in counts:
        msg += f"; corpus of {counts['corpus_documents']} documents in {counts['corpus_out']}"
    note.write(msg + "\n")
    return 0
