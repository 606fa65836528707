"""The compiled BM25 search (numba, extra ``bm25``): scores each query from bm25s' precomputed
sparse index and selects its top k in one pass, queries in parallel (as many threads as
:func:`~negmine.text.retrievers.compiled.thread_budget` allows: a worker held to one BLAS thread
searches on one).

It computes exactly what the numpy path computes — every document's float32 score summed term by
term in the query's token order (``scores[doc] += data[j]``, as bm25s'
``get_scores_from_ids``), then the top ``k`` by (score desc, row asc) over *all* documents, the
unmatched ones scoring ``0.0`` — so ``mined.parquet`` is the same bytes with or without numba.
What it saves: the dense ``float32[n_docs]`` row per query that numpy writes, reads and screens,
and the Python work per query; a per-thread accumulator is reset only where a query touched it.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from negmine.text.retrievers.compiled import thread_budget


def flatten(query_ids: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Ragged token ids as CSR: ``(ptr int64[n + 1], tokens int64[total])``."""
    ptr = np.zeros(len(query_ids) + 1, dtype=np.int64)
    np.cumsum([len(t) for t in query_ids], out=ptr[1:])
    tokens = np.concatenate(query_ids).astype(np.int64) if query_ids else np.zeros(0, np.int64)
    return ptr, tokens


