"""``mine(...)``: retrieve → filter → sample, returning a :class:`MiningResult`.

Thin orchestration: every stage is a component with its own options; stages exchange plain
arrays (see :mod:`negmine.types`).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from negmine.errors import ConfigError
from negmine.filters import ExcludePositives, Filter, FilterInput, RankWindow
from negmine.retrievers.base import Retriever
from negmine.samplers import SampleInput, Sampler, Top, select, string_keys
from negmine.types import Candidates, MiningData

__all__ = ["MiningResult", "choose", "mine", "prepare", "resolve_depth"]

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
    return min(k, len(data.corpus))


@dataclass
class MiningResult:
    """The outcome of :func:`mine`: the candidates, which survived each filter, which were chosen,
    and a structured report.

    ``columns int64[n_queries, num_negatives]`` are positions in the candidate rows (``-1`` =
    shortfall); :meth:`negatives` turns them into document rows.
    """

    data: MiningData
    candidates: Candidates
    keep: np.ndarray
    columns: np.ndarray
    num_negatives: int
    seed: int
    config: dict[str, Any]
    filter_counts: list[tuple[str, int]]
    timings: dict[str, float]
    context: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def positive_reference(self) -> np.ndarray:
        return FilterInput(self.candidates, self.data).positive_reference

    @cached_property
    def report(self) -> dict[str, Any]:
        from negmine.report.stats import build_report

        return build_report(self)

    def negatives(self) -> tuple[np.ndarray, np.ndarray]:
        """``(doc_rows int64[n_q, n], scores float32[n_q, n])``, ``-1`` / ``-inf`` for a shortfall."""
        ok = self.columns >= 0
        c = np.where(ok, self.columns, 0)
        rows = np.where(ok, np.take_along_axis(self.candidates.ids, c, axis=1), -1)
        scores = np.where(ok, np.take_along_axis(self.candidates.scores, c, axis=1), -np.inf)
        return rows, scores.astype(np.float32)

    def to_rows(self) -> list[dict[str, Any]]:
        """One dict per query (sorted by query id) in the canonical ``mined`` schema."""
        from negmine.writers.mined import result_rows

        return result_rows(self)

    def save(self, directory: str | Path, *, overwrite: bool = False, fmt: str = "parquet",
             extra_manifest: dict[str, Any] | None = None) -> Path:
        """Write ``mined.parquet`` (or ``.jsonl``), ``texts`` for exports, ``manifest.json`` and
        ``report.json`` atomically into ``directory``."""
        from negmine.writers.mined import save_result

        return save_result(self, Path(directory), overwrite=overwrite, fmt=fmt, extra_manifest=extra_manifest)

    def to_dataset(self, fmt: str = "n-tuple", *, with_scores: bool = False) -> Any:
        """The mined data as a ``datasets.Dataset`` in an export format (extra ``hf``)."""
        from negmine._optional import require
        from negmine.writers.export import export_rows, rows_to_columns

        datasets = require("datasets")
        rows = export_rows(fmt, self.to_rows(), self.texts(), num_negatives=self.num_negatives,
                           with_scores=with_scores)
        return datasets.Dataset.from_dict(rows_to_columns(rows))

    def texts(self) -> dict[tuple[str, str], dict[str, str]]:
        """``{("query"|"doc", id): {"title", "text"}}`` for every query and referenced document."""
        from negmine.writers.mined import referenced_texts

        return referenced_texts(self)

    def run_id(self) -> str:
        """Identity of the *requested* run (a calibrated run is identified by its target, not by
        the margin calibration chose)."""
        return run_id(self.context.get("request_config", self.config), self.data)


def run_id(config: dict[str, Any], data: MiningData) -> str:
    """Identity of a run: the resolved configuration and the data fingerprint."""
    blob = json.dumps(config, sort_keys=True, default=str) + data.fingerprint()
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


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
    """Validate options and resolve defaults without doing any work: ``(filters, sampler, depth,
    config)``. Lets the CLI refuse bad options before anything is written."""
    if not isinstance(num_negatives, int) or num_negatives < 1:
        raise ConfigError(f"num_negatives must be an integer >= 1, got {num_negatives!r}; pass --num-negatives 1+")
    if not isinstance(seed, int):
        raise ConfigError(f"seed must be an integer, got {seed!r}")
    user_filters = [f for f in filters if not isinstance(f, ExcludePositives)]
    all_filters: list[Filter] = [ExcludePositives(near_duplicates=near_duplicates), *user_filters]
    sampler = sampler or Top()
    k = resolve_depth(data, num_negatives, all_filters, depth)
    return all_filters, sampler, k, build_config(data, retriever, all_filters, sampler, num_negatives, seed, k)


def mine(
    data: MiningData,
    retriever: Retriever,
    filters: Sequence[Filter] = (),
    sampler: Sampler | None = None,
    num_negatives: int = 5,
    seed: int = 0,
    *,
    depth: int | None = None,
    near_duplicates: bool = True,
    cache_dir: str | Path | None = None,
    scorers: Sequence[Any] = (),
) -> MiningResult:
    """Mine ``num_negatives`` hard negatives for every query of ``data``.

    Parameters
    ----------
    data
        Queries, corpus and known positives (see :func:`negmine.load_beir`).
    retriever
        Where candidates come from, e.g. ``negmine.retrievers.BM25()`` or ``Dense(model)``.
    filters
        Filters applied after ``ExcludePositives`` (always first), in order.
    sampler
        How negatives are chosen among survivors (default :class:`~negmine.samplers.Top`).
    num_negatives
        Negatives per query; fewer are returned (and reported) when too few survive.
    seed
        Seeds every random choice, position-free (see :mod:`negmine.samplers`).
    depth
        Candidates retrieved per query (see :func:`resolve_depth`).
    near_duplicates
        Also exclude documents whose normalised text equals a positive's.
    cache_dir
        Directory of the embedding cache (dense retrievers).
    scorers
        Second opinions (``CrossEncoderScorer``, ``LLMJudge``) that filters such as
        ``CrossEncoderMaxScore`` or ``JudgeFilter`` read; each runs once, on first use, on the
        cells the earlier filters kept.
    """
    all_filters, sampler, k, config = prepare(
        data, retriever, filters, sampler, num_negatives, seed, depth, near_duplicates
    )
    context: dict[str, Any] = {"cache_dir": str(cache_dir) if cache_dir else None, "timings": {}}
    t_start = time.perf_counter()
    cand = retriever.retrieve(data, k, context)
    if scorers:
        config["scorers"] = [s.config() for s in scorers]
        context["scorers"] = {s.name: s for s in scorers}
    return choose(data, cand, all_filters, sampler, num_negatives, seed, config=config, context=context,
                  t_start=t_start)


def choose(
    data: MiningData,
    cand: Candidates,
    filters: Sequence[Filter],
    sampler: Sampler,
    num_negatives: int,
    seed: int,
    *,
    config: dict[str, Any],
    context: dict[str, Any] | None = None,
    t_start: float | None = None,
) -> MiningResult:
    """Filter and sample already retrieved candidates (``filters`` in order, ``ExcludePositives``
    included). Several settings can share one retrieval this way (audits, sweeps)."""
    context = context if context is not None else {"timings": {}}
    t0 = time.perf_counter()
    t_start = t0 if t_start is None else t_start
    scorers = context.get("scorers", {})
    inp = FilterInput(cand, data, scorers=scorers,
                      context={k: v for k, v in context.items() if k not in ("scorers", "timings")})
    keep = cand.ids >= 0
    counts: list[tuple[str, int]] = []
    for f in filters:
        needs = getattr(f, "needs", None)
        if needs is not None and needs not in scorers:
            raise ConfigError(f"filter {f.name!r} needs the {needs!r} scorer; configure it (e.g. --cross-encoder)")
        inp.current = keep
        new = keep & f.keep(inp)
        counts.append((f.name, int(keep.sum() - new.sum())))
        keep = new
    t1 = time.perf_counter()

    doc_keys_all = string_keys(data.corpus.ids)
    doc_keys = np.where(cand.ids >= 0, doc_keys_all[np.where(cand.ids >= 0, cand.ids, 0)], np.uint64(0))
    sinp = SampleInput(
        scores=cand.scores, keep=keep, query_keys=string_keys(data.queries.ids), doc_keys=doc_keys,
        positive_reference=inp.positive_reference, seed=seed,
    )
    cols = select(sampler, sinp, num_negatives)
    t2 = time.perf_counter()
    context["matrices"] = inp.matrices
    context["judge_filters"] = [f for f in filters if getattr(f, "needs", None) == "llm-judge"]

    timings = dict(context.get("timings", {}))
    timings.update(filter_s=t1 - t0, sample_s=t2 - t1, total_s=t2 - t_start)
    return MiningResult(
        data=data, candidates=cand, keep=keep, columns=cols, num_negatives=num_negatives, seed=seed,
        config=config, filter_counts=counts, timings=timings, context=context,
    )
