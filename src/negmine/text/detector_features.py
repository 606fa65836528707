"""The detector's features: document vector spaces (TF-IDF of the involved documents, dense
embeddings), the similarity of each candidate cell to its query's known positives, and the
score and second-view features (the list in :mod:`negmine.text.detector`'s module doc)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from negmine.core.optional import require
from negmine.text.types import Candidates, MiningData

if TYPE_CHECKING:
    from negmine.text.detector_views import SecondView

SECOND_VIEW_FEATURES = ("view2_score_z", "view2_log_rank", "rank_gap", "view2_vs_min_pos", "view2_vs_max_pos")
FEATURES = ("tfidf_max", "tfidf_mean", "tfidf_max_vs_cohesion", "dense_max", "dense_mean", "log_rank",
            "score_z", "score_vs_min_pos", "score_vs_max_pos", "agreement", "log_positives",
            "tfidf_beyond_query_max", "tfidf_beyond_query_mean", *SECOND_VIEW_FEATURES)

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

