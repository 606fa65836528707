"""Models that score ``(user, item)`` pairs for DNS, robust sampling and the audit's hardness:
``implicit``'s ALS or BPR fitted on the training split (extra ``rec``), or user/item embeddings
the user supplies. Every scorer is a pair of factor matrices; a score is a dot product."""

from __future__ import annotations

import logging
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from negmine.core.errors import ConfigError, DataError, examples
from negmine.core.optional import require
from negmine.core.positives import Qrels
from negmine.rec.registry import SCORERS as REGISTRY

if TYPE_CHECKING:
    from negmine.rec.interactions import RecData

__all__ = ["SCORERS", "Scorer", "als_scorer", "bpr_scorer", "embeddings_scorer", "fit_implicit", "load_embeddings",
           "make_scorer"]

log = logging.getLogger(__name__)

#: the registered scorer names (:data:`negmine.rec.registry.SCORERS`)
SCORERS = tuple(REGISTRY.entries)


@dataclass
class Scorer:
    """``user_factors float32[n_users, d]``, ``item_factors float32[n_items, d]``; score = dot."""

    user_factors: np.ndarray
    item_factors: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)
    _reference: np.ndarray | None = field(default=None, init=False, repr=False)

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """``float32[n, m]`` scores of ``items int64[n, m]`` for ``users int64[n]``."""
        u = self.user_factors[users]
        if items.ndim == 2 and 4 * items.shape[1] >= len(self.item_factors):  # many per row: score the catalogue
            return np.take_along_axis(u @ self.item_factors.T, items, axis=1).astype(np.float32)
        return np.einsum("nd,nmd->nm", u, self.item_factors[items], optimize=True).astype(np.float32)

    def item_similarity(self, items: np.ndarray, others: np.ndarray) -> np.ndarray:
        """``float32[n, m]``: cosine between the factors of item ``items[r]`` and of each of
        ``others[r]``."""
        v = self.item_factors / np.maximum(np.linalg.norm(self.item_factors, axis=1, keepdims=True), 1e-12)
        return (v[items][:, None, :] * v[others]).sum(-1).astype(np.float32)

    def reference(self, train: Qrels) -> np.ndarray:
        """``float64[n_users]``: the median score of each user's training positives (``0`` for a
        user without any)."""
        if self._reference is None:
            ref = np.zeros(train.n_queries)
            q = train.query_of_pair()
            s = np.einsum("nd,nd->n", self.user_factors[q], self.item_factors[train.indices]).astype(np.float64)
            order = np.lexsort((s, q))
            s = s[order]
            counts = train.counts()
            has = counts > 0
            lo = train.indptr[:-1] + (counts - 1) // 2
            hi = train.indptr[:-1] + counts // 2
            ref[has] = (s[lo[has]] + s[hi[has]]) / 2
            self._reference = ref
        return self._reference

    def ranks(self, users: np.ndarray, items: np.ndarray, block: int = 256) -> np.ndarray:
        """``int64[n, m]``: 0-based rank of each item among all items for its user (number of
        items scored strictly higher); ``-1`` for ``items == -1``. Users are scored in blocks
        against the whole catalogue, so the cost is ``O(n_users · n_items)``."""
        out = np.full(items.shape, -1, np.int64)
        order = np.argsort(users, kind="stable")
        uniq, starts = np.unique(users[order], return_index=True)
        ends = np.append(starts[1:], len(order))
        for b in range(0, len(uniq), block):
            ub = uniq[b : b + block]
            raw = self.user_factors[ub] @ self.item_factors.T  # (b, n_items)
            full = np.sort(raw, axis=1)
            for j in range(len(ub)):
                rows = order[starts[b + j] : ends[b + j]]
                it = items[rows]
                s = raw[j][np.maximum(it, 0)]  # the same float values as the sorted row
                r = full.shape[1] - np.searchsorted(full[j], s, side="right")
                out[rows] = np.where(it >= 0, r, -1)
        return out