def search(index: Any, query_ids: list[np.ndarray], k: int, cell_ptr: np.ndarray, cell_docs: np.ndarray,
           threads: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(ids int64[n, k], scores float32[n, k], cell_scores float32[m])`` for the queries
    ``query_ids`` (token ids of the index's vocabulary): the top ``k`` documents (padded with
    ``-1``/``-inf`` when ``k`` exceeds the corpus) and the score of the document rows
    ``cell_docs[cell_ptr[q]:cell_ptr[q + 1]]`` of each query ``q`` (CSR, as known positives)."""
    sc = index.scores
    n_docs = int(sc["num_docs"])
    ptr, tokens = flatten(query_ids)
    n = len(query_ids)
    kk = min(k, n_docs)
    keys = np.zeros((n, max(kk, 1)), dtype=np.uint64)
    cell_scores = np.zeros(len(cell_docs), dtype=np.float32)
    if n and kk:
        t = max(1, min(threads or thread_budget(), n))
        bounds = np.linspace(0, n, t + 1).astype(np.int64)
        _kernel(np.asarray(sc["data"], dtype=np.float32), np.asarray(sc["indices"], dtype=np.int64),
                  np.asarray(sc["indptr"], dtype=np.int64), n_docs, ptr, tokens, kk,
                  np.asarray(cell_ptr, dtype=np.int64), np.asarray(cell_docs, dtype=np.int64), bounds, keys,
                  cell_scores)
    from negmine.text.retrievers.base import keys_to_result

    ids, scores = keys_to_result(keys[:, :kk], k)
    return ids, scores, cell_scores


_LOW = np.uint64(0xFFFFFFFF)
_SIGN = np.uint32(0x80000000)


@numba.njit(inline="always")
def _offer(heap: Any, size: int, k: int, key: Any) -> int:
    """Offer ``key`` to a min-heap holding the best ``k`` keys so far; returns its new size."""
    if size < k:  # append and sift up
        i = size
        heap[i] = key
        while i > 0 and heap[(i - 1) // 2] > heap[i]:
            heap[(i - 1) // 2], heap[i] = heap[i], heap[(i - 1) // 2]
            i = (i - 1) // 2
        return size + 1
    if key > heap[0]:  # replace the root and sift down
        heap[0] = key
        i = 0
        while True:
            left, smallest = 2 * i + 1, i
            if left < size and heap[left] < heap[smallest]:
                smallest = left
            if left + 1 < size and heap[left + 1] < heap[smallest]:
                smallest = left + 1
            if smallest == i:
                break
            heap[i], heap[smallest] = heap[smallest], heap[i]
            i = smallest
    return size


@numba.njit(inline="always")
def _score(key: Any, val: Any, bits: Any) -> Any:
    """The float32 score packed in the high word of ``key`` (the inverse of the order-preserving
    map), through the one-element buffers ``val`` / ``bits`` (two views of the same 4 bytes)."""
    hi = np.uint32(key >> np.uint64(32))
    bits[0] = hi & np.uint32(0x7FFFFFFF) if hi & _SIGN else ~hi
    return val[0]


@numba.njit(parallel=True, nogil=True, cache=True)
def _kernel(data: Any, indices: Any, indptr: Any, n_docs: int, ptr: Any, tokens: Any, k: int, cell_ptr: Any,
            cell_docs: Any, bounds: Any, keys: Any, cell_scores: Any) -> None:  # pragma: no cover - compiled
    for t in numba.prange(len(bounds) - 1):
        acc = np.zeros(n_docs, dtype=np.float32)
        seen = np.zeros(n_docs, dtype=np.uint8)
        touched = np.empty(n_docs, dtype=np.int64)
        val = np.zeros(1, dtype=np.float32)
        bits = val.view(np.uint32)  # the float's bit pattern, as base.pack reads it
        heap = np.zeros(max(k, 1), dtype=np.uint64)
        for q in range(bounds[t], bounds[t + 1]):
            postings = 0
            for p in range(ptr[q], ptr[q + 1]):
                postings += indptr[tokens[p] + 1] - indptr[tokens[p]]
            dense = 4 * postings > n_docs  # most rows touched: scan them all, in order
            n_touched = 0
            for p in range(ptr[q], ptr[q + 1]):  # the query's tokens in order, as bm25s sums them
                tok = tokens[p]
                if dense:
                    for j in range(indptr[tok], indptr[tok + 1]):
                        acc[indices[j]] += data[j]
                    continue
                for j in range(indptr[tok], indptr[tok + 1]):
                    d = indices[j]
                    if seen[d] == 0:
                        seen[d] = 1
                        touched[n_touched] = d
                        n_touched += 1
                    acc[d] += data[j]
            size = 0
            floor = -np.inf  # the root's score once the heap is full: lower scores cannot enter
            if dense:  # every row, an untouched one scoring 0.0 as in the numpy path
                for d in range(n_docs):
                    x = acc[d]
                    if x < floor:
                        continue
                    val[0] = x + np.float32(0.0)  # -0.0 as +0.0
                    b = bits[0]
                    hi = ~b if b & _SIGN else b | _SIGN
                    key = (np.uint64(hi) << np.uint64(32)) | (_LOW - np.uint64(d))
                    if size < k or key > heap[0]:
                        size = _offer(heap, size, k, key)
                        if size == k:
                            floor = _score(heap[0], val, bits)
            else:
                for i in range(n_touched):
                    d = touched[i]
                    x = acc[d]
                    if x < floor:
                        continue
                    val[0] = x + np.float32(0.0)  # -0.0 as +0.0
                    b = bits[0]
                    hi = ~b if b & _SIGN else b | _SIGN
                    size = _offer(heap, size, k, (np.uint64(hi) << np.uint64(32)) | (_LOW - np.uint64(d)))
                    if size == k:
                        floor = _score(heap[0], val, bits)
                # the unmatched documents score 0.0: only the k lowest rows of them can enter
                zero_key = np.uint64(_SIGN) << np.uint64(32)
                found, r = 0, 0
                while found < k and r < n_docs:
                    if seen[r] == 0:
                        size = _offer(heap, size, k, zero_key | (_LOW - np.uint64(r)))
                        found += 1
                    r += 1
            keys[q, :size] = heap[:size]
            for c in range(cell_ptr[q], cell_ptr[q + 1]):
                cell_scores[c] = acc[cell_docs[c]]
            if dense:
                acc[:] = np.float32(0.0)
            for i in range(n_touched):
                d = touched[i]
                acc[d] = np.float32(0.0)
                seen[d] = 0
