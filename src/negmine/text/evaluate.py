"""Retrieval quality on a labelled split: nDCG@10, Recall@100, MRR@10 and MAP@100, computed with
ranx (extra ``eval``) from the top 100 documents of any negmine retriever."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from negmine.core.optional import require
from negmine.text.retrievers.base import Retriever
from negmine.text.types import MiningData, RunContext

METRICS = ("ndcg@10", "recall@100", "mrr@10", "map@100")
DEPTH = 100


@dataclass
class Evaluation:
    """Mean metrics, per-query metrics (for significance tests), and timings."""

    metrics: dict[str, float]
    per_query: dict[str, dict[str, float]]
    n_queries: int
    timings: dict[str, float] = field(default_factory=dict)
    encoding: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"metrics": self.metrics, "n_queries": self.n_queries, "timings": self.timings,
                "encoding": self.encoding, "per_query": self.per_query}


def run_dict(data: MiningData, ids: np.ndarray, scores: np.ndarray) -> dict[str, dict[str, float]]:
    """A ranx-style run ``{query_id: {doc_id: score}}`` from candidate arrays."""
    out: dict[str, dict[str, float]] = {}
    for q, (row, srow) in enumerate(zip(ids, scores)):
        out[data.queries.ids[q]] = {data.corpus.ids[d]: float(s) for d, s in zip(row, srow) if d >= 0}
    return out


def qrels_dict(data: MiningData) -> dict[str, dict[str, int]]:
    pos = data.positives
    out: dict[str, dict[str, int]] = {}
    for q in range(pos.n_queries):
        lo, hi = pos.indptr[q], pos.indptr[q + 1]
        out[data.queries.ids[q]] = {data.corpus.ids[d]: int(g) for d, g in zip(pos.indices[lo:hi], pos.grades[lo:hi])}
    return out


def score_run(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]],
              metrics: tuple[str, ...] = METRICS) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """``(mean metrics, per-query metrics)`` with ranx; queries the run misses score 0."""
    ranx = require("ranx")
    run = {q: (run.get(q) or {}) for q in qrels}
    for q, docs in run.items():
        if not docs:  # ranx needs at least one document per query
            run[q] = {"__none__": 0.0}
    per = ranx.evaluate(ranx.Qrels(qrels), ranx.Run(run), list(metrics), return_mean=False, make_comparable=True)
    qids = list(ranx.Qrels(qrels).keys())
    per_query = {q: {m: float(per[m][i]) for m in metrics} for i, q in enumerate(qids)}
    means = {m: float(np.mean(per[m])) for m in metrics}
    return means, per_query


def evaluate(data: MiningData, retriever: Retriever, *, cache_dir: str | Path | None = None,
             depth: int = DEPTH) -> Evaluation:
    """Retrieve the top ``depth`` documents for every query of ``data`` (nothing excluded) and
    score them against ``data.positives`` (grades kept, for nDCG)."""
    ctx = RunContext(cache_dir=str(cache_dir) if cache_dir else None)
    t0 = time.perf_counter()
    cand = retriever.retrieve(data, min(depth, len(data.corpus)), ctx)
    t1 = time.perf_counter()
    means, per_query = score_run(qrels_dict(data), run_dict(data, cand.ids, cand.scores))
    timings = {**ctx.timings, "retrieve_s": t1 - t0, "metrics_s": time.perf_counter() - t1}
    return Evaluation(means, per_query, len(data.queries), timings, dict(ctx.encoding))
