"""Each compiled kernel variant keeps its own numba cache entry (negmine.text.retrievers.compiled).

numba keys its on-disk cache by a function's name, code and closure, not by ``parallel=``: two
dispatchers of one function would load each other's machine code (a serial screen that runs as a
parallel one inside the tiled search's threads, a threaded re-scoring on one core)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.extra("bm25")  # numba

#: every variant, each called once in a fresh process: the serial ones first, as the tiled search
#: and the re-scoring's self-check do, then the parallel ones
_CALLS = """
import json, numpy as np
from negmine.text.retrievers import dense_jit, rescore_jit
block = np.arange(12, dtype=np.float32).reshape(3, 4)
q = np.ones((2, 8), dtype=np.float32)
ids = np.zeros((2, 3), dtype=np.int64)
out = np.empty((2, 3), dtype=np.float32)
kernels = {
    "screen serial": (dense_jit._screen_serial, (block, 0, *dense_jit._heaps(3, 2))),
    "screen parallel": (dense_jit._screen_parallel, (block, 0, *dense_jit._heaps(3, 2))),
    "rescore serial": (rescore_jit._rescore_serial, (q, q, ids, rescore_jit.plan(8), out)),
    "rescore plain": (rescore_jit._rescore_plain, (q, q, ids, rescore_jit.plan(8), out)),
    "rescore prefetch": (rescore_jit._rescore_parallel, (q, q, ids, rescore_jit.plan(8), out)),
}
for fn, args in kernels.values():
    fn(*args)
print(json.dumps({name: [len(fn.stats.cache_hits), len(fn.stats.cache_misses)]
                  for name, (fn, _) in kernels.items()}))
"""


def _run(cache: Path) -> dict[str, list[int]]:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    done = subprocess.run([sys.executable, "-c", _CALLS], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_each_variant_compiles_its_own_code_and_loads_it_back(tmp_path: Path):
    first = _run(tmp_path)
    # a fresh cache: every variant is compiled (a hit here is another variant's code, loaded)
    assert all(hits == 0 and misses == 1 for hits, misses in first.values()), first
    second = _run(tmp_path)
    assert all(hits == 1 and misses == 0 for hits, misses in second.values()), second


_BUDGET = """
import json, numba
from negmine.text.retrievers import compiled, rescore_jit
print(json.dumps({"budget": compiled.thread_budget(), "numba": numba.get_num_threads(),
                  "blas": compiled.blas_limits()[1],
                  "threaded": rescore_jit.kernel(1 << 40) is rescore_jit.threaded(),
                  "small threaded": rescore_jit.kernel(1) is rescore_jit.threaded()}))
"""


def _budget(**env: str) -> dict[str, object]:
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    done = subprocess.run([sys.executable, "-c", _BUDGET], env={**clean, **env}, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_one_thread_limit_holds_for_the_compiled_kernels():
    """OMP_NUM_THREADS=1, as Ray sets in a one-CPU worker task: numba does not read it, BLAS does,
    and the kernels take no more threads than BLAS (the re-scoring runs serial)."""
    limited = _budget(OMP_NUM_THREADS="1")
    assert limited["budget"] == 1 and limited["blas"] == 1 and not limited["threaded"]
    free = _budget()
    assert free["budget"] == min(free["numba"], free["blas"])
    assert free["threaded"] == (free["budget"] > 1)
    assert not free["small threaded"]
    if (os.cpu_count() or 1) > 1:  # this machine class: 2 cores
        assert free["budget"] > 1 and free["numba"] > 1
