"""Gowalla (the LightGCN / SimpleX split): sampler x model, full-ranking Recall@20 / NDCG@20.

Protocol (LightGCN's): train on ``train.txt``; for every user with a test item, rank every item
not in the user's training set; Recall@20 = hits / test items, NDCG@20 with the ideal DCG over
min(test items, 20) (``negmine.rec.train.evaluate``). Published figures beside each row:
MF-BPR 0.1291 / 0.1109, LightGCN 0.1830 / 0.1554 (He et al., SIGIR 2020), SimpleX 0.1872 /
0.1557 (Mao et al., CIKM 2021).

Each (model, sampler, seed) runs in its own interpreter (so its peak RSS, ``ru_maxrss``, is its
own), trains epoch by epoch until ``--epochs`` or ``--time-limit`` seconds (no epoch is started
that would end past it, judged by the last epoch's time), evaluates every ``--eval-every`` epochs
and at the end, and writes its curve, its seconds per epoch (training and sampling) and its
per-user metrics. The parent runs ``--parallel`` children at once, then tests every sampler
against ``uniform`` (same model) with the paired sign-flip test of ``negmine.text.compare`` on
per-user metrics averaged over the seeds (with one seed the test is across users only: it says
nothing about seed-to-seed variation).

Usage::

    python benchmarks/rec_gowalla.py --models simplex --samplers uniform,live-dns --seeds 0,1,2 \\
        --epochs 1000 --time-limit 2400 --eval-every 10 --batch-size 8192 --candidates 2 --out runs/gowalla

Timings depend on the machine's load: the load average before and after each run is recorded.
The data is read from ``../shared/datasets/gowalla`` (never copied).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

GOWALLA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "gowalla"
PUBLISHED = {"mf-bpr": ("MF-BPR (LightGCN paper)", 0.1291, 0.1109), "lightgcn": ("LightGCN", 0.1830, 0.1554),
             "simplex": ("SimpleX (paper)", 0.1872, 0.1557)}
#: per-model defaults. SimpleX: the configuration of the three-seed runs in docs/REC.md (64 negatives, far
#: fewer than the paper's 1000, and margin 0.5 below its 0.9, so that negatives act within a CPU budget;
#: chosen from 12-minute probes of 16 / 32 / 64 negatives, not tuned further)
DEFAULTS: dict[str, dict[str, Any]] = {
    "simplex": {"num_negatives": 64, "lr": 5e-3, "margin": 0.5, "negative_weight": 50.0, "gamma": 0.5},
    "mf-bpr": {"num_negatives": 1, "lr": 1e-3},
}


def _read(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(users, items)`` of a LightGCN-format file: one line per user, ``user item item ...``."""
    users, items = [], []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) > 1:
            its = np.array(parts[1:], np.int64)
            items.append(its)
            users.append(np.full(len(its), int(parts[0]), np.int64))
    return np.concatenate(users), np.concatenate(items)


