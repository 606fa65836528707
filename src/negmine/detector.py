"""A false-negative detector fitted on the data's own known positives.

Relevant documents resemble each other more than they resemble the query's wording (RESEARCH.md:
the maximum TF-IDF cosine to a query's visible positives ranks hidden positives at ROC AUC 0.83 on
NPL and 0.90 on Cranfield, against 0.69 / 0.74 for the BM25 score). The detector turns that into
a probability per candidate cell:

Features of candidate ``n`` of query ``q`` with known positives ``P`` (``F = 11``):

0. max TF-IDF cosine between ``n`` and the documents of ``P`` (document-document similarity);
1. mean of those cosines;
2. (0) minus the mean pairwise cosine among ``P`` (how close ``n`` is, measured against how close
   the query's positives are to each other; 0 with one positive);
3. max cosine of the dense document embeddings to ``P`` (0 without embeddings);
4. mean dense cosine to ``P`` (0 without embeddings);
5. ``log1p(rank)`` of ``n`` in the raw retrieval list;
6. the retrieval score standardised within the query's list, ``(s − mean) / sd``;
7. ``(s − min_P s) / sd`` and 8. ``(s − max_P s) / sd`` (against the weakest and strongest known
   positive; 0 when no positive is scored);
9. the share of retrievers that found ``n`` (1 with a single retriever: agreement);
10. ``log1p(|P|)``.

Training (cross-fitted, seeded): the queries are split into ``folds`` groups by a hash of
``(seed, query id)``. In every query with two or more known positives, a seeded half of its
positives is *pseudo-hidden*; features are computed against the other half, and a cell is
labelled 1 iff it is a pseudo-hidden positive (the visible half is left out). The probabilities
for the queries of fold ``f`` come from a model fitted on the other folds only, with features
against *all* their known positives — so no query's labels ever score its own candidates. The
held-out AUC (pseudo-hidden positives of the held-out folds against their other candidates) goes
into ``stats``: about 0.5 means the known positives say nothing about the unknown ones, and the
probabilities then stay near the base rate instead of pretending.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from negmine._optional import require
from negmine.errors import ConfigError
from negmine.samplers import string_keys, uniform
from negmine.types import Candidates, MiningData

__all__ = ["FEATURES", "Detection", "Detector", "expected_base_rate", "features", "fold_of", "hidden_counts",
           "known_recall", "prior_ratio", "pseudo_hide", "shift_prior"]

FEATURES = ("tfidf_max", "tfidf_mean", "tfidf_max_vs_cohesion", "dense_max", "dense_mean", "log_rank",
            "score_z", "score_vs_min_pos", "score_vs_max_pos", "agreement", "log_positives")
MODELS = ("logistic", "gbm")


@dataclass
class Detection:
    """``probability float32[n_queries, k]`` (``NaN`` for padding) and ``stats`` for the report."""

    probability: np.ndarray
    stats: dict[str, Any] = field(default_factory=dict)


def fold_of(data: MiningData, folds: int, seed: int) -> np.ndarray:
    """``int64[n_queries]``: each query's fold, from a hash of ``(seed, query id)``."""
    u = uniform(seed ^ 0xF01D, string_keys(data.queries.ids), np.zeros(1, np.uint64))[:, 0]
    return np.minimum((u * folds).astype(np.int64), folds - 1)


def pseudo_hide(data: MiningData, seed: int, fraction: float = 0.5) -> np.ndarray:
    """``bool[n_pairs]``: a seeded ``fraction`` of each query's positives (rounded, at least one
    and at most all but one; none for a query with fewer than two)."""
    pos = data.positives
    q = pos.query_of_pair()
    u = uniform(seed ^ 0x41DE, string_keys(data.queries.ids)[q], data.corpus.id_keys(pos.indices)[:, None])
    n_hide = hidden_counts(pos.counts(), fraction)
    order = np.lexsort((u[:, 0], q))
    rank = np.empty(len(q), dtype=np.int64)
    rank[order] = np.arange(len(q)) - pos.indptr[q[order]]
    return rank < n_hide[q]


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
    return float(np.isin(pos.query_of_pair() * n_docs + pos.indices, cells).mean()) if len(pos.indices) else 0.0


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


