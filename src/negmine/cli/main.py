"""``negmine`` entry point: parse, dispatch to a subcommand module (imported lazily), map errors
to exit codes (0 ok, 2 usage/config/data error with one line, 1 runtime failure)."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback
from collections.abc import Sequence

from negmine.errors import NegmineError

COMMANDS = {
    "mine": ("negmine.cli.mine", "mine hard negatives for a dataset"),
    "export": ("negmine.cli.export", "write training files from a mining output (never re-mines)"),
    "audit": ("negmine.cli.audit", "hidden-positive false-negative audit of several settings, one retrieval"),
    "evaluate": ("negmine.cli.evaluate", "nDCG@10, Recall@100, MRR@10, MAP@100 of a model or BM25 on a split"),
    "train": ("negmine.cli.train", "fine-tune a sentence-transformers model on mined negatives"),
    "compare": ("negmine.cli.compare", "sweep mining settings: mine -> train -> evaluate, one table and a plot"),
    "report": ("negmine.cli.report", "show the report of a mining output"),
    "list": ("negmine.cli.list_", "list registered components"),
    "demo": ("negmine.cli.demo", "mine the bundled sample offline with BM25 and the dense MiniLM model"),
    "kg": ("negmine.cli.kg", "knowledge-graph negatives: kg mine | kg audit | kg compare"),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"negmine: error: {message}; see '{self.prog} --help'\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="negmine", description="Mine hard negatives for contrastive training.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.INFO if args.verbose else logging.WARNING)  # some libraries force DEBUG on their loggers
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, handlers=[handler])
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.run(args))
    except NegmineError as exc:
        if args.debug:
            traceback.print_exc()
        sys.stderr.write(f"negmine: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("negmine: interrupted; nothing partial was written\n")
        return 130
    except Exception as exc:
        if args.debug:
            traceback.print_exc()
        sys.stderr.write(f"negmine: failed: {exc.__class__.__name__}: {exc} (run with --debug for the traceback)\n")
        return 1


def entry() -> None:
    sys.exit(main())
