"""The bfloat16 screen of the exact dense search: the products of bfloat16-rounded queries and
documents (torch, on a CPU with bfloat16 dot-product instructions: about twice the float32 rate),
screened by the compiled screen of :mod:`~negmine.text.retrievers.dense_jit`, then settled
exactly by :func:`~negmine.text.retrievers.base.exact_top_k` with the bound of this module.

The answer is the same bytes as the float32 search's: every candidate is re-scored exactly, and a
query is only settled when no document outside its candidates can reach its k-th place under a
rigorous bound on the bfloat16 error (:func:`error_bound`, :data:`RELATIVE`). The bound is wider
than float32's (about 0.008 · |q| · |d| against 2e-5), so the first search keeps ``2k + 32``
candidates (:func:`first`); a query that this does not settle searches again on float32
products. Every candidate's bfloat16 product is also checked against its exact one
(``exact_top_k(verify=True)``): a kernel that rounds otherwise than the bound assumes raises
:class:`~negmine.text.retrievers.base.BoundBroken`, and :class:`~negmine.text.retrievers.dense.Dense`
searches again in float32.

The bound assumes what every CPU bfloat16 kernel does: each input rounded to nearest (|error| ≤
2^-8 relative), products summed in float32 (any order, fused or not, rounded to nearest or to
odd) and the sum rounded to bfloat16 once. Inputs whose norms leave [2^-40, 2^40] (where
products could overflow, or the absolute error of flushed subnormals would settle nothing) take
the float32 search (:func:`in_range`), and so does, under ``auto``, a corpus with a document of
more than twice the median norm (:func:`even`).
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path
from typing import Any

import numpy as np

from negmine.core.optional import available
from negmine.text.retrievers.base import _U32

#: unit roundoff of bfloat16 (8 significant bits, round to nearest)
_UB = 2.0**-8
#: the raw score of a document is within this much of its float32 sum, relative to the raw score
#: (the one rounding of that sum to bfloat16: ``|fl(x) - x| <= u/(1-u) · |fl(x)|``)
RELATIVE = _UB / (1.0 - _UB) * (1.0 + 1e-5)
#: the norms of queries and documents the bfloat16 screen takes: no product can overflow, and
#: the absolute term of the bound (flushed subnormals) stays far below the relative one
NORM_LOW, NORM_HIGH = 2.0**-40, 2.0**40
#: multiply-adds from which the bfloat16 screen pays for itself once torch is imported, and
#: from which it also pays for importing torch (about 1 s here)
WORK_LOADED, WORK_COLD = 1 << 32, 1 << 39


def error_bound(dim: int) -> float:
    """``c`` such that the float32 sum of the products of the bfloat16-rounded entries of ``q``
    and ``d`` (any order, fused or not), and the float32 rounding of the exact ``q·d``, are both
    within ``c·|q|·|d|`` of ``q·d`` (beside the final rounding to bfloat16, :data:`RELATIVE`):
    ``(2u + u²)`` for the inputs' rounding, ``γ_n (1 + u)²`` for the float32 sum
    (``γ_n = n·2u32 / (1 - n·2u32)``: twice float32's unit roundoff, for kernels that round each
    sum to odd, as Arm's BFDOT without FEAT_EBF16 does), ``u32`` for the exact score's rounding;
    a small slack for the norms' own rounding. Subnormals: :func:`~negmine.text.retrievers.base.absolute_error`."""
    n = dim + 6
    gamma = n * 2 * _U32 / (1.0 - n * 2 * _U32)
    return (2 * _UB + _UB * _UB + gamma * (1.0 + _UB) ** 2 + _U32) * (1.0 + 1e-5)


def first(k: int) -> int:
    """Candidates of the first search for a top ``k``: the documents within the bound of the
    k-th place are about ``k`` more at 200k random unit vectors, fewer on real embeddings."""
    return 2 * k + 32


@functools.cache
def native() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (read from ``/proc/cpuinfo``, so Linux
    only): elsewhere torch emulates it, slower than float32."""
    if platform.system() != "Linux":
        return False
    try:
        return has_bf16(Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return False


def has_bf16(cpuinfo: str) -> bool:
    """Whether a ``/proc/cpuinfo`` text lists bfloat16 dot products: x86 ``avx512_bf16`` or
    ``amx_bf16`` (``flags``), Arm ``bf16`` (``Features``)."""
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def usable() -> bool:
    """torch and numba installed and bfloat16 native on this CPU."""
    return native() and available("torch") and available("numba")


def torch_native() -> bool:
    """Whether torch multiplies bfloat16 through oneDNN with this CPU's instructions (imports
    torch; ``False`` where it cannot be imported)."""
    try:
        import torch
    except (ImportError, OSError):
        return False
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch without these: trust the CPU's flags
        return True


def even(d_norms: np.ndarray) -> bool:
    """Whether the largest document norm is at most twice the median (of a sample): the bound
    grows with the largest, and one document far larger than the rest would leave most queries
    unsettled by the bfloat16 screen (``auto`` then takes float32)."""
    sample = d_norms[:: max(1, len(d_norms) // 4096)]
    return bool(d_norms.max() <= 2.0 * float(np.median(sample)))


def in_range(q_norm: np.ndarray, d_norm_max: float) -> bool:
    """Whether the bound holds as stated for these norms: every query zero or within
    [:data:`NORM_LOW`, :data:`NORM_HIGH`], and so the largest document norm."""
    ok = (q_norm == 0) | ((q_norm >= NORM_LOW) & (q_norm <= NORM_HIGH))
    return bool(ok.all()) and NORM_LOW <= d_norm_max <= NORM_HIGH


def search(q: np.ndarray, d: np.ndarray, k: int, query_block: int, doc_block: int,
           progress: Any = iter) -> tuple[np.ndarray, np.ndarray]:
    """``(ids int64[n_q, k], scores float32[n_q, k])``: the best ``k`` bfloat16 products of every
    query (as float32), sorted descending (any order among equal ones), padded with ``-1``/``-inf``.

    Each ``query_block × doc_block`` block of products is one torch matrix product on torch's
    threads, screened as bfloat16 bits on every core the compiled kernels may use
    (:func:`~negmine.text.retrievers.compiled.thread_budget`)."""
    import torch

    from negmine.text.retrievers import dense_jit
    from negmine.text.retrievers.compiled import thread_budget

    ids = np.full((len(q), k), -1, dtype=np.int64)
    scores = np.full((len(q), k), -np.inf, dtype=np.float32)
    if k == 0 or not len(q) or not len(d):
        return ids, scores
    qbs, dbs = max(1, min(query_block, len(q))), max(1, min(doc_block, len(d)))
    parallel = thread_budget() > 1
    stage = np.empty((max(qbs, dbs), q.shape[1]), dtype=np.float32)  # float32 rows before rounding
    q16 = torch.empty((qbs, q.shape[1]), dtype=torch.bfloat16)
    d16 = torch.empty((dbs, q.shape[1]), dtype=torch.bfloat16)
    out16 = torch.empty(qbs * dbs, dtype=torch.bfloat16)
    bits = out16.view(torch.int16).numpy().view(np.uint16)  # the same memory, screened as bfloat16
    with torch.inference_mode():
        for qs in progress(range(0, len(q), qbs)):
            nq = min(qbs, len(q) - qs)
            qb = _rounded(torch, stage, q[qs : qs + nq], q16)
            heap_s, heap_r, sizes = dense_jit._heaps(nq, k)
            for ds in range(0, len(d), dbs):
                nd = min(dbs, len(d) - ds)
                db = _rounded(torch, stage, d[ds : ds + nd], d16)
                cells = nq * nd
                torch.mm(qb, db.T, out=out16[:cells].view(nq, nd))
                dense_jit.screen(bits[:cells].reshape(nq, nd), ds, heap_s, heap_r, sizes, parallel)
            dense_jit._emit(heap_s, heap_r, qs, ids, scores)
    return ids, scores


def _rounded(torch: Any, stage: np.ndarray, rows: np.ndarray, into: Any) -> Any:
    """``rows`` (any float dtype, maybe memory-mapped) rounded to bfloat16 (to nearest even) in
    ``into``'s first rows: read in place where they are writable C-contiguous float32, else
    through the float32 ``stage`` (never a copy of a whole array; torch takes no read-only
    array)."""
    n = len(rows)
    if rows.dtype != np.float32 or not rows.flags.c_contiguous or not rows.flags.writeable:
        np.copyto(stage[:n], rows, casting="same_kind")
        rows = stage[:n]
    out = into[:n]
    out.copy_(torch.from_numpy(rows))
    return out
