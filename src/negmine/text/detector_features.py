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


#: pairs (candidate, positive) whose similarities are computed at once (bounds the memory of one
#: chunk's products and gathered rows)
PAIR_CHUNK = 65_536


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


def _tagged(matrix: Any, idx: np.ndarray, tag: np.ndarray, n_tags: int) -> Any:
    """Rows ``idx`` of the CSR ``matrix`` (float64) with each row's columns moved to the block of
    its ``tag``: column ``w`` of a row tagged ``t`` becomes ``t * width + w``. Two tagged matrices
    multiply only where their rows share a tag, so one sparse product gives every same-query pair
    and no other."""
    sparse = require("scipy.sparse")
    sub = matrix[idx]
    width = np.int64(matrix.shape[1])
    cols = sub.indices.astype(np.int64) + np.repeat(tag.astype(np.int64) * width, np.diff(sub.indptr))
    return sparse.csr_matrix((sub.data.astype(np.float64), cols, sub.indptr.astype(np.int64)),
                             shape=(len(idx), int(n_tags * width)))


def _unit_rows(m: Any) -> Any:
    """``m`` (CSR, float64) with each row scaled to unit L2 norm, in place; rows of (near-)zero
    norm become empty."""
    lengths = np.diff(m.indptr)
    sq = np.zeros(m.shape[0])
    nz = lengths > 0
    if nz.any():
        sq[nz] = np.add.reduceat(m.data * m.data, m.indptr[:-1][nz])
    norm = np.sqrt(sq)
    scale = np.where(norm > 1e-12, 1.0 / np.where(norm > 1e-12, norm, 1.0), 0.0)
    m.data *= np.repeat(scale, lengths)
    m.eliminate_zeros()
    return m


class _Space:
    """One vector space of documents: TF-IDF rows of the involved documents (sparse, non-negative),
    or dense embeddings indexed by corpus row."""

    def __init__(self, matrix: Any, rows: np.ndarray | None, dense: bool) -> None:
        self.matrix, self.rows, self.dense = matrix, rows, dense

    def _at(self, docs: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.rows, docs) if self.rows is not None else docs

    def block(self, docs: np.ndarray, tag: np.ndarray, n_tags: int) -> Any:
        """The rows of ``docs``, tagged (see :func:`_tagged`)."""
        return _tagged(self.matrix, self._at(docs), tag, n_tags)


class _BeyondQuery(_Space):
    """TF-IDF cosine of two documents over the words that are *not* in the cell's query: how alike
    they are beyond what a lexical pool matched them on (the query's own words): both documents'
    vectors without the query's words, each re-normalised (0 where nothing is left)."""

    def __init__(self, tfidf: TextVectors, data: MiningData) -> None:
        super().__init__(tfidf.matrix, tfidf.rows, dense=False)
        q = tfidf.vectorizer.transform(data.queries.texts).tocsr() if tfidf.vectorizer is not None else None
        if q is None:
            sparse = require("scipy.sparse")
            q = sparse.csr_matrix((len(data.queries), self.matrix.shape[1]))
        self.query_words = q

    def block(self, docs: np.ndarray, tag: np.ndarray, n_tags: int, queries: np.ndarray | None = None) -> Any:
        m = _tagged(self.matrix, self._at(docs), tag, n_tags)
        if queries is not None:  # drop each row's query words: the same tagged columns in the queries
            qw = _tagged(self.query_words, queries, np.arange(len(queries)), len(queries))
            drop = np.isin(m.indices, qw.indices)
            m.data[drop] = 0.0
            m.eliminate_zeros()
        return _unit_rows(m)