def load_gowalla(root: Path = GOWALLA):  # type: ignore[no-untyped-def]
    from negmine.rec.data import from_splits

    tu, ti = _read(root / "train.txt")
    su, si = _read(root / "test.txt")
    return from_splits(tu, ti, su, si, source=str(root))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(args: argparse.Namespace) -> None:
    from negmine.rec.samplers import make_sampler
    from negmine.rec.train import TrainConfig, Trainer, evaluate

    model, sampler_name, seed = args.child.split(":")
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    data = load_gowalla(Path(args.data))
    load_s = time.perf_counter() - t0
    opts = {**DEFAULTS[model]}
    for key in ("num_negatives", "lr", "margin", "negative_weight", "gamma"):
        if getattr(args, key) is not None and key in opts:
            opts[key] = getattr(args, key)
    cfg = TrainConfig(model=model, dim=args.dim, epochs=args.epochs, batch_size=args.batch_size, seed=int(seed),
                      **opts)
    sampler = make_sampler(sampler_name, candidates=args.candidates) if sampler_name != "uniform" \
        else make_sampler("uniform")
    trainer = Trainer(data, sampler, cfg)
    curve, start = [], time.perf_counter()
    ev: dict[str, Any] = {}
    for epoch in range(cfg.epochs):
        last = trainer.history[-1]["seconds"] if trainer.history else 0.0
        if time.perf_counter() - start + last > args.time_limit:
            break
        trainer.run_epoch(epoch)
        sys.stderr.write(f"{args.child} epoch {epoch + 1} done: {trainer.history[-1]}\n")
        if (epoch + 1) % args.eval_every == 0:
            te = time.perf_counter()
            ev = evaluate(trainer.model(), data, k=20)
            curve.append({"epoch": epoch + 1, "recall@20": ev["recall@20"], "ndcg@20": ev["ndcg@20"],
                          "eval_seconds": round(time.perf_counter() - te, 1),
                          "train_seconds": round(sum(h["seconds"] for h in trainer.history), 1)})
            sys.stderr.write(f"{args.child} epoch {epoch + 1}: {curve[-1]}\n")
    epochs = len(trainer.history)
    if not curve or curve[-1]["epoch"] != epochs:
        te = time.perf_counter()
        ev = evaluate(trainer.model(), data, k=20)
        curve.append({"epoch": epochs, "recall@20": ev["recall@20"], "ndcg@20": ev["ndcg@20"],
                      "eval_seconds": round(time.perf_counter() - te, 1),
                      "train_seconds": round(sum(h["seconds"] for h in trainer.history), 1)})
    secs = np.array([h["seconds"] for h in trainer.history])
    samp = np.array([h["sampling_seconds"] for h in trainer.history])
    cpu = np.array([h.get("cpu_seconds", np.nan) for h in trainer.history])
    out = Path(args.work)
    np.savez(out / f"{model}-{sampler_name}-{seed}.npz", user_rows=ev["per_user"]["user_rows"],
             recall=ev["per_user"]["recall@20"], ndcg=ev["per_user"]["ndcg@20"])
    row = {"model": model, "sampler": sampler.config(), "seed": int(seed), "config": {**vars(cfg)},
           "epochs": epochs, "recall@20": ev["recall@20"], "ndcg@20": ev["ndcg@20"], "curve": curve,
           "epoch_seconds_median": float(np.median(secs)), "epoch_seconds_min": float(secs.min()),
           "epoch_seconds_max": float(secs.max()), "sampling_seconds_median": float(np.median(samp)),
           "epoch_cpu_seconds_median": float(np.median(cpu)), "train_seconds": float(secs.sum()),
           "load_seconds": round(load_s, 1), "peak_rss_mb": round(_peak_mb()),
           "loadavg_before": load0, "loadavg_after": os.getloadavg()[0],
           "loss_first": trainer.history[0]["loss"], "loss_last": trainer.history[-1]["loss"],
           "guard_refused": trainer.ctx.guard_refused, "guard_fallback": trainer.ctx.guard_fallback}
    (out / f"{model}-{sampler_name}-{seed}.json").write_text(json.dumps(row, indent=2))


