"""The bodies of the ray engine's tasks (run on the workers) and the exact merge of document
shards.

A query shard is retrieved either by one task over the whole corpus (:func:`retrieve_shard`) or,
for exact dense search split by document shard (``RayEngine(doc_shard=...)``), by three kinds of
tasks: :func:`embed_queries` (the shard's query embeddings, once), :func:`search_docs` (the top
``k + EXTRA`` of one document shard) and :func:`finish_shard`, which merges the document shards
into the same top-k the local search finds and re-scores it exactly, as
:meth:`negmine.text.retrievers.embedding.EmbeddingRetriever.retrieve` does.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any, cast

import numpy as np

from negmine.core.optional import require
from negmine.text.engines.ray_ship import on_worker
from negmine.text.retrievers.base import keys_to_result, pack
from negmine.text.types import Candidates, Corpus, MiningData, Qrels, Queries, RunContext

#: per worker process: the last (corpus, retriever) taken from the object store, by its token, so
#: a worker running several tasks takes them (and maps the embedding files) once
_HELD: dict[str, tuple[Any, Any]] = {}


def _held(token: str, held: list[Any]) -> tuple[Any, Any]:
    if token not in _HELD:
        ray = require("ray")
        _HELD.clear()
        _HELD[token] = on_worker(ray.get(held[0]))
    return _HELD[token]


def _shard(corpus: Any, queries: Queries, positives: Qrels, exclude: Qrels) -> MiningData:
    return MiningData(cast(Corpus, corpus), queries, positives, exclude)


def _record(ctx: RunContext, t0: float) -> dict[str, Any]:
    return {"timings": dict(ctx.timings), "encoding": dict(ctx.encoding),
            "stats": {k: v for k, v in ctx.stats.items() if isinstance(v, (int, float))},
            "wall_s": time.perf_counter() - t0, "pids": [os.getpid()]}


def merge_records(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Sum the timings, counts and numeric stats of several tasks' records."""
    out: dict[str, Any] = {"timings": {}, "encoding": {}, "stats": {}, "wall_s": 0.0, "pids": []}
    for rec in records:
        for part in ("timings", "encoding", "stats"):
            for key, v in rec[part].items():
                out[part][key] = out[part].get(key, 0) + v
        out["wall_s"] += rec["wall_s"]
        out["pids"] += rec["pids"]
    return out


def retrieve_shard(token: str, held: list[Any], k: int, a: int, b: int, queries: Queries, positives: Qrels,
                   exclude: Qrels, cache_dir: str | None, device: str) -> tuple[int, int, Candidates, dict[str, Any]]:
    """Retrieve queries ``a:b`` against the whole corpus; the candidates and the task's record."""
    t0 = time.perf_counter()
    corpus, retriever = _held(token, held)
    ctx = RunContext(cache_dir=cache_dir, device=device)
    cand = retriever.retrieve(_shard(corpus, queries, positives, exclude), k, ctx)
    return a, b, cand, _record(ctx, t0)


def embed_queries(token: str, held: list[Any], queries: Queries, positives: Qrels, exclude: Qrels,
                  cache_dir: str | None, device: str) -> tuple[np.ndarray, dict[str, Any]]:
    """The shard's query embeddings (encoded through the cache, or read from the precomputed file)."""
    t0 = time.perf_counter()
    corpus, retriever = _held(token, held)
    ctx = RunContext(cache_dir=cache_dir, device=device)
    q, _ = retriever.embed(_shard(corpus, queries, positives, exclude), ctx)
    return np.ascontiguousarray(q, dtype=np.float32), _record(ctx, t0)


def search_docs(token: str, held: list[Any], q: np.ndarray, lo: int, hi: int,
                k: int) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """``(ids, scores, record)``: the exact top ``min(k, hi - lo)`` of document rows ``lo:hi``
    (the retriever's own blocked search over that slice of the memory-mapped embeddings), as
    corpus rows."""
    t0 = time.perf_counter()
    _, retriever = _held(token, held)
    d = retriever.docs_[1]
    ids, scores = retriever.search(q, d[lo:hi], min(k, hi - lo))
    ids = np.where(ids >= 0, ids + lo, -1)
    ctx = RunContext()
    ctx.timings["search_s"] = time.perf_counter() - t0
    return ids, scores, _record(ctx, t0)


def merge_top(parts: Sequence[tuple[np.ndarray, np.ndarray]], k: int) -> np.ndarray:
    """``ids int64[n, k]``: the top ``k`` by (score desc, row asc) of several shards' top lists
    (``-1`` = padding): each shard's exact top ``k`` holds every global top-``k`` document of
    that shard, so the merge is the exact top ``k`` of the whole corpus."""
    keys = [np.where(ids >= 0, pack(scores, np.where(ids >= 0, ids, 0)), np.uint64(0)) for ids, scores in parts]
    return keys_to_result(np.concatenate(keys, axis=1), k)[0]


def finish_shard(token: str, held: list[Any], a: int, b: int, queries: Queries, positives: Qrels, exclude: Qrels,
                 k: int, k_search: int, q: np.ndarray, q_record: dict[str, Any],
                 *parts: tuple[np.ndarray, np.ndarray, dict[str, Any]]) -> tuple[int, int, Candidates, dict[str, Any]]:
    """Merge the document shards' top lists of queries ``a:b`` and re-score them exactly: the
    candidates the local engine's dense retrieval gives."""
    t0 = time.perf_counter()
    corpus, retriever = _held(token, held)
    d = retriever.docs_[1]
    ids = merge_top([(p[0], p[1]) for p in parts], k_search)
    cand = retriever.candidates(q, d, ids, k, _shard(corpus, queries, positives, exclude))
    ctx = RunContext()
    ctx.timings["search_s"] = time.perf_counter() - t0
    return a, b, cand, merge_records([q_record, *(p[2] for p in parts), _record(ctx, t0)])


def available_devices() -> list[str]:
    """The devices a worker with this task's resources can use (the device probe)."""
    from negmine.text.encoders.base import available_devices as here

    return here()
