"""negmine's KG samplers against PyKEEN's own, side by side on the same triples, in one run.

Two measurements (issue 21's targets), each repeated ``--repeats`` times with negmine and PyKEEN
interleaved inside every repeat, so the ratio of a repeat compares two runs under the same load:

1. **A full negative pass**: corrupt every training triple ``--num-negatives`` times, filtered
   (negmine: ``corrupt`` with the ``exact`` filter over the training triples; PyKEEN: its
   ``BasicNegativeSampler`` / ``BernoulliNegativeSampler`` / ``PseudoTypedNegativeSampler`` with
   ``filtered=True``, its Bloom filterer over the training triples), timed around the sampling
   call only (both filters are built before). Also: negatives kept after filtering and the share
   of them that are valid or test triples (false negatives).
2. **A PyKEEN TransE epoch** (sLCWA, margin ranking loss, Adam, ``--epoch-negatives`` per
   positive, batch ``--batch-size``): one epoch with ``negmine.kg.PyKEENSampler(sampler="bernoulli")``
   against one with PyKEEN's ``BernoulliNegativeSampler(filtered=True)``, each from the same
   freshly seeded model (the training loop builds the sampler, so its set-up is inside the time);
   with ``--live``, also an epoch with the guarded live hard sampler (scored by the model being
   trained; no PyKEEN counterpart).

``uptime``'s load averages are recorded before and after (the machine may be shared: compare
ratios within a repeat, not seconds across runs). Median and min–max over the repeats.

Usage: python benchmarks/kg_samplers.py --triples ../shared/datasets/fb15k-237 [--repeats 3]
       [--samplers bernoulli,uniform,typed] [--num-negatives 10] [--epoch-negatives 10]
       [--batch-size 1024] [--live] [--skip-epoch] [--threads 1] [--out result.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import time
from typing import Any

import numpy as np

from negmine.kg import load_dataset, load_triples
from negmine.kg.data import triple_keys
from negmine.kg.filters import make_filter
from negmine.kg.samplers import Graph, corrupt, known_keys, make_sampler

PAIRS = {"uniform": "BasicNegativeSampler", "bernoulli": "BernoulliNegativeSampler",
         "typed": "PseudoTypedNegativeSampler"}


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())


def summary(xs: list[float]) -> dict[str, float]:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}


def fmt(xs: list[float], digits: int = 2) -> str:
    s = summary(xs)
    return f"{s['median']:.{digits}f} ({s['min']:.{digits}f}–{s['max']:.{digits}f})"


def negative_pass(data: Any, samplers: list[str], k: int, repeats: int) -> dict[str, Any]:
    import torch
    from pykeen import sampling

    n_e, n_r = data.num_entities, data.num_relations
    held = known_keys(data, [s for s in data.splits if s != "train"])
    graph = Graph.from_data(data)
    known = make_filter("exact", known_keys(data, ["train"]))
    mapped = torch.as_tensor(data.train)

    def fnr(neg: np.ndarray) -> float:
        return float(np.isin(triple_keys(neg, n_e, n_r), held).mean()) if len(neg) else float("nan")

    out: dict[str, Any] = {}
    for name in samplers:
        ours = make_sampler(name).fit(graph)
        theirs = getattr(sampling, PAIRS[name])(mapped_triples=mapped, num_negs_per_pos=k, filtered=True)
        t_ours, t_theirs = [], []
        for r in range(repeats):
            torch.manual_seed(r)
            t0 = time.perf_counter()
            c = corrupt(ours, graph, data.train, k, r, known)
            t_ours.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            neg_b, mask = theirs.sample(mapped)
            t_theirs.append(time.perf_counter() - t0)
        theirs_neg = (neg_b[mask] if mask is not None else neg_b.reshape(-1, 3)).numpy()
        ours_neg = c.negatives[c.ok]
        out[name] = {"negmine_s": t_ours, "pykeen_s": t_theirs,
                     "ratio": [a / b for a, b in zip(t_ours, t_theirs)],
                     "negmine_kept": len(ours_neg), "pykeen_kept": len(theirs_neg),
                     "negmine_fnr": fnr(ours_neg), "pykeen_fnr": fnr(theirs_neg)}
    return out


def epochs(data: Any, k: int, batch_size: int, repeats: int, live: bool, dim: int = 50) -> dict[str, Any]:
    import torch
    from pykeen.models import TransE
    from pykeen.sampling import BernoulliNegativeSampler
    from pykeen.training import SLCWATrainingLoop
    from torch.optim import Adam

    import negmine.kg as kg
    from negmine.kg.kge import triples_factory

    tf = triples_factory(data)

    def one(kind: str, seed: int) -> float:
        torch.manual_seed(seed)
        model = TransE(triples_factory=tf, embedding_dim=dim, random_seed=seed)
        if kind == "pykeen":
            sampler: Any = BernoulliNegativeSampler
            kwargs: dict[str, Any] = {"num_negs_per_pos": k, "filtered": True}
        elif kind == "negmine":
            sampler, kwargs = kg.PyKEENSampler, {"sampler": "bernoulli", "num_negs_per_pos": k, "seed": seed}
        else:
            sampler, kwargs = kg.PyKEENSampler, {"sampler": "hard", "model": model, "num_negs_per_pos": k,
                                                 "seed": seed, "guard": ("cardinality", "type", "margin")}
        loop = SLCWATrainingLoop(model=model, triples_factory=tf, optimizer=Adam(model.get_grad_params(), lr=0.01),
                                 negative_sampler=sampler, negative_sampler_kwargs=kwargs)
        t0 = time.perf_counter()
        loop.train(triples_factory=tf, num_epochs=1, batch_size=batch_size, use_tqdm=False, use_tqdm_batch=False)
        return time.perf_counter() - t0

    kinds = ["negmine", "pykeen"] + (["live-hard"] if live else [])
    times: dict[str, list[float]] = {x: [] for x in kinds}
    for r in range(repeats):
        for x in kinds:
            times[x].append(one(x, r))
    return {"seconds": times, "ratio": [a / b for a, b in zip(times["negmine"], times["pykeen"])],
            "num_negs_per_pos": k, "batch_size": batch_size, "dim": dim}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--dataset", default=None, help="nations, kinships or umls (inside PyKEEN's wheel)")
    src.add_argument("--triples", default=None, help="a directory with train/valid/test")
    ap.add_argument("--samplers", default="bernoulli,uniform,typed")
    ap.add_argument("--num-negatives", type=int, default=10)
    ap.add_argument("--epoch-negatives", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--live", action="store_true", help="also time an epoch with the guarded live hard sampler")
    ap.add_argument("--skip-epoch", action="store_true")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (both sides alike)")
    ap.add_argument("--out", default=None, help="write the figures as JSON here")
    args = ap.parse_args()

    import gc

    import pykeen.pipeline  # noqa: F401  (PyKEEN calls gc.collect() per epoch: freeze what is alive now)
    import torch

    torch.set_num_threads(args.threads)
    data = load_triples(args.triples) if args.triples else load_dataset(args.dataset or "kinships")
    gc.freeze()
    result: dict[str, Any] = {"source": data.source, "entities": data.num_entities, "train": len(data.train),
                              "repeats": args.repeats, "threads": args.threads, "uptime_before": uptime()}
    print(f"{data.source}: {data.num_entities} entities, {len(data.train)} training triples; "
          f"{args.repeats} repeats; torch threads {args.threads}")
    print("load before:", result["uptime_before"])
    names = [s for s in args.samplers.split(",") if s]
    result["pass"] = negative_pass(data, names, args.num_negatives, args.repeats)
    print(f"\nFull negative pass, {args.num_negatives} per training triple, filtered over train "
          "(seconds: median (min–max); ratio = negmine / PyKEEN within the same repeat):\n")
    print("| sampler | negmine s | PyKEEN s | negmine / PyKEEN | negmine kept | PyKEEN kept | negmine FNR "
          "| PyKEEN FNR |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in result["pass"].items():
        print(f"| {name} | {fmt(r['negmine_s'])} | {fmt(r['pykeen_s'])} | {fmt(r['ratio'])} | {r['negmine_kept']} | "
              f"{r['pykeen_kept']} | {100 * r['negmine_fnr']:.2f}% | {100 * r['pykeen_fnr']:.2f}% |")
    if not args.skip_epoch:
        e = epochs(data, args.epoch_negatives, args.batch_size, args.repeats, args.live)
        result["epoch"] = e
        print(f"\nOne TransE epoch (dim {e['dim']}, {e['num_negs_per_pos']} negatives per positive, batch "
              f"{e['batch_size']}):\n")
        print("| sampler | epoch s | / PyKEEN's (same repeat) |")
        print("|---|---:|---:|")
        for kind, xs in e["seconds"].items():
            ratio = [a / b for a, b in zip(xs, e["seconds"]["pykeen"])]
            label = {"negmine": "negmine PyKEENSampler (bernoulli, exact filter)",
                     "pykeen": "PyKEEN BernoulliNegativeSampler (filtered)",
                     "live-hard": "negmine live hard (guard: cardinality, type, margin)"}[kind]
            print(f"| {label} | {fmt(xs, 1)} | {fmt(ratio)} |")
    result["uptime_after"] = uptime()
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("\nload after:", result["uptime_after"])
    print(f"peak RSS: {result['peak_rss_mb']:.0f} MB")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=1)


if __name__ == "__main__":
    main()