def summarise(work: Path, models: list[str], samplers: list[str], seeds: list[int]) -> dict[str, Any]:
    from negmine.core.stats import permutation_test

    rows = []
    for model in models:
        per: dict[str, dict[str, np.ndarray]] = {}
        for s in samplers:
            runs = [json.loads((work / f"{model}-{s}-{seed}.json").read_text()) for seed in seeds
                    if (work / f"{model}-{s}-{seed}.json").is_file()]
            if not runs:
                continue
            arr = [np.load(work / f"{model}-{s}-{r['seed']}.npz") for r in runs]
            per[s] = {"recall": np.mean([a["recall"] for a in arr], axis=0),
                      "ndcg": np.mean([a["ndcg"] for a in arr], axis=0)}
            rec = [r["recall@20"] for r in runs]
            nd = [r["ndcg@20"] for r in runs]
            row = {"model": model, "sampler": s, "seeds": [r["seed"] for r in runs],
                   "epochs": [r["epochs"] for r in runs],
                   "recall@20": float(np.mean(rec)), "ndcg@20": float(np.mean(nd)),
                   "recall@20_sd": float(np.std(rec, ddof=1)) if len(rec) > 1 else None,
                   "ndcg@20_sd": float(np.std(nd, ddof=1)) if len(nd) > 1 else None,
                   "epoch_seconds_median": float(np.median([r["epoch_seconds_median"] for r in runs])),
                   "sampling_seconds_median": float(np.median([r["sampling_seconds_median"] for r in runs])),
                   "epoch_cpu_seconds_median": float(np.median([r.get("epoch_cpu_seconds_median", np.nan)
                                                                for r in runs])),
                   "peak_rss_mb": max(r["peak_rss_mb"] for r in runs), "p_recall": None, "p_ndcg": None,
                   "published": PUBLISHED.get(model)}
            if s != "uniform" and "uniform" in per:
                row["p_recall"] = permutation_test(per[s]["recall"], per["uniform"]["recall"])
                row["p_ndcg"] = permutation_test(per[s]["ndcg"], per["uniform"]["ndcg"])
            rows.append(row)
    return {"rows": rows}


def render(summary: dict[str, Any]) -> str:
    head = ["model", "sampler", "seeds", "epochs", "Recall@20", "NDCG@20", "p vs uniform (R / N)",
            "s / epoch (wall, under load)", "CPU s / epoch", "peak RSS", "published R / N"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    def ms(r: dict[str, Any], key: str) -> str:
        sd = r[f"{key}_sd"]
        return f"{r[key]:.4f}" + (f" ± {sd:.4f}" if sd is not None else "")

    for r in summary["rows"]:
        p = "–" if r["p_recall"] is None else f"{r['p_recall']:.4f} / {r['p_ndcg']:.4f}"
        pub = r["published"]
        lines.append("| " + " | ".join([
            r["model"], r["sampler"], ",".join(map(str, r["seeds"])), ",".join(map(str, r["epochs"])),
            ms(r, "recall@20"), ms(r, "ndcg@20"), p, f"{r['epoch_seconds_median']:.0f}",
            f"{r['epoch_cpu_seconds_median']:.0f}", f"{r['peak_rss_mb']} MB",
            f"{pub[1]:.4f} / {pub[2]:.4f}" if pub else "–"]) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(GOWALLA))
    p.add_argument("--models", default="simplex")
    p.add_argument("--samplers", default="uniform,live-dns")
    p.add_argument("--seeds", default="0")
    p.add_argument("--epochs", type=int, default=1000)
    p.add_argument("--time-limit", type=float, default=2400.0, help="training seconds per run")
    p.add_argument("--eval-every", type=int, default=5)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=2048)
    p.add_argument("--candidates", type=int, default=2, help="live-dns / dns candidates per negative")
    p.add_argument("--num-negatives", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--margin", type=float, default=None)
    p.add_argument("--negative-weight", type=float, default=None)
    p.add_argument("--gamma", type=float, default=None)
    p.add_argument("--parallel", type=int, default=2)
    p.add_argument("--out", default="runs/gowalla")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--work", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not (Path(args.data) / "train.txt").is_file():
        sys.stderr.write(f"{args.data}: no train.txt (the LightGCN Gowalla split); pass --data DIR\n")
        return 2
    if args.child:
        child(args)
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    models, samplers = args.models.split(","), args.samplers.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    passthrough = [a for a in (argv if argv is not None else sys.argv[1:])]
    jobs = [f"{m}:{s}:{seed}" for seed in seeds for m in models for s in samplers
            if not (out / f"{m}-{s}-{seed}.json").is_file()]
    running: list[subprocess.Popen[bytes]] = []
    while jobs or running:
        while jobs and len(running) < args.parallel:
            running.append(subprocess.Popen([sys.executable, __file__, *passthrough, "--child", jobs.pop(0),
                                             "--work", str(out)]))
        time.sleep(5)
        running = [r for r in running if r.poll() is None]
    summary = summarise(out, models, samplers, seeds)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    text = render(summary)
    (out / "summary.md").write_text(text + "\n")
    sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
