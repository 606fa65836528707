"""Measuring false negatives: hidden-positive audits, comparisons of settings on one retrieval,
and calibration of the relative margin to a target false-negative rate.

Hidden-positive false-negative rate (HP-FNR): on data where queries have several labelled
positives, some are *hidden* from the miner; the share of mined negatives that are hidden
positives estimates how often a strategy picks false negatives. It is computed over the queries
that have at least one hidden positive (the others cannot score a hit), with a Wilson 95%
interval.

Set score (negmine's ECI-style score; the published ECI formula could not be verified, so this
is our own, defined here): per query with ``K`` chosen negatives, hardness
``H = mean(clip(s_n / s⁺, 0, 1))``, safety ``S`` = share of negatives with
``s_n < s⁺ − |s⁺|·0.05``, and ``set = log(1 + K·S) · 2HS / (H + S)``; averaged over queries.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from negmine.core.errors import ConfigError
from negmine.core.keys import string_keys, uniform
from negmine.core.positives import pair_keys
from negmine.core.stats import cluster_wilson as cluster_wilson
from negmine.core.stats import wilson as wilson
from negmine.text.filters import ExcludePositives, Filter, RelativeMargin
from negmine.text.holdout import (  # the holdout protocols, kept importable from here for older callers
    HIDE_SALT,
    Holdout,
    Split,
    _subset,
    hide_below_grade,
    hide_fraction,
    hide_pool,
    hide_qrels,
    make_split,
    pool_split,
    restrict,
)
from negmine.text.pipeline import MiningResult, build_config, choose, resolve_depth
from negmine.text.retrievers.base import Retriever
from negmine.text.samplers import Sampler
from negmine.text.types import Candidates, MiningData, Qrels, RunContext

__all__ = ["HIDE_SALT", "MARGIN_GRID", "SAFETY_MARGIN", "Holdout", "Setting", "Split", "calibrate_margin",
           "cluster_wilson", "hide_below_grade", "hide_fraction", "hide_pool", "hide_qrels", "make_split",
           "negative_metrics", "pool_split", "restrict", "run_settings", "wilson"]

SAFETY_MARGIN = 0.05
MARGIN_GRID = (0.0, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3)


@dataclass
class Setting:
    """One mining setting to audit: a label, the user filters and the sampler."""

    label: str
    filters: list[Filter]
    sampler: Sampler


def negative_metrics(result: MiningResult, hidden: Qrels | None = None,
                     doc_embeddings: np.ndarray | None = None) -> dict[str, Any]:
    """HP-FNR (when ``hidden`` is given), hardness, coverage, set score and diversity of a result."""
    neg, scores = result.negatives()
    ok = neg >= 0
    ref = result.positive_reference.astype(np.float64)
    cols = np.where(ok, result.columns, 0)
    out: dict[str, Any] = {}
    n_docs = len(result.data.corpus)
    if hidden is not None:
        hk = hidden.pair_keys(n_docs)
        qrow = np.broadcast_to(np.arange(neg.shape[0])[:, None], neg.shape)
        hit = ok & np.isin(pair_keys(qrow, np.where(ok, neg, 0), n_docs), hk)
        has_hidden = hidden.counts() > 0
        k = int(hit[has_hidden].sum())
        n = int(ok[has_hidden].sum())
        lo, hi = wilson(k, n)
        out.update(hp_fnr=k / n if n else float("nan"), hp_fnr_ci95=[lo, hi], hidden_hits=k,
                   negatives_audited=n, queries_audited=int(has_hidden.sum()),
                   hidden_positives=int(hidden.counts().sum()))
    s = np.where(ok, scores.astype(np.float64), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows (queries with no negative)
        ratio = s / ref[:, None]
        h_q = np.nanmean(np.clip(ratio, 0, 1), axis=1)
        safe = ok & (s < (ref - np.abs(ref) * SAFETY_MARGIN)[:, None])
        k_q = ok.sum(axis=1)
        s_q = np.where(k_q > 0, safe.sum(axis=1) / np.maximum(k_q, 1), np.nan)
        set_q = np.log1p(k_q * s_q) * np.where(h_q + s_q > 0, 2 * h_q * s_q / (h_q + s_q), 0.0)
    out.update(
        mean_negative_score=float(np.nanmean(s)) if ok.any() else float("nan"),
        mean_rank=float(cols[ok].mean()) if ok.any() else float("nan"),
        mean_score_over_positive=float(np.nanmean(ratio[ok & np.isfinite(ratio)])) if ok.any() else float("nan"),
        coverage=float((k_q >= result.num_negatives).mean()) if len(k_q) else float("nan"),
        negatives=int(ok.sum()),
        set_score=float(np.nanmean(set_q)) if np.isfinite(set_q).any() else float("nan"),
    )
    if doc_embeddings is not None and result.num_negatives > 1:
        sims = []
        for row, m in zip(neg, ok):
            e = doc_embeddings[row[m]]
            if len(e) > 1:
                g = e @ e.T
                sims.append((g.sum() - np.trace(g)) / (len(e) * (len(e) - 1)))
        out["diversity_mean_pairwise_sim"] = float(np.mean(sims)) if sims else float("nan")
    return out


def run_settings(data: MiningData, split: Split, retriever: Retriever, settings: Sequence[Setting],
                 num_negatives: int, seed: int, *, depth: int | None = None, cache_dir: str | Path | None = None,
                 near_duplicates: bool = True,
                 scorers: Sequence[Any] = ()) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Audit several settings on ONE retrieval: returns one metrics row per setting and the shared
    retrieval's info (depth, timings, retrieval count). ``scorers`` (cross-encoder, LLM judge) are
    what scorer-backed filters read, as in :func:`negmine.mine`."""
    if not settings:
        raise ConfigError("no setting to audit")
    k = max(resolve_depth(data, num_negatives, [ExcludePositives(), *s.filters], depth) for s in settings)
    ctx = RunContext(cache_dir=str(cache_dir) if cache_dir else None)
    t0 = time.perf_counter()
    cand = retriever.retrieve(data, k, ctx)
    t_retrieve = time.perf_counter() - t0
    vis = split.visible
    vcand = restrict(cand, data.positives, vis.positives, len(data.corpus))
    emb = getattr(retriever, "embeddings_", None)
    doc_emb = emb[2] if emb is not None else None
    rows = []
    for s in settings:
        filters = [ExcludePositives(near_duplicates), *s.filters]
        cfg = build_config(vis, retriever, filters, s.sampler, num_negatives, seed, k)
        res = choose(vis, vcand, filters, s.sampler, num_negatives, seed, config=cfg, scorers=scorers, ctx=ctx)
        row = {"setting": s.label, **negative_metrics(res, split.hidden, doc_emb)}
        row["removed_by_filters"] = {name: n for name, n in res.filter_counts}
        rows.append(row)
    info = {"depth": k, "retrievals": 1, "retrieve_s": t_retrieve, "timings": ctx.timings,
            "encoding": ctx.encoding}
    return rows, info


