"""The compiled screen of the blocked dense search (numba, where installed): one fused pass over
each block of float32 products, rows in parallel, keeping each query's best ``k`` in a min-heap.

The numpy screen (:class:`~negmine.text.retrievers.base.TopK`) takes several passes over each block
(row maxima, a comparison mask, the surviving cells, packing, merging) on one core while the
other idles; this takes one pass on every core. It is a *raw* search: near-ties of the float32
products are settled afterwards by :func:`~negmine.text.retrievers.base.exact_top_k`, which only needs
the best ``k`` of these products (any order among equal ones), so both screens give the same bytes.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np


def _screen(block: Any, first_row: int, heap_s: Any, heap_r: Any, sizes: Any) -> None:  # pragma: no cover
    n, w = block.shape
    k = heap_s.shape[1]
    for i in numba.prange(n):
        hs, hr = heap_s[i], heap_r[i]
        size = sizes[i]
        # a float32 threshold: comparing float32 products with it is exact either way, and the
        # loop stays in float32 (no widening of every product; 1.26x on the screen alone)
        thr = hs[0] if size == k else np.float32(-np.inf)
        for j in range(w):
            v = block[i, j]
            if v > thr:
                if size < k:  # append, sift up
                    c = size
                    hs[c], hr[c] = v, first_row + j
                    while c > 0 and hs[(c - 1) // 2] > hs[c]:
                        p = (c - 1) // 2
                        hs[c], hs[p] = hs[p], hs[c]
                        hr[c], hr[p] = hr[p], hr[c]
                        c = p
                    size += 1
                else:  # replace the root, sift down
                    hs[0], hr[0] = v, first_row + j
                    c = 0
                    while True:
                        left, m = 2 * c + 1, c
                        if left < k and hs[left] < hs[m]:
                            m = left
                        if left + 1 < k and hs[left + 1] < hs[m]:
                            m = left + 1
                        if m == c:
                            break
                        hs[c], hs[m] = hs[m], hs[c]
                        hr[c], hr[m] = hr[m], hr[c]
                        c = m
                if size == k:
                    thr = hs[0]
        sizes[i] = size


#: rows in parallel for blocks worth starting the threads for; small blocks on one thread
_screen_parallel = numba.njit(parallel=True, nogil=True, cache=True)(_screen)
_screen_serial = numba.njit(nogil=True, cache=True)(_screen)
PARALLEL_CELLS = 1 << 18


def screen(block: np.ndarray, first_row: int, heap_s: np.ndarray, heap_r: np.ndarray, sizes: np.ndarray) -> None:
    """Offer every cell of ``block`` (``float32[n, w]``, column ``j`` = document ``first_row + j``)
    to row ``i``'s min-heap ``heap_s[i]`` / ``heap_r[i]`` of capacity ``heap_s.shape[1]``; NaN and
    ``-inf`` never enter."""
    (_screen_parallel if block.size >= PARALLEL_CELLS else _screen_serial)(block, first_row, heap_s, heap_r, sizes)


def search(q: np.ndarray, d: np.ndarray, k: int, query_block: int, doc_block: int,
           progress: Any = iter) -> tuple[np.ndarray, np.ndarray]:
    """``(ids int64[n_q, k], scores float32[n_q, k])``: the best ``k`` float32 products of every
    query, sorted descending (any order among equal ones), padded with ``-1``/``-inf``."""
    ids = np.full((len(q), k), -1, dtype=np.int64)
    scores = np.full((len(q), k), -np.inf, dtype=np.float32)
    if k == 0 or not len(q) or not len(d):
        return ids, scores
    qbs, dbs = max(1, min(query_block, len(q))), max(1, min(doc_block, len(d)))
    buf = np.empty(qbs * dbs, dtype=np.float32)  # reused: no page faults per block
    for qs in progress(range(0, len(q), qbs)):
        qb = np.ascontiguousarray(q[qs : qs + qbs], dtype=np.float32)
        heap_s = np.full((len(qb), k), -np.inf, dtype=np.float32)
        heap_r = np.full((len(qb), k), -1, dtype=np.int64)
        sizes = np.zeros(len(qb), dtype=np.int64)
        for ds in range(0, len(d), dbs):
            db = np.asarray(d[ds : ds + dbs], dtype=np.float32)
            out = buf[: len(qb) * len(db)].reshape(len(qb), len(db))
            np.matmul(qb, db.T, out=out)
            screen(out, ds, heap_s, heap_r, sizes)
        order = np.argsort(-heap_s, axis=1, kind="stable")
        ids[qs : qs + len(qb)] = np.take_along_axis(heap_r, order, axis=1)
        scores[qs : qs + len(qb)] = np.take_along_axis(heap_s, order, axis=1)
    return ids, scores
