"""``negmine`` entry point: parse, dispatch to a subcommand module (imported lazily), map errors
to exit codes (0 ok, 2 usage/config/data/environment error with one line, 1 runtime failure).

``-v``/``-q``/``--debug`` are accepted before or after the subcommand. Progress bars (negmine's
and the libraries' it drives) show only when stderr is a terminal, never with ``-q``; see
:mod:`negmine.core.progress` and ``NEGMINE_PROGRESS``."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from negmine import __version__
from negmine.core.errors import NegmineError, environment_error

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
    "rec": ("negmine.cli.rec", "recommendation negatives: rec mine | audit | train | evaluate | compare"),
}


#: examples shown at the end of a command's --help
EXAMPLES = {
    "mine": """examples:
  negmine mine --dataset scifact --out runs/bm25
  negmine mine --dataset scifact --retriever dense --model BAAI/bge-small-en-v1.5 \\
      --range-min 10 --range-max 100 --relative-margin 0.05 --num-negatives 7 --out runs/dense
  negmine mine --pairs pairs.jsonl --retriever dense --sampler softmax --temperature 0.05 --out runs/pairs
  negmine mine --config mine.toml --out runs/from-config --html report.html""",
    "audit": """examples:
  negmine audit --dataset scifact --hide-fraction 0.3 --relative-margin 0,0.05,0.1
  negmine audit --dataset scifact --retriever dense --hidden-qrels extra-qrels.tsv --out audits/dense""",
    "export": """examples:
  negmine export runs/bm25 --format n-tuple --out train.jsonl
  negmine export runs/bm25 --format flag --scores cross-encoder --prompt "Represent this query: " --out flag.jsonl
  negmine export runs/bm25 --format tevatron-ids --out tevatron/train.jsonl   # + tevatron/train.corpus.jsonl
  negmine export runs/bm25 --format triplet --out - | head -3""",
    "train": """examples:
  negmine train runs/dense --out models/minilm-ft
  negmine train runs/dense --loss cached-mnrl --batch-size 128 --epochs 2 --eval-dataset scifact --out models/ft
  negmine train runs/dense --loss gist --remine-every 500 --out models/gist""",
    "compare": """examples:
  negmine compare sweep.toml
  negmine compare sweep.toml --out sweeps/scifact --json > compare.json""",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"negmine: error: {message}; see '{self.prog} --help'\n")


def _common(defaults: bool) -> _Parser:
    """-v/-q/--debug, for the main parser (with defaults) and every subcommand (without, so a
    flag given before the subcommand is not reset after it)."""
    p = _Parser(add_help=False)
    d: dict[str, Any] = {} if defaults else {"default": argparse.SUPPRESS}
    p.add_argument("--debug", action="store_true", help="show tracebacks", **d)
    p.add_argument("-v", "--verbose", action="store_true", help="log progress messages", **d)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars, errors only", **d)
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="negmine", description="Mine hard negatives for contrastive training.",
                     parents=[_common(True)])
    parser.add_argument("--version", action="version", version=f"negmine {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    common = _common(False)
    for name, (module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_, parents=[common], epilog=EXAMPLES.get(name),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        importlib.import_module(module).add_arguments(p)
    return parser


def _configure(args: argparse.Namespace) -> dict[str, str | None]:
    from negmine.core import progress as _progress

    level = logging.INFO if args.verbose else logging.ERROR if args.quiet else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(level)  # some libraries force DEBUG on their loggers
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    if args.quiet:
        _progress.set_enabled(False)
    return _progress.quiet_third_party(verbose=args.verbose)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    if args.verbose and args.quiet:
        parser.error("-v and -q contradict each other; pass one of them")
    previous_env = _configure(args)
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.run(args))
    except NegmineError as exc:
        if args.debug:
            traceback.print_exc()
        sys.stderr.write(f"negmine: error: {_one_line(exc)}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("negmine: interrupted; nothing partial was written\n")
        return 130
    except BrokenPipeError:  # e.g. 'negmine export ... --out - | head'
        _silence_stdout()
        return 0
    except Exception as exc:  # an environment problem is exit 2, anything else exit 1
        fix = environment_error(exc)
        if fix is None:
            return _failed(exc, args.debug)
        if args.debug:
            traceback.print_exc()
        sys.stderr.write(f"negmine: error: {' '.join(fix.split())}\n")
        return 2
    finally:
        from negmine.core import progress as _progress

        _progress.set_enabled(None)
        _progress.restore_environment(previous_env)  # main() may be called again in this process


def _failed(exc: BaseException, debug: bool) -> int:
    if debug:
        traceback.print_exc()
    sys.stderr.write(f"negmine: failed: {exc.__class__.__name__}: {_one_line(exc)} "
                     "(run with --debug for the traceback)\n")
    return 1


_environment_fix = environment_error  # the name earlier versions (and their tests) used


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or exc.__class__.__name__


def _silence_stdout() -> None:
    """After a closed pipe, point stdout at /dev/null so the interpreter's final flush is quiet."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def entry() -> None:
    sys.exit(main())
