"""What the detector learns from: folds of queries, pseudo-hidden halves of the known positives
(``random`` and ``pool``), their cell labels, and the expected training base rate with the prior
shift that moves a detector's probabilities to another detector's scale."""

from __future__ import annotations

import numpy as np

from negmine.core.errors import ConfigError
from negmine.core.keys import string_keys, uniform
from negmine.text.types import Candidates, MiningData


def fold_of(data: MiningData, folds: int, seed: int) -> np.ndarray:
    """``int64[n_queries]``: each query's fold, from a hash of ``(seed, query id)``."""
    u = uniform(seed ^ 0xF01D, string_keys(data.queries.ids), np.zeros(1, np.uint64))[:, 0]
    return np.minimum((u * folds).astype(np.int64), folds - 1)


def pseudo_hide(data: MiningData, seed: int, fraction: float = 0.5, merit: np.ndarray | None = None) -> np.ndarray:
    """``bool[n_pairs]``: a seeded ``fraction`` of each query's positives (rounded, at least one
    and at most all but one; none for a query with fewer than two).

    ``merit float[n_pairs]`` (aligned with ``data.positives``): hide the positives with the
    *lowest* merit instead (ties by the seeded hash; ``NaN`` lowest) — the ``pool`` mechanism, with
    the positives' scores under a second view as merit: what a labelling pool would have missed.
    Rank-based within each query's known positives, never a fixed depth."""
    pos = data.positives
    q = pos.query_of_pair()
    u = uniform(seed ^ 0x41DE, string_keys(data.queries.ids)[q], data.corpus.id_keys(pos.indices)[:, None])
    n_hide = hidden_counts(pos.counts(), fraction)
    if merit is None:
        order = np.lexsort((u[:, 0], q))
    else:
        m = np.nan_to_num(np.asarray(merit, dtype=np.float64), nan=-np.inf)
        order = np.lexsort((u[:, 0], m, q))
    rank = np.empty(len(q), dtype=np.int64)
    rank[order] = np.arange(len(q)) - pos.indptr[q[order]]
    return rank < n_hide[q]


def pool_merit(data: MiningData, miner_scores: np.ndarray, view_scores: np.ndarray, how: str = "gap") -> np.ndarray:
    """``float64[n_pairs]``: the merit :func:`pseudo_hide` ranks a query's known positives by under
    the pool-like mechanism (the lowest are hidden). ``view``: the second view's score (hide what
    it ranks lowest: the calibration's split). ``gap``: the miner's rank of the positive among the
    query's positives minus the second view's (hide what the view ranks far below the miner: the
    false negatives a pool misses and the miner surfaces; the detector's training labels). Ranks
    break ties to the lower corpus row; unscored (``NaN``) positives rank last."""
    if how not in ("view", "gap"):
        raise ConfigError(f"unknown pool merit {how!r}; pick view or gap")
    v = np.nan_to_num(np.asarray(view_scores, dtype=np.float64), nan=-np.inf)
    if how == "view":
        return v
    pos = data.positives
    q = pos.query_of_pair()
    m = np.nan_to_num(np.asarray(miner_scores, dtype=np.float64), nan=-np.inf)

    def rank(x: np.ndarray) -> np.ndarray:
        order = np.lexsort((pos.indices, -x, q))
        r = np.empty(len(q), dtype=np.float64)
        r[order] = np.arange(len(q)) - pos.indptr[q[order]]
        return r

    return rank(m) - rank(v)


def hidden_counts(counts: np.ndarray, fraction: float = 0.5) -> np.ndarray:
    """``int64[n_queries]``: how many of each query's ``counts`` known positives
    :func:`pseudo_hide` hides (``fraction`` rounded, at least one and at most all but one; none
    below two)."""
    c = np.asarray(counts, dtype=np.int64)
    return np.where(c >= 2, np.clip(np.rint(fraction * c), 1, c - 1), 0).astype(np.int64)


def known_recall(data: MiningData, cand: Candidates) -> float:
    """The share of ``data``'s known positives that are in their query's candidate list."""
    pos = data.positives
    n_docs = len(data.corpus)
    cells = np.arange(cand.ids.shape[0])[:, None] * n_docs + np.where(cand.ids >= 0, cand.ids, -1)
    return float(np.isin(pos.pair_keys(n_docs), cells).mean()) if len(pos.indices) else 0.0


def expected_base_rate(cand: Candidates, counts: np.ndarray, recall: float) -> float:
    """The training base rate of the detector (the share of its labelled cells that are
    pseudo-hidden positives) expected when query ``q`` has ``n_q = counts[q]`` known positives,
    each in its candidate list with probability ``ρ = recall``: ``Σ h_q ρ / Σ (k_q − (n_q − h_q) ρ)``
    over the queries with two or more (``h_q`` = :func:`hidden_counts`, ``k_q`` the list's valid
    cells; the pseudo-visible positives are left out of the labelled cells). Counts only: no
    positive's identity."""
    n = np.asarray(counts, dtype=np.float64)
    h = hidden_counts(counts).astype(np.float64)
    t = n >= 2
    cells = (cand.ids >= 0).sum(axis=1).astype(np.float64)
    labelled = float(np.maximum(cells - (n - h) * recall, 0.0)[t].sum())
    return float(h[t].sum() * recall / labelled) if labelled > 0 else 0.0


def prior_ratio(cand: Candidates, counts: np.ndarray, fewer: np.ndarray, recall: float) -> float:
    """Odds ratio of the expected base rates (:func:`expected_base_rate`) of a detector fitted with
    ``counts`` known positives per query over one fitted with ``fewer`` (1 when either is 0)."""
    b, b0 = expected_base_rate(cand, counts, recall), expected_base_rate(cand, fewer, recall)
    if not 0 < b < 1 or not 0 < b0 < 1:
        return 1.0
    return (b / (1 - b)) / (b0 / (1 - b0))


def shift_prior(probability: np.ndarray, ratio: float) -> np.ndarray:
    """Prior shift of probabilities (Saerens, Latinne & Decaestecker, 2002): a classifier whose
    positive class is ``ratio`` times as likely a priori (in odds) has posterior odds ``ratio``
    times as large: ``p' = r p / (r p + 1 − p)``. ``NaN`` (padding) stays ``NaN``."""
    p = probability.astype(np.float64)
    return (ratio * p / (ratio * p + 1.0 - p)).astype(np.float32)


def _labels(data: MiningData, cand: Candidates, hidden: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """``int8[n_q, k]``: 1 for a cell holding a pseudo-hidden positive, 0 for another candidate,
    -1 for cells left out (padding, visible positives, positives of other splits)."""
    n_docs = len(data.corpus)
    pos = data.positives
    qp = pos.query_of_pair()
    ids = cand.ids
    qrow = np.broadcast_to(np.arange(ids.shape[0])[:, None], ids.shape)
    keys = qrow.astype(np.int64) * n_docs + np.where(ids >= 0, ids, 0)
    hk = qp[hidden] * n_docs + pos.indices[hidden]
    ex = data.exclude
    ek = ex.pair_keys(n_docs)
    lab = np.zeros(ids.shape, dtype=np.int8)
    lab[np.isin(keys, ek)] = -1  # known positives of any split: neither label
    lab[np.isin(keys, hk)] = 1
    lab[ids < 0] = -1
    del visible
    return lab

