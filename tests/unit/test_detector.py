"""The false-negative detector on planted data.

``planted(near=True)``: every query has its own topic vocabulary; its positives are written in it,
the other candidates are not. Half of the positives are hidden from the detector: they are *near*
the visible ones, and the detector must find them. ``planted(near=False)``: the positives are as
generic as the other candidates (nothing relates hidden to visible positives): the detector must
not pretend — its probabilities stay near the base rate and its held-out AUC near 0.5.
Retrieval scores are random in both, so only document-document similarity can carry a signal.
"""

from __future__ import annotations

import numpy as np
import pytest

from negmine.core.errors import ConfigError
from negmine.text.audit import hide_fraction, restrict
from negmine.text.detector import FEATURES, Detector, features, fold_of, pseudo_hide
from negmine.text.filters import FilterInput, FnMaxProb
from negmine.text.types import Candidates, Corpus, MiningData, Qrels, Queries

N_Q, N_POS, K, N_DISTRACT = 40, 8, 50, 1200


def planted(near: bool, seed: int = 0) -> tuple[MiningData, Candidates]:
    """Data and candidates (``K`` per query: its ``N_POS`` positives among distractors, at random
    ranks with random scores)."""
    rng = np.random.default_rng(seed)
    common = [f"c{i}" for i in range(300)]

    def doc(topic: int | None) -> str:
        words = list(rng.choice(common, 10))
        if topic is not None:
            words += [f"t{topic}w{i}" for i in rng.choice(20, 6, replace=False)]
        return " ".join(words)

    texts = [doc(None) for _ in range(N_DISTRACT)]
    pos_rows = []
    for q in range(N_Q):
        pos_rows.append(list(range(len(texts), len(texts) + N_POS)))
        texts += [doc(q if near else None) for _ in range(N_POS)]
    corpus = Corpus(ids=[f"d{i}" for i in range(len(texts))], texts=texts)
    queries = Queries(ids=[f"q{i}" for i in range(N_Q)], texts=[f"query {i}" for i in range(N_Q)])
    qq = np.repeat(np.arange(N_Q), N_POS)
    pos = Qrels.from_pairs(N_Q, qq, np.array(pos_rows).ravel())
    data = MiningData(corpus, queries, pos, pos)
    ids = np.zeros((N_Q, K), np.int64)
    for q in range(N_Q):
        row = np.concatenate([pos_rows[q], rng.choice(N_DISTRACT, K - N_POS, replace=False)])
        ids[q] = rng.permutation(row)
    scores = np.sort(rng.uniform(0, 1, (N_Q, K)), axis=1)[:, ::-1].astype(np.float32)
    doc_score = {(q, int(d)): float(s) for q in range(N_Q) for d, s in zip(ids[q], scores[q])}
    ps = np.array([doc_score[(int(q), int(d))] for q, d in zip(pos.query_of_pair(), pos.indices)], np.float32)
    cand = Candidates(ids, scores, np.ones(ids.shape, np.uint8), ["planted"], ps)
    return data, cand


def _hidden_cells(data: MiningData, cand: Candidates, seed: int = 3):
    split = hide_fraction(data, 0.5, seed)
    vis = split.visible
    vcand = restrict(cand, data.positives, vis.positives, len(data.corpus))
    n_docs = len(data.corpus)
    keys = np.arange(N_Q)[:, None] * n_docs + vcand.ids
    hk = split.hidden.query_of_pair() * n_docs + split.hidden.indices
    vk = vis.positives.query_of_pair() * n_docs + vis.positives.indices
    hidden = np.isin(keys, hk)
    other = ~hidden & ~np.isin(keys, vk)
    return vis, vcand, hidden, other


def _auc(p: np.ndarray, y: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p))


