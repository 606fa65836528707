"""The compiled dense search (numba, where installed): each core multiplies a cache-sized tile of
documents with the query block and screens the float32 products into its own min-heaps of each
query's best ``k`` while they are still in its cache, in one fused pass.

The numpy screen (:class:`~negmine.text.retrievers.base.TopK`) takes several passes over each block
(row maxima, a comparison mask, the surviving cells, packing, merging) on one core while the
other idles. This is a *raw* search: near-ties of the float32 products are settled afterwards by
:func:`~negmine.text.retrievers.base.exact_top_k`, which only needs the best ``k`` of these products
(any order among equal ones), so both screens, any tile and any thread count give the same bytes.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba.extending import intrinsic

from negmine.text.retrievers.compiled import blas_limits, njit_as


@intrinsic
def _cell(typingctx: Any, v: Any) -> Any:  # pragma: no cover (compiled)
    """A float cell as it is; a ``uint16`` cell as the bfloat16 whose bits it holds, widened to
    float32 (exactly: the same bits, sixteen zeros below)."""
    if isinstance(v, numba.types.Float):
        return v(v), lambda context, builder, signature, args: args[0]
    if v == numba.types.uint16:
        def widen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            i32 = ir.IntType(32)
            return builder.bitcast(builder.shl(builder.zext(args[0], i32), i32(16)), ir.FloatType())

        return numba.types.float32(v), widen
    return None


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
            v = _cell(block[i, j])  # type: ignore[call-arg,var-annotated]  # typed by numba
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
_screen_parallel = njit_as(_screen, "parallel", parallel=True, nogil=True)
_screen_serial = njit_as(_screen, "serial", nogil=True)
PARALLEL_CELLS = 1 << 18


def screen(block: np.ndarray, first_row: int, heap_s: np.ndarray, heap_r: np.ndarray, sizes: np.ndarray,
           parallel: bool = True) -> None:
    """Offer every cell of ``block`` (``float32[n, w]``, or ``uint16[n, w]`` holding bfloat16 bits;
    column ``j`` = document ``first_row + j``)
    to row ``i``'s min-heap ``heap_s[i]`` / ``heap_r[i]`` of capacity ``heap_s.shape[1]``; NaN and
    ``-inf`` never enter. Rows in parallel (numba's threads) for a large block, unless not
    ``parallel``."""
    kernel = _screen_parallel if parallel and block.size >= PARALLEL_CELLS else _screen_serial
    kernel(block, first_row, heap_s, heap_r, sizes)


def search(q: np.ndarray, d: np.ndarray, k: int, query_block: int, doc_block: int,
           progress: Any = iter) -> tuple[np.ndarray, np.ndarray]:
    """``(ids int64[n_q, k], scores float32[n_q, k])``: the best ``k`` float32 products of every
    query, sorted descending (any order among equal ones), padded with ``-1``/``-inf``.

    On several cores (as many threads as BLAS would use, held to one BLAS thread each through
    threadpoolctl), each thread takes the next *tile* of documents, multiplies it with the query
    block and screens the products into its own heaps while they are still in its cache; the
    heaps are merged per query block. The tile is sized from the L2 cache (:func:`tile_docs`).
    Without threads the products of each ``query_block × doc_block`` block are computed by every
    BLAS thread and screened by every core in turn, which reads them back from memory."""
    ids = np.full((len(q), k), -1, dtype=np.int64)
    scores = np.full((len(q), k), -np.inf, dtype=np.float32)
    if k == 0 or not len(q) or not len(d):
        return ids, scores
    qbs, dbs = max(1, min(query_block, len(q))), max(1, min(doc_block, len(d)))
    tile = min(tile_docs(qbs), dbs)
    # BLAS's thread count is process-wide: one tiled search at a time sets and restores it (a
    # concurrent one takes the block path, so neither restores the other's limit)
    if not _TILED.acquire(blocking=False):
        return _search_blocks(q, d, k, qbs, dbs, progress, ids, scores)
    try:
        blas = blas_limits()
        threads = min(numba.get_num_threads(), blas[1], -(-len(d) // tile)) if blas is not None else 1
        if blas is None or threads < 2:
            return _search_blocks(q, d, k, qbs, dbs, progress, ids, scores)
        return _search_tiles(q, d, k, qbs, tile, threads, blas[0], progress, ids, scores)
    finally:
        _TILED.release()


#: held by the tiled search while it limits BLAS to one thread
_TILED = threading.Lock()


def _search_tiles(q: np.ndarray, d: np.ndarray, k: int, qbs: int, tile: int, threads: int, limits: Any,
                  progress: Any, ids: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every core on its own tiles (one BLAS thread each; other threads' BLAS calls are held to
    one thread meanwhile), heaps merged per query block."""
    with limits(1, user_api="blas"), ThreadPoolExecutor(threads) as pool:
        bufs = [np.empty(qbs * tile, dtype=np.float32) for _ in range(threads)]
        for qs in progress(range(0, len(q), qbs)):
            qb = np.ascontiguousarray(q[qs : qs + qbs], dtype=np.float32)
            share = functools.partial(_tiles, qb, d, k, tile, iter(range(0, len(d), tile)), threading.Lock())
            heaps = list(pool.map(share, bufs))
            _emit(np.concatenate([h[0] for h in heaps], axis=1), np.concatenate([h[1] for h in heaps], axis=1),
                  qs, ids, scores)
    return ids, scores


def _heaps(n: int, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Empty min-heaps of capacity ``k`` for ``n`` queries: scores, rows, sizes."""
    return (np.full((n, k), -np.inf, dtype=np.float32), np.full((n, k), -1, dtype=np.int64),
            np.zeros(n, dtype=np.int64))


def _emit(heap_s: np.ndarray, heap_r: np.ndarray, qs: int, ids: np.ndarray, scores: np.ndarray) -> None:
    """Write a query block's heaps (any number of columns, merged) as its best ``k`` rows from
    ``qs`` on, sorted by score descending."""
    k = ids.shape[1]
    # any order among equal products (exact_top_k settles them): numpy's unstable sort, 5x faster
    order = np.argsort(-heap_s, axis=1)[:, :k]
    ids[qs : qs + len(heap_s)] = np.take_along_axis(heap_r, order, axis=1)
    scores[qs : qs + len(heap_s)] = np.take_along_axis(heap_s, order, axis=1)


def _tiles(qb: np.ndarray, d: np.ndarray, k: int, tile: int, starts: Iterator[int], lock: threading.Lock,
           buf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One thread's share of a query block: tiles taken from ``starts`` until none is left
    (whichever thread is free takes the next), each multiplied and screened at once."""
    heap_s, heap_r, sizes = _heaps(len(qb), k)
    while True:
        with lock:
            ds = next(starts, None)
        if ds is None:
            return heap_s, heap_r
        db = np.asarray(d[ds : ds + tile], dtype=np.float32)
        out = buf[: len(qb) * len(db)].reshape(len(qb), len(db))
        np.matmul(qb, db.T, out=out)  # one BLAS thread; the GIL is released
        _screen_serial(out, ds, heap_s, heap_r, sizes)  # nogil


def _search_blocks(q: np.ndarray, d: np.ndarray, k: int, qbs: int, dbs: int, progress: Any,
                   ids: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One thread: each block's products on every BLAS thread, then screened on every core."""
    buf = np.empty(qbs * dbs, dtype=np.float32)  # reused: no page faults per block
    for qs in progress(range(0, len(q), qbs)):
        qb = np.ascontiguousarray(q[qs : qs + qbs], dtype=np.float32)
        heap_s, heap_r, sizes = _heaps(len(qb), k)
        for ds in range(0, len(d), dbs):
            db = np.asarray(d[ds : ds + dbs], dtype=np.float32)
            out = buf[: len(qb) * len(db)].reshape(len(qb), len(db))
            np.matmul(qb, db.T, out=out)
            screen(out, ds, heap_s, heap_r, sizes)
        _emit(heap_s, heap_r, qs, ids, scores)
    return ids, scores


@functools.cache
def l2_bytes() -> int:
    """The size of one core's L2 cache (Linux sysfs), else 1 MiB."""
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    try:
        for idx in sorted(base.glob("index*")):
            if (idx / "level").read_text().strip() == "2" and (idx / "type").read_text().strip() != "Instruction":
                size = (idx / "size").read_text().strip().upper()
                mult = {"K": 1 << 10, "M": 1 << 20}.get(size[-1:], 1)
                return int(size.rstrip("KM")) * mult
    except (OSError, ValueError):
        pass
    return 1 << 20


def tile_docs(query_block: int) -> int:
    """Documents per tile: a ``query_block × tile`` float32 block of products fills one L2 cache
    (a multiple of 64 documents, at least 64)."""
    return max(64, l2_bytes() // (4 * max(1, query_block)) // 64 * 64)
