"""Calibration (``--target-fnr``, and the default policy on many-positive data) at a growing number
of queries: wall time and peak RSS of :func:`negmine.text.calibrate.calibrate`, each size in its own
process, optionally beside another checkout of negmine in the same run (``--reference SRC``: the
``src`` directory of that checkout), so the ratio is measured side by side.

Data (synthetic, seeded): ``Q`` queries with 8 positives each among 100 candidates, 50,000
distractor documents plus the positives, short texts; uniform random scores. It measures the
machinery (300 policies, the cross-fitted detector, the cross-fitted choice), not quality.

    python benchmarks/calibration_scale.py --queries 1000 4000 16000 [--reference /tmp/old/src]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = r"""
import json, resource, sys, time
import numpy as np
from negmine.text import calibrate as C
from negmine.text.filters import ExcludePositives
from negmine.text.samplers import Top
from negmine.text.types import Candidates, Corpus, MiningData, Qrels, Queries

nq, K, NP, ND = int(sys.argv[1]), 100, 8, 50_000
rng = np.random.default_rng(0)
n_docs = ND + nq * NP
corpus = Corpus(ids=[f"d{i}" for i in range(n_docs)],
                texts=[f"doc w{i % 997} v{i % 89} u{(i * 7) % 1009}" for i in range(n_docs)])
queries = Queries(ids=[f"q{i}" for i in range(nq)], texts=[f"query {i}" for i in range(nq)])
pos_rows = ND + np.arange(nq * NP).reshape(nq, NP)
pos = Qrels.from_pairs(nq, np.repeat(np.arange(nq), NP), pos_rows.ravel())
ids = np.concatenate([pos_rows, rng.integers(0, ND, (nq, K - NP))], axis=1)
ids = np.take_along_axis(ids, rng.permuted(np.tile(np.arange(K), (nq, 1)), axis=1), axis=1).astype(np.int64)
scores = np.sort(rng.uniform(0, 1, (nq, K)), axis=1)[:, ::-1].astype(np.float32)
ps = np.empty(nq * NP, np.float32)
for q in range(nq):
    order = np.argsort(ids[q])
    ps[q * NP:(q + 1) * NP] = scores[q, order[np.searchsorted(ids[q, order], pos_rows[q])]]
cand = Candidates(ids, scores, np.ones(ids.shape, np.uint8), ["synthetic"], ps)
data = MiningData(corpus, queries, pos, pos)
t = time.perf_counter()
cal = C.calibrate(data, cand, [ExcludePositives()], Top(), 5, 0, target_fnr=0.1)
print(json.dumps({"queries": nq, "seconds": time.perf_counter() - t,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "chosen": cal.record["chosen"]["policy"]}))
"""


def run(src: Path, n: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(src), "NEGMINE_PROGRESS": "0"}
    out = subprocess.run([sys.executable, "-c", CHILD, str(n)], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, nargs="+", default=[1000, 4000, 16000])
    ap.add_argument("--reference", type=Path, help="src directory of another negmine checkout to run beside")
    ap.add_argument("--out", type=Path, default=HERE / "out-calibration" / "calibration.json")
    args = ap.parse_args()
    rows = []
    print("| queries | seconds | peak RSS MB | reference seconds | reference peak MB | time ratio |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n in args.queries:
        new = run(HERE.parent / "src", n)
        ref = run(args.reference, n) if args.reference else None
        rows.append({"queries": n, "negmine": new, "reference": ref})
        r = (f"{ref['seconds']:.1f} | {ref['peak_rss_mb']:.0f} | {new['seconds'] / ref['seconds']:.2f}x"
             if ref else "- | - | -")
        print(f"| {n:,} | {new['seconds']:.1f} | {new['peak_rss_mb']:.0f} | {r} |", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
