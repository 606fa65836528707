"""The retriever protocol and the exact, deterministic running top-k they share.

Ranking ties are broken by document row (lower first). To make that exact and independent of how
the score matrix is split into blocks, each (score, row) pair is packed into one ``uint64`` key —
the float's order-preserving bit pattern in the high word, the inverted row in the low word — so
"top-k by key" has exactly one answer.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from negmine.types import Candidates, MiningData

_LOW = np.uint64(0xFFFFFFFF)
_SHIFT = np.uint64(32)
MAX_ROWS = 0xFFFFFFFF


class Retriever(Protocol):
    """Finds candidates: ``retrieve(data, k, context)`` returns the top ``k`` documents of every
    query (with the retrieval score of every known positive) as plain arrays.

    ``context`` carries the embedding cache (``context["cache"]``) and receives counts and timings.
    """

    name: str

    def config(self) -> dict[str, Any]: ...

    def retrieve(self, data: MiningData, k: int, context: dict[str, Any]) -> Candidates: ...


def _sortable(scores: np.ndarray) -> np.ndarray:
    """float32 -> uint32 with the same order; -0.0 equals +0.0 and NaN counts as -inf (and a
    document scored -inf is never a candidate, see :func:`keys_to_result`)."""
    s = np.ascontiguousarray(scores, dtype=np.float32) + np.float32(0.0)  # -0.0 + 0.0 == +0.0
    s = np.where(np.isnan(s), np.float32(-np.inf), s)
    bits = s.view(np.uint32)
    return np.where(bits & np.uint32(0x80000000), ~bits, bits | np.uint32(0x80000000))


def _unsortable(u: np.ndarray) -> np.ndarray:
    u = u.astype(np.uint32)
    bits = np.where(u & np.uint32(0x80000000), u & np.uint32(0x7FFFFFFF), ~u)
    return bits.view(np.float32)


def pack(scores: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Pack float32 scores and int64 document rows (< 2**32) into order-preserving uint64 keys."""
    hi = _sortable(scores).astype(np.uint64) << _SHIFT
    return hi | (_LOW - rows.astype(np.uint64))


def unpack(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows = (_LOW - (keys & _LOW)).astype(np.int64)
    scores = _unsortable(keys >> _SHIFT)
    return rows, scores


class TopK:
    """A running top-k over column blocks of a ``(n_queries, n_docs)`` score matrix.

    Memory is ``O(n_queries * (k + block))``, never ``O(n_queries * n_docs)``.

    Examples
    --------
    >>> t = TopK(n_queries=1, k=2)
    >>> t.push(np.array([[0.1, 0.9]], np.float32), first_row=0)
    >>> t.push(np.array([[0.9, 0.2]], np.float32), first_row=2)
    >>> t.result()[0].tolist()  # the tie at 0.9 goes to the lower row
    [[1, 2]]
    """

    def __init__(self, n_queries: int, k: int) -> None:
        self.k = k
        self.keys = np.zeros((n_queries, 0), dtype=np.uint64)

    def push(self, scores: np.ndarray, first_row: int) -> None:
        """Merge a block of scores whose column ``j`` is document row ``first_row + j``."""
        if first_row + scores.shape[1] >= MAX_ROWS:
            raise ValueError(f"at most {MAX_ROWS - 1} documents are supported")
        rows = np.arange(first_row, first_row + scores.shape[1], dtype=np.int64)
        keys = pack(scores, rows[None, :])
        merged = np.concatenate([self.keys, keys], axis=1) if self.keys.shape[1] else keys
        if merged.shape[1] > self.k:
            part = np.argpartition(merged, merged.shape[1] - self.k, axis=1)[:, -self.k :]
            merged = np.take_along_axis(merged, part, axis=1)
        self.keys = merged

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """``(ids int64[n, k], scores float32[n, k])`` sorted descending, padded with ``-1``/``-inf``."""
        return keys_to_result(self.keys, self.k)


def keys_to_result(keys: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Sort packed keys descending and unpack the first ``k``; key ``0`` and ``-inf`` scores
    (including NaN) are padding: such a document is never a candidate."""
    keys = np.sort(keys, axis=1)[:, ::-1][:, :k]
    rows, scores = unpack(keys)
    pad = (keys == 0) | np.isneginf(scores)
    rows[pad] = -1
    scores[pad] = -np.inf
    n, m = keys.shape
    ids = np.full((n, k), -1, dtype=np.int64)
    out = np.full((n, k), -np.inf, dtype=np.float32)
    ids[:, :m] = rows
    out[:, :m] = scores
    return ids, out


def top_k(scores: np.ndarray, k: int, first_row: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k of a score matrix (rows = queries), ties to the lower document row."""
    t = TopK(scores.shape[0], k)
    t.push(scores, first_row)
    return t.result()


def rescore_exact(q_emb: np.ndarray, d_emb: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Dot products ``q_emb[i] · d_emb[ids[i, j]]`` computed elementwise in float64 (so the value
    of a pair never depends on block or batch shapes), as float32; ``-inf`` where ``ids < 0``."""
    out = np.full(ids.shape, -np.inf, dtype=np.float32)
    step = max(1, 2_000_000 // max(1, ids.shape[1] * q_emb.shape[1]))
    for s in range(0, ids.shape[0], step):
        blk = ids[s : s + step]
        valid = blk >= 0
        docs = d_emb[np.where(valid, blk, 0)].astype(np.float64)
        vals = (docs * q_emb[s : s + step, None, :].astype(np.float64)).sum(-1)
        out[s : s + step] = np.where(valid, vals, -np.inf).astype(np.float32)
    return out


def resort(ids: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Re-sort candidate rows by (score desc, row asc) and keep ``k`` columns."""
    valid = ids >= 0
    keys = np.where(valid, pack(scores, np.where(valid, ids, 0)), np.uint64(0))
    return keys_to_result(keys, k)


def pair_scores(q_emb: np.ndarray, d_emb: np.ndarray, data: MiningData) -> np.ndarray:
    """float32 score of every (query, positive) pair of ``data.positives``, computed exactly."""
    q = data.positives.query_of_pair()
    d = data.positives.indices
    return (q_emb[q].astype(np.float64) * d_emb[d].astype(np.float64)).sum(-1).astype(np.float32)
