"""The policy grid of the calibration and its measurement: every combination of positive
reference, relative margin, sampler and detector threshold (:func:`policy_grid`), mined on the
visible positives and counted against the hidden ones per query (:func:`evaluate_policies`), the
summary of one policy's counts (HP-FNR with its query-clustered interval, coverage, mean rank),
the worst of the pseudo-hiding mechanisms, and the choice (:func:`crossfit_choices`). What the
search is for, and how its choice is reported: :mod:`negmine.text.calibrate`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from negmine.core.errors import ConfigError
from negmine.core.keys import string_keys
from negmine.text.filters import Filter, FilterInput, RelativeMargin, expand_pairs
from negmine.text.samplers import SampleInput, Sampler, SimANS, Softmax, Top, select
from negmine.text.types import Candidates, MiningData, Qrels

__all__ = ["DETECTOR_THRESHOLDS", "MARGINS", "REFERENCES", "SAMPLERS", "Policy", "crossfit_choices",
           "evaluate_policies", "make_sampler", "policy_grid", "summarise", "worst_of"]

REFERENCES = ("min", "mean", "max", "pair")
MARGINS: tuple[float | None, ...] = (None, 0.0, 0.05, 0.1)
DETECTOR_THRESHOLDS: tuple[float | None, ...] = (None, 0.5, 0.2, 0.1, 0.05, 0.045, 0.04, 0.035, 0.03, 0.025, 0.02)


def make_sampler(name: str) -> Sampler:
    """The samplers the search tries, by label."""
    if name == "top":
        return Top()
    if name == "softmax-z":
        return Softmax(temperature=1.0, scale="query")
    if name == "simans-z":
        return SimANS(a=0.5, b=1.0, scale="query")
    raise ConfigError(f"unknown calibration sampler {name!r}; pick top, softmax-z or simans-z")


SAMPLERS = ("top", "softmax-z", "simans-z")


@dataclass(frozen=True)
class Policy:
    """One point of the search: reference, relative margin (``None``: none), sampler label and
    detector threshold (``None``: no detector)."""

    reference: str
    margin: float | None
    sampler: str
    fn_max_prob: float | None

    def label(self) -> str:
        parts = [f"ref {self.reference}", "no margin" if self.margin is None else f"rm {self.margin:g}",
                 self.sampler, "no detector" if self.fn_max_prob is None else f"fn<={self.fn_max_prob:g}"]
        return ", ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {"positive_reference": self.reference, "relative_margin": self.margin, "sampler": self.sampler,
                "fn_max_prob": self.fn_max_prob}


def policy_grid(references: Sequence[str] = REFERENCES, margins: Sequence[float | None] = MARGINS,
                samplers: Sequence[str] = SAMPLERS,
                thresholds: Sequence[float | None] = DETECTOR_THRESHOLDS) -> list[Policy]:
    """Every combination, without duplicates that cannot differ (the reference matters only with
    a margin, with ``simans-z`` or with ``pair`` rows), and without ``pair`` × detector threshold:
    mining expands pair rows before filtering, where each row has one positive and the detector
    has nothing to learn from (it would keep every cell), so the calibration must not choose it."""
    out: list[Policy] = []
    seen: set[tuple[Any, ...]] = set()
    for ref in references:
        for m in margins:
            for s in samplers:
                for t in thresholds:
                    if ref == "pair" and t is not None:
                        continue
                    used = ref == "pair" or m is not None or s == "simans-z"
                    key = (ref if used else "-", m, s, t)
                    if key not in seen:
                        seen.add(key)
                        out.append(Policy(ref if used else "min", m, s, t))
    return out


@dataclass
class _Rows:
    """One row layout (query rows, or pair rows) with its shared pieces."""

    data: MiningData
    cand: Candidates
    query_row: np.ndarray  # int64[n_rows]: the original query of each row
    base: np.ndarray  # bool[n_rows, k]: kept by ExcludePositives and the user's other filters
    hit: np.ndarray  # bool[n_rows, k]: the cell is a hidden positive of the row's query
    fn_prob: np.ndarray | None
    doc_keys: np.ndarray  # uint64[n_rows, k]: the samplers' per-document keys (0 for empty cells)
    query_keys: np.ndarray  # uint64[n_rows]: the samplers' per-query keys


def _layout(data: MiningData, cand: Candidates, query_row: np.ndarray, hidden_keys: np.ndarray,
            base_filters: Sequence[Filter], fn_prob: np.ndarray | None, seed: int) -> _Rows:
    inp = FilterInput(cand, data, seed=seed, fn_probability=fn_prob)
    keep = cand.ids >= 0
    for f in base_filters:
        inp.current = keep
        keep = keep & f.keep(inp)
    n_docs = len(data.corpus)
    ids = cand.ids
    keys = query_row[:, None] * n_docs + np.where(ids >= 0, ids, 0)
    doc_keys = np.where(ids >= 0, data.corpus.id_keys(np.where(ids >= 0, ids, 0)), np.uint64(0))
    return _Rows(data, cand, query_row, keep, (ids >= 0) & np.isin(keys, hidden_keys), fn_prob, doc_keys,
                 string_keys(data.queries.ids))


def _stats(rows: _Rows, policy: Policy, num_negatives: int, seed: int, n_q: int) -> np.ndarray:
    """``float64[5, n_queries]``: hits, negatives, full rows, rows and rank sum per original query."""
    ref = "min" if policy.reference == "pair" else policy.reference
    inp = FilterInput(rows.cand, rows.data, reference=ref, seed=seed, fn_probability=rows.fn_prob)
    keep = rows.base.copy()
    if policy.margin is not None:
        keep &= RelativeMargin(policy.margin).keep(inp)
    if policy.fn_max_prob is not None:
        if rows.fn_prob is None:
            raise ConfigError("a detector threshold needs the detector's probabilities")
        keep &= np.isfinite(rows.fn_prob) & (rows.fn_prob <= np.float32(policy.fn_max_prob))
    sinp = SampleInput(rows.cand.scores, keep, rows.query_keys, rows.doc_keys, inp.positive_reference, seed)
    cols = select(make_sampler(policy.sampler), sinp, num_negatives)
    ok = cols >= 0
    hit = np.take_along_axis(rows.hit, np.where(ok, cols, 0), axis=1) & ok
    per_row = np.stack([hit.sum(1), ok.sum(1), ok.sum(1) >= num_negatives, np.ones(len(cols)),
                        np.where(ok, cols, 0).sum(1)]).astype(np.float64)
    return np.stack([np.bincount(rows.query_row, weights=r, minlength=n_q) for r in per_row])


def _summary(st: np.ndarray, queries: np.ndarray) -> dict[str, Any]:
    return summaries(st[None], queries)[0]


def summaries(stats: np.ndarray, queries: np.ndarray) -> list[dict[str, Any]]:
    """HP-FNR with its query-clustered interval (:func:`negmine.core.stats.cluster_wilson_rows`),
    coverage and mean raw rank of every policy of ``stats`` (``float64[n_policies, 5,
    n_queries]``) over the ``queries`` mask, all policies at once."""
    from negmine.core.stats import cluster_wilson_rows

    st = stats[:, :, queries]
    hits, negs, full, rows, ranks = (st[:, i] for i in range(5))
    n = negs.sum(axis=1)
    n_rows = rows.sum(axis=1)
    lo, hi = cluster_wilson_rows(hits, negs)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = hits.sum(axis=1) / n
        cov = full.sum(axis=1) / n_rows
        rank = ranks.sum(axis=1) / n
    out = []
    for i in range(len(st)):
        none = not n[i]
        out.append({"hp_fnr": float("nan") if none else float(p[i]), "hp_fnr_ci95": [float(lo[i]), float(hi[i])],
                    "coverage": float(cov[i]) if n_rows[i] else float("nan"),
                    "mean_rank": float("nan") if none else float(rank[i]), "negatives": int(n[i]),
                    "queries": int(queries.sum())})
    return out


def _pick(summaries: list[dict[str, Any]], target: float, min_cov: float) -> tuple[int, bool]:
    """The hardest qualifying policy, or the closest when none qualifies."""
    def upper(s: dict[str, Any]) -> float:
        u = s["hp_fnr_ci95"][1]
        return 1.0 if not np.isfinite(u) else float(u)

    ok = [i for i, s in enumerate(summaries) if upper(s) <= target and s["coverage"] >= min_cov]
    if ok:
        return min(ok, key=lambda i: (summaries[i]["mean_rank"], upper(summaries[i]), i)), True

    def violation(i: int) -> float:
        s = summaries[i]
        cov = s["coverage"] if np.isfinite(s["coverage"]) else 0.0
        return max(0.0, upper(s) - target) / max(target, 1e-3) + max(0.0, min_cov - cov) / max(min_cov, 1e-3)

    return min(range(len(summaries)), key=lambda i: (violation(i), summaries[i]["mean_rank"], i)), False


def worst_of(per_mechanism: Sequence[Sequence[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per policy, the summary that holds under every mechanism: the HP-FNR figures of the
    mechanism with the highest upper bound, the lowest coverage and the highest mean rank."""
    out = []
    for sums in zip(*per_mechanism):
        worst = max(range(len(sums)), key=lambda i: (np.nan_to_num(sums[i]["hp_fnr_ci95"][1], nan=1.0), -i))
        s = dict(sums[worst])
        s["coverage"] = min(x["coverage"] if np.isfinite(x["coverage"]) else 0.0 for x in sums)
        s["mean_rank"] = max(x["mean_rank"] for x in sums)
        s["decided_by"] = worst
        out.append(s)
    return out


