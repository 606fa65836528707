"""Filters against false negatives: each returns a boolean keep-mask of shape ``(n_queries, k)``.

The pipeline ANDs the masks in order and records how many cells each filter *newly* removed.
Score filters read the retrieval scores; ``s⁺`` is the query's **lowest** positive score (the
hardest positive), so a negative must be below every positive to pass a margin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

import numpy as np

from negmine.errors import ConfigError
from negmine.scorers.base import VERDICT_BETTER, VERDICT_IRRELEVANT, VERDICT_WORSE, ScoreMatrix
from negmine.types import Candidates, MiningData

__all__ = [
    "AbsoluteMargin",
    "ExcludePositives",
    "Filter",
    "FilterInput",
    "MaxScore",
    "MinScore",
    "RankWindow",
    "RelativeMargin",
]


@dataclass
class FilterInput:
    """What a filter may read: the candidates, the data, and derived per-query values."""

    candidates: Candidates
    data: MiningData
    scorers: dict[str, Any] = field(default_factory=dict)  # name -> Scorer, run on first use
    context: dict[str, Any] = field(default_factory=dict)
    current: np.ndarray | None = None  # the keep-mask so far (set by the pipeline before each filter)
    matrices: dict[str, ScoreMatrix] = field(default_factory=dict)

    @cached_property
    def positive_reference(self) -> np.ndarray:
        """``float32[n_queries]``: the lowest retrieval score among each query's positives (unscored
        positives ignored; ``NaN`` when none is scored, so margin filters then keep nothing)."""
        return lowest_positive(self.data, self.candidates.positive_scores)

    def matrix(self, name: str) -> ScoreMatrix:
        """The score matrix of scorer ``name``, computed on first use for the cells still kept."""
        if name not in self.matrices:
            if name not in self.scorers:
                raise ConfigError(f"a filter needs the {name!r} scorer, which is not configured")
            mask = self.current if self.current is not None else self.candidates.ids >= 0
            ctx = {**self.context, "score_mask": mask, "judge_mask": mask}
            self.matrices[name] = self.scorers[name].score(self.data, self.candidates, ctx)
        return self.matrices[name]

    @property
    def ranks(self) -> np.ndarray:
        """``int64[1, k]``: the raw retrieval rank of each column (0-based)."""
        return np.arange(self.candidates.ids.shape[1], dtype=np.int64)[None, :]


def lowest_positive(data: MiningData, positive_scores: np.ndarray) -> np.ndarray:
    """``float32[n_queries]``: each query's lowest positive score, ignoring NaN (NaN if none)."""
    pos = data.positives
    ref = np.full(pos.n_queries, np.inf, dtype=np.float32)
    np.fmin.at(ref, pos.query_of_pair(), positive_scores.astype(np.float32))
    ref[np.isinf(ref) & (ref > 0)] = np.nan
    return ref


class Filter(Protocol):
    name: str

    def config(self) -> dict[str, Any]: ...

    def keep(self, inp: FilterInput) -> np.ndarray: ...


class ExcludePositives:
    """Drop every known positive of the query — from *all* qrels supplied, not just the mined
    split — and every document whose normalised text (case-folded, whitespace collapsed, title
    + text) equals a positive's. Always on, always first (DESIGN.md invariant 1).
    """

    name = "exclude-positives"

    def __init__(self, near_duplicates: bool = True) -> None:
        self.near_duplicates = near_duplicates

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "near_duplicates": self.near_duplicates}

    def keep(self, inp: FilterInput) -> np.ndarray:
        ids = inp.candidates.ids
        n_q = ids.shape[0]
        excl = inp.data.exclude.union(inp.data.positives)  # whatever the caller built, positives are excluded
        groups = (
            inp.data.corpus.duplicate_groups() if self.near_duplicates
            else np.arange(len(inp.data.corpus), dtype=np.int64)
        )
        n_groups = np.int64(groups.max(initial=0) + 1)
        pos_keys = excl.query_of_pair() * n_groups + groups[excl.indices]
        valid = ids >= 0
        cand_keys = np.arange(n_q, dtype=np.int64)[:, None] * n_groups + groups[np.where(valid, ids, 0)]
        return valid & ~np.isin(cand_keys, pos_keys)


class RankWindow:
    """Keep raw retrieval ranks ``range_min <= rank < range_max`` (0-based, counted in the list
    *before* positives are removed — unlike the peer, which counts after filtering, so the window
    means the same thing whatever the other filters do). FlagEmbedding's default window is 10-210;
    NV-Retriever's "top-k shifted by N" is ``range_min=N``.
    """

    name = "rank-window"

    def __init__(self, range_min: int = 0, range_max: int | None = None) -> None:
        if range_min < 0:
            raise ConfigError(f"range_min must be >= 0, got {range_min}; pass --range-min 0 or more")
        if range_max is not None and range_min >= range_max:
            raise ConfigError(
                f"empty rank window: range_min={range_min} >= range_max={range_max}; make range_min < range_max"
            )
        self.range_min = range_min
        self.range_max = range_max

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "range_min": self.range_min, "range_max": self.range_max}

    def keep(self, inp: FilterInput) -> np.ndarray:
        r = inp.ranks
        hi = np.iinfo(np.int64).max if self.range_max is None else self.range_max
        return np.broadcast_to((r >= self.range_min) & (r < hi), inp.candidates.ids.shape).copy()


