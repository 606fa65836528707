"""``negmine mine``: flags or a TOML config (flags win) -> OUT/mined.parquet, manifest, report."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from negmine.errors import ConfigError
from negmine.options import DEFAULTS, load_config, merge

S = argparse.SUPPRESS


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_mining_arguments(p)
    p.add_argument("--config", help="TOML file with the same options (flags override it)")
    p.add_argument("--out", default=S, help="output directory (required)")
    p.add_argument("--overwrite", action="store_true", default=S, help="replace a different run in --out")
    p.add_argument("--format", choices=["parquet", "jsonl"], default=S, help="mined file format (parquet)")
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    p.add_argument("--html", default=None, help="also write the self-contained HTML report to this file")


def add_mining_arguments(p: argparse.ArgumentParser, multi: tuple[str, ...] = ()) -> None:
    """The mining options; those named in ``multi`` take comma-separated lists (audits)."""

    def num(dest: str) -> Any:
        return str if dest in multi else float

    g = p.add_argument_group("input")
    g.add_argument("--dataset", default=S, help="BEIR directory (corpus.jsonl, queries.jsonl, qrels/)")
    g.add_argument("--split", default=S, help="qrels split to mine (train)")
    g.add_argument("--exclude-splits", default=S,
                   help="comma-separated splits whose positives are never negatives (default: every split)")
    g.add_argument("--corpus", default=S, help="corpus jsonl/parquet (_id, title, text)")
    g.add_argument("--queries", default=S, help="queries jsonl/parquet (_id, text)")
    g.add_argument("--qrels", default=S, help="qrels TSV with header (query-id, corpus-id, score)")
    g.add_argument("--pairs", default=S, help="jsonl/parquet with anchor/positive text columns")
    g.add_argument("--drop-unknown", action="store_true", default=S, help="skip qrels naming unknown ids")
    g.add_argument("--min-relevance", type=float, default=S, help="lowest grade that is a positive (1)")
    g = p.add_argument_group("retrieval")
    g.add_argument("--retriever", default=S, help="bm25 | dense | faiss | union | hybrid | precomputed (bm25)")
    g.add_argument("--members", default=S, help="retrievers of union/hybrid, comma-separated (bm25,dense)")
    g.add_argument("--union-score", default=S, help="score that ranks union candidates: a member name or rrf")
    g.add_argument("--run", default=S, help="TREC run file or npz for --retriever precomputed")
    g.add_argument("--model", default=S, help="sentence-transformers model name or path (MiniLM-L6-v2)")
    g.add_argument("--query-prompt", default=S, help="text prepended to queries")
    g.add_argument("--document-prompt", default=S, help="text prepended to documents")
    g.add_argument("--max-length", type=int, default=S, help="maximum tokens per text")
    g.add_argument("--batch-size", type=int, default=S, help="encoding batch size (32)")
    g.add_argument("--faiss-index", choices=["flat", "hnsw"], default=S, help="faiss index type (flat)")
    g.add_argument("--hnsw-m", type=int, default=S, help="HNSW links per node (32)")
    g.add_argument("--ef-search", type=int, default=S, help="HNSW search breadth (256)")
    g.add_argument("--query-block", type=int, default=S, help="queries per dense search block (256)")
    g.add_argument("--doc-block", type=int, default=S, help="documents per dense search block (8192)")
    g.add_argument("--bm25-k1", type=float, default=S, help="BM25 k1 (1.5)")
    g.add_argument("--bm25-b", type=float, default=S, help="BM25 b (0.75)")
    g.add_argument("--bm25-stemmer", default=S, help="Snowball stemmer language for BM25, e.g. english (none)")
    g.add_argument("--depth", type=int, default=S, help="candidates per query (default: range_max or 100)")
    g.add_argument("--cache-dir", default=S, help="embedding cache directory")
    g = p.add_argument_group("filters")
    g.add_argument("--range-min", type=int, default=S, help="skip raw ranks below this (0)")
    g.add_argument("--range-max", type=int, default=S, help="consider raw ranks below this")
    g.add_argument("--max-score", type=num("max_score"), default=S, help="keep iff score <= S")
    g.add_argument("--min-score", type=num("min_score"), default=S, help="keep iff score >= S")
    g.add_argument("--absolute-margin", type=num("absolute_margin"), default=S, help="keep iff score < s+ - M")
    g.add_argument("--relative-margin", type=num("relative_margin"), default=S, help="keep iff score < s+ - |s+| * M")
    g.add_argument("--target-fnr", type=float, default=S,
                   help="calibrate the relative margin to this hidden-positive false-negative rate")
    g.add_argument("--no-near-duplicates", dest="near_duplicates", action="store_false", default=S,
                   help="do not exclude documents whose text equals a positive's")
    g = p.add_argument_group("judges (false-negative removal)")
    g.add_argument("--cross-encoder", default=S, help="cross-encoder name or path to rescore candidates")
    g.add_argument("--ce-max-score", type=num("ce_max_score"), default=S,
                   help="keep iff cross-encoder score < S (RocketQA: 0.1 with sigmoid)")
    g.add_argument("--ce-margin", type=num("ce_margin"), default=S, help="keep iff ce(n) <= min ce(p) - M")
    g.add_argument("--ce-activation", choices=["sigmoid", "none"], default=S, help="cross-encoder output (sigmoid)")
    g.add_argument("--llm-base-url", default=S, help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1")
    g.add_argument("--llm-model", default=S, help="judge model (judges every candidate)")
    g.add_argument("--llm-verify-model", default=S, help="stronger model for the batches the first one flags")
    g.add_argument("--llm-api-key-env", default=S, help="environment variable holding the API key (OPENAI_API_KEY)")
    g.add_argument("--llm-batch-size", type=int, default=S, help="candidates per judge call (10)")
    g.add_argument("--llm-concurrency", type=int, default=S, help="concurrent judge calls (4)")
    g.add_argument("--llm-timeout", type=float, default=S, help="seconds per judge call (60)")
    g.add_argument("--llm-retries", type=int, default=S, help="retries of a failed judge call, with backoff (3)")
    g.add_argument("--llm-drop", choices=["better", "relevant"], default=S,
                   help="drop candidates judged better-or-equal (better) or any relevant (relevant)")
    g.add_argument("--llm-max-flagged", type=int, default=S, help="skip queries with more flagged candidates (7)")
    g.add_argument("--judge-action", choices=["drop", "relabel"], default=S,
                   help="relabel also writes flagged candidates to OUT/relabeled-qrels.tsv")
    g = p.add_argument_group("sampling")
    g.add_argument("--sampler", default=S, help="top | random | softmax | simans (top)")
    g.add_argument("--num-negatives", type=int, default=S, help="negatives per query (5)")
    g.add_argument("--temperature", type=float, default=S, help="softmax temperature (0.05)")
    g.add_argument("--simans-a", type=float, default=S, help="SimANS a (0.5)")
    g.add_argument("--simans-b", type=float, default=S, help="SimANS b (0)")
    g.add_argument("--seed", type=int, default=S, help="random seed (0)")


def resolve_options(args: argparse.Namespace) -> dict[str, Any]:
    config = load_config(args.config) if getattr(args, "config", None) else {}
    flags = {k: v for k, v in vars(args).items() if k in DEFAULTS}
    return merge(config, flags)


def run(args: argparse.Namespace) -> int:
    from negmine.pipeline import mine, prepare, run_id
    from negmine.report.stats import render_text
    from negmine.writers.mined import check_output_dir

    o = resolve_options(args)
    if not o["out"]:
        raise ConfigError("--out is required: the directory to write mined.parquet, manifest.json, report.json")
    out = Path(o["out"])
    from negmine.options import build_filters, build_retriever, build_sampler, build_scorers, load_data

    retriever = build_retriever(o)
    if o["target_fnr"] is not None and o["relative_margin"] is not None:
        raise ConfigError("--target-fnr chooses the relative margin itself; drop --relative-margin")
    filters = build_filters(o)
    sampler = build_sampler(o)
    scorers = build_scorers(o)
    data = load_data(o)
    kwargs = {"num_negatives": o["num_negatives"], "seed": o["seed"], "depth": o["depth"],
              "near_duplicates": o["near_duplicates"]}
    *_, config = prepare(data, retriever, filters, sampler, **kwargs)
    if scorers:
        config["scorers"] = [s.config() for s in scorers]
    if o["target_fnr"] is not None:
        config["target_fnr"] = o["target_fnr"]
    check_output_dir(out, run_id(config, data), bool(o["overwrite"]))  # before any work
    if o["target_fnr"] is not None:
        from negmine.audit import mine_calibrated

        result = mine_calibrated(data, retriever, filters, sampler, target_fnr=float(o["target_fnr"]),
                                 cache_dir=o["cache_dir"], **kwargs)
    else:
        result = mine(data, retriever, filters, sampler, cache_dir=o["cache_dir"], scorers=scorers, **kwargs)
    result.save(out, overwrite=bool(o["overwrite"]), fmt=o["format"],
                extra_manifest={"options": {k: v for k, v in o.items() if k != "overwrite"}})
    if args.html:
        from negmine.report.html import write_html

        write_html(out, args.html)
    if args.json:
        sys.stdout.write(json.dumps(result.report, indent=2) + "\n")
    else:
        sys.stdout.write(render_text(result.report) + f"\nwrote {out}/mined.{o['format']}\n")
    return 0
