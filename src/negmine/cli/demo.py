"""``negmine demo``: the whole mining job on the bundled SciFact slice, offline."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from negmine.text.report.stats import render_text

SAMPLE = Path(__file__).resolve().parent.parent / "sample"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="negmine-demo", help="output directory (negmine-demo)")
    p.add_argument("--retrievers", default="bm25,dense", help="comma-separated retrievers to run (bm25,dense)")
    p.add_argument("--num-negatives", type=int, default=5, help="negatives per query (5)")


def run(args: argparse.Namespace) -> int:
    import negmine
    from negmine.text.options import DEFAULTS, build_retriever

    out = Path(args.out)
    data = negmine.load_beir(SAMPLE, "train")
    w = sys.stdout.write
    w(f"negmine demo: {len(data.queries)} SciFact claims, {len(data.corpus)} abstracts "
      f"(bundled sample, see {SAMPLE / 'SOURCE.md'})\n")
    for name in [r for r in args.retrievers.split(",") if r]:
        retriever = build_retriever({**DEFAULTS, "retriever": name})
        filters = [negmine.text.filters.RelativeMargin(0.05)] if name != "bm25" else []
        result = negmine.mine(data, retriever, filters, negmine.text.samplers.Top(), args.num_negatives, seed=0,
                              cache_dir=out / "cache")
        target = result.save(out / name, overwrite=True)
        cfg = ", ".join(f"{f['name']}" for f in result.config["filters"])
        w(f"\n=== {name} (filters: {cfg}; sampler: top) -> {target}/mined.parquet\n")
        w(render_text(result.report) + "\n")
        row = result.to_rows()[0]
        texts = result.texts()
        w(f"\nexample query {row['query_id']}: {texts[('query', row['query_id'])]['text']}\n")
        for did, s in zip(row["negative_ids"][:3], row["negative_scores"][:3]):
            title = texts[("doc", did)]["title"] or texts[("doc", did)]["text"][:80]
            w(f"  negative {did} ({s:.3f}): {title[:100]}\n")
    w(f"\nexport training data with: negmine export {out / 'dense'} --format n-tuple --out train.jsonl\n")
    return 0
