"""How much each part of the live hard sampler's guard cuts false negatives, and what hardness it costs.

As ``negmine kg audit``: one TransE (PyKEEN sLCWA, uniform negatives, ``--epochs``) is trained on
the training triples; then every sampler below corrupts the same training triples (all, or a
keyed sample of ``--triples-sample``) ``--num-negatives`` times with the ``exact`` filter over the
*training* triples only (what a trainer knows), and a corruption that is a valid or test triple
is a false negative. The live hard sampler scores its pool with that model (as it would the
model being trained at that point). Reported per row: FNR with its Wilson 95% interval, and
hardness (share of the other entities on the corrupted side the model scores lower: 0.5 ≈
random, 1 = its top pick; on the first ``--hardness-sample`` triples).

Usage: python benchmarks/kg_guard.py --dataset kinships | --triples ../shared/datasets/fb15k-237
       [--epochs 20] [--num-negatives 10] [--triples-sample 50000] [--out guard.json]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

from negmine.core.stats import wilson
from negmine.kg import load_dataset, load_triples
from negmine.kg.data import triple_keys
from negmine.kg.evaluation import all_scores, hardness_percentile
from negmine.kg.filters import make_filter
from negmine.kg.live import LiveHard, ModelScorer
from negmine.kg.samplers import Graph, corrupt, known_keys, make_sampler

ROWS: list[tuple[str, dict[str, Any]]] = [
    ("uniform", {}),
    ("bernoulli", {}),
    ("live hard, no guard", {"guard": ()}),
    ("+ cardinality", {"guard": ("cardinality",)}),
    ("+ type", {"guard": ("type",)}),
    ("+ margin 0", {"guard": ("margin",)}),
    ("+ structure (HaSa)", {"guard": ("structure",)}),
    ("cardinality + margin (the default)", {"guard": ("cardinality", "margin")}),
    ("cardinality + type + margin", {"guard": ("cardinality", "type", "margin")}),
    ("cardinality + type + margin + structure", {"guard": ("cardinality", "type", "margin", "structure")}),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--dataset", default=None)
    src.add_argument("--triples", default=None)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--dim", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--num-negatives", type=int, default=10)
    ap.add_argument("--triples-sample", type=int, default=50_000)
    ap.add_argument("--hardness-sample", type=int, default=3000)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--pool", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    import gc

    import pykeen.pipeline  # noqa: F401
    import torch

    from negmine.kg.kge import fit_kge

    torch.set_num_threads(1)
    gc.freeze()
    data = load_triples(args.triples) if args.triples else load_dataset(args.dataset or "kinships")
    graph = Graph.from_data(data)
    t0 = time.perf_counter()
    kge = fit_kge(data, dim=args.dim, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed)
    fit_s = time.perf_counter() - t0
    known = make_filter("exact", known_keys(data, ["train"]))
    held = known_keys(data, [s for s in data.splits if s != "train"])
    train = data.train
    if len(train) > args.triples_sample:  # a keyed sample: the same triples for every row
        order = np.argsort(graph.triple_hash(train), kind="stable")
        train = train[np.sort(order[:args.triples_sample])]
    hs = train[:args.hardness_sample]
    scores = all_scores(kge.model, hs)
    cells = data.num_relations * data.num_entities ** 2
    print(f"{data.source}: {data.num_entities} entities, TransE dim {args.dim}, {args.epochs} epochs ({fit_s:.0f} s); "
          f"{len(train)} training triples x {args.num_negatives} negatives, exact filter over train; "
          f"FNR = share of negatives in valid or test\n")
    print("| sampler | emitted | false neg. | FNR | 95% CI | hardness | s |")
    print("|---|---:|---:|---:|---|---:|---:|")
    rows = []
    for label, opts in ROWS:
        if "structure" in opts.get("guard", ()) and cells > 200_000_000:
            continue  # HaSa's table is n_r·n_e² bytes
        t0 = time.perf_counter()
        if opts:
            s: Any = LiveHard(ModelScorer(kge.model), temperature=args.temperature, pool=args.pool, cache=0,
                              **opts).fit(graph)
        else:
            s = make_sampler(label).fit(graph)
        c = corrupt(s, graph, train, args.num_negatives, args.seed, known)
        sec = time.perf_counter() - t0
        neg = c.negatives[c.ok]
        k = int(np.isin(triple_keys(neg, data.num_entities, data.num_relations), held).sum())
        lo, hi = wilson(k, len(neg))
        hard = float(hardness_percentile(scores, hs, c.negatives[:len(hs)], c.side[:len(hs)]).mean())
        rows.append({"sampler": label, "emitted": len(neg), "false_negatives": k, "fnr": k / len(neg),
                     "ci95": [lo, hi], "hardness": hard, "seconds": sec})
        print(f"| {label} | {len(neg)} | {k} | {100 * k / len(neg):.2f}% | {100 * lo:.2f}–{100 * hi:.2f}% | "
              f"{hard:.3f} | {sec:.0f} |", flush=True)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump({"source": data.source, "args": vars(args), "fit_seconds": fit_s, "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