@pytest.mark.extra("detect")
def test_finds_hidden_positives_near_visible_ones():
    vis, vcand, hidden, other = _hidden_cells(*planted(near=True))
    det = Detector().fit_predict(vis, vcand, seed=1)
    p = det.probability
    cells = hidden | other
    assert _auc(p[cells], hidden[cells]) > 0.95
    assert p[hidden].mean() > 0.2 > 0.03 > p[other].mean()
    assert det.stats["heldout_auc"] > 0.9  # the detector knows it works
    # the filter drops most hidden positives and keeps nearly every other candidate
    keep = FnMaxProb(0.1).keep(FilterInput(vcand, vis, fn_probability=p))
    assert keep[hidden].mean() < 0.2 and keep[other].mean() > 0.95


def test_spline_basis_bends_at_the_training_quartiles():
    """The spline model's basis, by hand: each feature and its hinges max(0, x - t) at the
    training quartiles t (1, 2, 3 for the values 0..4); the logistic model (the default) has none."""
    from negmine.core.logistic import LogisticModel

    m = Detector(model="spline")._estimator(0)
    assert isinstance(m, LogisticModel) and m.knots == (0.25, 0.5, 0.75) and m.warm_start
    m.fit(np.array([[0.0], [1.0], [2.0], [3.0], [4.0]]), np.array([0, 0, 1, 0, 1]))
    np.testing.assert_allclose(m.knots_[:, 0], [1.0, 2.0, 3.0])
    np.testing.assert_allclose(m._basis(np.array([[2.5], [0.5]])), [[2.5, 1.5, 0.5, 0.0], [0.5, 0, 0, 0]])
    assert Detector().model == "logistic"
    plain = Detector(model="logistic")._estimator(0)
    assert isinstance(plain, LogisticModel) and plain.knots == () and not plain.warm_start


@pytest.mark.extra("detect")
@pytest.mark.parametrize("model", ["spline", "logistic"])
def test_both_linear_models_find_planted_hidden_positives_and_are_seeded(model: str):
    vis, vcand, hidden, other = _hidden_cells(*planted(near=True))
    p = Detector(model=model).fit_predict(vis, vcand, seed=1).probability
    cells = hidden | other
    assert _auc(p[cells], hidden[cells]) > 0.95
    np.testing.assert_array_equal(p, Detector(model=model).fit_predict(vis, vcand, seed=1).probability)


@pytest.mark.extra("detect")
def test_does_not_pretend_where_hidden_positives_are_not_near_visible_ones():
    vis, vcand, hidden, other = _hidden_cells(*planted(near=False))
    det = Detector().fit_predict(vis, vcand, seed=1)
    p = det.probability
    base = hidden.sum() / (hidden | other).sum()  # 4 of 46 candidates
    assert abs(det.stats["heldout_auc"] - 0.5) < 0.15
    assert p[hidden].mean() < 2 * base and p[other].mean() < 2 * base
    assert np.nanmax(p) < 0.5  # no confident flags without evidence
    keep = FnMaxProb(0.5).keep(FilterInput(vcand, vis, fn_probability=p))
    assert keep[hidden].mean() > 0.9  # so a threshold removes (almost) nothing


@pytest.mark.extra("detect")
def test_probabilities_are_seeded_and_position_free():
    data, cand = planted(near=True)
    a = Detector().fit_predict(data, cand, seed=5).probability
    b = Detector().fit_predict(data, cand, seed=5).probability
    np.testing.assert_array_equal(a, b)
    # reversed query order: each query's probabilities are the same
    order = np.arange(N_Q)[::-1]
    pos = data.positives
    inv = np.empty_like(order)
    inv[order] = np.arange(N_Q)
    qrels = Qrels.from_pairs(N_Q, inv[pos.query_of_pair()], pos.indices)
    rdata = MiningData(data.corpus, Queries([data.queries.ids[i] for i in order],
                                            [data.queries.texts[i] for i in order]), qrels, qrels)
    key = np.argsort(inv[pos.query_of_pair()] * 10_000 + pos.indices, kind="stable")
    rcand = Candidates(cand.ids[order], cand.scores[order], cand.sources[order], cand.source_names,
                       cand.positive_scores[key])
    r = Detector().fit_predict(rdata, rcand, seed=5).probability
    np.testing.assert_allclose(r[inv], a, rtol=1e-5, atol=1e-6)


