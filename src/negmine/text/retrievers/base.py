"""The retriever protocol and the exact, deterministic running top-k they share.

Ranking ties are broken by document row (lower first). To make that exact and independent of how
the score matrix is split into blocks, each (score, row) pair is packed into one ``uint64`` key —
the float's order-preserving bit pattern in the high word, the inverted row in the low word — so
"top-k by key" has exactly one answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from negmine.core.optional import available
from negmine.text.retrievers.exact import exact_sums
from negmine.text.types import Candidates, MiningData, RunContext

_LOW = np.uint64(0xFFFFFFFF)
_SHIFT = np.uint64(32)
MAX_ROWS = 0xFFFFFFFF


class Retriever(Protocol):
    """Finds candidates: ``retrieve(data, k, ctx)`` returns the top ``k`` documents of every
    query (with the retrieval score of every known positive) as plain arrays.

    ``ctx`` (:class:`~negmine.text.types.RunContext`) carries the cache directory and device, and
    receives timings and encoding counts.
    """

    name: str

    def config(self) -> dict[str, Any]: ...

    def retrieve(self, data: MiningData, k: int, ctx: RunContext | None = None) -> Candidates: ...


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

    Each query keeps its best ``k`` packed keys and the score of the ``k``-th (its threshold).
    A block is screened on its float32 scores: only the scores above the threshold survive (a
    row without one yet first takes a lower bound of its k-th best from the maxima of disjoint
    column groups), so only about ``k`` survivors per row are packed and merged, and the search
    runs at the speed of the matrix product. The answer is the exact top-k by packed key, the
    same for any split of the matrix and any order of the blocks; blocks pushed in ascending row
    order (as the retrievers do) drop ties with the threshold at once, since the earlier rows win.

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
        self.n_queries = n_queries
        #: the best keys so far, per row partitioned: column 0 holds the k-th best; 0 marks an
        #: empty slot
        self.keys = np.zeros((n_queries, k), dtype=np.uint64)
        #: the k-th best score so far (-inf while a row holds fewer than k candidates)
        self.threshold = np.full(n_queries, -np.inf, dtype=np.float32)
        self.max_row = -1
        self._pending_q: list[np.ndarray] = []
        self._pending_keys: list[np.ndarray] = []
        self._pending = 0
        self._budget = max(4 * n_queries * k, 1 << 16)
        self._unscreened = 0
        self._cold = False
        self._mask: np.ndarray | None = None

    def push(self, scores: np.ndarray, first_row: int) -> None:
        """Merge a block of scores whose column ``j`` is document row ``first_row + j``."""
        width = scores.shape[1]
        if first_row + width >= MAX_ROWS:
            raise ValueError(f"at most {MAX_ROWS - 1} documents are supported")
        if width == 0 or self.k == 0 or self.n_queries == 0:
            return
        s = np.ascontiguousarray(scores, dtype=np.float32)
        # ``score > t`` keeps what can still enter: in ascending order a tie with the k-th loses
        # (its row is higher); otherwise a tie may win, so step t down to the next float.
        t = self.threshold if first_row > self.max_row else np.nextafter(self.threshold, np.float32(-np.inf))
        self.max_row = max(self.max_row, first_row + width - 1)
        sub, rows = s, None
        if self._unscreened:  # screening did not pay on a recent block
            self._unscreened -= 1
        elif not np.isneginf(t).all():  # skip the rows whose best score cannot enter (NaN maxima stay in)
            hot = np.flatnonzero(~(s.max(axis=1) <= t))
            self._unscreened = 8 if 2 * hot.size > self.n_queries else 0
            if hot.size < self.n_queries:
                sub, rows, t = s[hot], hot, t[hot]
        cells = self._survivors(sub, t)
        if cells.size == 0:
            return
        r, c = np.divmod(cells, width)
        self._pending_q.append(r if rows is None else rows[r])
        self._pending_keys.append(pack(sub.ravel()[cells], c + first_row))
        self._pending += cells.size
        if self._pending >= self._budget or self._cold:  # set the first thresholds at once
            self._merge()

    def _survivors(self, sub: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Flat indices of the cells of ``sub`` above their row's ``t`` (never NaN or -inf). A
        row with no threshold yet, or with many survivors, keeps only those at or above the
        block's own k-th best of the row."""
        n, width = sub.shape
        if self._mask is None or self._mask.size < sub.size:
            self._mask = np.empty(sub.size, dtype=bool)
        mask = self._mask[: sub.size].reshape(n, width)
        np.greater(sub, t[:, None], out=mask)
        if width <= self.k:
            self._cold = True
            return np.flatnonzero(mask)
        cold = np.flatnonzero(np.isneginf(t))
        self._restrict(mask, sub, cold)
        self._cold = cold.size > 0
        cells = np.flatnonzero(mask)
        limit = 2 * self.k + 16
        if cells.size > n * limit // 2:  # rare: scores rising along the corpus
            heavy = np.flatnonzero(np.bincount(cells // width, minlength=n) > limit)
            self._restrict(mask, sub, heavy, exact=True)
            cells = np.flatnonzero(mask)
        return cells

    def _restrict(self, mask: np.ndarray, sub: np.ndarray, rows: np.ndarray, exact: bool = False) -> None:
        """In ``rows`` of ``mask``, keep only cells at or above a lower bound of the row's k-th
        best score: the k-th best of the maxima of ``>= 4k`` disjoint column groups (k cells are
        at least that high; about ``1.2 k`` cells pass), or with ``exact`` the k-th best itself."""
        if rows.size == 0:
            return
        vals = sub if rows.size == sub.shape[0] else sub[rows]
        width = vals.shape[1]
        slabs = width // (4 * self.k)
        if exact or slabs < 2:
            pool = np.where(np.isnan(vals), np.float32(-np.inf), vals)  # NaN is never a candidate
        else:  # column j of the pool: the best of columns j, j + w, j + 2w, ... (w = width // slabs)
            w = width // slabs
            pool = vals[:, :w].copy()
            for i in range(1, slabs):
                np.fmax(pool, vals[:, i * w : (i + 1) * w], out=pool)
            pool[np.isnan(pool)] = -np.inf  # a group of NaN only
        cut = pool.shape[1] - self.k
        kth = np.partition(pool, cut, axis=1)[:, cut, None]
        if rows.size == sub.shape[0]:
            mask &= vals >= kth
        else:
            mask[rows] &= vals >= kth

    def _merge(self) -> None:
        """Fold the pending survivors into ``keys`` and raise the thresholds."""
        if not self._pending:
            return
        q = np.concatenate(self._pending_q)
        keys = np.concatenate(self._pending_keys)
        self._pending_q, self._pending_keys, self._pending = [], [], 0
        order = np.argsort(q, kind="stable")  # runs already sorted: cheap
        q, keys = q[order], keys[order]
        counts = np.bincount(q, minlength=self.n_queries)
        starts = np.cumsum(counts) - counts
        wide = 16 * self.k + 64
        rows = np.flatnonzero((counts > 0) & (counts <= wide))
        if rows.size:  # one padded matrix, partitioned row-wise
            m = int(counts[rows].max())
            slot = np.full(self.n_queries, -1, dtype=np.int64)
            slot[rows] = np.arange(rows.size)
            sel = slot[q] >= 0
            grid = np.zeros((rows.size, self.k + m), dtype=np.uint64)
            grid[:, : self.k] = self.keys[rows]
            grid[slot[q[sel]], self.k + np.flatnonzero(sel) - starts[q[sel]]] = keys[sel]
            grid.partition(m, axis=1)
            self.keys[rows] = grid[:, m:]
        for row in np.flatnonzero(counts > wide):  # rare: a row with many survivors
            merged = np.concatenate([self.keys[row], keys[starts[row] : starts[row] + counts[row]]])
            self.keys[row] = np.partition(merged, merged.size - self.k)[merged.size - self.k :]
        kth = self.keys[:, 0]
        self.threshold = np.where(kth != 0, unpack(kth)[1], np.float32(-np.inf)).astype(np.float32)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """``(ids int64[n, k], scores float32[n, k])`` sorted descending, padded with ``-1``/``-inf``."""
        self._merge()
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
    if len(ids) and available("numba"):  # the same bytes in one compiled pass, where numba is installed
        from negmine.text.retrievers import rescore_jit

        fast = rescore_jit.rescore(q_emb, d_emb, ids)
        if fast is not None:
            return fast
    out = np.full(ids.shape, -np.inf, dtype=np.float32)
    step = max(1, 2_000_000 // max(1, ids.shape[1] * q_emb.shape[1]))
    for s in range(0, ids.shape[0], step):
        out[s : s + step] = exact_sums(q_emb[s : s + step], d_emb, ids[s : s + step]).astype(np.float32)
    return out


#: candidates searched beyond ``k`` on float32 products before the exact re-scoring (queries whose
#: k-th place this does not settle search again with twice as many, see :func:`exact_top_k`)
EXTRA = 8
#: unit roundoff of float32
_U32 = 2.0**-24

RawSearch = Callable[[np.ndarray, np.ndarray, int], tuple[np.ndarray, np.ndarray]]


def row_norms(x: np.ndarray, block: int = 1 << 16) -> np.ndarray:
    """An upper bound of the Euclidean norm of every row of ``x``, float64 (streamed: a
    memory-mapped array stays on disk). Summed in float32, then raised by the bound on that
    sum's own rounding: only ever used as a bound, so its last bits may vary by machine. Rows
    whose float32 sum leaves float32's normal range (squares that underflow, as of entries near
    1e-20, or overflow; entries of a float64 array beyond float32's range) are taken again from
    their own values in float64, scaled by their largest entry so that no square under- or
    overflows: a norm is 0 only for a row of zeros."""
    out = np.empty(len(x), dtype=np.float64)
    slack = 1.0 + 2 * (x.shape[1] + 2) * _U32 if x.ndim == 2 else 1.0
    for s in range(0, len(x), block):
        raw = x[s : s + block]
        with np.errstate(over="ignore"):  # a float64 entry beyond float32: inf, taken again below
            b = np.asarray(raw, dtype=np.float32)
            sq = np.einsum("ij,ij->i", b, b).astype(np.float64)
        out[s : s + len(b)] = np.sqrt(sq * slack)
        odd = np.flatnonzero(~((sq >= _NORMAL_SUM) & (sq < np.inf)))
        if odd.size:
            wide = np.asarray(raw[odd], dtype=np.float64)
            top = np.abs(wide).max(axis=1, initial=0.0)
            unit = wide / np.where(top > 0, top, 1.0)[:, None]
            # |x| = top · |x / top|: every square of x / top is in [0, 1], so none that matters
            # underflows and none overflows, in float64 (with float64's rounding as slack)
            within = np.einsum("ij,ij->i", unit, unit) * (1.0 + 4 * (x.shape[1] + 2) * 2.0**-53)
            out[s + odd] = top * np.sqrt(within * slack)
    return out


#: float32 sums of squares from here up hold every square's contribution to well below the
#: rounding slack (an underflowed square is below 2**-126, 2**-60 of this)
_NORMAL_SUM = 2.0**-66


def float32_error_bound(dim: int) -> float:
    """``c`` such that ``|fl32(q·d) - q·d| + |fl32(exact q·d) - q·d| <= c·|q|·|d|`` for any
    summation order, blocking or fused multiply-add (the classical ``γ_n = n·u / (1 - n·u)``
    bound on an ``n``-term float32 dot product, with room for rounding the inputs and the exact
    value to float32), times a small slack for the norms' own rounding."""
    n = dim + 6
    return n * _U32 / (1.0 - n * _U32) * (1.0 + 1e-5)


#: the largest error any one rounding can make on a result or input below float32's normal range
#: (a subnormal rounded, or flushed to zero by a kernel that does so: both below 2^-126)
_TINY = 2.0**-126


def absolute_error(dim: int, q_norm: np.ndarray, d_norm_max: float) -> np.ndarray:
    """What :func:`float32_error_bound` (and the other relative bounds) leave out: entries,
    products and sums below float32's normal range, each off by at most :data:`_TINY` — an entry
    of ``q`` moves a product by at most ``_TINY · |d_i|`` (so ``_TINY · √dim · |d|`` over a
    row), each product and partial sum by ``_TINY`` more. Far below the relative bound for any
    vector of ordinary size; it is what settles nothing for vectors near float32's smallest."""
    root = float(np.sqrt(dim))
    return _TINY * ((root * (q_norm + d_norm_max)) * 1.01 + 2 * dim + 2)


class BoundBroken(RuntimeError):
    """A raw search returned a product farther from the exact one than its error bound allows:
    its kernel does not compute what the bound assumes (see :func:`exact_top_k`'s ``verify``)."""


def exact_top_k(q: np.ndarray, d: np.ndarray, k: int, raw: RawSearch,
                d_norm_max: float | None = None, *, error: float | None = None, relative: float = 0.0,
                first: int | None = None, verify: bool = False, then: RawSearch | None = None,
                q_norm: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The exact top ``k`` of ``q @ d.T`` by (score desc, row asc), whatever kernel computes it.

    ``raw(q, d, kk)`` is a fast search on float32 products (BLAS, FAISS, a GPU) returning its
    top ``kk`` ids and float32 scores, sorted descending. Those products differ by a few ulps
    between BLAS kernels, thread counts, block shapes and devices, so the raw order of near-ties
    is not an answer. Here the raw top ``k + EXTRA`` is re-scored exactly (float64, elementwise:
    :func:`rescore_exact`) and re-sorted; a query is settled when its last raw candidate, plus a
    rigorous bound on the float32 error (:func:`float32_error_bound` · |q| · max |d|), still
    scores below the exact k-th — no document outside the candidates can then reach the k-th
    place, tie included. The other queries search again with twice the candidates (a run of
    many exact duplicates at the cut), until the whole corpus is a candidate.

    A raw search on coarser products (bfloat16: :mod:`~negmine.text.retrievers.dense_bf16`) gives
    its own bound: ``error`` (``c``, instead of the float32 one), ``relative`` (a further
    ``relative · |score|`` on the raw score, for a product rounded at the end) and ``first`` (the
    candidates of the first search, instead of ``k + EXTRA``). With ``verify`` every candidate's
    raw score is checked against its exact one, and a product beyond the bound raises
    :class:`BoundBroken` (a kernel that does not compute what the bound assumes) rather than
    trusting the bound for the documents that were not re-scored. With ``then`` (a float32 raw
    search), once a search leaves more than a quarter of its queries unsettled, the rest search
    again with ``then`` under the float32 bound, from ``k + EXTRA`` candidates: a coarse bound
    that settles few (one document of a much larger norm than the rest) costs one coarse search,
    not several, while a few queries with ties at their cut stay on the faster coarse search.
    Every bound also carries :func:`absolute_error`, for vectors near float32's smallest.
    ``q_norm`` and ``d_norm_max`` are :func:`row_norms` of ``q`` and its maximum over ``d``, where
    the caller has them already.

    Returns ``(ids int64[n_q, k], scores float32[n_q, k])``, padded with ``-1``/``-inf``; the
    scores are the exact ones, so the bytes are the same on every machine.
    """
    n_q, n_d = len(q), len(d)
    ids_out = np.full((n_q, k), -1, dtype=np.int64)
    sc_out = np.full((n_q, k), -np.inf, dtype=np.float32)
    if n_q == 0 or n_d == 0 or k == 0:
        return ids_out, sc_out
    q_norm = row_norms(q) if q_norm is None else q_norm
    c = float32_error_bound(q.shape[1]) if error is None else error
    todo = np.arange(n_q)
    kk = min(k + EXTRA if first is None else max(k, first), n_d)
    while todo.size:
        qs = q if todo.size == n_q else q[todo]
        ids, raw_scores = raw(qs, d, kk)
        if kk < n_d or verify:
            if d_norm_max is None:
                d_norm_max = float(row_norms(d).max())
            err = c * q_norm[todo] * d_norm_max + absolute_error(q.shape[1], q_norm[todo], d_norm_max)
        if kk < n_d:
            # a zero norm is a row of zeros (row_norms is 0 for no other row), so every product is
            # exactly ±0 (equal keys): the first rows are the answer, whichever tied rows the raw
            # search kept
            zero = (q_norm[todo] == 0) | (d_norm_max == 0)
            if zero.any():
                ids = ids.copy()
                ids[zero] = np.arange(kk)
        exact = rescore_exact(qs, d, ids)
        if verify:
            _check_bound(ids, raw_scores, exact, err, relative)
        top_ids, top_sc = resort(ids, exact, k)
        if kk >= n_d:
            settled = np.ones(todo.size, dtype=bool)
        else:
            last = raw_scores[:, kk - 1].astype(np.float64)
            if relative:  # a document below the last raw one is at most this much above it
                last = last + relative * np.abs(np.where(np.isfinite(last), last, 0.0))
            settled = (last + err < top_sc[:, k - 1]) | zero
        ids_out[todo[settled]], sc_out[todo[settled]] = top_ids[settled], top_sc[settled]
        todo = todo[~settled]
        if then is not None and 4 * todo.size > settled.size:
            raw, c, relative, verify, then = then, float32_error_bound(q.shape[1]), 0.0, False, None
            kk = min(k + EXTRA, n_d)
        else:
            kk = min(2 * kk, n_d)
    return ids_out, sc_out


def _check_bound(ids: np.ndarray, raw: np.ndarray, exact: np.ndarray, err: np.ndarray, relative: float) -> None:
    """:class:`BoundBroken` unless every valid candidate's raw score is within ``err`` (per query)
    plus ``relative · |raw|`` of its exact score."""
    wide = raw.astype(np.float64)
    with np.errstate(invalid="ignore"):  # -inf - -inf of padding: NaN, not compared
        gap = np.abs(wide - exact)
    allowed = err[:, None] + relative * np.abs(wide)
    bad = (ids >= 0) & np.isfinite(raw) & ~(gap <= allowed)
    if bad.any():
        i, j = map(int, np.argwhere(bad)[0])
        raise BoundBroken(f"a raw product {float(raw[i, j])!r} is {float(gap[i, j]):.3g} from the exact "
                          f"{float(exact[i, j])!r}, beyond its bound {float(allowed[i, j]):.3g}")


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
