"""What every speed benchmark shares, so its figures can be trusted (issue 18, item 5).

* One benchmark at a time: :func:`quiet` takes an exclusive ``flock`` on a lock file (another
  benchmark waits), records the load average before and after, and refuses to start above
  ``max_load`` (1.5 on this 2-core class) unless told to run anyway — then every figure it
  prints is flagged ``UNDER LOAD``. The load after is recorded but not judged: a benchmark that
  keeps both cores busy raises the 1-minute average towards 2 by itself.
* Every measurement is repeated (3 times by default): :func:`timed` returns the median and the
  min-max, and ratios are taken between measurements of the *same run*. Where several things are
  compared, :func:`interleaved` runs each once untimed, then all of them in turn, round by round,
  and :func:`paired` takes the ratio within each round: a drift of the machine between rounds
  then cancels.
"""

from __future__ import annotations

import fcntl
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOCK = Path(os.environ.get("NEGMINE_BENCH_LOCK", "/tmp/negmine-bench.lock"))


@dataclass
class Session:
    """The conditions one benchmark ran under."""

    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float] | None = None
    under_load: bool = False
    notes: list[str] = field(default_factory=list)

    def header(self) -> str:
        after = f"{self.load_after[0]:.2f}" if self.load_after else "?"
        flag = " — UNDER LOAD: not a measurement" if self.under_load else ""
        return (f"load average (1 min) before {self.load_before[0]:.2f}, after {after}; "
                f"{os.cpu_count()} CPUs{flag}")


@contextmanager
def quiet(max_load: float = 1.5, allow_load: bool = False, wait_s: float = 3600) -> Iterator[Session]:
    """Hold the benchmark lock; refuse (exit 3) when the machine is busy, unless ``allow_load``."""
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK, "w") as fh:
        t0 = time.monotonic()
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() - t0 > wait_s:
                    sys.exit(f"another benchmark holds {LOCK} since {wait_s:.0f} s; try later")
                time.sleep(2)
        s = Session(load_before=os.getloadavg())
        if s.load_before[0] > max_load:
            if not allow_load:
                sys.exit(f"load average {s.load_before[0]:.2f} > {max_load}: the machine is busy, figures would "
                         "not be measurements; wait, or pass --allow-load to run anyway (flagged UNDER LOAD)")
            s.under_load = True
        try:
            yield s
        finally:  # recorded, not judged: the benchmark's own threads raise it
            s.load_after = os.getloadavg()


@dataclass
class Timing:
    """Wall seconds of repeated runs."""

    runs: list[float]
    value: Any = None  # what the last run returned

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    def __str__(self) -> str:
        return f"{self.median:.3f} s ({min(self.runs):.3f}-{max(self.runs):.3f})"


def timed(fn: Callable[[], Any], repeat: int = 3, warmup: bool = False) -> Timing:
    """Run ``fn`` ``repeat`` times (after one untimed run with ``warmup``)."""
    value = fn() if warmup else None
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        value = fn()
        runs.append(time.perf_counter() - t0)
    return Timing(runs, value)


def interleaved(fns: dict[str, Callable[[], Any]], repeat: int = 3) -> dict[str, Timing]:
    """Each function once untimed (compiling, faulting pages in), then ``repeat`` rounds that run
    every function in turn, each round starting one function further on (so that neither a drift
    of the machine nor a place in the order favours one); see :func:`paired`."""
    names = list(fns)
    values = {name: fns[name]() for name in names}
    runs: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeat):
        for name in names[r % len(names):] + names[: r % len(names)]:
            t0 = time.perf_counter()
            values[name] = fns[name]()
            runs[name].append(time.perf_counter() - t0)
    return {name: Timing(runs[name], values[name]) for name in names}


def paired(a: Timing, b: Timing) -> str:
    """``a``'s throughput relative to ``b`` round by round (runs of :func:`interleaved`): the median
    of ``b / a`` over the rounds, and its min-max."""
    per_round = [tb / ta for ta, tb in zip(a.runs, b.runs, strict=True)]
    return f"{statistics.median(per_round):.2f}x ({min(per_round):.2f}-{max(per_round):.2f})"


def ratio(a: Timing, b: Timing) -> str:
    """``a``'s throughput relative to ``b`` (b's time / a's time), median and the range over runs."""
    lo = min(b.runs) / max(a.runs)
    hi = max(b.runs) / min(a.runs)
    return f"{b.median / a.median:.2f}x ({lo:.2f}-{hi:.2f})"