def fit_implicit(train: Qrels, n_items: int, kind: str = "als", *, factors: int = 64, iterations: int = 15,
                 regularization: float = 0.01, learning_rate: float = 0.01, seed: int = 0) -> Scorer:
    """Fit ``implicit``'s ALS or BPR on the training positives (binary user × item matrix) on the
    CPU. BPR runs single-threaded so the factors are the same on every run."""
    if kind not in ("als", "bpr"):
        raise ConfigError(f"unknown implicit model {kind!r}; use als or bpr")
    from negmine.rec.options import check

    factors = check("factors", factors, "fit_implicit")
    iterations = check("iterations", iterations, "fit_implicit")
    for name, value in (("regularization", regularization), ("learning_rate", learning_rate)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ConfigError(f"fit_implicit: {name} must be a finite number >= 0, got {value!r}")
    sparse = require("scipy.sparse")
    require("implicit")
    data = np.ones(len(train.indices), np.float32)
    ui = sparse.csr_matrix((data, train.indices, train.indptr), shape=(train.n_queries, n_items))
    with require("threadpoolctl").threadpool_limits(1, "blas"):  # implicit's advice: BLAS threads off
        if kind == "als":
            from implicit.cpu.als import AlternatingLeastSquares

            model: Any = AlternatingLeastSquares(factors=factors, regularization=regularization,
                                                 iterations=iterations, random_state=seed,
                                                 calculate_training_loss=False)
        else:
            from implicit.cpu.bpr import BayesianPersonalizedRanking

            model = BayesianPersonalizedRanking(factors=factors, learning_rate=learning_rate,
                                                regularization=regularization, iterations=iterations,
                                                random_state=seed, num_threads=1)
        model.fit(ui, show_progress=False)
    info = {"name": kind, "factors": factors, "iterations": iterations, "regularization": regularization,
            "seed": seed, **({"learning_rate": learning_rate} if kind == "bpr" else {})}
    return Scorer(np.ascontiguousarray(model.user_factors, np.float32),
                  np.ascontiguousarray(model.item_factors, np.float32), info)


def load_embeddings(path: str | Path, user_ids: np.ndarray, item_ids: np.ndarray) -> Scorer:
    """A scorer from one ``.npz`` holding ``user_ids int64[n_u]``, ``user_vectors float32[n_u, d]``,
    ``item_ids int64[n_i]`` and ``item_vectors float32[n_i, d]``; every user and item of the data
    needs a vector.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> f = os.path.join(tempfile.mkdtemp(), "e.npz")
    >>> np.savez(f, user_ids=[5], user_vectors=[[1.0, 0.0]], item_ids=[7, 8], item_vectors=[[2.0, 0], [0, 1]])
    >>> load_embeddings(f, np.array([5]), np.array([7, 8])).score(np.array([0]), np.array([[0, 1]])).tolist()
    [[2.0, 0.0]]
    """
    p = Path(path)
    hint = "save one with numpy.savez(path, user_ids=..., user_vectors=..., item_ids=..., item_vectors=...)"
    if not p.is_file():
        raise DataError(f"{p}: embeddings file not found; {hint}")
    with p.open("rb") as fh:
        if fh.read(2) != b"PK":
            raise DataError(f"{p}: not an .npz file (a zip archive of arrays); {hint}")
    try:
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: np.asarray(z[k]) for k in ("user_ids", "user_vectors", "item_ids", "item_vectors")}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, AttributeError, TypeError) as exc:
        raise DataError(f"{p}: not an .npz with user_ids, user_vectors, item_ids, item_vectors "
                        f"({exc.__class__.__name__}: {exc}); {hint}") from None
    out = []
    for role, need in (("user", user_ids), ("item", item_ids)):
        ids, vecs = arrays[f"{role}_ids"], arrays[f"{role}_vectors"]
        if vecs.dtype.kind not in "fiu":
            raise DataError(f"{p}: {role}_vectors has dtype {vecs.dtype}; store real numbers (float32), e.g. "
                            "the real part of complex vectors, explicitly")
        vecs = vecs.astype(np.float32)
        if vecs.ndim != 2 or ids.ndim != 1 or len(ids) != len(vecs) or ids.dtype.kind not in "iu" \
                or (vecs.ndim == 2 and vecs.shape[1] == 0):
            raise DataError(f"{p}: {role}_vectors must be [n, d] with one integer {role}_id per row, got "
                            f"{vecs.shape} vectors for {ids.shape} ids of dtype {ids.dtype}")
        order = np.argsort(ids, kind="stable")
        dup = ids[order][1:][ids[order][1:] == ids[order][:-1]]
        if len(dup):
            raise DataError(f"{p}: {len(dup)} duplicate {role}_ids (e.g. {examples(dup.tolist())}); keep one vector "
                            f"per {role}")
        pos = np.minimum(np.searchsorted(ids[order], need), max(len(ids) - 1, 0))
        found = ids[order][pos] == need if len(ids) else np.zeros(len(need), bool)
        if not found.all():
            missing = need[~found]
            raise DataError(f"{p}: no vector for {len(missing)} {role}(s), e.g. {examples(missing.tolist())}; "
                            f"add them to {role}_ids/{role}_vectors")
        vecs = vecs[order][pos]
        bad = ~np.isfinite(vecs).all(axis=1)
        if bad.any():
            raise DataError(f"{p}: {int(bad.sum())} {role} vector(s) hold NaN or infinite values (e.g. {role} "
                            f"{examples(need[bad].tolist())}); re-export finite vectors")
        out.append(np.ascontiguousarray(vecs))
    if out[0].shape[1] != out[1].shape[1]:
        raise DataError(f"{p}: user vectors have dimension {out[0].shape[1]} but item vectors "
                        f"{out[1].shape[1]}; they must match")
    return Scorer(out[0], out[1], {"name": "embeddings", "file": str(p)})


