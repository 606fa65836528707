"""Calibration time on NPL, dense MiniLM (issue 17's target: within 2x of the code before it),
this checkout beside a reference checkout, interleaved in one run.

Each repeat starts one process per checkout, alternating (A B A B ...), pinned to the same core
with one BLAS thread. A process loads NPL (test), retrieves with the cached dense embeddings,
hides half of each query's positives (seed 7) and mines 5 negatives with the default calibrated
policy (HP-FNR <= 0.10, coverage >= 0.9) three times in a row. It reports the ``calibrate_s``
timing of each call: the first is what one ``negmine mine`` run sees (scikit-learn and scipy
imported on first use, inside the calibration); the third is the calibration's own compute.
Medians over the repeats, their spread, the ratio this / reference of the medians, and the load
average before and after.

    python benchmarks/calibration_time.py --reference /path/to/old/checkout/src [--repeats 3]
        [--cache-dir /tmp/negmine-frontier-cache] [--core 0] [--out FILE] [--allow-load]

It holds the benchmark lock and refuses a busy machine (load above 1.5) unless ``--allow-load``
(then its figures are flagged), as every benchmark here (``_bench.quiet``).

The reference checkout may use the pre-layout import paths (``negmine.calibrate``, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _bench import quiet

HERE = Path(__file__).resolve().parent

CHILD = r"""
import json, sys, time
import negmine
try:
    from negmine.text import audit
    from negmine.text.filters import ExcludePositives
    from negmine.text.pipeline import resolve_depth
    from negmine.text.retrievers import Dense
    from negmine.text.types import RunContext
except ImportError:  # a checkout from before the one-core layout
    from negmine import audit
    from negmine.filters import ExcludePositives
    from negmine.pipeline import resolve_depth
    from negmine.retrievers import Dense
    from negmine.types import RunContext
dataset, cache = sys.argv[1], sys.argv[2]
data = negmine.load_beir(dataset, "test")
retriever = Dense("sentence-transformers/all-MiniLM-L6-v2")
k = resolve_depth(data, 5, [ExcludePositives()], None)
cand = retriever.retrieve(data, k, RunContext(cache_dir=cache))
split = audit.hide_fraction(data, 0.5, 7)
vis = split.visible
vcand = audit.restrict(cand, data.positives, vis.positives, len(data.corpus))
out = []
for _ in range(3):
    mined = negmine.mine(vis, retriever, num_negatives=5, seed=0, depth=k, candidates=vcand, target_fnr=0.1,
                         min_coverage=0.9)
    out.append({"calibrate_s": mined.timings["calibrate_s"], "policy": mined.calibration["chosen"]["policy"]})
print(json.dumps(out))
"""


def _run(src: str, dataset: str, cache: str, core: int) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "NEGMINE_PROGRESS": "0"}
    cmd = ["taskset", "-c", str(core), sys.executable, "-c", CHILD, dataset, cache]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reference", required=True, help="the src directory of the checkout to compare with")
    ap.add_argument("--dataset", default=str(HERE.parent.parent / "shared" / "datasets" / "npl"))
    ap.add_argument("--cache-dir", default="/tmp/negmine-frontier-cache")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--core", type=int, default=0)
    ap.add_argument("--out", default=None)
    ap.add_argument("--allow-load", action="store_true", help="run on a busy machine (figures flagged)")
    args = ap.parse_args()
    this = str(HERE.parent / "src")
    runs: dict[str, list[list[dict]]] = {"this": [], "reference": []}
    with quiet(allow_load=args.allow_load) as session:
        for _ in range(args.repeats):
            for name, src in (("this", this), ("reference", args.reference)):
                runs[name].append(_run(src, args.dataset, args.cache_dir, args.core))
    result: dict = {"load_before": session.load_before, "load_after": session.load_after,
                    "under_load": session.under_load, "repeats": args.repeats, "runs": runs}
    for call, label in ((0, "first call (as one CLI run)"), (2, "third call (compute only)")):
        med = {}
        for name in runs:
            xs = [r[call]["calibrate_s"] for r in runs[name]]
            med[name] = statistics.median(xs)
            print(f"{label}, {name}: median {med[name]:.3f} s (min {min(xs):.3f}, max {max(xs):.3f}); "
                  f"policy {runs[name][0][call]['policy']}")
        result[f"ratio_call{call + 1}"] = med["this"] / med["reference"]
        print(f"{label}: this / reference = {result[f'ratio_call{call + 1}']:.2f}")
    print(session.header())
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
