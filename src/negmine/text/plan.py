"""A mining request, validated before any work: the options of :func:`negmine.text.pipeline.mine`
gathered into a :class:`Plan` (what to mine: filters, sampler, scorers, depth, the configuration
that identifies the run) and :class:`RunOptions` (where and how: shards, engine, device, caches,
the run directory), so that bad options are refused before anything is written."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from negmine.core.errors import ConfigError
from negmine.text.filters import ExcludePositives, Filter, RankWindow
from negmine.text.retrievers.base import Retriever
from negmine.text.samplers import Sampler, Top
from negmine.text.types import MiningData, run_id

__all__ = ["DEFAULT_DEPTH", "Plan", "RunOptions", "build_config", "check_cache_dir", "plan", "prepare",
           "resolve_depth", "run_options"]

DEFAULT_DEPTH = 100


def resolve_depth(data: MiningData, num_negatives: int, filters: Sequence[Filter], depth: int | None) -> int:
    """Candidates to retrieve per query: ``range_max`` of a rank window if given, else ``depth``,
    else ``max(100, range_min + num_negatives + most known positives of a query)``; at most the
    corpus size."""
    window = next((f for f in filters if isinstance(f, RankWindow)), None)
    if window is not None and window.range_max is not None:
        k = window.range_max
    elif depth is not None:
        k = depth
    else:
        most = int(data.exclude.counts().max(initial=0))
        k = max(DEFAULT_DEPTH, (window.range_min if window else 0) + num_negatives + most)
    if k < 1:
        raise ConfigError(f"depth must be >= 1, got {k}")
    if window is not None and window.range_min >= len(data.corpus):
        raise ConfigError(f"the rank window starts at range_min {window.range_min} but the corpus has only "
                          f"{len(data.corpus)} documents, so no candidate can be in it; lower --range-min")
    if window is not None and window.range_max is None and window.range_min >= k:
        raise ConfigError(f"the rank window starts at range_min {window.range_min} but only the top {k} candidates "
                          "are retrieved (--depth), so no candidate can be in it; raise --depth above --range-min "
                          "or lower --range-min")
    return min(k, len(data.corpus))


def build_config(data: MiningData, retriever: Retriever, filters: Sequence[Filter], sampler: Sampler,
                 num_negatives: int, seed: int, depth: int) -> dict[str, Any]:
    return {
        "retriever": retriever.config(),
        "filters": [f.config() for f in filters],
        "sampler": sampler.config(),
        "num_negatives": num_negatives,
        "seed": seed,
        "depth": depth,
    }


@dataclass
class Plan:
    """A validated request, before any work: the filters (``ExcludePositives`` first), sampler,
    scorers, depth, and the configuration that identifies the run."""

    filters: list[Filter]
    sampler: Sampler
    scorers: list[Any]
    depth: int
    num_negatives: int
    seed: int
    request: dict[str, Any]
    target_fnr: float | None = None
    min_coverage: float | None = None
    reference: str = "min"  # the margins' positive reference: min | mean | max | pair
    policy: dict[str, Any] | None = None  # the default policy, when the caller chose none

    def run_id(self, data: MiningData) -> str:
        return run_id(self.request, data)


def plan(
    data: MiningData,
    retriever: Retriever,
    filters: Sequence[Filter] = (),
    sampler: Sampler | None = None,
    num_negatives: int = 5,
    seed: int = 0,
    *,
    depth: int | None = None,
    near_duplicates: bool = True,
    scorers: Sequence[Any] = (),
    target_fnr: float | None = None,
    min_coverage: float | None = None,
    positive_reference: str = "min",
    policy: dict[str, Any] | None = None,
) -> Plan:
    """Validate options and resolve defaults without doing any work, so that bad options are
    refused before anything is written."""
    if isinstance(num_negatives, bool) or not isinstance(num_negatives, int) or num_negatives < 1:
        raise ConfigError(f"num_negatives must be an integer >= 1, got {num_negatives!r}; pass --num-negatives 1+")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed must be an integer, got {seed!r}")
    if target_fnr is not None and not (isinstance(target_fnr, (int, float)) and 0 <= target_fnr < 1):
        raise ConfigError(f"target_fnr must be a number in [0, 1), got {target_fnr!r}")
    if min_coverage is not None and target_fnr is None:
        raise ConfigError("min_coverage only applies with target_fnr; pass --target-fnr too")
    from negmine.text import registry

    registry.retrievers.validate(retriever)
    for f in filters:
        registry.filters.validate(f)
    if sampler is not None:
        registry.samplers.validate(sampler)
    for s in scorers:
        registry.scorers.validate(s)
    user = [f for f in filters if not isinstance(f, ExcludePositives)]
    all_filters: list[Filter] = [ExcludePositives(near_duplicates=near_duplicates), *user]
    sampler = sampler or Top()
    names = {s.name for s in scorers}
    for f in all_filters:
        needs = getattr(f, "needs", None)
        if needs is not None and needs not in names:
            flag = "--cross-encoder NAME_OR_PATH" if needs == "cross-encoder" else "--llm-model and --llm-base-url"
            raise ConfigError(f"filter {f.name!r} needs the {needs!r} scorer; configure it ({flag})")
    k = resolve_depth(data, num_negatives, all_filters, depth)
    request = build_config(data, retriever, all_filters, sampler, num_negatives, seed, k)
    if scorers:
        request["scorers"] = [s.config() for s in scorers]
    if target_fnr is not None:
        request["target_fnr"] = target_fnr
        if min_coverage is not None:
            request["min_coverage"] = min_coverage
    if positive_reference not in ("min", "mean", "max", "pair"):
        raise ConfigError(f"positive_reference must be min, mean, max or pair, got {positive_reference!r}")
    if positive_reference != "min":
        request["positive_reference"] = positive_reference
    if positive_reference == "pair" and any(getattr(f, "name", None) == "fn-max-prob" for f in filters):
        # pair rows carry one positive each: the detector, fitted on them, would learn nothing
        # and keep every candidate — refused rather than silently mining naive top
        raise ConfigError("--fn-max-prob cannot be combined with --positive-reference pair (each pair row has one "
                          "positive, so the detector has nothing to learn from); use min, mean or max, or drop "
                          "--fn-max-prob")
    if policy is not None:
        request["default_policy"] = {k: v for k, v in policy.items() if k != "reason"}
    return Plan(all_filters, sampler, list(scorers), k, num_negatives, seed, request, target_fnr, min_coverage,
                positive_reference, policy)


def prepare(
    data: MiningData,
    retriever: Retriever,
    filters: Sequence[Filter] = (),
    sampler: Sampler | None = None,
    num_negatives: int = 5,
    seed: int = 0,
    depth: int | None = None,
    near_duplicates: bool = True,
) -> tuple[list[Filter], Sampler, int, dict[str, Any]]:
    """``(filters, sampler, depth, config)`` of :func:`plan` (kept for audits and sweeps)."""
    p = plan(data, retriever, filters, sampler, num_negatives, seed, depth=depth, near_duplicates=near_duplicates)
    return p.filters, p.sampler, p.depth, p.request


def check_cache_dir(path: Path) -> None:
    """A cache directory must be a writable directory (created if missing): checked before any
    work, not found out after minutes of encoding."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{path}: the cache directory is a file; pass a directory as --cache-dir")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write the cache there ({exc.strerror or exc}); "
                          "pass a writable --cache-dir") from None



@dataclass(frozen=True)
class RunOptions:
    """Where and how a plan runs (none of it changes the output): retrieval shards, engine,
    device, cache directory, and the run directory with its format and extra manifest keys."""

    query_shard: int
    engine: Any = None
    device: str = "cpu"
    cache_dir: str | None = None
    out: str | Path | None = None
    overwrite: bool = False
    fmt: str = "parquet"
    extra_manifest: dict[str, Any] | None = None


def run_options(*, query_shard: int, cache_dir: str | Path | None = None, **rest: Any) -> RunOptions:
    """Validated :class:`RunOptions`: ``query_shard`` an integer >= 1, a ``cache_dir`` writable
    (created if missing)."""
    if isinstance(query_shard, bool) or not isinstance(query_shard, int) or query_shard < 1:
        raise ConfigError(f"query_shard must be an integer >= 1, got {query_shard!r}")
    if cache_dir:
        check_cache_dir(Path(cache_dir))
    return RunOptions(query_shard, cache_dir=str(cache_dir) if cache_dir else None, **rest)
