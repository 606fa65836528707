"""Holdout protocols: which known positives the miner sees, and which are hidden to audit it.

A hidden-positive audit is only as honest as its assumption about *how* labels go missing
(RESEARCH.md, "Hidden-positive false-negative rate"). One concept, three mechanisms, used by
``negmine audit``, the calibration and the benchmarks:

- ``random`` — hide a seeded ``fraction`` of each query's positives, chosen by a hash of
  ``(seed, query id, doc id)`` (at most all but one; ``--hide-fraction``). Assumes the unknown
  positives look like a random sample of the known ones ("selected completely at random").
- ``grade`` — show the miner the positives graded ``>= min_grade``, hide the rest; a query left
  with nothing visible keeps its best-graded positive (``--visible-min-grade``).
- ``pool`` — keep visible only the positives a *labelling* retriever ranks in its top ``depth``
  (the judges saw only its pool), hide the others; a query with none in the pool keeps its
  best-ranked positive (highest labelling score, ties to the lower corpus row). This is how
  pooled test collections lose their labels: the unknown positives are exactly the ones the
  labelling system ranked low ("Hard Negatives or False Negatives: Correcting Pooling Bias").

:class:`Holdout` names a protocol and its parameters; :meth:`Holdout.split` returns a
:class:`Split` (``visible`` data for the miner, ``hidden`` qrels for the audit) and
:meth:`Holdout.describe` the one line a report prints beside every figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from negmine.core.errors import ConfigError
from negmine.core.keys import HIDE_SALT, string_keys, uniform
from negmine.core.positives import pair_keys
from negmine.text.types import Candidates, MiningData, Qrels, RunContext

__all__ = ["HIDE_SALT", "POOL_SIGNATURE_RATIO", "PROTOCOLS", "Holdout", "Split", "hide_below_grade", "hide_fraction",
           "hide_pool", "hide_qrels", "judged_depth", "pool_signature", "pool_split", "restrict"]

PROTOCOLS = ("random", "grade", "pool", "qrels")
#: :func:`pool_signature` calls labels pooled when the known positives are this many times denser
#: in the top third of a ranking than below it (NPL / Cranfield, dense and BM25 miners: 0.7-2.9
#: under random hiding, 25-386 under a BM25 top-20 pool)
POOL_SIGNATURE_RATIO = 10.0
#: the largest ratio :func:`pool_signature` reports (JSON has no infinity)
RATIO_CAP = 1e6
#: :func:`judged_depth`: the share of the known positives the estimated pool must reach
JUDGED_QUANTILE = 0.9


@dataclass
class Split:
    """Positives split into what the miner sees (``visible``) and what it does not (``hidden``)."""

    visible: MiningData
    hidden: Qrels


def _subset(qrels: Qrels, mask: np.ndarray) -> Qrels:
    return Qrels.from_pairs(qrels.n_queries, qrels.query_of_pair()[mask], qrels.indices[mask], qrels.grades[mask])


def make_split(data: MiningData, hide: np.ndarray) -> Split:
    """Hide the positive pairs flagged in ``hide bool[n_pairs]`` (aligned with ``data.positives``);
    they also leave the visible ``exclude`` set (the miner must not know them)."""
    pos = data.positives
    n_docs = len(data.corpus)
    hidden = _subset(pos, hide)
    visible_pos = _subset(pos, ~hide)
    hk = hidden.pair_keys(n_docs)
    ek = pair_keys(data.exclude.query_of_pair(), data.exclude.indices, n_docs)
    visible_excl = _subset(data.exclude, ~np.isin(ek, hk))
    visible = MiningData(data.corpus, data.queries, visible_pos, visible_excl, stats=data.stats, sources=data.sources)
    return Split(visible, hidden)


def hide_fraction(data: MiningData, fraction: float, seed: int) -> Split:
    """``random``: hide ``round(fraction · n)`` of each query's ``n`` positives (at most ``n − 1``:
    one always stays visible), chosen by a hash of ``(seed, query_id, doc_id)``, salted
    (``HIDE_SALT``) so that it is independent of the samplers' noise, which hashes the same triple:
    without the salt, the hidden positives are exactly those with the lowest sampler noise, and any
    random sampler mined with the same seed avoids them (HP-FNR of ``random`` read 0.000)."""
    if not 0 < fraction < 1:
        raise ConfigError(f"hide fraction must be in (0, 1), got {fraction}; e.g. --hide-fraction 0.5")
    pos = data.positives
    q = pos.query_of_pair()
    u = uniform(seed ^ HIDE_SALT, string_keys(data.queries.ids)[q],
                data.corpus.id_keys(pos.indices)[:, None])[:, 0]
    counts = pos.counts()
    n_hide = np.minimum(np.rint(fraction * counts), counts - 1).astype(np.int64)
    order = np.lexsort((u, q))  # within each query, by hash
    rank_in_query = np.empty(len(q), dtype=np.int64)
    rank_in_query[order] = np.arange(len(q)) - pos.indptr[q[order]]
    return make_split(data, rank_in_query < n_hide[q])


def _keep_best(hide: np.ndarray, indptr: np.ndarray, merit: np.ndarray) -> np.ndarray:
    """A query whose positives are all hidden keeps its best one (highest ``merit``; ties to the
    first pair, i.e. the lower corpus row) visible."""
    hide = hide.copy()
    for i in range(len(indptr) - 1):
        lo, hi = int(indptr[i]), int(indptr[i + 1])
        if hi > lo and hide[lo:hi].all():
            hide[lo + int(np.argmax(merit[lo:hi]))] = False
    return hide


def hide_below_grade(data: MiningData, min_grade: float) -> Split:
    """``grade``: positives graded ``>= min_grade`` are visible, the rest hidden (e.g. Cranfield:
    give the miner grades 3-4, audit against grades 1-2). Queries left with no visible positive
    keep their best-graded one."""
    pos = data.positives
    return make_split(data, _keep_best(pos.grades < min_grade, pos.indptr, pos.grades))


def pool_split(data: MiningData, pool: Candidates, depth: int) -> Split:
    """``pool`` on an already retrieved labelling list: a positive stays visible iff it is among the
    first ``depth`` cells of its query's row of ``pool.ids``; the others are hidden. A query with
    none in the pool keeps the positive the labelling retriever scores highest
    (``pool.positive_scores``; unscored ones last; ties to the lower corpus row)."""
    if depth < 1:
        raise ConfigError(f"pool depth must be >= 1, got {depth}; e.g. --pool-depth 20")
    pos = data.positives
    n_docs = len(data.corpus)
    ids = pool.ids[:, :depth]
    rows = np.broadcast_to(np.arange(ids.shape[0])[:, None], ids.shape)
    pooled = pair_keys(rows[ids >= 0], ids[ids >= 0], n_docs)
    seen = np.isin(pos.pair_keys(n_docs), pooled)
    merit = np.where(np.isnan(pool.positive_scores), -np.inf, pool.positive_scores.astype(np.float64))
    return make_split(data, _keep_best(~seen, pos.indptr, merit))


def hide_pool(data: MiningData, retriever: Any, depth: int, ctx: RunContext | None = None) -> Split:
    """``pool``: retrieve the top ``depth`` of every query with the labelling ``retriever`` (its own
    retrieval, on all known positives) and :func:`pool_split` on it."""
    if depth < 1:
        raise ConfigError(f"pool depth must be >= 1, got {depth}; e.g. --pool-depth 20")
    return pool_split(data, retriever.retrieve(data, depth, ctx if ctx is not None else RunContext()), depth)


def hide_qrels(data: MiningData, rows: list[tuple[str, str, float]]) -> Split:
    """``qrels``: hide the positives named in a second qrels file (rows ``(query_id, doc_id,
    grade)``); hidden labels that were never positives of the miner count too."""
    doc_row = {d: i for i, d in enumerate(data.corpus.ids)}
    q_row = {q: i for i, q in enumerate(data.queries.ids)}
    n_docs = len(data.corpus)
    extra = [(q_row[q], doc_row[d], g) for q, d, g in rows if q in q_row and d in doc_row and g > 0]
    keys = np.array([q * n_docs + d for q, d, _ in extra], dtype=np.int64)
    pos = data.positives
    split = make_split(data, np.isin(pos.pair_keys(n_docs), keys))
    if extra:
        h = split.hidden
        qq = np.concatenate([h.query_of_pair(), np.array([e[0] for e in extra], dtype=np.int64)])
        dd = np.concatenate([h.indices, np.array([e[1] for e in extra], dtype=np.int64)])
        split = Split(split.visible, Qrels.from_pairs(h.n_queries, qq, dd))
    return split


def restrict(cand: Candidates, full: Qrels, sub: Qrels, n_docs: int) -> Candidates:
    """The same candidates with ``positive_scores`` re-aligned to a subset ``sub`` of ``full``."""
    fk = full.pair_keys(n_docs)
    sk = sub.pair_keys(n_docs)
    order = np.argsort(fk)
    idx = order[np.searchsorted(fk[order], sk)]
    return Candidates(cand.ids, cand.scores, cand.sources, cand.source_names, cand.positive_scores[idx],
                      cand.member_ranks, cand.member_scores)


@dataclass(frozen=True)
class Holdout:
    """One holdout protocol and its parameters (module doc).

    ``protocol``: ``random`` (``fraction``, ``seed``), ``grade`` (``min_grade``), ``pool``
    (``pool_retriever``: a registered retriever name, ``pool_depth``) or ``qrels`` (``qrels_path``).
    """

    protocol: str = "random"
    fraction: float = 0.5
    seed: int = 0
    min_grade: float | None = None
    pool_retriever: str = "bm25"
    pool_depth: int = 20
    qrels_path: str | None = None

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"unknown holdout protocol {self.protocol!r}; pick one of {', '.join(PROTOCOLS)}")
        if self.protocol == "random" and not 0 < self.fraction < 1:
            raise ConfigError(f"hide fraction must be in (0, 1), got {self.fraction}; e.g. --hide-fraction 0.5")
        if self.protocol == "grade" and self.min_grade is None:
            raise ConfigError("--hide grade needs --visible-min-grade G (e.g. 3 on Cranfield)")
        if self.protocol == "pool" and (isinstance(self.pool_depth, bool) or int(self.pool_depth) < 1):
            raise ConfigError(f"pool depth must be an integer >= 1, got {self.pool_depth}; e.g. --pool-depth 20")
        if self.protocol == "qrels" and not self.qrels_path:
            raise ConfigError("--hide qrels needs --hidden-qrels FILE")

    def describe(self) -> str:
        """The one line a report prints beside the figures this protocol produced."""
        if self.protocol == "random":
            return f"random holdout: {self.fraction:g} of each query's positives hidden (seed {self.seed})"
        if self.protocol == "grade":
            return f"grade holdout: positives graded >= {self.min_grade:g} visible, the rest hidden"
        if self.protocol == "pool":
            return (f"pool holdout: only the positives {self.pool_retriever} ranks in its top {self.pool_depth} "
                    "visible, the rest hidden")
        return f"qrels holdout: the pairs of {self.qrels_path} hidden"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"protocol": self.protocol, "description": self.describe()}
        if self.protocol == "random":
            out.update(fraction=self.fraction, seed=self.seed)
        elif self.protocol == "grade":
            out.update(min_grade=self.min_grade)
        elif self.protocol == "pool":
            out.update(retriever=self.pool_retriever, depth=self.pool_depth)
        else:
            out.update(qrels=self.qrels_path)
        return out

    def split(self, data: MiningData, *, retriever: Any = None, ctx: RunContext | None = None,
              qrels_rows: list[tuple[str, str, float]] | None = None) -> Split:
        """The split of ``data``. ``pool`` needs the labelling ``retriever`` (built from
        ``pool_retriever``); ``qrels`` the rows of the hidden qrels file."""
        if self.protocol == "random":
            return hide_fraction(data, self.fraction, self.seed)
        if self.protocol == "grade":
            return hide_below_grade(data, float(self.min_grade))  # type: ignore[arg-type]
        if self.protocol == "pool":
            if retriever is None:
                raise ConfigError("the pool holdout needs its labelling retriever (e.g. --pool-retriever bm25)")
            return hide_pool(data, retriever, int(self.pool_depth), ctx)
        if qrels_rows is None:
            raise ConfigError("the qrels holdout needs the rows of --hidden-qrels")
        return hide_qrels(data, qrels_rows)


def _top_third_ratio(q: np.ndarray, score: np.ndarray, known: np.ndarray) -> float:
    """Density of the ``known`` items in the top third of each query's list (ranked by ``score``
    descending; ties put unknown items first) over their density in the rest; lists are grouped
    by ``q``. ``inf`` when the rest holds no known item and the top does; ``nan`` without items."""
    ok = np.isfinite(score)
    q, score, known = q[ok], score[ok], known[ok]
    if not len(q):
        return float("nan")
    order = np.lexsort((known, -score.astype(np.float64), q))
    q, known = q[order], known[order]
    start = np.searchsorted(q, q, side="left")
    size = np.searchsorted(q, q, side="right") - start
    top = (np.arange(len(q)) - start) < size / 3.0
    dens_top = known[top].sum() / max(int(top.sum()), 1)
    dens_rest = known[~top].sum() / max(int((~top).sum()), 1)
    if dens_rest == 0:
        return float("inf") if dens_top > 0 else float("nan")
    return float(dens_top / dens_rest)


def pool_signature(data: MiningData, cand: Candidates, view_cells: np.ndarray | None = None,
                   view_positives: np.ndarray | None = None) -> dict[str, Any]:
    """Do the known positives look pooled? A pool keeps only what a labelling system ranked high, so
    known positives crowd the top of *some* ranking and thin out abruptly below it; positives
    missing at random thin out gradually. Per query with two or more known positives, merge its
    candidates and known positives, rank them by the miner's score (and by a second view's, when
    ``view_cells`` / ``view_positives`` are given, aligned with ``cand.ids`` / ``data.positives``),
    and compare the known positives' density in the top third with the rest.

    Returns ``{"miner": ratio, "view": ratio | None, "ratio": the larger, "by": "miner" | "view"
    (whose ratio it is; the miner on a tie), "pooled": bool}``: ``pooled`` when the larger ratio
    reaches :data:`POOL_SIGNATURE_RATIO`. Pooled *by the miner's own kind of ranking*, the unknown
    positives are ranked low by the miner too, mostly beyond its candidates; pooled by the second
    view, they are what a different system missed and the miner surfaces. A ratio is capped at
    :data:`RATIO_CAP` (no known positive below the top third) and ``None`` where nothing was
    ranked. A heuristic, not a test: a retriever that ranks every positive in its top third looks
    the same as a pool."""
    pos = data.positives
    counts = pos.counts()
    use = counts >= 2
    valid = (cand.ids >= 0) & use[:, None]
    cq = np.nonzero(valid)[0]
    qp = pos.query_of_pair()
    pk = use[qp]
    q_all = np.concatenate([cq, qp[pk]])
    known = np.concatenate([np.zeros(len(cq), dtype=bool), np.ones(int(pk.sum()), dtype=bool)])
    ratios: dict[str, float | None] = {"miner": _top_third_ratio(
        q_all, np.concatenate([cand.scores[valid], cand.positive_scores[pk]]), known), "view": None}
    if view_cells is not None and view_positives is not None:
        ratios["view"] = _top_third_ratio(q_all, np.concatenate([view_cells[valid], view_positives[pk]]), known)
    clean = {k: None if v is None or np.isnan(v) else min(v, RATIO_CAP) for k, v in ratios.items()}
    finite = {k: v for k, v in clean.items() if v is not None}
    by = max(finite, key=lambda k: (finite[k], k == "miner")) if finite else None
    top = finite[by] if by is not None else None
    return {**clean, "ratio": top, "by": by, "pooled": bool(top is not None and top >= POOL_SIGNATURE_RATIO)}


def judged_depth(data: MiningData, cand: Candidates, quantile: float = JUDGED_QUANTILE) -> int | None:
    """How deep into the miner's lists the labellers looked, when the known positives look pooled by
    the miner's own kind of ranking (:func:`pool_signature`, ``by == "miner"``): the raw rank
    (0-based) that holds ``quantile`` of the known positives of the queries with two or more, plus
    one. Such a pool showed its labellers each list's top, so a candidate above that depth that is
    not a known positive was seen and not chosen: a judged negative. A known positive the miner did
    not retrieve counts as beyond the list. ``None`` when the depth reaches the end of the lists
    (nothing to tell judged from unseen), or without such queries.
    """
    pos = data.positives
    use = pos.counts() >= 2
    if not use.any():
        return None
    n_docs = len(data.corpus)
    k = cand.ids.shape[1]
    want = pos.pair_keys(n_docs)[use[pos.query_of_pair()]]
    # each known positive's column in its query's list (a list holds a document once); the ones not
    # retrieved count as rank k, beyond the list
    found = (cand.ids >= 0) & np.isin(pair_keys(np.arange(len(cand.ids))[:, None], cand.ids, n_docs), want)
    cols = np.nonzero(found)[1]
    ranks = np.concatenate([cols, np.full(len(want) - len(cols), k, dtype=np.int64)])
    depth = int(np.quantile(ranks, quantile, method="higher")) + 1
    return depth if depth < k else None
