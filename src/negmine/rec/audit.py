"""The hidden-interaction audit: how often do a sampler's negatives turn out to be positives?

The miner sees only the training positives; the test positives (the later interactions of a
time split, or a seeded fraction of each user's positives) are hidden from it and stay
eligible as negatives. A negative that is a hidden positive is a false negative the sampler
would have trained on. Several samplers run on one split and one fitted scorer, so their rows
are directly comparable.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from negmine.core.positives import Qrels
from negmine.core.stats import wilson
from negmine.core.tables import markdown_table
from negmine.rec.interactions import RecData
from negmine.rec.mining import sample_negatives
from negmine.rec.report import popularity_bias
from negmine.rec.samplers import Sampler
from negmine.rec.scorers import Scorer

__all__ = ["audit", "hidden_split", "render"]


def hidden_split(data: RecData) -> RecData:
    """The same data with the test positives *not* excluded: what the miner is allowed to see."""
    inter = data.interactions
    test_keys = data.test.query_of_pair() * data.n_items + data.test.indices
    ex = data.exclude
    ex_keys = ex.query_of_pair() * data.n_items + ex.indices
    keep = ~np.isin(ex_keys, test_keys)
    exclude = Qrels.from_pairs(data.n_users, ex.query_of_pair()[keep], ex.indices[keep])
    return RecData(inter, data.train, Qrels.from_pairs(data.n_users, np.zeros(0, np.int64), np.zeros(0, np.int64)),
                   exclude, {**data.split, "hidden": len(data.test.indices)})


def audit(data: RecData, samplers: Mapping[str, Sampler], *, num_negatives: int = 10, seed: int = 0,
          scorer: Scorer | None = None, ranks: bool = True) -> list[dict[str, Any]]:
    """One row per sampler: hidden-interaction FNR (share of negatives that are held-out
    positives of their user) with a Wilson 95% interval, the rate uniform sampling would give
    (``base_rate``: mean over training pairs of ``|hidden_u| / |allowed_u|``), hardness (scorer
    score and 0-based rank among all items of the negatives) and popularity bias."""
    visible = hidden_split(data)
    n_items = data.n_items
    hidden_keys = data.test.query_of_pair() * n_items + data.test.indices  # sorted (CSR)
    users = visible.train.query_of_pair()
    allowed = n_items - visible.exclude.counts()
    base = float(np.mean(data.test.counts()[users] / np.maximum(allowed[users], 1))) if len(users) else None
    rows = []
    for label, sampler in samplers.items():
        t0 = time.perf_counter()
        neg, _ = sample_negatives(visible, sampler, num_negatives, seed, scorer=scorer)
        seconds = time.perf_counter() - t0
        ok = neg >= 0
        keys = (users[:, None] * n_items + neg)[ok]
        hit = np.isin(keys, hidden_keys)
        k, n = int(hit.sum()), int(ok.sum())
        lo, hi = wilson(k, n) if n else (None, None)
        row: dict[str, Any] = {
            "sampler": label, "config": sampler.config(), "negatives": n, "hidden_hits": k,
            "fnr": k / n if n else None, "ci_low": lo, "ci_high": hi, "base_rate": base,
            "popularity": popularity_bias(data, neg), "seconds": round(seconds, 3),
        }
        if scorer is not None:
            sc = scorer.score(users, np.maximum(neg, 0))[ok]
            row["mean_score"] = float(sc.mean()) if n else None
            if ranks:
                rk = scorer.ranks(users, neg)[ok]
                row["mean_rank"] = float(rk.mean()) if n else None
                row["median_rank"] = float(np.median(rk)) if n else None
        rows.append(row)
    return rows


def _cells(r: dict[str, Any]) -> list[str]:
    p = r["popularity"]
    return [
        r["sampler"], "–" if r["fnr"] is None else f"{r['fnr']:.4f}",
        "–" if r["ci_low"] is None else f"[{r['ci_low']:.4f}, {r['ci_high']:.4f}]",
        f"{r['hidden_hits']} / {r['negatives']}",
        f"{r['mean_score']:.3f}" if r.get("mean_score") is not None else "–",
        f"{r['mean_rank']:.1f}" if r.get("mean_rank") is not None else "–",
        f"{p['ratio_to_catalogue']:.2f}" if p["ratio_to_catalogue"] is not None else "–",
        f"{p['share_top10pct']:.3f}" if p["share_top10pct"] is not None else "–",
    ]


def render(rows: list[dict[str, Any]]) -> str:
    """A markdown table of :func:`audit` rows."""
    cols = ["sampler", "hidden FNR", "95% CI", "hits / negatives", "mean score", "mean rank", "pop. ratio",
            "top-10% share"]
    lines = [markdown_table(cols, [_cells(r) for r in rows])]
    if rows and rows[0]["base_rate"] is not None:
        lines.append(f"\nuniform over allowed items would give FNR ≈ {rows[0]['base_rate']:.4f}")
    return "\n".join(lines)
