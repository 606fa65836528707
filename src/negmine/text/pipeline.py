"""``mine(...)``: the one orchestration path — retrieve → (calibrate) → score → filter → sample →
(commit), returning a :class:`~negmine.text.result.MiningResult`.

Every caller — the Python API, ``negmine mine``, ``compare``, ``train --remine-every`` and the
sentence-transformers drop-in — ends here. Stages exchange plain arrays (see :mod:`negmine.text.types`);
run state is typed (:class:`~negmine.text.types.RunContext`, :class:`Plan`), never a dict of string
keys. Given an output directory, the run is a set of stages on disk (:mod:`negmine.core.rundir`):
retrieval is stored by query shard, so a killed run resumes from its last complete shard, a
changed sampler or filter reuses the retrieval, and the result is committed as a whole.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from negmine.core.errors import ConfigError
from negmine.core.keys import string_keys
from negmine.core.progress import progress
from negmine.text.filters import Filter, FilterInput, JudgedOr
from negmine.text.plan import (
    DEFAULT_DEPTH,
    Plan,
    RunOptions,
    build_config,
    check_cache_dir,
    plan,
    prepare,
    resolve_depth,
    run_options,
)
from negmine.text.result import MiningResult
from negmine.text.retrievers.base import Retriever
from negmine.text.samplers import SampleInput, Sampler, select
from negmine.text.types import Candidates, MiningData, RunContext, run_id

# the request's validation (Plan, plan, resolve_depth, ...) lives in negmine.text.plan; its names stay
# importable from here
__all__ = ["DEFAULT_DEPTH", "MiningResult", "Plan", "RunOptions", "build_config", "check_cache_dir", "choose",
           "mine", "plan", "prepare", "resolve_depth", "retrieve", "run_id", "run_options"]

#: queries per retrieval shard: the unit a killed run resumes from
QUERY_SHARD = 4096


# -- retrieve, by query shard ------------------------------------------------------------------


def _pad(a: np.ndarray, width: int, fill: Any) -> np.ndarray:
    if a.shape[1] == width:
        return a
    pad = [(0, 0), (0, width - a.shape[1])] + [(0, 0)] * (a.ndim - 2)
    return np.pad(a, pad, constant_values=fill)


def concat_candidates(parts: Sequence[Candidates]) -> Candidates:
    """Stack per-shard candidates (row order kept), padding to the widest shard."""
    if len(parts) == 1:
        return parts[0]
    width = max(p.ids.shape[1] for p in parts)
    multi = parts[0].member_ranks is not None
    return Candidates(
        ids=np.concatenate([_pad(p.ids, width, -1) for p in parts]),
        scores=np.concatenate([_pad(p.scores, width, -np.inf) for p in parts]),
        sources=np.concatenate([_pad(p.sources, width, 0) for p in parts]),
        source_names=list(parts[0].source_names),
        positive_scores=np.concatenate([p.positive_scores for p in parts]),
        member_ranks=np.concatenate([_pad(p.member_ranks, width, -1) for p in parts  # type: ignore[arg-type]
                                     ]) if multi else None,
        member_scores=np.concatenate([_pad(p.member_scores, width, -np.inf) for p in parts  # type: ignore[arg-type]
                                      ]) if multi else None,
    )


def retrieve(data: MiningData, retriever: Retriever, k: int, ctx: RunContext, *, stages: Any = None,
             query_shard: int = QUERY_SHARD, engine: Any = None) -> Candidates:
    """The top ``k`` candidates of every query, retrieved ``query_shard`` queries at a time by
    ``engine`` (default: this process). With ``stages`` (a :class:`negmine.core.rundir.StageStore`),
    each finished shard is stored as it arrives and a stored shard is loaded instead of
    retrieved: a killed run resumes from its last complete shard."""
    from negmine.core.rundir import fault
    from negmine.text.engines import get_engine

    eng = get_engine(engine)
    n_q = len(data.queries)
    bounds = [(a, min(a + query_shard, n_q)) for a in range(0, n_q, query_shard)] or [(0, 0)]
    done: dict[tuple[int, int], Candidates] = {}
    for a, b in bounds:
        got = stages.load(a, b, Candidates.from_arrays) if stages is not None else None
        if got is not None:
            done[(a, b)] = got
    reused = len(done)
    todo = [s for s in bounds if s not in done]
    if todo:
        eng.prepare(data, retriever, ctx)  # the corpus side once (e.g. encode it), before any shard
        results = eng.retrieve_shards(data, retriever, k, ctx, todo)
        if len(todo) > 1:
            results = progress(results, desc="retrieve", total=len(todo), unit="shard")
        for a, b, got in results:
            done[(a, b)] = got
            if stages is not None:
                stages.save(a, b, got.to_arrays())
                fault(f"retrieve-shard-{len(done)}")
    if stages is not None:
        ctx.stats["retrieval_shards"] = len(bounds)
        ctx.stats["retrieval_shards_reused"] = reused
    ctx.stats["engine"] = eng.name
    return concat_candidates([done[s] for s in bounds])


# -- filter and sample ---------------------------------------------------------------------------


def choose(
    data: MiningData,
    cand: Candidates,
    filters: Sequence[Filter],
    sampler: Sampler,
    num_negatives: int,
    seed: int,
    *,
    config: dict[str, Any],
    scorers: Sequence[Any] | dict[str, Any] = (),
    ctx: RunContext | None = None,
    request: dict[str, Any] | None = None,
    calibration: dict[str, Any] | None = None,
    t_start: float | None = None,
    reference: str = "min",
    doc_embeddings: np.ndarray | None = None,
) -> MiningResult:
    """Filter and sample already retrieved candidates (``filters`` in order, ``ExcludePositives``
    included). Several settings can share one retrieval this way (audits, sweeps). ``reference``
    is the positive reference of the margins (``min``/``mean``/``max``); ``doc_embeddings`` give
    the false-negative detector its document-document features."""
    ctx = ctx if ctx is not None else RunContext()
    by_name = dict(scorers) if isinstance(scorers, dict) else {s.name: s for s in scorers}
    t0 = time.perf_counter()
    t_start = t0 if t_start is None else t_start
    inp = FilterInput(cand, data, scorers=by_name, cache_dir=ctx.cache_dir, reference=reference, seed=seed,
                      doc_embeddings=doc_embeddings)
    keep = cand.ids >= 0
    counts: list[tuple[str, int]] = []
    for f in filters:
        needs = getattr(f, "needs", None)
        if needs is not None and needs not in by_name:
            raise ConfigError(f"filter {f.name!r} needs the {needs!r} scorer; configure it (e.g. --cross-encoder)")
        inp.current = keep
        new = keep & f.keep(inp)
        counts.append((f.name, int(keep.sum() - new.sum())))
        keep = new
    t1 = time.perf_counter()

    doc_keys = np.where(cand.ids >= 0, data.corpus.id_keys(np.where(cand.ids >= 0, cand.ids, 0)), np.uint64(0))
    sinp = SampleInput(
        scores=cand.scores, keep=keep, query_keys=string_keys(data.queries.ids), doc_keys=doc_keys,
        positive_reference=inp.positive_reference, seed=seed,
    )
    cols = select(sampler, sinp, num_negatives)
    t2 = time.perf_counter()
    timings = dict(ctx.timings)
    timings.update(filter_s=t1 - t0, sample_s=t2 - t1, total_s=t2 - t_start)
    return MiningResult(
        data=data, candidates=cand, keep=keep, columns=cols, num_negatives=num_negatives, seed=seed,
        config=config, filter_counts=counts, timings=timings, positive_reference=inp.positive_reference,
        request=request if request is not None else config, filters=list(filters), matrices=inp.matrices,
        diagnostics=inp.diagnostics,
        encoding=dict(ctx.encoding), stats=dict(ctx.stats), calibration=calibration,
    )


def _doc_embeddings(retriever: Any) -> np.ndarray | None:
    """The document embeddings a dense retriever (or a union member) already holds, if any."""
    for r in [retriever, *(getattr(retriever, "members", None) or [])]:
        emb = getattr(r, "embeddings_", None)
        if emb is not None:
            return np.asarray(emb[2])
    return None


def _select(data: MiningData, cand: Candidates, p: Plan, retriever: Retriever, ctx: RunContext,
            t_start: float) -> MiningResult:
    """Calibrate when asked, then filter and sample."""
    filters, sampler, calibration, reference = p.filters, p.sampler, None, p.reference
    doc_emb = _doc_embeddings(retriever)
    if p.target_fnr is not None:
        from negmine.text.calibrate import calibrate

        # calibration searches the retrieval-score policies; scorer-backed filters (cross-encoder,
        # judge) are applied after it, on top of the chosen policy
        plain = [f for f in p.filters if getattr(f, "needs", None) is None]
        scored = [f for f in p.filters if getattr(f, "needs", None) is not None]
        t0 = time.perf_counter()
        cal = calibrate(data, cand, plain, p.sampler, p.num_negatives, p.seed, target_fnr=p.target_fnr,
                        min_coverage=p.min_coverage, doc_embeddings=doc_emb)
        ctx.timings["calibrate_s"] = time.perf_counter() - t0
        filters, sampler, calibration, reference = with_scored(cal.filters, scored), cal.sampler, cal.record, \
            cal.reference
    if p.policy is not None:  # reported under "run": what the default policy did and why
        ctx.stats["default_policy"] = dict(p.policy)
    config = build_config(data, retriever, filters, sampler, p.num_negatives, p.seed, p.depth)
    for key in ("scorers", "target_fnr", "min_coverage", "positive_reference"):
        if key in p.request:
            config[key] = p.request[key]
    if calibration is not None and calibration.get("estimates"):
        # the manifest records what the calibration assumed and which assumption decided
        config["calibration"] = {"policy": calibration["chosen"]["policy"], "target_met": calibration["target_met"],
                                 "mechanisms": calibration["mechanisms"], "decided_by": calibration["decided_by"],
                                 "estimated_hp_fnr": calibration["estimated_hp_fnr"],
                                 "estimated_hp_fnr_ci95": calibration["estimated_hp_fnr_ci95"],
                                 "by_mechanism": {m: e["crossfit"] for m, e in calibration["estimates"].items()},
                                 "pool_signature": calibration.get("pool_signature")}
    if reference != "min":
        config["positive_reference"] = reference
    if reference == "pair":
        from negmine.text.filters import expand_pairs

        pr = expand_pairs(data, cand)
        # one row per (query, positive), ids "query\x1fpositive": the writers write the query id
        return choose(pr.data, pr.candidates, filters, sampler, p.num_negatives, p.seed, config=config,
                      scorers=p.scorers, ctx=ctx, request=p.request, calibration=calibration, t_start=t_start,
                      reference="min", doc_embeddings=doc_emb)
    return choose(data, cand, filters, sampler, p.num_negatives, p.seed, config=config, scorers=p.scorers,
                  ctx=ctx, request=p.request, calibration=calibration, t_start=t_start, reference=reference,
                  doc_embeddings=doc_emb)


def with_scored(calibrated: Sequence[Filter], scored: Sequence[Filter]) -> list[Filter]:
    """The calibrated filters and the user's scorer-backed ones (cross-encoder, judge), which go on
    top of the chosen policy: after it, except before a last ``JudgedOr`` that fills each query up
    to a number of negatives, so that they can drop judged candidates before it counts them (after
    it, a dropped one would leave its query short while guarded candidates were still there)."""
    if scored and calibrated and isinstance(calibrated[-1], JudgedOr) and calibrated[-1].enough is not None:
        return [*calibrated[:-1], *scored, calibrated[-1]]
    return [*calibrated, *scored]


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
    target_fnr: float | None = None,
    min_coverage: float | None = None,
    candidates: Candidates | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    fmt: str = "parquet",
    extra_manifest: dict[str, Any] | None = None,
    query_shard: int = QUERY_SHARD,
    device: str = "cpu",
    engine: Any = None,
    positive_reference: str = "min",
    policy: dict[str, Any] | None = None,
) -> MiningResult:
    """Mine ``num_negatives`` hard negatives for every query of ``data``.

    Parameters
    ----------
    data
        Queries, corpus and known positives (see :func:`negmine.load_beir`).
    retriever
        Where candidates come from, e.g. ``negmine.text.retrievers.BM25()`` or ``Dense(model)``.
    filters
        Filters applied after ``ExcludePositives`` (always first), in order.
    sampler
        How negatives are chosen among survivors (default :class:`~negmine.text.samplers.Top`).
    num_negatives
        Negatives per query; fewer are returned (and reported) when too few survive.
    seed
        Seeds every random choice, position-free (see :mod:`negmine.text.samplers`).
    depth
        Candidates retrieved per query (see :func:`resolve_depth`).
    near_duplicates
        Also exclude documents whose normalised text equals a positive's.
    cache_dir
        Directory of the embedding and score caches.
    scorers
        Second opinions (``CrossEncoderScorer``, ``LLMJudge``) that filters such as
        ``CrossEncoderMaxScore`` or ``JudgeFilter`` read; each runs once, on first use, on the
        cells the earlier filters kept.
    target_fnr, min_coverage
        Calibrate the filters on the data's own known positives to this hidden-positive
        false-negative rate (see :mod:`negmine.text.calibrate`); the choice is in ``result.calibration``.
    candidates
        Already retrieved candidates of ``data`` (with this retriever and depth): skip retrieval.
    out
        Run directory: retrieval is stored there by query shard while mining (a killed run,
        re-run identically, resumes), and the result is committed there as a whole (see
        :meth:`MiningResult.save`). A directory holding a different run is refused unless
        ``overwrite``.
    query_shard
        Queries per retrieval shard (results do not depend on it).
    engine
        ``"local"`` (default: this process), ``"ray"`` (a Ray cluster, extra ``ray``) or an
        engine object (see :mod:`negmine.text.engines`); the output does not depend on it.
    positive_reference
        What margins compare against: the query's ``min`` (default), ``mean`` or ``max`` positive
        score, or ``pair`` (every known positive its own row with its own margin; see
        ``docs/QUALITY.md`` for how pair rows map onto each export format).
    policy
        The record of :func:`negmine.text.calibrate.default_policy` when the caller asked for no
        policy of its own (the CLI's default); it goes into the report.
    """
    p = plan(data, retriever, filters, sampler, num_negatives, seed, depth=depth, near_duplicates=near_duplicates,
             scorers=scorers, target_fnr=target_fnr, min_coverage=min_coverage,
             positive_reference=positive_reference, policy=policy)
    run = run_options(query_shard=query_shard, cache_dir=cache_dir, device=device, engine=engine, out=out,
                      overwrite=overwrite, fmt=fmt, extra_manifest=extra_manifest)
    return execute(data, retriever, p, run, candidates)


def execute(data: MiningData, retriever: Retriever, p: Plan, run: RunOptions,
            candidates: Candidates | None = None) -> MiningResult:
    """Carry out a validated plan: retrieve (or take ``candidates``), calibrate when asked, filter
    and sample; with ``run.out``, in a claimed run directory whose retrieval is stored by shard and
    whose result is committed as a whole."""
    ctx = RunContext(cache_dir=run.cache_dir, device=run.device)
    t_start = time.perf_counter()
    if run.out is None:
        cand = candidates if candidates is not None else retrieve(data, retriever, p.depth, ctx,
                                                                  query_shard=run.query_shard, engine=run.engine)
        return _select(data, cand, p, retriever, ctx, t_start)

    from negmine.core.rundir import RunDir, fault, stage_key
    from negmine.text.writers.mined import commit_result

    rid = p.run_id(data)
    with RunDir(run.out).claim(rid, overwrite=run.overwrite) as rd:
        if candidates is None:
            stages = rd.stages(stage_key("retrieve", data.fingerprint(), retriever.config(), p.depth))
            cand = retrieve(data, retriever, p.depth, ctx, stages=stages, query_shard=run.query_shard,
                            engine=run.engine)
        else:
            cand = candidates
        fault("select")
        result = _select(data, cand, p, retriever, ctx, t_start)
        if not rd.finished:
            commit_result(rd, result, fmt=run.fmt, extra_manifest=run.extra_manifest)
    return result