def crossfit_choices(stats: np.ndarray | Sequence[np.ndarray], folds: np.ndarray, eligible: np.ndarray,
                     target: float, min_cov: float) -> list[int | None]:
    """For each fold, the policy index chosen from the *other* folds' queries only (``None`` for
    an empty fold). ``stats`` is ``float64[n_policies, 5, n_queries]``, or one such array per
    pseudo-hiding mechanism (the choice must then hold under the worst of them)."""
    per = [stats] if isinstance(stats, np.ndarray) else list(stats)
    out: list[int | None] = []
    for f in range(int(folds.max(initial=-1)) + 1):
        test = eligible & (folds == f)
        train = eligible & (folds != f)
        if not test.any() or not train.any():
            out.append(None)
            continue
        out.append(_pick(worst_of([summaries(st, train) for st in per]), target, min_cov)[0])
    return out


def evaluate_policies(data: MiningData, cand: Candidates, hidden: Qrels, grid: Sequence[Policy],
                      base: Sequence[Filter], num_negatives: int, seed: int, *,
                      doc_embeddings: np.ndarray | None = None, detector: Any = None,
                      fn_probability: np.ndarray | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Mine ``data`` (the positives the miner sees) with every policy of ``grid`` and count, per
    query, how many negatives are ``hidden`` positives: ``float64[n_policies, 5, n_queries]``
    (hits, negatives, rows with all negatives, rows, sum of raw ranks) and the detector's stats.
    ``base`` are the filters every policy shares (``ExcludePositives`` first)."""
    from negmine.text.detector import Detector

    n_q, n_docs = len(data.queries), len(data.corpus)
    hidden_keys = hidden.pair_keys(n_docs)
    fn_prob = fn_probability
    det_stats: dict[str, Any] = {}
    if fn_prob is None and any(p.fn_max_prob is not None for p in grid):
        found = (detector or Detector()).fit_predict(data, cand, seed=seed, doc_embeddings=doc_embeddings)
        fn_prob, det_stats = found.probability, found.stats
    layouts = {"rows": _layout(data, cand, np.arange(n_q), hidden_keys, base, fn_prob, seed)}
    if any(p.reference == "pair" for p in grid):
        pr = expand_pairs(data, cand)
        layouts["pair"] = _layout(pr.data, pr.candidates, pr.query_row, hidden_keys, base,
                                  None if fn_prob is None else fn_prob[pr.query_row], seed)
    stats = np.stack([_stats(layouts["pair" if p.reference == "pair" else "rows"], p, num_negatives, seed, n_q)
                      for p in grid])
    return stats, det_stats


def summarise(stats: np.ndarray, queries: np.ndarray) -> dict[str, Any]:
    """HP-FNR with its query-clustered 95% interval, coverage and mean raw rank of one policy's
    ``float64[5, n_queries]`` counts over the ``queries`` mask."""
    return _summary(stats, queries)


