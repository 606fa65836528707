"""The exact re-scoring of :func:`~negmine.text.retrievers.base.rescore_exact`, compiled (numba,
where installed): the same bytes, one pass, every core.

``rescore_exact`` multiplies each candidate's float32 vector with its query's in float64 (exact:
a product of two float32 fits in a float64) and sums the products with numpy's reduction, which
is a *pairwise* sum (blocks of at most 128 with eight accumulators, halves above). This module sums
in exactly that order, so each float64 sum, and the float32 it rounds to, is the same bit for bit;
it gathers each candidate's row in place instead of building float64 copies of all of them, and
asks the CPU for the rows of the candidates a few places ahead before it sums them.
:func:`agrees` checks that on this machine's numpy before the first use (a numpy with another
summation order makes the caller keep the numpy path), and the tests check it over every length.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numba
import numpy as np
from llvmlite import binding as _llvm
from llvmlite import ir
from numba.core import cgutils
from numba.extending import intrinsic

from negmine.text.retrievers.compiled import njit_as, thread_budget
from negmine.text.retrievers.exact import exact_sums

#: numpy's pairwise-summation block (``PW_BLOCKSIZE``)
_BLOCK = 128


def plan(n: int) -> np.ndarray:
    """numpy's pairwise sum of ``n`` terms as a postfix program, ``int64[m, 3]`` rows ``(op, lo,
    count)``: op 0 pushes the block sum of ``count`` terms from ``lo`` (at most 128: eight
    accumulators), op 1 pops two sums and pushes their sum (the first pushed on the left). numpy
    halves a sum of more than 128 terms at ``n // 2`` rounded down to a multiple of 8."""
    ops: list[tuple[int, int, int]] = []

    def walk(lo: int, m: int) -> None:
        if m <= _BLOCK:
            ops.append((0, lo, m))
            return
        half = m // 2
        half -= half % 8
        walk(lo, half)
        walk(lo + half, m - half)
        ops.append((1, 0, 0))

    walk(0, n)
    return np.array(ops, dtype=np.int64).reshape(-1, 3)


@numba.njit(cache=True, inline="always")
def _prod(q: Any, i: int, d: Any, r: int, t: int) -> float:  # pragma: no cover (compiled)
    """The exact float64 product ``q[i, t] · d[r, t]`` of two float32."""
    return np.float64(q[i, t]) * np.float64(d[r, t])


@numba.njit(cache=True, inline="always")
def _block(q: Any, i: int, d: Any, r: int, lo: int, n: int) -> float:  # pragma: no cover (compiled)
    """numpy's sum of the float64 products ``q[i, t] · d[r, t]`` for ``t`` in ``[lo, lo + n)``,
    ``n <= 128``: sequential below 8 terms, else eight accumulators combined as
    ((0+1)+(2+3))+((4+5)+(6+7)), then the rest in order. Each product is exact in float64, so
    forming it in place gives the same terms as numpy's product array."""
    if n < 8:
        res = 0.0
        for t in range(lo, lo + n):
            res += _prod(q, i, d, r, t)
        return res
    # eight accumulators in locals, each added in its own statement: no allocation per candidate
    # and block, and the compiler keeps them in one vector register (2.2x faster than an
    # ``np.empty(8)`` or than tuple assignments, at 2,048 x 108 candidates of 384 dimensions)
    a0 = _prod(q, i, d, r, lo)
    a1 = _prod(q, i, d, r, lo + 1)
    a2 = _prod(q, i, d, r, lo + 2)
    a3 = _prod(q, i, d, r, lo + 3)
    a4 = _prod(q, i, d, r, lo + 4)
    a5 = _prod(q, i, d, r, lo + 5)
    a6 = _prod(q, i, d, r, lo + 6)
    a7 = _prod(q, i, d, r, lo + 7)
    m = n - n % 8
    for s in range(lo + 8, lo + m, 8):
        a0 += _prod(q, i, d, r, s)
        a1 += _prod(q, i, d, r, s + 1)
        a2 += _prod(q, i, d, r, s + 2)
        a3 += _prod(q, i, d, r, s + 3)
        a4 += _prod(q, i, d, r, s + 4)
        a5 += _prod(q, i, d, r, s + 5)
        a6 += _prod(q, i, d, r, s + 6)
        a7 += _prod(q, i, d, r, s + 7)
    res = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))
    for t in range(lo + m, lo + n):
        res += _prod(q, i, d, r, t)
    return res


#: candidates ahead whose rows are fetched into the cache while the current one is summed
PREFETCH_AHEAD = 8
#: llvm.prefetch's name for a plain pointer: ``p0`` where pointers are opaque (LLVM 17 on),
#: ``p0i8`` before
_PREFETCH = "llvm.prefetch.p0" if _llvm.llvm_version_info >= (17,) else "llvm.prefetch.p0i8"