def calibrate_margin(data: MiningData, cand: Candidates, sampler: Sampler, num_negatives: int, seed: int,
                     target_fnr: float, *, other_filters: Sequence[Filter] = (), hide: float = 0.5,
                     grid: Sequence[float] = MARGIN_GRID) -> dict[str, Any]:
    """The loosest relative margin of ``grid`` whose HP-FNR, on a seeded half of the queries with
    two or more positives (``hide`` of their positives hidden), is at most ``target_fnr``; uses
    the already retrieved ``cand``. Returns the choice and the whole curve."""
    if not 0 <= target_fnr < 1:
        raise ConfigError(f"target FNR must be in [0, 1), got {target_fnr}")
    pos = data.positives
    eligible = pos.counts() >= 2
    u = uniform(seed ^ 0x5EED, string_keys(data.queries.ids), np.zeros(1, np.uint64))[:, 0]
    held = eligible & (u < 0.5) if eligible.sum() >= 40 else eligible
    if held.sum() == 0:
        raise ConfigError("--target-fnr needs queries with two or more positives to calibrate on; none found")
    split = hide_fraction(data, hide, seed)
    hidden = split.hidden
    hq = hidden.query_of_pair()
    hidden = _subset(hidden, held[hq])
    split = Split(split.visible, hidden)
    vcand = restrict(cand, data.positives, split.visible.positives, len(data.corpus))
    curve = []
    for m in grid:
        filters = [ExcludePositives(), *other_filters, RelativeMargin(m)]
        res = choose(split.visible, vcand, filters, sampler, num_negatives, seed, config={})
        met = negative_metrics(res, hidden)
        curve.append({"relative_margin": m, "hp_fnr": met["hp_fnr"], "hp_fnr_ci95": met["hp_fnr_ci95"],
                      "coverage": met["coverage"], "mean_negative_score": met["mean_negative_score"]})
    ok = [c for c in curve if c["hp_fnr"] <= target_fnr]
    chosen = ok[0] if ok else curve[-1]
    return {"target_fnr": target_fnr, "chosen_relative_margin": chosen["relative_margin"],
            "estimated_hp_fnr": chosen["hp_fnr"], "estimated_hp_fnr_ci95": chosen["hp_fnr_ci95"],
            "target_met": bool(ok), "calibration_queries": int(held.sum()), "hide_fraction": hide, "curve": curve}
