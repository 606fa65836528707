"""``rec compare``: train every (model, sampler, negatives, seed) on one split, evaluate by full
ranking, and test each sampler against the first one (same model and negative count) with the
paired sign-flip test of the text compare (per-user metric, averaged over seeds)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from negmine.core.stats import permutation_test
from negmine.core.tables import markdown_table
from negmine.rec.interactions import RecData
from negmine.rec.samplers import Sampler
from negmine.rec.scorers import Scorer
from negmine.rec.train import TrainConfig, evaluate, train

__all__ = ["render", "sweep"]


def sweep(data: RecData, samplers: Mapping[str, Sampler], configs: Mapping[tuple[str, int, int], TrainConfig], *,
          scorer: Scorer | None = None, k: int = 20) -> dict[str, Any]:
    """``configs`` maps ``(model, num_negatives, seed)`` to a :class:`TrainConfig`; every sampler
    runs with every config. Returns ``{"runs": [...], "rows": [...]}``; each row is the mean over
    seeds with the p-value against the first sampler (``None`` for the first)."""
    rk, nk = f"recall@{k}", f"ndcg@{k}"
    runs: list[dict[str, Any]] = []
    per_user: dict[tuple[str, str, int], list[np.ndarray]] = {}
    per_user_ndcg: dict[tuple[str, str, int], list[np.ndarray]] = {}
    for (model, n, seed), cfg in configs.items():
        for name, sampler in samplers.items():
            t0 = time.perf_counter()
            res = train(data, sampler, cfg, scorer=None if getattr(sampler, "live", False) else scorer)
            ev = evaluate(res.scorer, data, k=k)
            runs.append({"model": model, "sampler": name, "num_negatives": n, "seed": seed, rk: ev[rk], nk: ev[nk],
                         "seconds": round(time.perf_counter() - t0, 1), "final_loss": res.history[-1]["loss"]})
            per_user.setdefault((model, name, n), []).append(ev["per_user"][rk])
            per_user_ndcg.setdefault((model, name, n), []).append(ev["per_user"][nk])
    rows = []
    first = next(iter(samplers))
    for (model, name, n), rec in per_user.items():
        r = np.mean(rec, axis=0)
        g = np.mean(per_user_ndcg[(model, name, n)], axis=0)
        seeds_r = [float(x.mean()) for x in rec]
        seeds_g = [float(x.mean()) for x in per_user_ndcg[(model, name, n)]]
        row: dict[str, Any] = {"model": model, "sampler": name, "num_negatives": n, "seeds": len(rec),
                               rk: float(r.mean()), f"{rk}_std": float(np.std(seeds_r)),
                               nk: float(g.mean()), f"{nk}_std": float(np.std(seeds_g)),
                               "baseline": first, f"p_{rk}": None, f"p_{nk}": None}
        if name != first and (model, first, n) in per_user:
            row[f"p_{rk}"] = permutation_test(r, np.mean(per_user[(model, first, n)], axis=0))
            row[f"p_{nk}"] = permutation_test(g, np.mean(per_user_ndcg[(model, first, n)], axis=0))
        rows.append(row)
    rows.sort(key=lambda x: (x["model"], x["num_negatives"], list(samplers).index(x["sampler"])))
    return {"k": k, "runs": runs, "rows": rows}


def render(summary: dict[str, Any]) -> str:
    k = summary["k"]
    rk, nk = f"recall@{k}", f"ndcg@{k}"
    cols = ["model", "negatives", "sampler", f"Recall@{k}", f"NDCG@{k}", "p (Recall)", "p (NDCG)"]

    def p(v: float | None) -> str:
        return "–" if v is None else f"{v:.4f}"

    return markdown_table(cols, [[
        r["model"], str(r["num_negatives"]), r["sampler"],
        f"{r[rk]:.4f} ± {r[f'{rk}_std']:.4f}", f"{r[nk]:.4f} ± {r[f'{nk}_std']:.4f}",
        p(r[f"p_{rk}"]), p(r[f"p_{nk}"]),
    ] for r in summary["rows"]])
