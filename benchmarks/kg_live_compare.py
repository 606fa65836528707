"""TransE trained with uniform negatives vs hard negatives from the live model (guarded), same budget.

Each run trains PyKEEN's TransE (sLCWA, margin ranking loss, Adam) from the same seed for
``--epochs`` epochs with ``negmine.kg.PyKEENSampler``: ``uniform`` / ``bernoulli`` (stream
engine), or ``live`` (``sampler="hard"`` scored by the model being trained, every batch, with
``--guard``). Filtered realistic MRR and Hits@10 on the test triples (train, valid and test
filtered; :mod:`negmine.kg.evaluation`, equal to PyKEEN's evaluator), wall time per epoch, and a
paired sign-flip test on the per-test-triple reciprocal ranks against the first sampler.

Usage: python benchmarks/kg_live_compare.py --triples ../shared/datasets/fb15k-237 --epochs 5
       [--samplers uniform,live] [--guard cardinality,margin] [--seed 0] [--out runs.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from typing import Any

import numpy as np

from negmine.core.stats import permutation_test
from negmine.kg import load_dataset, load_triples
from negmine.kg.evaluation import all_scores, filtered_ranks, rank_metrics
from negmine.kg.samplers import known_keys


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--dataset", default=None)
    src.add_argument("--triples", default=None)
    ap.add_argument("--samplers", default="uniform,live")
    ap.add_argument("--guard", default="cardinality,margin")
    ap.add_argument("--margin", type=float, default=0.0)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--pool", type=int, default=128)
    ap.add_argument("--cache", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--dim", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--num-negatives", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    import gc

    import pykeen.pipeline  # noqa: F401
    import torch
    from pykeen.models import TransE
    from pykeen.training import SLCWATrainingLoop
    from torch.optim import Adam

    import negmine.kg as kg
    from negmine.kg.kge import triples_factory

    torch.set_num_threads(1)
    gc.freeze()
    data = load_triples(args.triples) if args.triples else load_dataset(args.dataset or "kinships")
    tf = triples_factory(data)
    test = data.splits["test"]
    every = np.sort(known_keys(data))
    guard = tuple(g for g in args.guard.split(",") if g)
    runs: list[dict[str, Any]] = []
    rr: dict[str, np.ndarray] = {}
    for name in [s for s in args.samplers.split(",") if s]:
        torch.manual_seed(args.seed)
        model = TransE(triples_factory=tf, embedding_dim=args.dim, random_seed=args.seed)
        kwargs: dict[str, Any] = {"num_negs_per_pos": args.num_negatives, "seed": args.seed,
                                  "entity_labels": data.entities, "relation_labels": data.relations}
        if name == "live":
            kwargs |= {"sampler": "hard", "model": model, "guard": guard,
                       "sampler_kwargs": {"temperature": args.temperature, "pool": args.pool, "cache": args.cache,
                                          "margin": args.margin}}
        else:
            kwargs["sampler"] = name
        loop = SLCWATrainingLoop(model=model, triples_factory=tf, optimizer=Adam(model.get_grad_params(), lr=args.lr),
                                 negative_sampler=kg.PyKEENSampler, negative_sampler_kwargs=kwargs)
        t0 = time.perf_counter()
        losses = loop.train(triples_factory=tf, num_epochs=args.epochs, batch_size=args.batch_size, use_tqdm=False,
                            use_tqdm_batch=False)
        train_s = time.perf_counter() - t0
        ranks = np.concatenate([
            filtered_ranks(all_scores(model, test[a:a + 256]), test[a:a + 256], every, data.num_entities,
                           data.num_relations) for a in range(0, len(test), 256)])
        rr[name] = (1.0 / ranks).mean(axis=1)
        m = rank_metrics(ranks)
        runs.append({"sampler": name, **m, "epoch_seconds": train_s / args.epochs, "final_loss": float(losses[-1])})
        print(f"{name}: MRR {m['mrr']:.4f} Hits@10 {m['hits@10']:.4f}, {train_s / args.epochs:.1f} s/epoch, "
              f"loss {losses[-1]:.4f}", flush=True)
    base = runs[0]["sampler"]
    print(f"\n| sampler | MRR | Hits@10 | Δ MRR vs {base} | p | s / epoch |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in runs:
        p = "–" if r["sampler"] == base else f"{permutation_test(rr[r['sampler']], rr[base]):.4f}"
        r["p"] = p
        print(f"| {r['sampler']} | {r['mrr']:.4f} | {r['hits@10']:.4f} | {r['mrr'] - runs[0]['mrr']:+.4f} | {p} | "
              f"{r['epoch_seconds']:.1f} |")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS {peak:.0f} MB")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump({"source": data.source, "args": vars(args), "runs": runs, "peak_rss_mb": peak,
                       "reciprocal_ranks": {k: v.round(6).tolist() for k, v in rr.items()}}, fh)


if __name__ == "__main__":
    main()