@intrinsic
def _prefetch_row(typingctx: Any, arr: Any, row: Any) -> Any:  # pragma: no cover (compiled)
    """Ask the CPU to bring row ``row`` of the C-contiguous 2-D array ``arr`` into its caches, one
    ``llvm.prefetch`` per 64-byte line: a hint, which changes no result and never faults. Nothing
    for arrays of another layout."""
    sig = numba.types.void(arr, row)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        aryty = signature.args[0]
        if aryty.layout != "C" or aryty.ndim != 2:
            return context.get_dummy_value()
        ary = context.make_array(aryty)(context, builder, args[0])
        intp = numba.types.intp
        start = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1], context.get_constant(intp, 0)],
                                         wraparound=False)
        base = builder.bitcast(start, ir.IntType(8).as_pointer())
        width = builder.mul(cgutils.unpack_tuple(builder, ary.shape, 2)[1],
                            context.get_constant(intp, aryty.dtype.bitwidth // 8))
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [base.type, i32, i32, i32]), _PREFETCH)
        with cgutils.for_range_slice(builder, context.get_constant(intp, 0), width,
                                     context.get_constant(intp, 64)) as (offset, _):
            # read access, keep in every cache level, data
            builder.call(fn, [builder.gep(base, [offset]), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen


def _make(prefetch: bool) -> Callable[..., None]:
    """The kernel, with or without fetching the rows of the candidates ahead (the gathers of
    random rows from a large corpus wait on memory otherwise: 0.05 s against 0.08 s for 2,048 x
    108 candidates from 200,000 x 384 here)."""

    def _rescore(q: Any, d: Any, ids: Any, program: Any, out: Any) -> None:  # pragma: no cover (compiled)
        """Run the :func:`plan` program for every candidate: block sums pushed, pairs popped and
        added."""
        n, kk = ids.shape
        for i in numba.prange(n):
            stack = np.empty(program.shape[0] + 1, dtype=np.float64)
            for j in range(kk):
                if prefetch:  # the candidate PREFETCH_AHEAD on, in this query's row or the next's
                    ahead = i * kk + j + PREFETCH_AHEAD
                    if ahead < n * kk:
                        r_ahead = ids[ahead // kk, ahead % kk]
                        if r_ahead >= 0:
                            _prefetch_row(d, r_ahead)  # type: ignore[call-arg]  # typed by numba
                r = ids[i, j]
                if r < 0:
                    out[i, j] = -np.inf
                    continue
                top = 0
                for p in range(program.shape[0]):
                    if program[p, 0] == 0:
                        stack[top] = _block(q, i, d, r, program[p, 1], program[p, 2])
                        top += 1
                    else:
                        stack[top - 2] = stack[top - 2] + stack[top - 1]
                        top -= 1
                # numpy's reduction adds the sum to its identity, +0.0: a sum of -0.0 products is
                # +0.0 (every other sum is unchanged); rounded to out's dtype (float32; float64 in
                # tests)
                out[i, j] = stack[0] + 0.0

    return _rescore


_rescore_parallel = njit_as(_make(prefetch=True), "prefetch", parallel=True)
_rescore_plain = njit_as(_make(prefetch=False), "parallel", parallel=True)
_rescore_serial = njit_as(_make(prefetch=False), "serial")
#: cells x dimensions worth starting the threads for
PARALLEL_WORK = 1 << 20

_AGREES: dict[int, bool] = {}


@functools.cache
def threaded() -> Callable[..., None]:
    """The threaded kernel: the one that fetches rows ahead, unless it does not compile with this
    numba and LLVM (then the same kernel without; a hint only, so the bytes are the same)."""
    q, ids = np.zeros((1, 8), dtype=np.float32), np.zeros((1, 1), dtype=np.int64)
    try:
        _rescore_parallel(q, q, ids, plan(8), np.empty((1, 1), dtype=np.float32))
    except Exception:  # whatever the compiler raises, the plain kernel serves
        return _rescore_plain
    return _rescore_parallel


def sums(q: np.ndarray, d: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The kernel's float64 sums (one thread), before rounding: what :func:`agrees` and the tests
    compare with numpy's, since a float32 result hides most changes of summation order."""
    out = np.empty(ids.shape, dtype=np.float64)
    _rescore_serial(q, d, np.ascontiguousarray(ids, dtype=np.int64), plan(q.shape[1]), out)
    return out


def agrees(dim: int) -> bool:
    """Whether this kernel sums in numpy's order at this dimension on this machine: the float64
    sums, bit for bit, on seeded data spanning many magnitudes (checked once per dimension)."""
    if dim not in _AGREES:
        rng = np.random.default_rng(dim)
        q = (rng.standard_normal((4, dim)) * np.exp(rng.normal(0, 2, (4, dim)))).astype(np.float32)
        d = (rng.standard_normal((64, dim)) * np.exp(rng.normal(0, 2, (64, dim)))).astype(np.float32)
        ids = rng.integers(-1, 64, (4, 16))
        _AGREES[dim] = sums(q, d, ids).tobytes() == exact_sums(q, d, ids).tobytes()
    return _AGREES[dim]


def kernel(work: int) -> Callable[..., None]:
    """The kernel for ``work`` cells x dimensions: threaded for work worth starting the threads for,
    where more than one thread is allowed (:func:`~negmine.text.retrievers.compiled.thread_budget`),
    else serial."""
    return threaded() if work >= PARALLEL_WORK and thread_budget() > 1 else _rescore_serial


def rescore(q: np.ndarray, d: np.ndarray, ids: np.ndarray) -> np.ndarray | None:
    """``float32[n, kk]``: :func:`~negmine.text.retrievers.base.rescore_exact`'s bytes, compiled;
    ``None`` where this kernel does not apply (not float32 rows, or a numpy that sums otherwise)."""
    if q.dtype != np.float32 or d.dtype != np.float32 or q.ndim != 2 or d.ndim != 2 or not agrees(q.shape[1]):
        return None
    out = np.empty(ids.shape, dtype=np.float32)
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    kernel(ids.size * q.shape[1])(np.ascontiguousarray(q), d, ids, plan(q.shape[1]), out)
    return out
