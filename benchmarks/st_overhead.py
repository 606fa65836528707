"""What negmine's in-training pieces cost (issue 20's overhead target: sampler + masking <= 10% of
an epoch's wall time): the same training steps with sentence-transformers' no-duplicates sampler,
negmine's mined batch sampler, false-negative masking, and both.

One mined directory (e.g. a SciFact run of ``negmine compare docs/scifact-st-sweep.toml``), the
packaged MiniLM, MNRL, batch 16, ``--steps`` optimisation steps per run, every setting once per
repeat, the settings alternating within a repeat (A B C D A B C D ...), each run in this process,
pinned by the caller (``taskset``) and with one BLAS / torch thread. Reported per setting: the
median training seconds (``timings.train_s`` of ``negmine-train.json``: the steps only), the
sampler's index build (``timings.sampler_index_s``: once per training run), and the ratio of each
to the no-duplicates baseline's training seconds; the load average before and after.

    taskset -c 1 python benchmarks/st_overhead.py runs/scifact-st/dense-default/seed-0/mined \\
        [--steps 26] [--repeats 2] [--out FILE] [--allow-load]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _bench import quiet

SETTINGS: dict[str, dict[str, Any]] = {
    "no-duplicates": {},
    "mined sampler": {"batch_sampler": "mined", "hardness": 0.5},
    "masking": {"mask_false_negatives": True, "mask_target": 0.05},
    "mined + masking": {"batch_sampler": "mined", "hardness": 0.5, "mask_false_negatives": True,
                        "mask_target": 0.05},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mined", help="a mined directory (negmine mine --out)")
    ap.add_argument("--steps", type=int, default=26)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", default=None)
    ap.add_argument("--allow-load", action="store_true", help="run on a busy machine (figures flagged)")
    args = ap.parse_args()
    os.environ.setdefault("NEGMINE_PROGRESS", "0")
    import torch

    from negmine.text.train import train

    torch.set_num_threads(1)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in SETTINGS}
    with quiet(allow_load=args.allow_load) as session:
        for _ in range(args.repeats):
            for name, opts in SETTINGS.items():
                with tempfile.TemporaryDirectory() as tmp:
                    res = train(args.mined, Path(tmp) / "model", max_steps=args.steps, batch_size=16, lr=2e-5,
                                max_seq_length=128, seed=0, **opts)
                t = res.record["timings"]
                runs[name].append({"train_s": t["train_s"], "sampler_index_s": t.get("sampler_index_s", 0.0)})
                print(f"{name}: train {t['train_s']:.1f} s, sampler index {t.get('sampler_index_s', 0.0):.1f} s",
                      flush=True)
    base = statistics.median(r["train_s"] for r in runs["no-duplicates"])
    summary = {}
    print(f"\n{args.steps} steps, {args.repeats} repeats; {session.header()}")
    print("| setting | train s, median (min–max) | sampler index s | (train + index) / no-duplicates train |")
    print("|---|---|---|---|")
    for name, rs in runs.items():
        xs = [r["train_s"] for r in rs]
        idx = statistics.median(r["sampler_index_s"] for r in rs)
        ratio = (statistics.median(xs) + idx) / base
        summary[name] = {"train_s": statistics.median(xs), "min": min(xs), "max": max(xs), "sampler_index_s": idx,
                         "ratio": ratio}
        print(f"| {name} | {statistics.median(xs):.1f} ({min(xs):.1f}–{max(xs):.1f}) | {idx:.1f} | {ratio:.3f} |")
    if args.out:
        Path(args.out).write_text(json.dumps({"steps": args.steps, "repeats": args.repeats,
                                              "load_before": session.load_before, "load_after": session.load_after,
                                              "under_load": session.under_load, "runs": runs, "summary": summary},
                                             indent=1))


if __name__ == "__main__":
    main()
