"""Filters against false negatives: each returns a boolean keep-mask of shape ``(n_queries, k)``.

The pipeline ANDs the masks in order and records how many cells each filter *newly* removed.
Score filters read the retrieval scores against a per-query positive reference ``s⁺`` chosen by
``FilterInput.reference`` (``--positive-reference``):

- ``min`` (default, the classic rule): the query's **lowest** positive score (the hardest positive),
  so a negative must be below *every* positive to pass a margin. Safest, and with many positives
  per query the lowest one sits near the bottom of the list, so few candidates survive (low coverage).
- ``mean``: the mean of the query's positive scores; keeps more candidates than ``min``.
- ``max``: the highest positive score; keeps the most (coverage close to no margin at all), and
  relies on other guards (e.g. the false-negative detector) against false negatives.
- ``pair``: each known positive is its own row with its own margin (sentence-transformers'
  (anchor, positive) pairs, NV-Retriever's per-positive TopK-PercPos); the rows are expanded by
  :func:`expand_pairs` before filtering, after which every row has exactly one positive.

Unscored positives (``NaN``) are ignored; a query without any scored positive gets ``NaN`` and
the margin filters keep none of its candidates (fail closed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

import numpy as np

from negmine.core.errors import ConfigError
from negmine.text.pair_rows import PairRows, expand_pairs  # re-exported: the pair rows live in pair_rows
from negmine.text.scorers.base import VERDICT_BETTER, VERDICT_IRRELEVANT, VERDICT_WORSE, ScoreMatrix
from negmine.text.types import Candidates, MiningData

__all__ = [
    "REFERENCES",
    "AbsoluteMargin",
    "ExcludePositives",
    "Filter",
    "FilterInput",
    "FnMaxProb",
    "JudgedOr",
    "MaxScore",
    "MinScore",
    "PairRows",
    "RankWindow",
    "RelativeMargin",
    "expand_pairs",
    "positive_reference",
]

REFERENCES = ("min", "mean", "max", "pair")


@dataclass
class FilterInput:
    """What a filter may read: the candidates, the data, and derived per-query values."""

    candidates: Candidates
    data: MiningData
    scorers: dict[str, Any] = field(default_factory=dict)  # name -> Scorer, run on first use
    cache_dir: str | None = None  # the run's cache directory, handed to scorers
    current: np.ndarray | None = None  # the keep-mask so far (set by the pipeline before each filter)
    matrices: dict[str, ScoreMatrix] = field(default_factory=dict)
    reference: str = "min"  # min | mean | max | pair (pair: rows expanded by expand_pairs first)
    seed: int = 0  # seeds the false-negative detector's folds (FnMaxProb)
    doc_embeddings: np.ndarray | None = None  # float32[n_docs, dim], normalised: doc-doc similarity
    fn_probability: np.ndarray | None = None  # float32[n_queries, k]: a detector matrix already computed
    diagnostics: dict[str, dict[str, Any]] = field(default_factory=dict)  # filter name -> what it found

    @cached_property
    def positive_reference(self) -> np.ndarray:
        """``float32[n_queries]``: each query's positive reference ``s⁺`` (see the module doc;
        unscored positives ignored; ``NaN`` when none is scored, so margin filters keep nothing)."""
        return positive_reference(self.data, self.candidates.positive_scores, self.reference)

    def reference_for(self, how: str | None) -> np.ndarray:
        """The reference of a filter that names its own (``None``: the input's)."""
        if how is None or how == self.reference:
            return self.positive_reference
        return positive_reference(self.data, self.candidates.positive_scores, how)

    def false_negative_probability(self, detector: Any = None) -> np.ndarray:
        """``float32[n_queries, k]``: the detector's false-negative probability of each cell
        (``NaN`` for padding), fitted on first use and kept as the ``fn-detector`` matrix."""
        if self.fn_probability is not None:
            return self.fn_probability
        if "fn-detector" not in self.matrices:
            from negmine.text.detector import Detector

            det = detector if detector is not None else Detector()
            res = det.fit_predict(self.data, self.candidates, seed=self.seed, doc_embeddings=self.doc_embeddings)
            self.matrices["fn-detector"] = ScoreMatrix(
                "fn-detector", res.probability, np.full(len(self.candidates.positive_scores), np.nan, np.float32),
                stats=res.stats)
        return self.matrices["fn-detector"].scores

    def matrix(self, name: str) -> ScoreMatrix:
        """The score matrix of scorer ``name``, computed on first use for the cells still kept."""
        if name not in self.matrices:
            if name not in self.scorers:
                raise ConfigError(f"a filter needs the {name!r} scorer, which is not configured")
            mask = self.current if self.current is not None else self.candidates.ids >= 0
            self.matrices[name] = self.scorers[name].score(self.data, self.candidates, mask=mask,
                                                           cache_dir=self.cache_dir)
        return self.matrices[name]

    @property
    def ranks(self) -> np.ndarray:
        """``int64[1, k]``: the raw retrieval rank of each column (0-based)."""
        return np.arange(self.candidates.ids.shape[1], dtype=np.int64)[None, :]


def positive_reference(data: MiningData, positive_scores: np.ndarray, how: str = "min") -> np.ndarray:
    """``float32[n_queries]``: each query's ``min``, ``mean`` or ``max`` positive score ignoring
    ``NaN`` (``NaN`` if none is scored). ``pair`` needs rows with one positive each
    (:func:`expand_pairs`); on such rows it is that positive's score."""
    if how not in REFERENCES:
        raise ConfigError(f"unknown positive reference {how!r}; pick one of {', '.join(REFERENCES)}")
    pos = data.positives
    ps = positive_scores.astype(np.float64)
    if how == "min":
        return lowest_positive(data, positive_scores)
    if how == "pair":
        scored = np.bincount(pos.query_of_pair()[~np.isnan(ps)], minlength=pos.n_queries)
        if (scored > 1).any():
            raise ConfigError("positive reference 'pair' needs one row per (query, positive): expand the rows "
                              "with negmine.text.filters.expand_pairs first")
        return lowest_positive(data, positive_scores)
    q = pos.query_of_pair()
    ok = ~np.isnan(ps)
    if how == "max":
        ref = np.full(pos.n_queries, -np.inf)
        np.fmax.at(ref, q[ok], ps[ok])
        ref[np.isinf(ref)] = np.nan
        return ref.astype(np.float32)
    total = np.bincount(q[ok], weights=ps[ok], minlength=pos.n_queries)
    n = np.bincount(q[ok], minlength=pos.n_queries)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / np.maximum(n, 1), np.nan).astype(np.float32)


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
        valid = ids >= 0
        cand_rows = np.where(valid, ids, 0)
        if self.near_duplicates:  # group = distinct normalised text, among the rows involved only
            rows = np.unique(np.concatenate([excl.indices, cand_rows.reshape(-1)]))
            _, inv = np.unique(inp.data.corpus.text_hashes(rows), return_inverse=True)
            inv = inv.reshape(-1).astype(np.int64)
            pos_groups, cand_groups = inv[np.searchsorted(rows, excl.indices)], inv[np.searchsorted(rows, cand_rows)]
            n_groups = np.int64(inv.max(initial=0) + 1)
        else:
            pos_groups, cand_groups = excl.indices, cand_rows
            n_groups = np.int64(len(inp.data.corpus))
        pos_keys = excl.query_of_pair() * n_groups + pos_groups
        cand_keys = np.arange(n_q, dtype=np.int64)[:, None] * n_groups + cand_groups
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