@dataclass
class TextVectors:
    """L2-normalised TF-IDF rows of the documents a run involves (its candidates and positives),
    fitted on those documents only: a ten-million-document corpus is never vectorised whole.
    ``rows`` (sorted corpus rows) names the document of each matrix row."""

    matrix: Any  # scipy.sparse CSR, float32[len(rows), vocabulary]
    rows: np.ndarray  # int64, sorted


def involved_rows(data: MiningData, cand: Candidates) -> np.ndarray:
    """Sorted corpus rows of every candidate cell and every positive."""
    ids = cand.ids
    return np.unique(np.concatenate([ids[ids >= 0].ravel(), data.positives.indices]).astype(np.int64))


def _tfidf(data: MiningData, cand: Candidates) -> TextVectors:
    """TF-IDF (sublinear tf) of the involved documents; the document frequencies are counted over
    them, i.e. how discriminating a word is among the documents the detector compares."""
    text = require("sklearn.feature_extraction.text")
    rows = involved_rows(data, cand)
    vec = text.TfidfVectorizer(sublinear_tf=True, dtype=np.float32)
    try:
        return TextVectors(vec.fit_transform(data.corpus.full_texts_at(rows)).tocsr(), rows)
    except ValueError:  # empty vocabulary (e.g. a corpus of ids only): no text similarity
        sparse = require("scipy.sparse")
        return TextVectors(sparse.csr_matrix((len(rows), 1), dtype=np.float32), rows)


#: pairs (candidate, positive) whose similarities are computed at once (bounds the memory of the
#: gathered rows: ~50 MB of TF-IDF rows or dense embeddings)
PAIR_CHUNK = 65_536


def _pair_cosines(mat: Any, a: np.ndarray, b: np.ndarray, dense: bool) -> np.ndarray:
    """``float64[len(a)]``: dot products of rows ``a[i]`` and ``b[i]`` of ``mat`` (cosines: the
    rows are L2-normalised), in chunks of ``PAIR_CHUNK`` pairs."""
    out = np.empty(len(a), dtype=np.float64)
    for s in range(0, len(a), PAIR_CHUNK):
        aa, bb = a[s:s + PAIR_CHUNK], b[s:s + PAIR_CHUNK]
        if dense:
            x, y = np.asarray(mat[aa], dtype=np.float32), np.asarray(mat[bb], dtype=np.float32)
            out[s:s + len(aa)] = np.einsum("ij,ij->i", x, y)
        else:
            out[s:s + len(aa)] = np.asarray(mat[aa].multiply(mat[bb]).sum(axis=1)).ravel()
    return out


