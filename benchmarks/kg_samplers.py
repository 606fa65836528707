"""negmine's KG samplers against PyKEEN's own, side by side on the same triples, in one run.

For uniform / bernoulli / typed (PyKEEN: BasicNegativeSampler, BernoulliNegativeSampler,
PseudoTypedNegativeSampler, each with ``filtered=True``, its default Bloom filterer over the
training triples) and negmine (``exact`` filter over the training triples): seconds to corrupt
every training triple ``--num-negatives`` times (best of ``--repeats``), negatives kept after
filtering, and the false-negative rate of the kept ones (share that are valid or test triples).

Usage: python benchmarks/kg_samplers.py [--dataset kinships] [--num-negatives 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from negmine.kg import load_dataset
from negmine.kg.data import triple_keys
from negmine.kg.filters import make_filter
from negmine.kg.samplers import Graph, corrupt, known_keys, make_sampler

PAIRS = {"uniform": "BasicNegativeSampler", "bernoulli": "BernoulliNegativeSampler",
         "typed": "PseudoTypedNegativeSampler"}


def best(fn, repeats: int) -> tuple[float, object]:
    out, times = None, []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="kinships")
    ap.add_argument("--num-negatives", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    import torch
    from pykeen import sampling

    torch.manual_seed(0)
    data = load_dataset(args.dataset)
    n_e, n_r = data.num_entities, data.num_relations
    held = known_keys(data, [s for s in data.splits if s != "train"])
    graph = Graph.from_data(data)
    known = make_filter("exact", known_keys(data, ["train"]))
    mapped = torch.as_tensor(data.train)

    def fnr(neg: np.ndarray) -> float:
        return float(np.isin(triple_keys(neg, n_e, n_r), held).mean())

    print(f"{args.dataset}: {len(data.train)} training triples x {args.num_negatives} negatives, best of "
          f"{args.repeats}")
    print("| sampler | negmine s | PyKEEN s | PyKEEN / negmine | negmine kept | PyKEEN kept | negmine FNR "
          "| PyKEEN FNR |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for ours, theirs in PAIRS.items():
        s = make_sampler(ours).fit(graph)
        t_ours, c = best(lambda s=s: corrupt(s, graph, data.train, args.num_negatives, 0, known), args.repeats)
        ps = getattr(sampling, theirs)(mapped_triples=mapped, num_negs_per_pos=args.num_negatives, filtered=True)
        t_theirs, res = best(lambda ps=ps: ps.sample(mapped), args.repeats)
        neg_b, mask = res  # type: ignore[misc]
        theirs_neg = (neg_b[mask] if mask is not None else neg_b.reshape(-1, 3)).numpy()
        ours_neg = c.negatives[c.ok]  # type: ignore[attr-defined]
        print(f"| {ours} | {t_ours:.3f} | {t_theirs:.3f} | {t_theirs / t_ours:.2f} | {len(ours_neg)} | "
              f"{len(theirs_neg)} | {100 * fnr(ours_neg):.2f}% | {100 * fnr(theirs_neg):.2f}% |")


if __name__ == "__main__":
    main()