class _Margin(_Threshold):
    """A margin below the positive reference: the input's (``--positive-reference``) unless the
    filter names its own ``reference``."""

    def __init__(self, value: float, reference: str | None = None) -> None:
        super().__init__(value)
        if reference is not None and reference not in REFERENCES:
            raise ConfigError(f"unknown positive reference {reference!r}; pick one of {', '.join(REFERENCES)}")
        self.reference = reference

    def config(self) -> dict[str, Any]:
        out = super().config()
        if self.reference is not None:
            out["reference"] = self.reference
        return out


class AbsoluteMargin(_Margin):
    """Keep iff ``s(q, n) < s⁺ − margin`` (NV-Retriever's TopK-MarginPos; best m = 0.05)."""

    name = "absolute-margin"
    param = "absolute_margin"

    def keep(self, inp: FilterInput) -> np.ndarray:
        ref = inp.reference_for(self.reference).astype(np.float64) - self.value
        return inp.candidates.scores.astype(np.float64) < ref[:, None]


class RelativeMargin(_Margin):
    """Keep iff ``s(q, n) < s⁺ − |s⁺|·margin`` (NV-Retriever's TopK-PercPos, "95% of the
    positive" for m = 0.05, in a sign-safe form: with a negative ``s⁺`` the threshold still lies
    *below* the positive, where ``s⁺·(1 − m)`` would lie above it).
    """

    name = "relative-margin"
    param = "relative_margin"

    def keep(self, inp: FilterInput) -> np.ndarray:
        ref = inp.reference_for(self.reference).astype(np.float64)
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
    labels are too unreliable to mine). The flagged cells (``flagged bool[n_q, k]``) and skipped
    queries go into the run's diagnostics (``result.diagnostics["llm-judge"]``) for relabeling and
    the report.
    """

    name = "llm-judge"
    needs = "llm-judge"

    def __init__(self, drop: str = "better", max_flagged: int | None = 7, relabel: bool = False) -> None:
        if drop not in ("better", "relevant"):
            raise ConfigError(f"judge drop must be 'better' or 'relevant', got {drop!r}")
        self.drop = drop
        self.max_flagged = max_flagged
        self.relabel = relabel

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "drop": self.drop, "max_flagged": self.max_flagged, "relabel": self.relabel}

    def keep(self, inp: FilterInput) -> np.ndarray:
        v = inp.matrix(self.needs).verdicts
        if v is None:
            raise ConfigError("the llm-judge scorer returned no verdicts")
        bad = (VERDICT_BETTER,) if self.drop == "better" else (VERDICT_BETTER, VERDICT_WORSE)
        flagged = np.isin(v, bad)
        keep = v == VERDICT_IRRELEVANT
        skipped = np.zeros(0, dtype=np.int64)
        if self.max_flagged is not None:
            too_many = flagged.sum(axis=1) > self.max_flagged
            skipped = np.flatnonzero(too_many)
            keep &= ~too_many[:, None]
        # returned as diagnostics, not kept on the filter: the same filter can serve several runs
        inp.diagnostics[self.name] = {"flagged": flagged, "skipped_queries": skipped}
        return keep


class FnMaxProb(_Threshold):
    """Keep iff the false-negative detector's probability ``p(q, n) <= fn_max_prob`` (see
    :mod:`negmine.text.detector`: a classifier fitted, cross-fitted by query, on the data's own known
    positives). Padding and unscored cells are dropped (fail closed)."""

    name = "fn-max-prob"
    param = "fn_max_prob"

    def __init__(self, value: float, detector: Any = None) -> None:
        super().__init__(value)
        if not 0 <= self.value <= 1:
            raise ConfigError(f"fn_max_prob is a probability in [0, 1], got {value}; e.g. --fn-max-prob 0.05")
        if isinstance(detector, str):  # a model name: logistic | spline | gbm
            from negmine.text.detector import Detector

            detector = Detector(detector)
        self.detector = detector

    def config(self) -> dict[str, Any]:
        out = super().config()
        if self.detector is not None:
            out["detector"] = self.detector.config()
        return out

    def keep(self, inp: FilterInput) -> np.ndarray:
        p = inp.false_negative_probability(self.detector)
        return np.isfinite(p) & (p <= np.float32(self.value))


class JudgedOr:
    """Keep the candidates the labellers are taken to have judged, whatever ``filters`` say; keep any
    other candidate only if every one of ``filters`` keeps it. Filters before this one
    (``ExcludePositives``, a rank window) still apply to all.

    Judged: raw rank below ``depth`` in the miner's own list, or, when ``judged`` (``bool[n_queries,
    k]``, aligned with the candidates) is given, those cells. With ``enough`` (the negatives per
    query), a query keeps its judged candidates first and fills up to ``enough`` with the best-ranked
    of the others, so a sampler never passes over a judged candidate for a guarded one.

    The calibration puts it in place of its margin and detector filters when the known positives
    look pooled (:func:`negmine.text.holdout.pool_signature`). Pooled by a ranking like the miner's,
    the pool showed its labellers the top of each list, so a candidate up there that is not a known
    positive was seen and not chosen (:func:`negmine.text.holdout.judged_depth` estimates how deep
    they looked). Pooled by a lexical system unlike a dense miner, the judged cells are the ones that
    the lexical system closest to the pool puts above the depth of the known positives, ranking the
    whole corpus (:func:`negmine.text.detector_views.judged_by_lexical_pool`). Those are hard
    negatives and the safest; ``filters`` guard the rest.
    """

    name = "judged-or"

    def __init__(self, depth: int, filters: Sequence[Filter] = (), *, judged: np.ndarray | None = None,
                 enough: int | None = None) -> None:
        if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 0:
            raise ConfigError(f"judged depth must be an integer >= 0, got {depth!r}")
        if enough is not None and (isinstance(enough, bool) or not isinstance(enough, (int, np.integer))
                                   or enough < 1):
            raise ConfigError(f"judged-or enough must be an integer >= 1, got {enough!r}")
        self.depth = int(depth)
        self.filters = list(filters)
        self.judged = None if judged is None else np.asarray(judged, dtype=bool)
        self.enough = None if enough is None else int(enough)

    def config(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "depth": self.depth, "filters": [f.config() for f in self.filters]}
        if self.judged is not None:
            out["by"] = "lexical-pool"
        if self.enough is not None:
            out["enough"] = self.enough
        return out

    def keep(self, inp: FilterInput) -> np.ndarray:
        start = inp.current if inp.current is not None else inp.candidates.ids >= 0
        rest = start.copy()
        try:
            for f in self.filters:
                inp.current = rest
                rest = rest & f.keep(inp)
        finally:
            inp.current = start
        if self.judged is None:
            judged = inp.ranks < self.depth
        elif self.judged.shape != start.shape:
            raise ConfigError(f"judged-or: judged cells of shape {self.judged.shape} do not match the candidates "
                              f"{start.shape}; compute them on the candidates this run filters")
        else:
            judged = self.judged
        judged = judged & start
        if self.enough is None:
            return judged | rest
        rest = rest & ~judged
        room = np.maximum(self.enough - judged.sum(axis=1), 0)  # per query, guarded cells still wanted
        order = np.cumsum(rest, axis=1)  # 1-based place of each guarded cell in rank order
        return judged | (rest & (order <= room[:, None]))
