"""The structured report of a recommendation mining run: counts, shortfall, popularity bias,
hardness (scorer score and rank of the negatives), timings. Plain JSON-ready data."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from negmine.core.atomic import strict_json
from negmine.core.stats import describe, round_floats

if TYPE_CHECKING:
    from negmine.rec.interactions import RecData
    from negmine.rec.result import RecMiningResult

__all__ = ["build_report", "popularity_bias"]



def popularity_bias(data: RecData, negatives: np.ndarray) -> dict[str, Any]:
    """How popular the negatives are: mean training count of a negative, that mean over the mean
    of the catalogue (``1`` = unbiased, as uniform sampling over every item), and the share of
    negatives among the 10% most popular items."""
    counts = data.item_counts().astype(np.float64)
    neg = negatives[negatives >= 0]
    if not len(neg):
        return {"mean_count": None, "ratio_to_catalogue": None, "share_top10pct": None}
    top = np.zeros(len(counts), bool)
    top[np.argsort(-counts, kind="stable")[: max(1, len(counts) // 10)]] = True
    mean = float(counts[neg].mean())
    return {"mean_count": mean, "ratio_to_catalogue": mean / float(counts.mean()),
            "share_top10pct": float(top[neg].mean())}


def build_report(result: RecMiningResult) -> dict[str, Any]:
    data = result.data
    inter = data.interactions
    neg = result.negatives
    shortfall_rows = int((neg < 0).any(axis=1).sum())
    ranks = result.ranks[result.ranks >= 0]
    report: dict[str, Any] = {
        "data": {**inter.stats, "low_ratings_policy": inter.low_ratings, "source": inter.source},
        "split": data.split,
        "sampler": result.sampler,
        "scorer": result.scorer,
        "seed": result.seed,
        "num_negatives": result.num_negatives,
        "interactions_mined": len(result.users),
        "negatives": int((neg >= 0).sum()),
        "shortfall": {"cells": int((neg < 0).sum()), "rows": shortfall_rows},
        "popularity": popularity_bias(data, neg),
        "negative_scores": describe(result.scores[neg >= 0]) if result.scorer is not None else None,
        "positive_scores": describe(result.positive_scores) if result.scorer is not None else None,
        "negative_ranks": describe(ranks) if len(ranks) else None,
        "sampling": result.counters,
        "timings": result.timings,
    }
    return dict(strict_json(round_floats(report)))
