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
from negmine.core.keys import uniform
from negmine.core.logistic import LogisticModel
from negmine.core.optional import require
from negmine.text.detector_features import (
    BEYOND_QUERY_FEATURES,
    FEATURES,
    LEXICAL_FEATURES,
    SECOND_VIEW_FEATURES,
    DenseRows,
    TextVectors,
    auto_features,
    features,
    involved_rows,
)
from negmine.text.detector_features import _tfidf as _tfidf  # re-exported: the calibration and tests read it here
from negmine.text.detector_hiding import (
    _labels,
    expected_base_rate,
    fold_of,
    hidden_counts,
    known_recall,
    pool_merit,
    prior_ratio,
    pseudo_hide,
    shift_prior,
)
from negmine.text.detector_views import SecondView, second_view
from negmine.text.types import Candidates, MiningData

# the features, the second view and the pseudo-hiding live in detector_features, detector_views and
# detector_hiding; their names stay importable from here
__all__ = ["BEYOND_QUERY_FEATURES", "FEATURES", "LEXICAL_FEATURES", "MECHANISMS", "SECOND_VIEW_FEATURES",
           "DenseRows", "Detection", "Detector", "SecondView", "TextVectors", "auto_features", "expected_base_rate",
           "features", "fold_of", "hidden_counts", "involved_rows", "known_recall", "pool_merit", "prior_ratio",
           "pseudo_hide", "second_view", "shift_prior"]

#: how the detector pseudo-hides known positives to learn from: ``random`` (a seeded half) and
#: ``pool`` (the half a second view of the data ranks lowest, the way a labelling pool misses them)
MECHANISMS = ("random", "pool")
#: the features the default detector fits on (``None``: :func:`auto_features`, by the miner)
DEFAULT_FEATURES: tuple[str, ...] | None = None
MODELS = ("logistic", "spline", "gbm")
#: the model of ``Detector()`` without one (experiments may set it, as :data:`DEFAULT_FEATURES`)
DEFAULT_MODEL = "logistic"
#: the training quantiles of each feature where the ``spline`` model's basis bends
KNOT_QUANTILES = (0.25, 0.5, 0.75)


@dataclass
class Detection:
    """``probability float32[n_queries, k]`` (``NaN`` for padding) and ``stats`` for the report."""

    probability: np.ndarray
    stats: dict[str, Any] = field(default_factory=dict)


