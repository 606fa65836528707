"""Selection of the top-k by priority, the last step of every sampler in every domain.

A sampler turns candidates into priorities (a score, a score plus Gumbel noise, a kernel ...);
what is chosen is then only a matter of ordering, with ties broken by position so that the
result never depends on how the rows were batched.
"""

from __future__ import annotations

import numpy as np


def top_k(prio: np.ndarray, k: int) -> np.ndarray:
    """Columns ``int64[n, min(k, m)]`` of the ``k`` highest priorities of each row of ``prio``
    ``[n, m]``, highest first (ties: the lower column)."""
    n = prio.shape[1]
    part = np.argpartition(-prio, k - 1, axis=1)[:, :k] if k < n else np.broadcast_to(np.arange(n), prio.shape)
    sub = np.take_along_axis(prio, part, axis=1)
    return np.take_along_axis(part, np.lexsort((part, -sub), axis=1), axis=1)


def top_k_kept(prio: np.ndarray, keep: np.ndarray, k: int) -> np.ndarray:
    """Columns ``int64[n, k]`` of the ``k`` highest-priority cells of each row among those with
    ``keep`` (ties: the lower column), returned in column order, ``-1`` where a row has fewer
    than ``k`` kept cells. A NaN priority is the least preferred; a cell not kept is never chosen,
    however high its priority."""
    n_rows, m = prio.shape
    p = np.where(np.isnan(prio), -np.inf, prio.astype(np.float64))
    if m and k and bool((p[:, 1:] <= p[:, :-1]).all()):
        # priorities already non-increasing along each row (a sampler that keeps the retrieval
        # order): the answer is each row's first k kept cells, found without sorting priorities
        chosen = keep & (np.cumsum(keep, axis=1) <= k)
        first = np.argsort(~chosen, axis=1, kind="stable")[:, :k]
        cols = np.where(np.take_along_axis(chosen, first, axis=1), first, -1)
        if cols.shape[1] < k:
            cols = np.concatenate([cols, np.full((n_rows, k - cols.shape[1]), -1, np.int64)], axis=1)
        return cols.astype(np.int64)
    col = np.broadcast_to(np.arange(m), (n_rows, m))
    # kept cells first, then by priority, then by column: masked cells never crowd out a kept one
    order = np.lexsort((col, -p, ~keep), axis=1)[:, :k]
    chosen_ok = np.take_along_axis(keep, order, axis=1)
    cols = np.sort(np.where(chosen_ok, order, m), axis=1)  # sentinel m sorts after every real column
    cols[cols == m] = -1
    if cols.shape[1] < k:
        cols = np.concatenate([cols, np.full((n_rows, k - cols.shape[1]), -1, np.int64)], axis=1)
    return cols.astype(np.int64)
