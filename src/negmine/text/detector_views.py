"""The second view of the detector: an independent scoring of each candidate and each known
positive by its query (BM25 of the involved documents for a dense miner, an LSA cosine for a
lexical one), which the ``pool`` mechanism ranks known positives by and which gives features
13-17."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from negmine.core.optional import require
from negmine.text.detector_features import PAIR_CHUNK, TextVectors, _memo, _tfidf, involved_rows
from negmine.text.types import Candidates, MiningData

#: BM25 constants of the lexical second view (bm25s / Lucene defaults)
BM25_K1, BM25_B = 1.5, 0.75
#: dimensions of the latent (LSA) second view, when no dense embeddings exist
LATENT_DIMS = 64
#: power iterations of the latent view's randomised subspace iteration (scikit-learn's TruncatedSVD used 4)
LATENT_ITERATIONS = 4


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


def _bm25_weights(data: MiningData, rows: np.ndarray, stop_words: str | None = "english") -> tuple[Any, Any] | None:
    """``(vectorizer, BM25 document-term weights)`` of the documents ``rows`` (None: no vocabulary)."""
    text = require("sklearn.feature_extraction.text")
    vec = text.CountVectorizer(stop_words=stop_words, dtype=np.float32)
    try:
        tf = vec.fit_transform(data.corpus.full_texts_at(rows)).tocsr().astype(np.float64)
    except ValueError:
        return None
    return vec, _bm25_from_counts(tf)


def _bm25_from_counts(tf: Any) -> Any:
    """BM25 document-term weights (CSR) of a document-term count matrix (CSR, float64)."""
    n = tf.shape[0]
    df = np.bincount(tf.indices, minlength=tf.shape[1]).astype(np.float64)
    idf = np.log1p((n - df + 0.5) / (df + 0.5))
    dl = np.asarray(tf.sum(axis=1)).ravel()
    norm = BM25_K1 * (1 - BM25_B + BM25_B * dl / max(float(dl.mean()), 1e-9))
    row_of = np.repeat(np.arange(n), np.diff(tf.indptr))
    w = tf.copy()
    w.data = idf[tf.indices] * tf.data * (BM25_K1 + 1) / (tf.data + norm[row_of])
    return w.tocsr()


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


def _orthonormal_rows(rows: np.ndarray) -> np.ndarray:
    """An orthonormal basis (as rows) of the span of ``rows`` (``d × n``), by modified Gram-Schmidt
    with numpy's own loops (no BLAS or LAPACK); rows that add nothing new (relative norm below
    1e-10: a rank-deficient span) become zero."""
    out = np.array(rows, dtype=np.float64)
    for j in range(len(out)):
        size0 = float(np.sqrt(np.sum(out[j] * out[j])))
        for _ in range(2):  # twice is enough (Giraud et al., 2005)
            if j:
                out[j] -= np.einsum("ki,k->i", out[:j], np.einsum("ki,i->k", out[:j], out[j]))
        size = float(np.sqrt(np.sum(out[j] * out[j])))
        out[j] = out[j] / size if size > 1e-10 * max(size0, 1e-300) else 0.0
    return out


def latent_basis(matrix: Any, dims: int, n_iter: int = LATENT_ITERATIONS, seed: int = 0) -> np.ndarray:
    """``float64[n_terms, dims]``: an orthonormal basis of (about) the top-``dims`` right singular
    subspace of the sparse ``matrix`` (documents × terms), by seeded randomised subspace iteration
    (Halko, Martinsson & Tropp, 2011) written without BLAS: sparse products are scipy's own loops,
    orthonormalisation :func:`_orthonormal_rows`. Cosines of ``matrix @ basis`` rows are those of
    LSA's space (they do not depend on the rotation inside the subspace), and the bytes do not
    depend on the BLAS kernel — identical documents get identical coordinates."""
    x = matrix.tocsr().astype(np.float64)
    xt = x.T.tocsr()

    def through(m: Any, basis_rows: np.ndarray) -> np.ndarray:  # orthonormal rows spanning m @ basis
        return _orthonormal_rows(np.ascontiguousarray((m @ np.ascontiguousarray(basis_rows.T)).T))

    q_docs = through(x, np.random.default_rng(seed).standard_normal((x.shape[1], dims)).T)
    for _ in range(n_iter):
        q_docs = through(x, through(xt, q_docs))
    return np.ascontiguousarray(through(xt, q_docs).T)


def _latent_view(data: MiningData, cand: Candidates, tfidf: TextVectors) -> SecondView:
    """Cosine of query and document in an LSA space (the top ``LATENT_DIMS`` right singular
    subspace of the involved documents' TF-IDF, :func:`latent_basis`, fixed seed): a cheap semantic
    view where no dense embeddings exist."""
    sparse = require("scipy.sparse")
    dims = min(LATENT_DIMS, tfidf.matrix.shape[0] - 1, tfidf.matrix.shape[1] - 1)
    if tfidf.vectorizer is None or dims < 2:
        view = _view_of_pairs(sparse.csr_matrix((len(data.queries), 1)),
                              sparse.csr_matrix((max(len(tfidf.rows), 1), 1)), tfidf.rows, data, cand)
        view.name = "latent"
        return view
    basis = latent_basis(tfidf.matrix, dims)
    docs = np.asarray(tfidf.matrix.astype(np.float64) @ basis)
    queries = np.asarray(tfidf.vectorizer.transform(data.queries.texts).astype(np.float64) @ basis)

    def unit(x: np.ndarray) -> np.ndarray:
        nrm = np.sqrt(np.sum(x * x, axis=1, keepdims=True))
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



#: corpus cells (queries × documents) of one block of :func:`judged_by_lexical_pool`'s scores
JUDGED_BLOCK_CELLS = 1 << 24
#: the lexical systems a labelling pool is matched against (:func:`judged_by_lexical_pool`), in the
#: order that breaks ties: BM25 (k1 1.5, b 0.75) and TF-IDF cosine (sublinear tf), each with English
#: stop words removed and with every word kept
POOL_STAND_INS = ("bm25", "bm25-all-words", "tfidf", "tfidf-all-words")


@dataclass
class LexicalPool:
    """What :func:`judged_by_lexical_pool` found: the stand-in for the labelling system, how deep
    its judges looked, the judged cells (``bool[n_queries, k]``) and every stand-in's depth."""

    stand_in: str
    depth: int
    judged: np.ndarray
    depths: dict[str, int | None]


def _stand_ins(data: MiningData) -> Iterator[tuple[str, tuple[Any, Any] | None]]:
    """Each of :data:`POOL_STAND_INS` in turn: ``(name, (query-term matrix, term-document weights))``
    over the whole corpus (document frequencies and lengths over it), ``None`` without a
    vocabulary. The corpus is tokenised once; the stop-word variants drop those columns, which is
    what removing the words before counting gives."""
    text = require("sklearn.feature_extraction.text")
    vec = text.CountVectorizer(dtype=np.float64)
    try:
        counts = vec.fit_transform(data.corpus.full_texts_at(np.arange(len(data.corpus)))).tocsr()
    except ValueError:  # no word in the corpus
        for name in POOL_STAND_INS:
            yield name, None
        return
    q_counts = vec.transform(data.queries.texts).tocsr()
    content = np.flatnonzero(~np.isin(vec.get_feature_names_out(), sorted(text.ENGLISH_STOP_WORDS)))
    for name in POOL_STAND_INS:
        tf, qf = (counts, q_counts) if name.endswith("all-words") else (counts[:, content], q_counts[:, content])
        if not tf.shape[1]:
            yield name, None
        elif name.startswith("bm25"):
            yield name, (qf, _bm25_from_counts(tf).T.tocsr())
        else:
            tfidf = text.TfidfTransformer(sublinear_tf=True)
            # CSR @ CSR: no conversion per block of queries
            yield name, (tfidf.fit(tf).transform(qf).tocsr(), tfidf.transform(tf).T.tocsr())


def _pool_depth(q_mat: Any, wt: Any, data: MiningData, cand: Candidates, quantile: float,
                use: np.ndarray) -> tuple[int, np.ndarray] | None:
    """One stand-in's depth (the corpus rank, 0-based, that holds ``quantile`` of the known positives
    of the ``use`` queries, plus one) and its judged cells: each query's candidates scored at least
    its score at that depth, and above 0. ``None`` when the depth reaches the candidates' depth."""
    pos = data.positives
    ids = cand.ids
    n_q, k = ids.shape
    n_docs = len(data.corpus)
    top = np.zeros((n_q, k), dtype=np.float64)  # each query's best k corpus scores, descending
    cells = np.full((n_q, k), -np.inf, dtype=np.float64)  # each candidate's corpus score
    ranks = np.empty(len(pos.indices), dtype=np.int64)  # each known positive's corpus rank, capped at k
    qp = pos.query_of_pair()
    step = max(1, JUDGED_BLOCK_CELLS // n_docs)
    kk = min(k, n_docs)
    for s in range(0, n_q, step):
        scores = np.asarray((q_mat[s : s + step] @ wt).todense())
        e = s + len(scores)
        part = -np.partition(-scores, kk - 1, axis=1)[:, :kk] if kk < n_docs else scores
        top[s:e, :kk] = -np.sort(-part, axis=1)[:, :kk]
        valid = ids[s:e] >= 0
        cells[s:e][valid] = scores[np.nonzero(valid)[0], ids[s:e][valid]]
        lo, hi = int(pos.indptr[s]), int(pos.indptr[e])
        own = scores[qp[lo:hi] - s, pos.indices[lo:hi]]
        # documents scored above it among the query's best k: k (beyond the lists) when below them
        # all, or when it scores 0 (no word in common: this system cannot rank it at all)
        ranks[lo:hi] = np.where(own > 0, (top[qp[lo:hi]] > own[:, None]).sum(axis=1), k)
    depth = int(np.quantile(ranks[use[qp]], quantile, method="higher")) + 1
    if depth >= k:
        return None
    cut = top[:, depth - 1]
    return depth, (ids >= 0) & (cells >= cut[:, None]) & (cut[:, None] > 0)


def judged_by_lexical_pool(data: MiningData, cand: Candidates, quantile: float) -> LexicalPool | None:
    """The candidates a *lexical* labelling pool showed its judges, when the known positives look
    pooled by the second view rather than by a dense miner (:func:`negmine.text.holdout.pool_signature`,
    ``by == "view"``).

    The labelling system is unknown, so each of :data:`POOL_STAND_INS` ranks the whole corpus for
    each query, and the one that ranks the known positives highest stands in for it: the smallest
    *depth*, the corpus rank (0-based) that holds ``quantile`` of the known positives of the queries
    with two or more, plus one (ties to the earlier stand-in). A pool put every known positive in
    its top, so the system most like it reaches them soonest. The depth is how deep the judges
    looked. A candidate that stand-in scores at least the query's score at that depth (and above 0)
    was in the pool; if it is not a known positive, it was seen and not chosen: a judged negative.

    ``None`` without queries with two or more known positives, without a vocabulary, or when every
    depth reaches past the candidates' depth (nothing to tell judged from unseen). One pass over
    the corpus per query and stand-in, in blocks of at most :data:`JUDGED_BLOCK_CELLS` scores."""
    use = data.positives.counts() >= 2
    if not use.any() or not len(data.corpus) or not cand.ids.shape[1]:
        return None
    depths: dict[str, int | None] = {}
    best: tuple[int, str, np.ndarray] | None = None
    for name, built in _stand_ins(data):
        found = None if built is None else _pool_depth(*built, data, cand, quantile, use)
        depths[name] = None if found is None else found[0]
        if found is not None and (best is None or found[0] < best[0]):
            best = (found[0], name, found[1])
    if best is None:
        return None
    return LexicalPool(stand_in=best[1], depth=best[0], judged=best[2], depths=depths)