class Detector:
    """Cross-fitted false-negative classifier (module doc).

    Parameters
    ----------
    model
        ``logistic`` (the default, :data:`DEFAULT_MODEL`: standardised features, L2 logistic regression), ``spline``
        (L2 logistic regression on a piecewise-linear basis of each feature, bending at its
        training quartiles: harder negatives at the same measured HP-FNR under random missingness,
        somewhat less safe under a lexical pool — docs/QUALITY.md §8) or ``gbm`` (scikit-learn's
        histogram gradient boosting: more flexible, several times slower).
    folds
        Cross-fitting folds over queries (at least 2).
    max_train_rows
        Cap on training cells; beyond it the unlabelled cells are subsampled by a seeded hash and
        reweighted, so probabilities stay calibrated.
    """

    name = "fn-detector"

    def __init__(self, model: str | None = None, folds: int = 5, max_train_rows: int = 200_000,
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
        model = model if model is not None else DEFAULT_MODEL
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
        # a Newton fit with no BLAS call (negmine.core.logistic): scikit-learn's lbfgs sums through
        # BLAS, and its probabilities differed in the last bits between OpenBLAS kernels
        if self.model == "spline":
            # warm-started: fold f's fit starts where fold f - 1's ended (its training rows are
            # mostly the same), converging to the same tolerance in fewer Newton steps
            return LogisticModel(c=1.0, knots=KNOT_QUANTILES, warm_start=True)
        return LogisticModel(c=1.0)

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
        n_q, k = cand.ids.shape
        tfidf = tfidf if tfidf is not None else _tfidf(data, cand)
        view = view if view is not None else second_view(data, cand, tfidf, doc_embeddings)
        used = self.features if self.features is not None else auto_features(doc_embeddings is not None)
        per_mech = self._mechanism_views(data, cand, seed, doc_embeddings, tfidf, view, used)
        trainable = per_mech[0].split_q
        fold = fold_of(data, self.folds, seed)
        prob = np.full((n_q, k), np.nan, dtype=np.float32)
        valid = cand.ids >= 0
        held: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {m: ([], []) for m in self.mechanisms}
        fitted = 0
        est: Any = self._estimator(seed) if self.model == "spline" else None  # one, warm-started fold to fold
        lab0 = per_mech[0].labels
        base_rate = float((lab0[trainable] == 1).sum() / max((lab0[trainable] >= 0).sum(), 1))
        for f in range(self.folds):
            test_q = fold == f
            if not test_q.any():
                continue
            x, y, w = self._training_set(per_mech, trainable & ~test_q, seed)
            cells = test_q[:, None] & valid
            if len(np.unique(y)) < 2:  # nothing to learn from: the base rate, honestly
                prob[cells] = base_rate
                continue
            if self.model != "spline":
                est = self._estimator(seed)
            est.fit(x, y, sample_weight=w)
            fitted += 1
            prob[cells] = self._predict(est, per_mech, cells)
            for mv in per_mech:
                ht = (trainable & test_q)[:, None] & (mv.labels >= 0)
                if ht.any():
                    held[mv.mechanism][0].append(mv.labels[ht].astype(np.int64))
                    held[mv.mechanism][1].append(est.predict_proba(mv.x_train[ht])[:, 1])
        stats: dict[str, Any] = {"model": self.model, "folds": self.folds, "fitted_folds": fitted,
                                 "training_queries": int(trainable.sum()), "base_rate": base_rate,
                                 "features": list(used), "dense_features": doc_embeddings is not None,
                                 "second_view": view.name, "mechanisms": list(self.mechanisms)}
        stats.update(self._heldout_stats(held))
        return Detection(prob, stats)

    def _mechanism_views(self, data: MiningData, cand: Candidates, seed: int, doc_embeddings: np.ndarray | None,
                         tfidf: TextVectors, view: SecondView, used: tuple[str, ...]) -> list[_MechanismView]:
        """Per mechanism: its pseudo-hidden half, the features to train on (against the other half)
        and to predict with, and the cell labels."""
        n_q = cand.ids.shape[0]
        all_known = np.ones(len(data.positives.indices), dtype=bool)
        qp = data.positives.query_of_pair()
        halves = self.view == "halves"
        emb = None if doc_embeddings is None else DenseRows(np.asarray(doc_embeddings[tfidf.rows], np.float32),
                                                            tfidf.rows)
        cols = np.array([FEATURES.index(f) for f in used])
        beyond = any(f in BEYOND_QUERY_FEATURES for f in used)
        out = []
        for mech in self.mechanisms:
            merit = pool_merit(data, cand.positive_scores, view.positives, "gap") if mech == "pool" else None
            hidden = pseudo_hide(data, seed, merit=merit)
            x_train = features(data, cand, ~hidden, tfidf, emb, view, beyond, used)[..., cols]
            # "halves": score against each half of the known positives (the view the model was
            # trained on) and average, so the probabilities do not drift with the number of known
            # positives
            split_q = np.bincount(qp[hidden], minlength=n_q) > 0
            other_half = hidden | ~split_q[qp]  # unsplit queries: all their positives
            x_pred = features(data, cand, other_half if halves else all_known, tfidf, emb, view, beyond,
                              used)[..., cols]
            out.append(_MechanismView(mech, x_train, x_pred, _labels(data, cand, hidden, ~hidden), split_q))
        return out

    def _training_set(self, per_mech: list[_MechanismView], train_q: np.ndarray,
                      seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(x, y, sample weight)`` of the labelled cells of the queries ``train_q`` under every
        mechanism; beyond ``max_train_rows`` the unlabelled cells are subsampled by a seeded hash
        and reweighted."""
        tr = [train_q[:, None] & (mv.labels >= 0) for mv in per_mech]
        y = np.concatenate([mv.labels[t] for t, mv in zip(tr, per_mech)]).astype(np.int64)
        x = np.concatenate([mv.x_train[t] for t, mv in zip(tr, per_mech)])
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
        return x, y, w

    def _predict(self, est: Any, per_mech: list[_MechanismView], cells: np.ndarray) -> np.ndarray:
        """``float32[cells.sum()]``: the fitted model's probabilities of the ``cells``, averaged over
        the mechanisms (and, with ``view="halves"``, over the two halves of a split query)."""
        acc = np.zeros(int(cells.sum()))
        for mv in per_mech:
            p_pred = est.predict_proba(mv.x_pred[cells])[:, 1]
            if self.view == "halves":  # queries with one positive have no halves: x_pred is against all of it
                other = est.predict_proba(mv.x_train[cells])[:, 1]
                p_pred = np.where(np.broadcast_to(mv.split_q[:, None], cells.shape)[cells], (p_pred + other) / 2,
                                  p_pred)
            acc += p_pred
        return (acc / len(per_mech)).astype(np.float32)

    def _heldout_stats(self, held: dict[str, tuple[list[np.ndarray], list[np.ndarray]]]) -> dict[str, Any]:
        """The held-out AUC per mechanism, and the first mechanism's figures under the historical keys."""
        metrics = require("sklearn.metrics")
        stats: dict[str, Any] = {}
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
        return stats


@dataclass
class _MechanismView:
    """One pseudo-hiding mechanism's training material: ``x_train`` (features against the
    pseudo-visible half), ``x_pred`` (against the other half, or all known positives), ``labels
    int8[n_q, k]`` and ``split_q bool[n_q]`` (the queries whose positives were split)."""

    mechanism: str
    x_train: np.ndarray
    x_pred: np.ndarray
    labels: np.ndarray
    split_q: np.ndarray