def als_scorer(data: RecData, *, factors: int = 64, iterations: int = 15, seed: int = 0) -> Scorer:
    """:func:`fit_implicit` ALS on ``data.train`` (the registry's ``als``)."""
    return fit_implicit(data.train, data.n_items, "als", factors=factors, iterations=iterations, seed=seed)


def bpr_scorer(data: RecData, *, factors: int = 64, iterations: int = 15, seed: int = 0) -> Scorer:
    """:func:`fit_implicit` BPR on ``data.train`` (the registry's ``bpr``)."""
    return fit_implicit(data.train, data.n_items, "bpr", factors=factors, iterations=iterations, seed=seed)


def embeddings_scorer(data: RecData, *, path: str | Path | None) -> Scorer:
    """:func:`load_embeddings` of ``path`` for the users and items of ``data`` (the registry's
    ``embeddings``)."""
    if path is None:
        raise ConfigError("scorer 'embeddings' needs a file: pass embeddings=PATH (--embeddings FILE, an .npz)")
    return load_embeddings(path, data.interactions.user_ids, data.interactions.item_ids)


def make_scorer(name: str, data: RecData, *, factors: int = 64, iterations: int = 15, seed: int = 0,
                embeddings: str | Path | None = None) -> Scorer:
    """A scorer by name (``als``, ``bpr``, ``embeddings``) for ``data``, built through
    :data:`negmine.rec.registry.SCORERS` from the options its entry declares.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from negmine.rec.data import from_arrays, split_interactions
    >>> data = split_interactions(from_arrays([5, 5], [7, 8]), "random", 0)
    >>> f = os.path.join(tempfile.mkdtemp(), "e.npz")
    >>> np.savez(f, user_ids=[5], user_vectors=[[1.0, 0.0]], item_ids=[7, 8], item_vectors=[[2.0, 0], [0, 1]])
    >>> make_scorer("embeddings", data, embeddings=f).info["name"]
    'embeddings'
    """
    entry = REGISTRY.get(name)
    values: dict[str, Any] = {"factors": factors, "iterations": iterations, "seed": seed, "embeddings": embeddings}
    scorer: Scorer = entry.load()(data, **{o.keyword: values[o.key] for o in entry.options})
    return scorer