def test_folds_and_pseudo_hiding_are_hashes_of_ids():
    data, _ = planted(near=True)
    f = fold_of(data, 5, 0)
    assert set(f.tolist()) <= set(range(5)) and len(set(f.tolist())) == 5
    h = pseudo_hide(data, 0)
    per_query = np.bincount(data.positives.query_of_pair()[h], minlength=N_Q)
    assert (per_query == N_POS // 2).all()
    assert not np.array_equal(h, pseudo_hide(data, 1))


@pytest.mark.extra("detect")
def test_features_against_known_positives():
    data, cand = planted(near=True)
    from negmine.text.detector import _tfidf

    x = features(data, cand, np.ones(len(data.positives.indices), bool), _tfidf(data, cand))
    assert x.shape == (N_Q, K, len(FEATURES))
    # a positive's max TF-IDF cosine to the known positives (itself included) is 1
    pos_cells = np.isin(cand.ids, data.positives.indices)
    np.testing.assert_allclose(x[..., 0][pos_cells], 1.0, atol=1e-5)
    np.testing.assert_allclose(x[..., 5], np.broadcast_to(np.log1p(np.arange(K)), (N_Q, K)), rtol=1e-6)
    np.testing.assert_allclose(x[..., 10], np.log1p(N_POS))


def _reference_similarities(mat, ids, valid, known_by_query):
    """The similarity features computed the plain way: per query, candidate x positive matrices."""
    n_q, k = ids.shape
    out = np.zeros((n_q, k, 3))
    for q in range(n_q):
        p = known_by_query[q]
        cols = np.flatnonzero(valid[q])
        if not len(p) or not len(cols):
            continue
        c, pm = mat[ids[q, cols]], mat[p]
        sim = np.asarray(c @ pm.T if isinstance(c, np.ndarray) else (c @ pm.T).toarray(), dtype=np.float64)
        pp = np.asarray(pm @ pm.T if isinstance(pm, np.ndarray) else (pm @ pm.T).toarray(), dtype=np.float64)
        n = len(p)
        coh = (pp.sum() - np.trace(pp)) / (n * (n - 1)) if n > 1 else np.nan
        out[q, cols, 0], out[q, cols, 1] = sim.max(1), sim.mean(1)
        out[q, cols, 2] = sim.max(1) - coh if n > 1 else 0.0
    return out


@pytest.mark.extra("detect")
@pytest.mark.parametrize("chunk", [7, 65_536])
def test_similarity_features_equal_the_per_query_computation(monkeypatch: pytest.MonkeyPatch, chunk: int):
    """Vectorised over (cell, positive) pairs in chunks (tiny ones too), the TF-IDF and dense
    features equal candidate x positive matrix products query by query: queries with several
    positives, one positive (no cohesion), none (zeros), and padding cells."""
    import negmine.text.detector_features as D

    monkeypatch.setattr(D, "PAIR_CHUNK", chunk)
    data, cand = planted(near=True)
    ids, scores = cand.ids.copy(), cand.scores.copy()
    ids[3, -4:], scores[3, -4:] = -1, -np.inf  # padding
    cand = Candidates(ids, scores, cand.sources, cand.source_names, cand.positive_scores)
    qp = data.positives.query_of_pair()
    known = np.ones(len(qp), bool)
    known[qp == 0] = False  # query 0: no known positive
    first_of_1 = np.flatnonzero(qp == 1)[0]
    known[(qp == 1) & (np.arange(len(qp)) != first_of_1)] = False  # query 1: one
    tf = D._tfidf(data, cand)
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(len(data.corpus), 8)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    x = features(data, cand, known, tf, emb)
    by_q = [data.positives.indices[known & (qp == q)] for q in range(N_Q)]
    valid = ids >= 0
    # the TF-IDF rows belong to the involved documents: index them by corpus row for the reference
    full = tf.matrix[np.searchsorted(tf.rows, np.arange(len(data.corpus)).clip(max=tf.rows[-1]))]
    ref = _reference_similarities(full, ids, valid, by_q)
    np.testing.assert_allclose(x[..., :3], ref, atol=1e-5)
    dref = _reference_similarities(emb, ids, valid, by_q)
    np.testing.assert_allclose(x[..., 3:5], dref[..., :2], atol=1e-5)
    assert (x[0, :, :5] == 0).all() and (x[1, :, 2] == 0).all() and (x[3, -4:] == 0).all()
    assert x[2, valid[2], 0].max() == pytest.approx(1.0)  # its own positives are among its candidates
    # beyond the query's words (queries that share topic and common words with the documents):
    # per query, zero the query's columns and renormalise, by hand
    worded = MiningData(data.corpus, Queries(ids=list(data.queries.ids),
                                             texts=[f"t{q}w0 t{q}w1 t{q}w2 c{q} c7" for q in range(N_Q)]),
                        data.positives, data.positives)
    xb = features(worded, cand, known, tf, emb, beyond_query=True)
    qwords = tf.vectorizer.transform(worded.queries.texts).toarray() > 0
    assert qwords.sum(axis=1).min() >= 3
    dense_full = full.toarray()
    bref = np.zeros((N_Q, ids.shape[1], 3))
    for q in range(N_Q):
        m = np.where(qwords[q][None, :], 0.0, dense_full)
        m /= np.where(np.linalg.norm(m, axis=1, keepdims=True) > 1e-12, np.linalg.norm(m, axis=1, keepdims=True), 1)
        bref[q] = _reference_similarities(m, ids[q:q + 1], valid[q:q + 1], by_q[q:q + 1])[0]
    i = FEATURES.index("tfidf_beyond_query_max")
    np.testing.assert_allclose(xb[..., i:i + 2], bref[..., :2], atol=1e-5)
    np.testing.assert_array_equal(xb[..., :i], x[..., :i])
    # only the spaces the needed features read: the others' columns stay 0, the rest is unchanged
    need = ("dense_max", "tfidf_beyond_query_mean")
    xn = features(worded, cand, known, tf, emb, beyond_query=True, need=need)
    cols = [FEATURES.index(f) for f in ("dense_max", "dense_mean", "tfidf_beyond_query_max",
                                        "tfidf_beyond_query_mean")]
    np.testing.assert_array_equal(xn[..., cols], xb[..., cols])
    assert (xn[..., :3] == 0).all()


@pytest.mark.extra("detect")
def test_tfidf_covers_only_the_involved_documents():
    import negmine.text.detector as D

    data, cand = planted(near=True)
    tf = D._tfidf(data, cand)
    involved = np.union1d(cand.ids[cand.ids >= 0], data.positives.indices)
    np.testing.assert_array_equal(tf.rows, involved)
    assert tf.matrix.shape[0] == len(involved) < len(data.corpus)


def test_detector_options_are_checked():
    with pytest.raises(ConfigError, match="detector model"):
        Detector(model="svm")
    with pytest.raises(ConfigError, match="folds"):
        Detector(folds=1)
    with pytest.raises(ConfigError, match="probability"):
        FnMaxProb(1.5)


@pytest.mark.extra("detect")
def test_the_filter_fits_the_detector_once_and_keeps_its_matrix_for_the_report():
    data, cand = planted(near=True)
    inp = FilterInput(cand, data, seed=5)
    keep = FnMaxProb(0.1).keep(inp)
    m = inp.matrices["fn-detector"]
    np.testing.assert_array_equal(m.scores, Detector().fit_predict(data, cand, seed=5).probability)
    assert m.stats["heldout_auc"] > 0.9
    np.testing.assert_array_equal(keep, np.isfinite(m.scores) & (m.scores <= np.float32(0.1)))
    FnMaxProb(0.05).keep(inp)  # a second threshold reads the same matrix
    assert inp.matrices["fn-detector"] is m
    assert FnMaxProb(0.1, detector="gbm").config()["detector"]["model"] == "gbm"
    ids, scores = cand.ids.copy(), cand.scores.copy()
    ids[0, -1], scores[0, -1] = -1, -np.inf  # padding: never scored, never kept (even at P = 1)
    padded = Candidates(ids, scores, cand.sources, cand.source_names, cand.positive_scores)
    inp2 = FilterInput(padded, data, seed=5)
    assert not FnMaxProb(1.0).keep(inp2)[0, -1]
    assert np.isnan(inp2.matrices["fn-detector"].scores[0, -1])


def test_pool_mechanism_hides_the_positives_the_second_view_ranks_lowest():
    data, _ = planted(near=True)
    qp = data.positives.query_of_pair()
    merit = np.tile(np.arange(N_POS, dtype=np.float64)[::-1], N_Q)  # within a query: the last ones lowest
    h = pseudo_hide(data, 0, merit=merit)
    rank_in_query = np.arange(len(qp)) - data.positives.indptr[qp]
    np.testing.assert_array_equal(h, rank_in_query >= N_POS // 2)  # exactly the lower half, every query
    # ties in merit fall back to the seeded hash; unscored (NaN) positives count as lowest
    flat = pseudo_hide(data, 0, merit=np.zeros(len(qp)))
    np.testing.assert_array_equal(flat, pseudo_hide(data, 0))
    nan = merit.copy()
    nan[rank_in_query == 0] = np.nan
    h2 = pseudo_hide(data, 0, merit=nan)
    assert h2[rank_in_query == 0].all()


@pytest.mark.extra("detect")
def test_lexical_second_view_is_bm25_of_the_candidates_only():
    """The dense miner's second view: BM25 of (query, candidate) and (query, positive) pairs, with
    statistics over the involved documents; a document repeating the query's word outscores one
    that says it once, which outscores one that never does."""
    from negmine.text.detector import _tfidf, second_view

    corpus = Corpus(ids=["a", "b", "c", "d"], texts=["apple apple pie", "apple tart", "pear jam", "fig"])
    queries = Queries(ids=["q"], texts=["apple"])
    pos = Qrels.from_pairs(1, np.array([0, 0]), np.array([1, 2]))
    data = MiningData(corpus, queries, pos, pos)
    ids = np.array([[0, 1, 2, -1]])
    cand = Candidates(ids, np.array([[3, 2, 1, -np.inf]], np.float32), (ids >= 0).astype(np.uint8), ["d"],
                      np.array([2, 1], np.float32))
    view = second_view(data, cand, _tfidf(data, cand), doc_embeddings=np.eye(4, dtype=np.float32))
    assert view.name == "lexical"
    s = view.cells[0]
    assert s[0] > s[1] > s[2] == 0 and np.isnan(s[3])
    np.testing.assert_allclose(view.positives, [s[1], s[2]])  # the positives b, c scored the same way
    latent = second_view(data, cand, _tfidf(data, cand), doc_embeddings=None)
    assert latent.name == "latent" and latent.cells.shape == ids.shape and np.isnan(latent.cells[0, 3])


@pytest.mark.extra("detect")
def test_default_features_leave_the_lexical_view_out_for_a_dense_miner():
    from negmine.text.detector import LEXICAL_FEATURES, auto_features

    dense = auto_features(dense_miner=True)
    assert not set(dense) & set(LEXICAL_FEATURES) and {"dense_max", "dense_mean", "score_z"} <= set(dense)
    assert {"tfidf_max", "score_z"} <= set(auto_features(dense_miner=False))
    data, cand = planted(near=True)
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(len(data.corpus), 8)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    got = Detector().fit_predict(data, cand, seed=0, doc_embeddings=emb).stats
    assert got["features"] == list(dense) and got["second_view"] == "lexical"
    assert set(got["heldout_auc_by_mechanism"]) == {"random", "pool"}
    with pytest.raises(ConfigError, match="detector features"):
        Detector(features=("nope",))
    with pytest.raises(ConfigError, match="mechanisms"):
        Detector(mechanisms=("random", "sometimes"))


@pytest.mark.extra("detect")
def test_tfidf_beyond_the_query_leaves_the_querys_words_out():
    """Features 11-12: the TF-IDF cosine of candidate and known positive computed without the
    query's words — equal to zeroing those columns and renormalising, by hand."""
    from negmine.text.detector import FEATURES, _tfidf

    corpus = Corpus(ids=["a", "b", "c"], texts=["apple pie crust", "apple tart crust", "apple juice"])
    queries = Queries(ids=["q"], texts=["apple"])
    pos = Qrels.from_pairs(1, np.array([0]), np.array([0]))
    data = MiningData(corpus, queries, pos, pos)
    ids = np.array([[1, 2]])
    cand = Candidates(ids, np.array([[2, 1]], np.float32), np.ones(ids.shape, np.uint8), ["d"],
                      np.array([3], np.float32))
    tf = _tfidf(data, cand)
    x = features(data, cand, np.ones(1, bool), tf, beyond_query=True)
    m = tf.matrix.toarray()
    m[:, tf.vectorizer.vocabulary_["apple"]] = 0.0
    m /= np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)
    row = {d: i for i, d in enumerate(tf.rows)}
    want = [float(m[row[1]] @ m[row[0]]), float(m[row[2]] @ m[row[0]])]
    i = FEATURES.index("tfidf_beyond_query_max")
    np.testing.assert_allclose(x[0, :, i], want, atol=1e-6)
    assert want[0] > 0 and want[1] == 0  # "crust" is shared beyond the query; "juice" is not
    assert x[0, 1, 0] > 0  # while the plain TF-IDF cosine still sees the shared query word
    np.testing.assert_allclose(x[0, :, i + 1], want, atol=1e-6)  # one positive: mean = max


def test_pool_merit_by_hand():
    """``gap``: the miner's rank among the query's positives minus the second view's; the positive
    the view ranks far below the miner has the lowest merit (hidden first). ``view``: the view's
    score itself; unscored positives rank last."""
    from negmine.text.detector import pool_merit

    corpus = Corpus(ids=[f"d{i}" for i in range(4)], texts=["x"] * 4)
    pos = Qrels.from_pairs(1, np.zeros(4, np.int64), np.arange(4))
    data = MiningData(corpus, Queries(ids=["q"], texts=["x"]), pos, pos)
    miner = np.array([0.9, 0.8, 0.7, 0.6])  # miner ranks d0 d1 d2 d3
    view = np.array([1.0, 5.0, 4.0, 3.0])  # view ranks d1 d2 d3 d0: d0 is the one it misses
    np.testing.assert_array_equal(pool_merit(data, miner, view, "gap"), [0 - 3, 1 - 0, 2 - 1, 3 - 2])
    np.testing.assert_array_equal(pool_merit(data, miner, view, "view"), view)
    assert pool_merit(data, miner, np.array([1.0, np.nan, 4.0, 3.0]), "view")[1] == -np.inf
    h = pseudo_hide(data, 0, merit=pool_merit(data, miner, view, "gap"))
    assert h[0] and h.sum() == 2  # d0 (merit -3) first, then one of the tied d1, d2, d3 (merit 1) by hash
    with pytest.raises(ConfigError, match="pool merit"):
        pool_merit(data, miner, view, "depth")
