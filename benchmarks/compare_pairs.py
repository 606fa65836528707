"""Paired tests between the rows of a finished ``negmine compare`` sweep (``compare.md`` tests each
row against the baseline only).

For ``A:B``, the per-query nDCG@10 of each row is averaged over the seeds both rows ran (an
untrained row has one evaluation, used with every seed of the other), and the difference of the
means is tested with :func:`negmine.text.compare.permutation_test` (sign flips, 10,000 permutations,
seed 0) — the test ``compare.md`` uses.

    python benchmarks/compare_pairs.py runs/scifact dense-rm-0-05:dense-top dense-default:dense-top
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from negmine.core.stats import permutation_test

METRIC = "ndcg@10"


def per_query(row: Path) -> dict[int | None, dict[str, Any]]:
    """Per-query metrics of a row directory, by seed (``None`` for an untrained row)."""
    runs: dict[int | None, dict[str, Any]] = {}
    for d in sorted(row.glob("seed-*")):
        if (d / "metrics.json").is_file():
            runs[int(d.name.removeprefix("seed-"))] = json.loads((d / "metrics.json").read_text())["per_query"]
    if not runs and (row / "metrics.json").is_file():
        runs[None] = json.loads((row / "metrics.json").read_text())["per_query"]
    if not runs:
        raise SystemExit(f"{row}: no metrics.json (is the sweep finished?)")
    return runs


def averaged(runs: dict[int | None, dict[str, Any]], seeds: list[int | None], queries: list[str]) -> np.ndarray:
    use = [s for s in seeds if s in runs] or list(runs)
    return np.mean([[runs[s][q][METRIC] for q in queries] for s in use], axis=0)


def test(out: Path, a: str, b: str) -> dict[str, Any]:
    ra, rb = per_query(out / a), per_query(out / b)
    shared = sorted(s for s in set(ra) & set(rb) if s is not None)
    seeds: list[int | None] = list(shared) or sorted(s for s in set(ra) | set(rb) if s is not None)
    queries = sorted(next(iter(ra.values())))
    x, y = averaged(ra, seeds, queries), averaged(rb, seeds, queries)
    return {"a": a, "b": b, "seeds": seeds, "delta": float(x.mean() - y.mean()),
            "p": permutation_test(x, y, n_permutations=10_000, seed=0)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path, help="the sweep's output directory")
    ap.add_argument("pairs", nargs="+", help="ROW_A:ROW_B (setting directory names)")
    args = ap.parse_args()
    print(f"| comparison | seeds | Δ {METRIC} | p |\n|---|---|---:|---:|")
    for pair in args.pairs:
        a, b = pair.split(":")
        r = test(args.out, a, b)
        print(f"| {a} − {b} | {', '.join(map(str, r['seeds']))} | {r['delta']:+.4f} | {r['p']:.4g} |")


if __name__ == "__main__":
    main()