class _Threshold:
    name = ""
    param = ""

    def __init__(self, value: float) -> None:
        if not np.isfinite(value):
            raise ConfigError(f"{self.param} must be a finite number, got {value}")
        self.value = float(value)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, self.param: self.value}


class MaxScore(_Threshold):
    """Keep iff ``s(q, n) <= max_score`` (NV-Retriever's TopK-Abs; inclusive, as the peer)."""

    name = "max-score"
    param = "max_score"

    def keep(self, inp: FilterInput) -> np.ndarray:
        return inp.candidates.scores <= np.float32(self.value)


class MinScore(_Threshold):
    """Keep iff ``s(q, n) >= min_score`` (drop candidates too dissimilar to be informative)."""

    name = "min-score"
    param = "min_score"

    def keep(self, inp: FilterInput) -> np.ndarray:
        return inp.candidates.scores >= np.float32(self.value)


class AbsoluteMargin(_Threshold):
    """Keep iff ``s(q, n) < s⁺ − margin`` (NV-Retriever's TopK-MarginPos; best m = 0.05)."""

    name = "absolute-margin"
    param = "absolute_margin"

    def keep(self, inp: FilterInput) -> np.ndarray:
        ref = inp.positive_reference.astype(np.float64) - self.value
        return inp.candidates.scores.astype(np.float64) < ref[:, None]


class RelativeMargin(_Threshold):
    """Keep iff ``s(q, n) < s⁺ − |s⁺|·margin`` (NV-Retriever's TopK-PercPos, "95% of the
    positive" for m = 0.05, in a sign-safe form: with a negative ``s⁺`` the threshold still lies
    *below* the positive, where ``s⁺·(1 − m)`` would lie above it).
    """

    name = "relative-margin"
    param = "relative_margin"

    def keep(self, inp: FilterInput) -> np.ndarray:
        ref = inp.positive_reference.astype(np.float64)
        thr = ref - np.abs(ref) * self.value
        return inp.candidates.scores.astype(np.float64) < thr[:, None]


class CrossEncoderMaxScore(_Threshold):
    """Keep iff the cross-encoder score ``ce(q, n) < ce_max_score`` (RocketQA's denoising: with
    sigmoid scores, keep candidates whose probability of relevance is below 0.1). Reads the
    ``cross-encoder`` score matrix; an unscored cell is dropped (fail closed)."""

    name = "ce-max-score"
    param = "ce_max_score"
    needs = "cross-encoder"

    def keep(self, inp: FilterInput) -> np.ndarray:
        ce = inp.matrix(self.needs).scores
        return np.isfinite(ce) & (ce < np.float32(self.value))


class CrossEncoderMargin(_Threshold):
    """Drop iff ``ce(q, n) > min_p ce(q, p) − ce_margin`` (RocketQA's logit-margin variant, e.g.
    3.0 on logits): a candidate the cross-encoder scores near or above the query's weakest
    positive is likely a false negative. Unscored cells are dropped (fail closed)."""

    name = "ce-margin"
    param = "ce_margin"
    needs = "cross-encoder"

    def keep(self, inp: FilterInput) -> np.ndarray:
        m = inp.matrix(self.needs)
        ref = lowest_positive(inp.data, m.positive_scores).astype(np.float64)
        ce = m.scores.astype(np.float64)
        return np.isfinite(ce) & (ce <= (ref - self.value)[:, None])


class JudgeFilter:
    """Drop what an LLM judge flags (RLHN): with ``drop="better"`` the candidates judged at least
    as relevant as the positive; with ``drop="relevant"`` also those judged relevant but worse.
    A failed or unparsable judgement drops the candidate (fail closed, DESIGN.md invariant 5).
    Queries with more than ``max_flagged`` flagged candidates lose all their negatives (their
    labels are too unreliable to mine). The flagged cells are kept in ``flagged`` for relabeling.
    """

    name = "llm-judge"
    needs = "llm-judge"

    def __init__(self, drop: str = "better", max_flagged: int | None = 7, relabel: bool = False) -> None:
        if drop not in ("better", "relevant"):
            raise ConfigError(f"judge drop must be 'better' or 'relevant', got {drop!r}")
        self.drop = drop
        self.max_flagged = max_flagged
        self.relabel = relabel
        self.flagged: np.ndarray | None = None
        self.skipped_queries: np.ndarray | None = None

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "drop": self.drop, "max_flagged": self.max_flagged, "relabel": self.relabel}

    def keep(self, inp: FilterInput) -> np.ndarray:
        v = inp.matrix(self.needs).verdicts
        if v is None:
            raise ConfigError("the llm-judge scorer returned no verdicts")
        bad = (VERDICT_BETTER,) if self.drop == "better" else (VERDICT_BETTER, VERDICT_WORSE)
        self.flagged = np.isin(v, bad)
        keep = v == VERDICT_IRRELEVANT
        if self.max_flagged is not None:
            too_many = self.flagged.sum(axis=1) > self.max_flagged
            self.skipped_queries = np.flatnonzero(too_many)
            keep &= ~too_many[:, None]
        return keep
