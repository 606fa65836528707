"""``negmine evaluate``: nDCG@10, Recall@100, MRR@10, MAP@100 of a model or BM25 on a split."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from negmine.core.atomic import dumps
from negmine.core.errors import ConfigError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, help="BEIR directory")
    p.add_argument("--split", default="test", help="qrels split to evaluate (test)")
    p.add_argument("--model", default=None, help="sentence-transformers model name or path (dense retrieval)")
    p.add_argument("--retriever", default=None, help="bm25 | dense | faiss (dense when --model is given)")
    p.add_argument("--batch-size", type=int, default=32, help="encoding batch size (32)")
    p.add_argument("--max-length", type=int, default=None, help="maximum tokens per text")
    p.add_argument("--query-prompt", default=None, help="text prepended to queries")
    p.add_argument("--document-prompt", default=None, help="text prepended to documents")
    p.add_argument("--cache-dir", default=None, help="embedding cache directory")
    p.add_argument("--out", default=None, help="write metrics.json (means and per-query scores) here")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")


def run(args: argparse.Namespace) -> int:
    from negmine.text.data import load_beir
    from negmine.text.evaluate import evaluate
    from negmine.text.options import DEFAULTS, build_retriever

    name = args.retriever or ("dense" if args.model else None)
    if name is None:
        raise ConfigError("pass --model NAME_OR_PATH (dense) or --retriever bm25")
    o = {**DEFAULTS, "retriever": name, "batch_size": args.batch_size, "max_length": args.max_length,
         "query_prompt": args.query_prompt, "document_prompt": args.document_prompt}
    if args.model:
        o["model"] = args.model
    retriever = build_retriever(o)
    retriever.config()  # validates the model path before loading anything
    data = load_beir(args.dataset, args.split, exclude_splits=[])
    result = evaluate(data, retriever, cache_dir=args.cache_dir)
    if args.out:
        from negmine.core.atomic import write_json

        write_json(Path(args.out) / "metrics.json", {"config": retriever.config(), "split": args.split,
                                                     **result.to_dict()})
    if args.json:
        sys.stdout.write(dumps({k: v for k, v in result.to_dict().items() if k != "per_query"}, indent=2) + "\n")
    else:
        label = args.model or name
        sys.stdout.write(f"{label} on {Path(args.dataset).name}/{args.split} ({result.n_queries} queries)\n")
        sys.stdout.write("| " + " | ".join(result.metrics) + " |\n|" + "---:|" * len(result.metrics) + "\n")
        sys.stdout.write("| " + " | ".join(f"{v:.4f}" for v in result.metrics.values()) + " |\n")
    return 0