def _grouped(n_per: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For consecutive groups of sizes ``n_per`` (all > 0): each element's group and its index in it."""
    group = np.repeat(np.arange(len(n_per)), n_per)
    first = np.cumsum(n_per) - n_per
    return group, np.arange(int(n_per.sum())) - first[group]


def _chunks(n_per: np.ndarray, limit: int) -> list[tuple[int, int]]:
    """Consecutive ranges of groups whose sizes add up to about ``limit`` (at least one group each)."""
    ends = np.cumsum(n_per)
    out, start = [], 0
    while start < len(n_per):
        base = int(ends[start - 1]) if start else 0
        stop = max(start + 1, int(np.searchsorted(ends, base + limit, side="right")))
        out.append((start, stop))
        start = stop
    return out


class _Space:
    """One vector space of documents: TF-IDF rows of the involved documents, or dense embeddings
    indexed by corpus row."""

    def __init__(self, matrix: Any, rows: np.ndarray | None, dense: bool) -> None:
        self.matrix, self.rows, self.dense = matrix, rows, dense

    def cosines(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if self.rows is not None:
            a, b = np.searchsorted(self.rows, a), np.searchsorted(self.rows, b)
        return _pair_cosines(self.matrix, a, b, self.dense)


def _to_positives(spaces: list[_Space], cell_q: np.ndarray, cell_doc: np.ndarray, start: np.ndarray,
                  count: np.ndarray, kp: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per space, max and mean cosine of each cell's document to the known positives
    ``kp[start[q]:start[q] + count[q]]`` of its query ``q`` (every cell's query has at least one);
    the (cell, positive) pairs are built once for all spaces."""
    m = count[cell_q]
    out = [(np.empty(len(cell_q)), np.empty(len(cell_q))) for _ in spaces]
    for lo, hi in _chunks(m, 16 * PAIR_CHUNK):
        mm = m[lo:hi]
        cell, j = _grouped(mm)
        a, b = cell_doc[lo:hi][cell], kp[start[cell_q[lo:hi]][cell] + j]
        first = np.cumsum(mm) - mm
        for space, (mx, mn) in zip(spaces, out):
            sims = space.cosines(a, b)
            mx[lo:hi] = np.maximum.reduceat(sims, first)
            mn[lo:hi] = np.add.reduceat(sims, first) / mm
    return out


def _cohesion(tfidf: TextVectors, start: np.ndarray, count: np.ndarray, kp: np.ndarray) -> np.ndarray:
    """``float64[n_q]``: the mean pairwise TF-IDF cosine among each query's known positives (NaN
    below two). With L2-normalised rows ``v_i``, ``Σ_{i≠j} v_i·v_j = ‖Σ v_i‖² − Σ ‖v_i‖²``: linear
    in the number of positives (a query with 1,000 has a million pairs)."""
    sparse = require("scipy.sparse")
    out = np.full(len(count), np.nan)
    if not len(kp):
        return out
    rows = tfidf.matrix[np.searchsorted(tfidf.rows, kp)]
    owner = np.repeat(np.arange(len(count)), count)  # kp is stored by query
    groups = sparse.csr_matrix((np.ones(len(kp)), (owner, np.arange(len(kp)))), shape=(len(count), len(kp)))
    sums = groups @ rows.astype(np.float64)
    total = np.asarray(sums.multiply(sums).sum(axis=1)).ravel()
    own = np.bincount(owner, weights=np.asarray(rows.multiply(rows).sum(axis=1), dtype=np.float64).ravel(),
                      minlength=len(count))
    n = count.astype(np.float64)
    many = count >= 2
    out[many] = (total[many] - own[many]) / (n[many] * (n[many] - 1))
    return out


def features(data: MiningData, cand: Candidates, known: np.ndarray, tfidf: TextVectors,
             doc_embeddings: np.ndarray | None = None) -> np.ndarray:
    """``float32[n_queries, k, F]`` features of every cell against the known positives
    ``known bool[n_pairs]`` (a mask over ``data.positives``); padding rows are 0."""
    ids = cand.ids
    n_q, k = ids.shape
    out = np.zeros((n_q, k, len(FEATURES)), dtype=np.float32)
    pos = data.positives
    valid = ids >= 0
    s = np.where(valid, cand.scores.astype(np.float64), np.nan)
    n_valid = valid.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nansum(s, axis=1) / np.maximum(n_valid, 1)
        sd = np.sqrt(np.nansum((s - mean[:, None]) ** 2, axis=1) / np.maximum(n_valid, 1))
    sd = np.where(sd > 0, sd, 1.0)
    qp = pos.query_of_pair()
    ps = cand.positive_scores.astype(np.float64)
    ok = known & ~np.isnan(ps)
    lo = np.full(n_q, np.inf)
    hi = np.full(n_q, -np.inf)
    np.fmin.at(lo, qp[ok], ps[ok])
    np.fmax.at(hi, qp[ok], ps[ok])
    z = (s - mean[:, None]) / sd[:, None]
    out[..., 5] = np.log1p(np.arange(k))[None, :]
    out[..., 6] = np.nan_to_num(z)
    out[..., 7] = np.where(np.isfinite(lo)[:, None], np.nan_to_num((s - lo[:, None]) / sd[:, None]), 0.0)
    out[..., 8] = np.where(np.isfinite(hi)[:, None], np.nan_to_num((s - hi[:, None]) / sd[:, None]), 0.0)
    if cand.member_ranks is not None:
        out[..., 9] = (cand.member_ranks >= 0).mean(axis=2)
    else:
        out[..., 9] = 1.0
    counts = np.bincount(qp[known], minlength=n_q)
    out[..., 10] = np.log1p(counts)[:, None]
    kp = pos.indices[known]
    start = np.searchsorted(qp[known], np.arange(n_q))  # positives are stored by query
    cell_q, cell_c = np.nonzero(valid & (counts > 0)[:, None])
    if len(cell_q):
        cell_doc = ids[cell_q, cell_c]
        spaces = [_Space(tfidf.matrix, tfidf.rows, dense=False)]
        if doc_embeddings is not None:
            spaces.append(_Space(doc_embeddings, None, dense=True))
        sims = _to_positives(spaces, cell_q, cell_doc, start, counts, kp)
        (mx, mn), coh = sims[0], _cohesion(tfidf, start, counts, kp)[cell_q]
        out[cell_q, cell_c, 0], out[cell_q, cell_c, 1] = mx, mn
        out[cell_q, cell_c, 2] = np.where(np.isfinite(coh), mx - coh, 0.0)
        if doc_embeddings is not None:
            out[cell_q, cell_c, 3], out[cell_q, cell_c, 4] = sims[1]
    out[~valid] = 0.0
    return out


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
    ek = ex.query_of_pair() * n_docs + ex.indices
    lab = np.zeros(ids.shape, dtype=np.int8)
    lab[np.isin(keys, ek)] = -1  # known positives of any split: neither label
    lab[np.isin(keys, hk)] = 1
    lab[ids < 0] = -1
    del visible
    return lab


class Detector:
    """Cross-fitted false-negative classifier (module doc).

    Parameters
    ----------
    model
        ``logistic`` (standardised features, L2 logistic regression) or ``gbm`` (scikit-learn's
        histogram gradient boosting).
    folds
        Cross-fitting folds over queries (at least 2).
    max_train_rows
        Cap on training cells; beyond it the unlabelled cells are subsampled by a seeded hash and
        reweighted, so probabilities stay calibrated.
    """

    name = "fn-detector"

    def __init__(self, model: str = "logistic", folds: int = 5, max_train_rows: int = 200_000,
                 view: str = "halves") -> None:
        if view not in ("halves", "all"):
            raise ConfigError(f"unknown detector view {view!r}; pick halves or all")
        self.view = view
        if model not in MODELS:
            raise ConfigError(f"unknown detector model {model!r}; pick one of {', '.join(MODELS)}")
        if folds < 2:
            raise ConfigError(f"detector folds must be >= 2, got {folds}")
        self.model = model
        self.folds = int(folds)
        self.max_train_rows = int(max_train_rows)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "model": self.model, "folds": self.folds, "view": self.view}

    def _estimator(self, seed: int) -> Any:
        if self.model == "gbm":
            ens = require("sklearn.ensemble")
            return ens.HistGradientBoostingClassifier(max_iter=150, learning_rate=0.05, max_leaf_nodes=15,
                                                      l2_regularization=1.0, random_state=seed & 0x7FFFFFFF)
        lm = require("sklearn.linear_model")
        pre = require("sklearn.preprocessing")
        pipe = require("sklearn.pipeline")
        return pipe.make_pipeline(pre.StandardScaler(), lm.LogisticRegression(C=1.0, max_iter=1000))

    def fit_predict(self, data: MiningData, cand: Candidates, *, seed: int = 0,
                    doc_embeddings: np.ndarray | None = None) -> Detection:
        """Cross-fitted false-negative probabilities of every candidate cell."""
        metrics = require("sklearn.metrics")
        n_q, k = cand.ids.shape
        tfidf = _tfidf(data, cand)
        all_known = np.ones(len(data.positives.indices), dtype=bool)
        hidden = pseudo_hide(data, seed)
        x_train = features(data, cand, ~hidden, tfidf, doc_embeddings)
        # "halves": score against each half of the known positives (the view the model was trained
        # on) and average, so the probabilities do not drift with the number of known positives
        halves = self.view == "halves"
        split_q = np.bincount(data.positives.query_of_pair()[hidden], minlength=n_q) > 0
        other_half = hidden | ~split_q[data.positives.query_of_pair()]  # unsplit queries: all their positives
        x_pred = features(data, cand, other_half if halves else all_known, tfidf, doc_embeddings)
        lab = _labels(data, cand, hidden, ~hidden)
        trainable = np.bincount(data.positives.query_of_pair()[hidden], minlength=n_q) > 0
        fold = fold_of(data, self.folds, seed)
        prob = np.full((n_q, k), np.nan, dtype=np.float32)
        valid = cand.ids >= 0
        held_y: list[np.ndarray] = []
        held_p: list[np.ndarray] = []
        fitted = 0
        base_rate = float((lab[trainable] == 1).sum() / max((lab[trainable] >= 0).sum(), 1))
        for f in range(self.folds):
            test_q = fold == f
            if not test_q.any():
                continue
            tr = (trainable & ~test_q)[:, None] & (lab >= 0)
            y = lab[tr].astype(np.int64)
            x = x_train[tr]
            w = np.ones(len(y))
            neg = np.flatnonzero(y == 0)
            budget = self.max_train_rows - int((y == 1).sum())
            if len(neg) > budget > 0:
                u = uniform(seed ^ 0x5A3B, np.arange(len(neg), dtype=np.uint64), np.zeros(1, np.uint64))[:, 0]
                drop = neg[np.argsort(u)[budget:]]
                keep = np.ones(len(y), dtype=bool)
                keep[drop] = False
                w[neg] = len(neg) / budget
                x, y, w = x[keep], y[keep], w[keep]
            cells = test_q[:, None] & valid
            if len(np.unique(y)) < 2:  # nothing to learn from: the base rate, honestly
                prob[cells] = base_rate
                continue
            est = self._estimator(seed)
            step = est.steps[-1][0] if hasattr(est, "steps") else None
            est.fit(x, y, **({f"{step}__sample_weight": w} if step else {"sample_weight": w}))
            fitted += 1
            p_pred = est.predict_proba(x_pred[cells])[:, 1]
            if halves:  # queries with one positive have no halves: x_pred is against all of it
                other = est.predict_proba(x_train[cells])[:, 1]
                p_pred = np.where(np.broadcast_to(split_q[:, None], cells.shape)[cells], (p_pred + other) / 2, p_pred)
            prob[cells] = p_pred.astype(np.float32)
            ht = (trainable & test_q)[:, None] & (lab >= 0)
            if ht.any():
                held_y.append(lab[ht].astype(np.int64))
                held_p.append(est.predict_proba(x_train[ht])[:, 1])
        stats: dict[str, Any] = {"model": self.model, "folds": self.folds, "fitted_folds": fitted,
                                 "training_queries": int(trainable.sum()), "base_rate": base_rate,
                                 "features": list(FEATURES), "dense_features": doc_embeddings is not None}
        if held_y:
            yy, pp = np.concatenate(held_y), np.concatenate(held_p)
            stats["heldout_cells"] = len(yy)
            stats["heldout_positives"] = int(yy.sum())
            stats["heldout_auc"] = float(metrics.roc_auc_score(yy, pp)) if 0 < yy.sum() < len(yy) else float("nan")
            stats["heldout_mean_probability"] = float(pp.mean())
            stats["heldout_positive_rate"] = float(yy.mean())
        return Detection(prob, stats)
