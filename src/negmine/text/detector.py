"""A false-negative detector fitted on the data's own known positives.

Relevant documents resemble each other more than they resemble the query's wording (RESEARCH.md:
the maximum TF-IDF cosine to a query's visible positives ranks hidden positives at ROC AUC 0.83 on
NPL and 0.90 on Cranfield, against 0.69 / 0.74 for the BM25 score). The detector turns that into
a probability per candidate cell:

Features of candidate ``n`` of query ``q`` with known positives ``P`` (``FEATURES``):

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
10. ``log1p(|P|)``;
11. max and 12. mean TF-IDF cosine to ``P`` *beyond the query's words* (the query's own words
    left out of both vectors);
13-17. a second view of the candidate (:func:`second_view`: BM25 of the ``k`` candidates only for
    a dense miner, an LSA cosine for a lexical one): its standardised score, ``log1p`` of its rank
    in the list by that view, the rank gap to the retrieval rank, and its score against the
    weakest and strongest known positive under that view.

Pooling bias. Labels usually come from a pool: judges saw what a (lexical) labelling system ranked
high, so the unknown positives are the ones it ranked low — lexically unlike the query, and unlike
the known positives in TF-IDF space, because the known ones share the query's words. A detector
trained on known positives then learns "positives share the query's words" and lets a dense
miner's best false negatives through (NPL, BM25 pool of depth 20: HP-FNR 0.14 with the TF-IDF
features, docs/QUALITY.md). So the features a lexical pool biases (:data:`LEXICAL_FEATURES`: the
TF-IDF similarities that include the query's words, and the lexical second view) are left out of a
dense miner's default detector, which uses the dense document-document similarities, the
retrieval-score features and the TF-IDF similarity beyond the query's words instead
(:func:`auto_features`); a lexical miner keeps features 0-10 (its false negatives under a lexical
pool are the ones it ranks low itself).

Training (cross-fitted, seeded): the queries are split into ``folds`` groups by a hash of
``(seed, query id)``. In every query with two or more known positives, half of its positives are
*pseudo-hidden*, by each mechanism of ``mechanisms``: ``random`` (a seeded half) and ``pool``
(the half the second view ranks lowest among the query's known positives — what a pool would
have missed; rank-based, no fixed depth). Features are computed against the other half, and a
cell is labelled 1 iff it is a pseudo-hidden positive (the visible half is left out); the rows of
both mechanisms train one model. The probabilities for the queries of fold ``f`` come from a
model fitted on the other folds only, averaged over each mechanism's two halves — so no query's
labels ever score its own candidates. The held-out AUC per mechanism (pseudo-hidden positives of
the held-out folds against their other candidates) goes into ``stats``: about 0.5 means the known
positives say nothing about the unknown ones, and the probabilities then stay near the base rate
instead of pretending.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from negmine.core.errors import ConfigError
from negmine.core.keys import string_keys, uniform
from negmine.core.optional import require
from negmine.text.types import Candidates, MiningData

__all__ = ["FEATURES", "MECHANISMS", "SECOND_VIEW_FEATURES", "Detection", "Detector", "SecondView",
           "expected_base_rate", "features", "fold_of", "hidden_counts", "known_recall", "prior_ratio",
           "pseudo_hide", "second_view", "shift_prior"]

SECOND_VIEW_FEATURES = ("view2_score_z", "view2_log_rank", "rank_gap", "view2_vs_min_pos", "view2_vs_max_pos")
FEATURES = ("tfidf_max", "tfidf_mean", "tfidf_max_vs_cohesion", "dense_max", "dense_mean", "log_rank",
            "score_z", "score_vs_min_pos", "score_vs_max_pos", "agreement", "log_positives",
            "tfidf_beyond_query_max", "tfidf_beyond_query_mean", *SECOND_VIEW_FEATURES)
#: how the detector pseudo-hides known positives to learn from: ``random`` (a seeded half) and
#: ``pool`` (the half a second view of the data ranks lowest, the way a labelling pool misses them)
MECHANISMS = ("random", "pool")
#: the features the default detector fits on (``None``: :func:`auto_features`, by the miner)
DEFAULT_FEATURES: tuple[str, ...] | None = None
MODELS = ("logistic", "gbm")

#: the features a lexical labelling pool biases: document-document TF-IDF similarity and the
#: lexical second view (module doc, "Pooling bias")
LEXICAL_FEATURES = ("tfidf_max", "tfidf_mean", "tfidf_max_vs_cohesion", *SECOND_VIEW_FEATURES)
#: the features added for a dense miner: TF-IDF document-document similarity without the query's words
BEYOND_QUERY_FEATURES = ("tfidf_beyond_query_max", "tfidf_beyond_query_mean")


def auto_features(dense_miner: bool) -> tuple[str, ...]:
    """The default detector's features: for a dense miner, none that read the lexical view (its
    false negatives are exactly what a lexical pool misses, and lexical similarity to the known,
    pooled positives says they are not positives); for a lexical miner, the document-document
    TF-IDF and score features (its own view is the one a pool ranks by)."""
    if dense_miner:
        return tuple(f for f in FEATURES if f not in LEXICAL_FEATURES)
    return tuple(f for f in FEATURES if f not in SECOND_VIEW_FEATURES and f not in BEYOND_QUERY_FEATURES)


@dataclass
class Detection:
    """``probability float32[n_queries, k]`` (``NaN`` for padding) and ``stats`` for the report."""

    probability: np.ndarray
    stats: dict[str, Any] = field(default_factory=dict)


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


@dataclass
class DenseRows:
    """Dense embeddings of some corpus ``rows`` (sorted): ``matrix[i]`` is row ``rows[i]``'s (read
    once from a memory-mapped cache instead of once per feature pass)."""

    matrix: np.ndarray
    rows: np.ndarray


@dataclass
class TextVectors:
    """L2-normalised TF-IDF rows of the documents a run involves (its candidates and positives),
    fitted on those documents only: a ten-million-document corpus is never vectorised whole.
    ``rows`` (sorted corpus rows) names the document of each matrix row."""

    matrix: Any  # scipy.sparse CSR, float32[len(rows), vocabulary]
    rows: np.ndarray  # int64, sorted
    vectorizer: Any = None  # the fitted TfidfVectorizer (None: empty vocabulary)


def involved_rows(data: MiningData, cand: Candidates) -> np.ndarray:
    """Sorted corpus rows of every candidate cell and every positive."""
    ids = cand.ids
    return np.unique(np.concatenate([ids[ids >= 0].ravel(), data.positives.indices]).astype(np.int64))


#: the last few vectorised document sets (corpus, kind, digest of the rows, value): the calibration
#: fits a detector per mechanism and the run fits its own, on (nearly) the same documents, and
#: each would otherwise tokenise them again. A pure function of the texts: the same output.
_MEMO: list[tuple[Any, str, bytes, Any]] = []
MEMO_SIZE = 4


def _memo(corpus: Any, kind: str, rows: np.ndarray, build: Any) -> Any:
    import hashlib

    digest = hashlib.blake2b(np.ascontiguousarray(rows, dtype=np.int64).tobytes(), digest_size=16).digest()
    for c, k, d, value in _MEMO:
        if c is corpus and k == kind and d == digest:
            return value
    value = build()
    _MEMO.insert(0, (corpus, kind, digest, value))
    del _MEMO[MEMO_SIZE:]
    return value


def _tfidf(data: MiningData, cand: Candidates) -> TextVectors:
    """TF-IDF (sublinear tf) of the involved documents; the document frequencies are counted over
    them, i.e. how discriminating a word is among the documents the detector compares."""
    rows = involved_rows(data, cand)

    def build() -> TextVectors:
        text = require("sklearn.feature_extraction.text")
        vec = text.TfidfVectorizer(sublinear_tf=True, dtype=np.float32)
        try:
            return TextVectors(vec.fit_transform(data.corpus.full_texts_at(rows)).tocsr(), rows, vec)
        except ValueError:  # empty vocabulary (e.g. a corpus of ids only): no text similarity
            sparse = require("scipy.sparse")
            return TextVectors(sparse.csr_matrix((len(rows), 1), dtype=np.float32), rows)

    return _memo(data.corpus, "tfidf", rows, build)


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


class _BeyondQuery:
    """TF-IDF cosine of two documents over the words that are *not* in the cell's query: how alike
    they are beyond what a lexical pool matched them on (the query's own words)."""

    def __init__(self, tfidf: TextVectors, data: MiningData) -> None:
        self.matrix, self.rows = tfidf.matrix, tfidf.rows
        q = tfidf.vectorizer.transform(data.queries.texts).tocsr() if tfidf.vectorizer is not None else None
        if q is None:
            sparse = require("scipy.sparse")
            q = sparse.csr_matrix((len(data.queries), self.matrix.shape[1]))
        q.data[:] = 1.0
        self.query_words = q

    def cosines(self, a: np.ndarray, b: np.ndarray, q: np.ndarray) -> np.ndarray:
        a, b = np.searchsorted(self.rows, a), np.searchsorted(self.rows, b)
        out = np.empty(len(a), dtype=np.float64)
        for s in range(0, len(a), PAIR_CHUNK):
            aa, bb, qq = a[s:s + PAIR_CHUNK], b[s:s + PAIR_CHUNK], q[s:s + PAIR_CHUNK]
            x, y, w = self.matrix[aa], self.matrix[bb], self.query_words[qq]
            xy = x.multiply(y)
            dot = np.asarray(xy.sum(axis=1)).ravel() - np.asarray(xy.multiply(w).sum(axis=1)).ravel()
            nx = 1.0 - np.asarray(x.multiply(x).multiply(w).sum(axis=1)).ravel()
            ny = 1.0 - np.asarray(y.multiply(y).multiply(w).sum(axis=1)).ravel()
            den = np.sqrt(np.clip(nx, 0, None) * np.clip(ny, 0, None))
            out[s:s + len(aa)] = np.where(den > 1e-12, dot / np.where(den > 1e-12, den, 1.0), 0.0)
        return out


def _to_positives(spaces: list[Any], cell_q: np.ndarray, cell_doc: np.ndarray, start: np.ndarray,
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
        qa = cell_q[lo:hi][cell]
        for space, (mx, mn) in zip(spaces, out):
            sims = space.cosines(a, b, qa) if isinstance(space, _BeyondQuery) else space.cosines(a, b)
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


#: BM25 constants of the lexical second view (bm25s / Lucene defaults)
BM25_K1, BM25_B = 1.5, 0.75
#: dimensions of the latent (LSA) second view, when no dense embeddings exist
LATENT_DIMS = 64


@dataclass
class SecondView:
    """A second, independent scoring of each candidate and each known positive by its query.

    ``name``: ``lexical`` (BM25 over the involved documents: the view of a dense miner) or
    ``latent`` (cosine in an LSA space of the involved documents: the view of a lexical miner
    without dense embeddings); ``cells float32[n_queries, k]`` (``NaN`` for padding) and
    ``positives float32[n_pairs]`` (aligned with ``data.positives``)."""

    name: str
    cells: np.ndarray
    positives: np.ndarray

    def restrict(self, full: Any, sub: Any, n_docs: int) -> SecondView:
        """The same view with ``positives`` re-aligned to a subset ``sub`` of the qrels ``full``."""
        fk = full.pair_keys(n_docs)
        sk = sub.pair_keys(n_docs)
        order = np.argsort(fk)
        return SecondView(self.name, self.cells, self.positives[order[np.searchsorted(fk[order], sk)]])


def _pair_dots(a_mat: Any, b_mat: Any, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``float64[len(a)]``: dot products of row ``a[i]`` of ``a_mat`` and row ``b[i]`` of ``b_mat``."""
    out = np.empty(len(a), dtype=np.float64)
    dense = isinstance(a_mat, np.ndarray)
    for s in range(0, len(a), PAIR_CHUNK):
        aa, bb = a[s:s + PAIR_CHUNK], b[s:s + PAIR_CHUNK]
        if dense:
            out[s:s + len(aa)] = np.einsum("ij,ij->i", a_mat[aa], b_mat[bb])
        else:
            out[s:s + len(aa)] = np.asarray(a_mat[aa].multiply(b_mat[bb]).sum(axis=1)).ravel()
    return out


def _view_of_pairs(q_mat: Any, d_mat: Any, rows: np.ndarray, data: MiningData, cand: Candidates) -> SecondView:
    """Scores of every candidate cell and every known positive: row ``q`` of ``q_mat`` against the
    row of ``d_mat`` that holds the document (``rows``: the sorted corpus row of each)."""
    ids = cand.ids
    valid = ids >= 0
    cq, cc = np.nonzero(valid)
    cells = np.full(ids.shape, np.nan, dtype=np.float32)
    cells[cq, cc] = _pair_dots(q_mat, d_mat, cq, np.searchsorted(rows, ids[cq, cc]))
    pos = data.positives
    positives = _pair_dots(q_mat, d_mat, pos.query_of_pair(), np.searchsorted(rows, pos.indices)).astype(np.float32)
    return SecondView("", cells, positives)


def _bm25_weights(data: MiningData, rows: np.ndarray) -> tuple[Any, Any] | None:
    """``(vectorizer, BM25 document-term weights)`` of the documents ``rows`` (None: no vocabulary)."""
    text = require("sklearn.feature_extraction.text")
    vec = text.CountVectorizer(stop_words="english", dtype=np.float32)
    try:
        tf = vec.fit_transform(data.corpus.full_texts_at(rows)).tocsr().astype(np.float64)
    except ValueError:
        return None
    n = tf.shape[0]
    df = np.bincount(tf.indices, minlength=tf.shape[1]).astype(np.float64)
    idf = np.log1p((n - df + 0.5) / (df + 0.5))
    dl = np.asarray(tf.sum(axis=1)).ravel()
    norm = BM25_K1 * (1 - BM25_B + BM25_B * dl / max(float(dl.mean()), 1e-9))
    row_of = np.repeat(np.arange(n), np.diff(tf.indptr))
    w = tf.copy()
    w.data = idf[tf.indices] * tf.data * (BM25_K1 + 1) / (tf.data + norm[row_of])
    return vec, w.tocsr()


def _lexical_view(data: MiningData, cand: Candidates, rows: np.ndarray) -> SecondView:
    """BM25 (k1 1.5, b 0.75, English stop words; document frequencies and lengths over the involved
    documents) of each candidate and each known positive: only those pairs are scored, no second
    retrieval over the corpus."""
    sparse = require("scipy.sparse")
    built = _memo(data.corpus, "bm25", rows, lambda: _bm25_weights(data, rows))
    if built is None:  # empty vocabulary: no lexical signal
        zero = sparse.csr_matrix((max(len(rows), 1), 1))
        view = _view_of_pairs(sparse.csr_matrix((len(data.queries), 1)), zero, rows, data, cand)
        view.name = "lexical"
        return view
    vec, w = built
    q = vec.transform(data.queries.texts).tocsr().astype(np.float64)
    view = _view_of_pairs(q, w, rows, data, cand)
    view.name = "lexical"
    return view


def _latent_view(data: MiningData, cand: Candidates, tfidf: TextVectors) -> SecondView:
    """Cosine of query and document in an LSA space (truncated SVD of the involved documents'
    TF-IDF, ``LATENT_DIMS`` dimensions, randomized solver with a fixed seed): a cheap semantic view
    where no dense embeddings exist."""
    decomposition = require("sklearn.decomposition")
    sparse = require("scipy.sparse")
    dims = min(LATENT_DIMS, tfidf.matrix.shape[0] - 1, tfidf.matrix.shape[1] - 1)
    if tfidf.vectorizer is None or dims < 2:
        view = _view_of_pairs(sparse.csr_matrix((len(data.queries), 1)),
                              sparse.csr_matrix((max(len(tfidf.rows), 1), 1)), tfidf.rows, data, cand)
        view.name = "latent"
        return view
    svd = decomposition.TruncatedSVD(n_components=dims, algorithm="randomized", n_iter=4, random_state=0)
    docs = svd.fit_transform(tfidf.matrix.astype(np.float64))
    queries = svd.transform(tfidf.vectorizer.transform(data.queries.texts).astype(np.float64))

    def unit(x: np.ndarray) -> np.ndarray:
        nrm = np.linalg.norm(x, axis=1, keepdims=True)
        return x / np.where(nrm > 0, nrm, 1.0)

    view = _view_of_pairs(unit(queries), unit(docs), tfidf.rows, data, cand)
    view.name = "latent"
    return view


def second_view(data: MiningData, cand: Candidates, tfidf: TextVectors | None = None,
                doc_embeddings: np.ndarray | None = None) -> SecondView:
    """The view of the data that differs from the miner's: ``lexical`` (BM25 of the candidates
    only) when the miner is dense (``doc_embeddings`` given), else ``latent`` (LSA cosine)."""
    if doc_embeddings is not None:
        return _lexical_view(data, cand, tfidf.rows if tfidf is not None else involved_rows(data, cand))
    return _latent_view(data, cand, tfidf if tfidf is not None else _tfidf(data, cand))


def _second_view_features(out: np.ndarray, view: SecondView, known: np.ndarray, data: MiningData,
                          valid: np.ndarray) -> None:
    """Fill the ``SECOND_VIEW_FEATURES`` slots of ``out`` (module doc)."""
    n_q, k = valid.shape
    base = len(FEATURES) - len(SECOND_VIEW_FEATURES)
    s2 = np.where(valid, view.cells.astype(np.float64), np.nan)
    n_valid = valid.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nansum(s2, axis=1) / np.maximum(n_valid, 1)
        sd = np.sqrt(np.nansum((s2 - mean[:, None]) ** 2, axis=1) / np.maximum(n_valid, 1))
    sd = np.where(sd > 0, sd, 1.0)
    out[..., base] = np.nan_to_num((s2 - mean[:, None]) / sd[:, None])
    # rank of each cell in its row by the second view (0 = best; ties to the lower column)
    order = np.argsort(-np.where(valid, s2, -np.inf), axis=1, kind="stable")
    rank2 = np.empty_like(order)
    np.put_along_axis(rank2, order, np.arange(k)[None, :].repeat(n_q, 0), axis=1)
    out[..., base + 1] = np.log1p(rank2)
    out[..., base + 2] = np.log1p(rank2) - np.log1p(np.arange(k))[None, :]
    qp = data.positives.query_of_pair()
    ps = view.positives.astype(np.float64)
    ok = known & np.isfinite(ps)
    lo = np.full(n_q, np.inf)
    hi = np.full(n_q, -np.inf)
    np.fmin.at(lo, qp[ok], ps[ok])
    np.fmax.at(hi, qp[ok], ps[ok])
    out[..., base + 3] = np.where(np.isfinite(lo)[:, None], np.nan_to_num((s2 - lo[:, None]) / sd[:, None]), 0.0)
    out[..., base + 4] = np.where(np.isfinite(hi)[:, None], np.nan_to_num((s2 - hi[:, None]) / sd[:, None]), 0.0)


def features(data: MiningData, cand: Candidates, known: np.ndarray, tfidf: TextVectors,
             doc_embeddings: np.ndarray | DenseRows | None = None, view: SecondView | None = None,
             beyond_query: bool = False) -> np.ndarray:
    """``float32[n_queries, k, F]`` features of every cell against the known positives
    ``known bool[n_pairs]`` (a mask over ``data.positives``); padding rows are 0, and so are the
    second-view features without a ``view`` and the beyond-query ones unless ``beyond_query``."""
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
        spaces: list[Any] = [_Space(tfidf.matrix, tfidf.rows, dense=False)]
        if isinstance(doc_embeddings, DenseRows):
            spaces.append(_Space(doc_embeddings.matrix, doc_embeddings.rows, dense=True))
        elif doc_embeddings is not None:
            spaces.append(_Space(doc_embeddings, None, dense=True))
        if beyond_query:
            spaces.append(_BeyondQuery(tfidf, data))
        sims = _to_positives(spaces, cell_q, cell_doc, start, counts, kp)
        if beyond_query:
            out[cell_q, cell_c, 11], out[cell_q, cell_c, 12] = sims[-1]
        (mx, mn), coh = sims[0], _cohesion(tfidf, start, counts, kp)[cell_q]
        out[cell_q, cell_c, 0], out[cell_q, cell_c, 1] = mx, mn
        out[cell_q, cell_c, 2] = np.where(np.isfinite(coh), mx - coh, 0.0)
        if doc_embeddings is not None:
            out[cell_q, cell_c, 3], out[cell_q, cell_c, 4] = sims[1]
    if view is not None:
        _second_view_features(out, view, known, data, valid)
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
    ek = ex.pair_keys(n_docs)
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
                 view: str = "halves", mechanisms: tuple[str, ...] | str = MECHANISMS,
                 features: tuple[str, ...] | None = None) -> None:
        used = tuple(features) if features is not None else DEFAULT_FEATURES
        unknown = [f for f in used or () if f not in FEATURES]
        if unknown or (used is not None and not used):
            raise ConfigError(f"unknown detector features {unknown or used!r}; pick among {', '.join(FEATURES)}")
        self.features = used
        if view not in ("halves", "all"):
            raise ConfigError(f"unknown detector view {view!r}; pick halves or all")
        self.view = view
        if model not in MODELS:
            raise ConfigError(f"unknown detector model {model!r}; pick one of {', '.join(MODELS)}")
        if folds < 2:
            raise ConfigError(f"detector folds must be >= 2, got {folds}")
        mechs = (mechanisms,) if isinstance(mechanisms, str) else tuple(mechanisms)
        if not mechs or any(m not in MECHANISMS for m in mechs) or len(set(mechs)) != len(mechs):
            raise ConfigError(f"detector mechanisms must be distinct names among {', '.join(MECHANISMS)}, "
                              f"got {mechanisms!r}")
        self.mechanisms = mechs
        self.model = model
        self.folds = int(folds)
        self.max_train_rows = int(max_train_rows)

    def config(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "model": self.model, "folds": self.folds, "view": self.view}
        if self.mechanisms != ("random",):
            out["mechanisms"] = list(self.mechanisms)
        if self.features is not None:
            out["features"] = list(self.features)
        return out

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
                    doc_embeddings: np.ndarray | None = None, tfidf: TextVectors | None = None,
                    view: SecondView | None = None) -> Detection:
        """Cross-fitted false-negative probabilities of every candidate cell.

        One model per fold, fitted on the pseudo-hidden positives of every mechanism of
        ``self.mechanisms`` (``random``: a seeded half; ``pool``: the half the second view ranks
        lowest), each with its features against its own pseudo-visible half; the prediction
        averages the views of every mechanism. ``tfidf`` and ``view`` (aligned with ``data``) may
        be given already computed on a superset of the documents — the calibration passes those of
        the run's data, so that its detectors and the run's see the same spaces."""
        metrics = require("sklearn.metrics")
        n_q, k = cand.ids.shape
        tfidf = tfidf if tfidf is not None else _tfidf(data, cand)
        view = view if view is not None else second_view(data, cand, tfidf, doc_embeddings)
        all_known = np.ones(len(data.positives.indices), dtype=bool)
        qp = data.positives.query_of_pair()
        halves = self.view == "halves"
        used = self.features if self.features is not None else auto_features(doc_embeddings is not None)
        emb = None if doc_embeddings is None else DenseRows(np.asarray(doc_embeddings[tfidf.rows], np.float32),
                                                            tfidf.rows)
        cols = np.array([FEATURES.index(f) for f in used])
        beyond = any(f in BEYOND_QUERY_FEATURES for f in used)
        per_mech = []  # (name, features to train on, features against the other half, labels)
        for mech in self.mechanisms:
            merit = pool_merit(data, cand.positive_scores, view.positives, "gap") if mech == "pool" else None
            hidden = pseudo_hide(data, seed, merit=merit)
            x_train = features(data, cand, ~hidden, tfidf, emb, view, beyond)[..., cols]
            # "halves": score against each half of the known positives (the view the model was
            # trained on) and average, so the probabilities do not drift with the number of known
            # positives
            split_q = np.bincount(qp[hidden], minlength=n_q) > 0
            other_half = hidden | ~split_q[qp]  # unsplit queries: all their positives
            x_pred = features(data, cand, other_half if halves else all_known, tfidf, emb, view, beyond)[..., cols]
            per_mech.append((mech, x_train, x_pred, _labels(data, cand, hidden, ~hidden), split_q))
        trainable = per_mech[0][4]
        fold = fold_of(data, self.folds, seed)
        prob = np.full((n_q, k), np.nan, dtype=np.float32)
        valid = cand.ids >= 0
        held: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {m: ([], []) for m in self.mechanisms}
        fitted = 0
        lab0 = per_mech[0][3]
        base_rate = float((lab0[trainable] == 1).sum() / max((lab0[trainable] >= 0).sum(), 1))
        for f in range(self.folds):
            test_q = fold == f
            if not test_q.any():
                continue
            tr = [(trainable & ~test_q)[:, None] & (lab >= 0) for _, _, _, lab, _ in per_mech]
            y = np.concatenate([lab[t] for t, (_, _, _, lab, _) in zip(tr, per_mech)]).astype(np.int64)
            x = np.concatenate([xt[t] for t, (_, xt, _, _, _) in zip(tr, per_mech)])
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
            acc = np.zeros(int(cells.sum()))
            for _, x_train, x_pred, _, split_q in per_mech:
                p_pred = est.predict_proba(x_pred[cells])[:, 1]
                if halves:  # queries with one positive have no halves: x_pred is against all of it
                    other = est.predict_proba(x_train[cells])[:, 1]
                    p_pred = np.where(np.broadcast_to(split_q[:, None], cells.shape)[cells], (p_pred + other) / 2,
                                      p_pred)
                acc += p_pred
            prob[cells] = (acc / len(per_mech)).astype(np.float32)
            for mech, x_train, _, lab, _ in per_mech:
                ht = (trainable & test_q)[:, None] & (lab >= 0)
                if ht.any():
                    held[mech][0].append(lab[ht].astype(np.int64))
                    held[mech][1].append(est.predict_proba(x_train[ht])[:, 1])
        stats: dict[str, Any] = {"model": self.model, "folds": self.folds, "fitted_folds": fitted,
                                 "training_queries": int(trainable.sum()), "base_rate": base_rate,
                                 "features": list(used), "dense_features": doc_embeddings is not None,
                                 "second_view": view.name, "mechanisms": list(self.mechanisms)}
        for i, mech in enumerate(self.mechanisms):
            hy, hp = held[mech]
            if not hy:
                continue
            yy, pp = np.concatenate(hy), np.concatenate(hp)
            auc = float(metrics.roc_auc_score(yy, pp)) if 0 < yy.sum() < len(yy) else float("nan")
            stats.setdefault("heldout_auc_by_mechanism", {})[mech] = auc
            if i == 0:  # the first mechanism's figures under the historical keys
                stats["heldout_cells"] = len(yy)
                stats["heldout_positives"] = int(yy.sum())
                stats["heldout_auc"] = auc
                stats["heldout_mean_probability"] = float(pp.mean())
                stats["heldout_positive_rate"] = float(yy.mean())
        return Detection(prob, stats)
