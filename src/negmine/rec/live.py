"""Scores from the model being trained, for samplers that pick negatives with it (``live-dns``).

:class:`LiveScorer` holds *views* of the model's weight arrays (``tensor.detach().numpy()``
shares the tensor's memory, and optimisers update parameters in place), so every call scores
with the weights as they are at that moment: the sampler reads the current model, never a copy
made before training. Imports numpy (and scipy.sparse for the user tower, when called).

Every score is computed row by row with elementwise products summed over the last axis (numpy's
pairwise sum), never a matrix product whose blocking could depend on how many rows are scored:
a row's scores, and so the negatives picked from them, are the same bytes whatever the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from negmine.core.optional import require
from negmine.core.positives import Qrels

__all__ = ["LiveScorer"]

BLOCK_FLOATS = 1 << 22  # gathered item vectors per block (16 MiB of float32): bounds memory, never the output


@dataclass
class LiveScorer:
    """``s(u, i) = <p_u, v_i>`` (``cosine``: of the L2-normalised vectors) with the user tower
    ``p_u = gamma · e_u + (1 − gamma) · W · mean(v_j for j in history(u))`` (SimpleX's behaviour
    aggregation; ``gamma = 1`` or no ``history``: ``p_u = e_u``, matrix factorisation).

    ``user_weights float32[n_users, d]``, ``item_weights float32[n_items, d]`` and
    ``transform float32[d, d]`` (``W``, ``None`` = identity) are read at every call.

    Examples
    --------
    >>> import numpy as np
    >>> e = np.array([[1.0, 0.0]], np.float32); v = np.array([[2.0, 0.0], [0.0, 3.0]], np.float32)
    >>> s = LiveScorer(e, v)
    >>> s.score(np.array([0]), np.array([[0, 1]])).tolist()
    [[2.0, 0.0]]
    >>> e[0] = [0.0, 1.0]  # the model changed: the next call sees it
    >>> s.score(np.array([0]), np.array([[0, 1]])).tolist()
    [[0.0, 3.0]]
    """

    user_weights: np.ndarray
    item_weights: np.ndarray
    cosine: bool = False
    gamma: float = 1.0
    transform: np.ndarray | None = None
    history: Qrels | None = None

    def user_vectors(self, users: np.ndarray) -> np.ndarray:
        """``float32[n, d]``: the user tower for ``users int64[n]`` with the current weights."""
        e = self.user_weights[users]
        if self.history is None or self.gamma >= 1.0:
            return e
        h = self.history
        counts = (h.indptr[users + 1] - h.indptr[users]).astype(np.int64)
        total = int(counts.sum())
        d = self.item_weights.shape[1]
        mean = np.zeros((len(users), d), np.float32)
        if total:
            sparse = require("scipy.sparse")
            ends = np.cumsum(counts)
            starts = ends - counts
            idx = np.repeat(h.indptr[users] - starts, counts) + np.arange(total)
            indptr = np.concatenate([[0], ends])
            weights = np.repeat(1.0 / np.maximum(counts, 1), counts).astype(np.float32)
            pick = sparse.csr_matrix((weights, h.indices[idx], indptr), shape=(len(users), len(self.item_weights)))
            mean = np.asarray(pick @ self.item_weights, np.float32)  # row by row, in each row's item order
        if self.transform is not None:
            mean = np.einsum("nk,jk->nj", mean, self.transform, optimize=False)  # W · mean, row by row, no BLAS
        return (self.gamma * e + (1.0 - self.gamma) * mean).astype(np.float32)

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """``float32[n, m]`` scores of ``items int64[n, m]`` for ``users int64[n]``."""
        items = np.asarray(items, np.int64)
        n, m = items.shape
        d = self.item_weights.shape[1]
        out = np.empty((n, m), np.float32)
        step = max(1, BLOCK_FLOATS // max(m * d, 1))
        table = _normalised(self.item_weights) if self.cosine else self.item_weights
        for a in range(0, n, step):
            u = self.user_vectors(users[a : a + step])
            if self.cosine:
                u = _normalised(u)
            # einsum's own loop (no BLAS): each score sums over d in one fixed order, whatever n is
            # np.take: the same rows as fancy indexing, gathered about twice as fast
            out[a : a + step] = np.einsum("nd,nmd->nm", u, np.take(table, items[a : a + step], axis=0),
                                          optimize=False)
        return out

    def item_similarity(self, items: np.ndarray, others: np.ndarray) -> np.ndarray:
        """``float32[n, m]``: cosine between item ``items[r]`` and each of ``others[r]`` (current
        item vectors)."""
        v = _normalised(self.item_weights)
        out = np.empty(others.shape, np.float32)
        step = max(1, BLOCK_FLOATS // max(others.shape[1] * v.shape[1], 1))
        for s in range(0, len(items), step):
            out[s : s + step] = np.einsum("nd,nmd->nm", v[items[s : s + step]],
                                          np.take(v, others[s : s + step], axis=0), optimize=False)
        return out

    def snapshot(self, block: int = 4096) -> tuple[np.ndarray, np.ndarray]:
        """``(user vectors float32[n_users, d], item vectors float32[n_items, d])`` now (L2-normalised
        when ``cosine``): the trained model as plain factors, for evaluation and saving."""
        n = len(self.user_weights)
        uf = np.concatenate([self.user_vectors(np.arange(a, min(a + block, n))) for a in range(0, n, block)]) \
            if n else np.zeros((0, self.user_weights.shape[1]), np.float32)
        vf = np.array(self.item_weights, np.float32, copy=True)
        if self.cosine:
            uf = uf / np.maximum(np.linalg.norm(uf, axis=1, keepdims=True), 1e-12)
            vf = vf / np.maximum(np.linalg.norm(vf, axis=1, keepdims=True), 1e-12)
        return np.ascontiguousarray(uf, np.float32), np.ascontiguousarray(vf, np.float32)


def _normalised(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` divided by their L2 norm (rows of zeros stay zero)."""
    norm = np.sqrt(np.einsum("nd,nd->n", x, x, optimize=False))[:, None]
    return (x / np.maximum(norm, 1e-12)).astype(np.float32)