def _dense_to_positives(space: _Space, cq: np.ndarray, docs: np.ndarray, pos: np.ndarray,
                        count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Max and mean dense cosine of each cell (query ``cq``, document ``docs``) to its query's
    positives (``pos``, ``count[q]`` per query, stored by query). Queries are bucketed by their
    number of positives (powers of two) and each bucket is one batched product of its cells'
    and its positives' rows, zero-padded: no (cell, positive) pair is gathered row by row. The
    product is numpy's own einsum loop, not BLAS: the features do not depend on the BLAS kernel."""
    n_q = len(count)
    mat = space.matrix
    x_rows = np.asarray(mat[space._at(docs)], dtype=np.float32)
    y_rows = np.asarray(mat[space._at(pos)], dtype=np.float32)
    cells_of = np.bincount(cq, minlength=n_q)
    cell_first = np.cumsum(cells_of) - cells_of
    cell_j = np.arange(len(cq)) - cell_first[cq]
    pos_first = np.cumsum(count) - count
    mx, mn = np.empty(len(cq)), np.empty(len(cq))
    width = np.where(count > 0, 1 << np.ceil(np.log2(np.maximum(count, 1))).astype(np.int64), 0)
    for w in np.unique(width[cells_of > 0]):
        qs = np.flatnonzero((width == w) & (cells_of > 0))
        local = np.full(n_q, -1)
        local[qs] = np.arange(len(qs))
        sel = np.flatnonzero(local[cq] >= 0)
        x = np.zeros((len(qs), int(cells_of[qs].max()), mat.shape[1]), dtype=np.float32)
        x[local[cq[sel]], cell_j[sel]] = x_rows[sel]
        y = np.zeros((len(qs), int(w), mat.shape[1]), dtype=np.float32)
        pq = np.repeat(np.arange(len(qs)), count[qs])
        pj = np.arange(len(pq)) - np.repeat(np.cumsum(count[qs]) - count[qs], count[qs])
        y[pq, pj] = y_rows[np.repeat(pos_first[qs], count[qs]) + pj]
        sims = np.einsum("qkd,qmd->qkm", x, y).astype(np.float64)
        real = np.arange(int(w))[None, :] < count[qs][:, None]
        at = (local[cq[sel]], cell_j[sel])
        mx[sel] = np.where(real[:, None, :], sims, -np.inf)[at].max(axis=1)
        mn[sel] = sims[at].sum(axis=1) / count[cq[sel]]
    return mx, mn


def _dense_by_parts(space: _Space, cq: np.ndarray, docs: np.ndarray, pos: np.ndarray,
                    count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_dense_to_positives` over consecutive runs of queries of at most ``PAIR_CHUNK`` padded
    cells each (every query counted at the largest number of cells of any): the gathered and
    padded embedding rows stay ~100 MB however many cells a chunk of pairs holds (a million cells
    when each query has one positive)."""
    cells_of = np.bincount(cq, minlength=len(count))
    widest = max(int(cells_of.max(initial=0)), 1)
    pos_first = np.cumsum(count) - count
    cell_first = np.cumsum(cells_of) - cells_of
    mx, mn = np.empty(len(cq)), np.empty(len(cq))
    for a, b in _chunks(np.full(len(count), widest), PAIR_CHUNK):
        c0, c1 = int(cell_first[a]), int(cell_first[b - 1] + cells_of[b - 1])
        if c1 == c0:
            continue
        p0, p1 = int(pos_first[a]), int(pos_first[b - 1] + count[b - 1])
        mx[c0:c1], mn[c0:c1] = _dense_to_positives(space, cq[c0:c1] - a, docs[c0:c1], pos[p0:p1], count[a:b])
    return mx, mn


def _to_positives(spaces: list[Any], cell_q: np.ndarray, cell_doc: np.ndarray, start: np.ndarray,
                  count: np.ndarray, kp: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per space, max and mean cosine of each cell's document to the known positives
    ``kp[start[q]:start[q] + count[q]]`` of its query ``q`` (every cell's query has at least one;
    the cells are ordered by query). Dense spaces gather the (cell, positive) pairs; sparse spaces
    multiply the cells' and the positives' rows tagged by query (:func:`_tagged`), so only words
    a pair shares cost anything: TF-IDF rows are non-negative, so a pair sharing no word is an
    implicit 0 in both the max and the mean."""
    m = count[cell_q]
    out = [(np.empty(len(cell_q)), np.empty(len(cell_q))) for _ in spaces]
    for lo, hi in _chunks(m, 16 * PAIR_CHUNK):
        mm = m[lo:hi]
        cq = cell_q[lo:hi]
        q0, q1 = int(cq[0]), int(cq[-1]) + 1
        pos = kp[int(start[q0]):int(start[q1 - 1] + count[q1 - 1])]
        pos_q = np.repeat(np.arange(q1 - q0), count[q0:q1])
        for space, (mx, mn) in zip(spaces, out):
            if space.dense:
                mx[lo:hi], mn[lo:hi] = _dense_by_parts(space, cq - q0, cell_doc[lo:hi], pos, count[q0:q1])
                continue
            extra = {"queries": np.arange(q0, q1)} if isinstance(space, _BeyondQuery) else {}
            x = space.block(cell_doc[lo:hi], cq - q0, q1 - q0, **extra)
            y = space.block(pos, pos_q, q1 - q0, **extra)
            prod = (x @ y.T).tocsr()
            mx[lo:hi] = np.maximum(prod.max(axis=1).toarray().ravel(), 0.0)
            mn[lo:hi] = np.asarray(prod.sum(axis=1), dtype=np.float64).ravel() / mm
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
             beyond_query: bool = False, need: tuple[str, ...] | None = None) -> np.ndarray:
    """``float32[n_queries, k, F]`` features of every cell against the known positives
    ``known bool[n_pairs]`` (a mask over ``data.positives``); padding rows are 0, and so are the
    second-view features without a ``view`` and the beyond-query ones unless ``beyond_query``.
    ``need`` (feature names) leaves out the document-document spaces no needed feature reads
    (their columns stay 0); ``None`` computes every one."""
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
        def needed(*names: str) -> bool:
            return need is None or any(f in need for f in names)

        spaces: list[Any] = []
        lexical = needed(*FEATURES[:3])
        if lexical:
            spaces.append(_Space(tfidf.matrix, tfidf.rows, dense=False))
        dense = doc_embeddings is not None and needed(*FEATURES[3:5])
        if isinstance(doc_embeddings, DenseRows) and dense:
            spaces.append(_Space(doc_embeddings.matrix, doc_embeddings.rows, dense=True))
        elif dense:
            spaces.append(_Space(doc_embeddings, None, dense=True))
        beyond_query = beyond_query and needed(*BEYOND_QUERY_FEATURES)
        if beyond_query:
            spaces.append(_BeyondQuery(tfidf, data))
        sims = _to_positives(spaces, cell_q, cell_doc, start, counts, kp)
        if beyond_query:
            out[cell_q, cell_c, 11], out[cell_q, cell_c, 12] = sims[-1]
        if lexical:
            (mx, mn), coh = sims[0], _cohesion(tfidf, start, counts, kp)[cell_q]
            out[cell_q, cell_c, 0], out[cell_q, cell_c, 1] = mx, mn
            out[cell_q, cell_c, 2] = np.where(np.isfinite(coh), mx - coh, 0.0)
        if dense:
            out[cell_q, cell_c, 3], out[cell_q, cell_c, 4] = sims[int(lexical)]
    if view is not None:
        _second_view_features(out, view, known, data, valid)
    out[~valid] = 0.0
    return out

