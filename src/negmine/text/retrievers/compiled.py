"""Compiled kernels that keep their own on-disk cache entries (numba, where installed).

numba keys its cache by a function's qualified name, bytecode and closure, not by the options it
is compiled with. Two dispatchers of one Python function, one ``parallel=True`` and one serial,
therefore load each other's machine code: whichever was compiled first serves both, in that
process and in every later one that reads the cache. A serial screen could run as a parallel one
inside threads that are already parallel, or a parallel kernel on one core. :func:`njit_as`
compiles a copy of the function under a name of its own, so each variant has its own entry.

:func:`thread_budget` is how many threads a compiled kernel may take: numba's count, held to what
BLAS would use, so that a limit the user or an engine set (``OMP_NUM_THREADS=1`` in a Ray worker
task, which numba does not read) holds for every kernel.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any


def njit_as(fn: Callable[..., Any], variant: str, **options: Any) -> Any:
    """``numba.njit(cache=True, **options)`` of a copy of ``fn`` named ``<fn>_<variant>`` (the same
    code, globals, defaults and closure)."""
    import numba

    copy = types.FunctionType(fn.__code__, fn.__globals__, f"{fn.__name__}_{variant}", fn.__defaults__,
                              fn.__closure__)
    copy.__qualname__ = f"{fn.__qualname__}_{variant}"
    copy.__doc__, copy.__module__ = fn.__doc__, fn.__module__
    return numba.njit(cache=True, **options)(copy)


def blas_limits() -> tuple[Any, int] | None:
    """``(threadpoolctl's threadpool_limits, the BLAS thread count now)``, or ``None`` where
    threadpoolctl is not installed."""
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:
        return None
    counts = [int(i.get("num_threads") or 1) for i in threadpool_info() if i.get("user_api") == "blas"]
    return threadpool_limits, max(counts, default=1)


def thread_budget() -> int:
    """The threads a compiled kernel may use: numba's count, no more than BLAS's where
    threadpoolctl can read it."""
    import numba

    blas = blas_limits()
    return max(1, numba.get_num_threads() if blas is None else min(numba.get_num_threads(), blas[1]))
