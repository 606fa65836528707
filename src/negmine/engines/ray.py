"""The ``ray`` engine: the same stages as the local engine, spread over a Ray cluster (extra
``ray``); the same artifacts, the same bytes (DESIGN.md §7, invariant 3).

- **encode** (:meth:`RayEngine.prepare`): the corpus chunks an embedding retriever still misses
  in the embedding cache — the same ``CHUNK``-sized chunks and the same cache keys as
  :func:`negmine.encoders.cache.encode_cached` — go through Ray Data ``map_batches`` with a
  callable class (one model per actor, ``concurrency`` = workers, ``num_gpus`` per actor when
  asked, one chunk per batch); each actor writes its chunks to the cache under the entry lock.
  The retriever's own ``prepare`` then runs on the driver and finds every chunk cached. The cache
  directory must be on storage every node sees.
- **retrieve** (:meth:`RayEngine.retrieve_shards`): the data and the prepared retriever are put
  in the object store once (one object, so the retriever's corpus is the data's corpus on the
  workers too; numpy arrays — document embeddings, the BM25 index — are read zero-copy from the
  node's shared memory by every worker there). Each query shard is a Ray task (``max_retries``:
  a killed worker's shard is retried), yielded as it completes. BM25's index is built once on the
  driver (its ``prepare``) and shipped that way; each worker tokenizes only its shard's queries.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from negmine._optional import require
from negmine._progress import progress
from negmine.errors import ConfigError, NegmineError
from negmine.types import Candidates, MiningData, RunContext

__all__ = ["RayEngine"]

log = logging.getLogger(__name__)

#: retries of a shard whose worker died (Ray system failures; a Python error is not retried)
MAX_RETRIES = 3


def _walk(retriever: Any) -> Iterator[Any]:
    """The retriever and, for union/hybrid, its members (depth first)."""
    yield retriever
    for m in getattr(retriever, "members", ()) or ():
        yield from _walk(m)


def _encodes_corpus(r: Any) -> bool:
    from negmine.retrievers.embedding import EmbeddingRetriever

    return isinstance(r, EmbeddingRetriever) and not r.doc_embeddings


class _EncodeChunks:
    """Ray Data callable class: one encoder (model) per actor; each batch is one or more cache
    chunks (``start``, ``stop`` rows of the corpus, their ``texts``), encoded and saved to the
    cache exactly as :func:`~negmine.encoders.cache.encode_cached` would."""

    def __init__(self, encoder: Any, cache_dir: str) -> None:
        from negmine.encoders.cache import EmbeddingCache

        self.encoder = encoder
        self.cache = EmbeddingCache(cache_dir)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from negmine.encoders.cache import _encode_chunk

        encoded, seconds = [], []
        for texts in batch["texts"]:
            stats: dict[str, int] = {}
            t0 = time.perf_counter()
            _encode_chunk(self.encoder, [str(t) for t in texts], "document", self.cache, stats)
            seconds.append(time.perf_counter() - t0)
            encoded.append(stats.get("document_encoded", 0))
        return {"start": np.asarray(batch["start"], dtype=np.int64), "encoded": np.asarray(encoded, dtype=np.int64),
                "seconds": np.asarray(seconds, dtype=np.float64), "pid": np.full(len(encoded), os.getpid())}


#: per worker process: the last (data, retriever) taken from the object store, by its token, so
#: a worker running several shards deserialises the corpus once
_HELD: dict[str, tuple[MiningData, Any]] = {}


def _canonical_dtypes(retriever: Any) -> None:
    """Give the BM25 index arrays taken from the object store numpy's canonical dtype objects
    (a view, no copy): an unpickled array's dtype is an equal but distinct instance, and with it
    numpy 2.4's ``np.add.at`` — bm25s' scoring — leaves its fast path (~15x slower)."""
    from negmine.retrievers.bm25 import BM25

    for r in _walk(retriever):
        index = r.state_[1] if isinstance(r, BM25) and r.state_ is not None else None
        arrays = getattr(index, "scores", None)
        if isinstance(arrays, dict):
            for key, a in arrays.items():
                if isinstance(a, np.ndarray):
                    arrays[key] = a.view(np.dtype(a.dtype.str))


def _retrieve_shard(token: str, held: list[Any], k: int, a: int, b: int, cache_dir: str | None,
                    device: str) -> tuple[int, int, Candidates, dict[str, Any]]:
    """Ray task body: retrieve queries ``a:b``; returns the candidates and what the shard recorded."""
    from negmine.pipeline import query_slice

    t0 = time.perf_counter()
    if token not in _HELD:
        ray = require("ray")
        _HELD.clear()
        _HELD[token] = ray.get(held[0])
        _canonical_dtypes(_HELD[token][1])
    data, retriever = _HELD[token]
    sub = data if (a, b) == (0, len(data.queries)) else query_slice(data, a, b)
    ctx = RunContext(cache_dir=cache_dir, device=device)
    cand = retriever.retrieve(sub, k, ctx)
    record = {"timings": dict(ctx.timings), "encoding": dict(ctx.encoding), "wall_s": time.perf_counter() - t0,
              "pid": os.getpid()}
    return a, b, cand, record


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Refuse an address nothing answers at within ``timeout`` seconds (Ray itself would retry
    for minutes). ``auto`` and addresses without a port are left to Ray."""
    import socket

    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ConfigError(f"cannot reach the Ray cluster at {address!r} ({exc.strerror or exc}); start it with "
                          "'ray start --head' or fix --ray-address") from None


class RayEngine:
    """Run the encode and retrieve stages on a Ray cluster.

    Parameters
    ----------
    address
        Cluster to join (``auto``, ``HOST:6379``, ``ray://HOST:10001``); ``None`` starts a local
        cluster of ``workers`` CPUs for this run (shut down when the retrieval ends). An already
        initialised Ray session in this process is used as it is.
    workers
        Encoding actors and retrieval tasks in flight (default: the cluster's CPUs).
    gpus_per_worker
        GPUs per actor and per task (0: CPU workers).
    batch_size
        Cache chunks per Ray Data batch (each chunk is ``CHUNK`` texts; the encoder batches
        within a chunk with its own ``batch_size``).
    """

    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None, gpus_per_worker: float = 0.0,
                 batch_size: int = 1) -> None:
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise ConfigError(f"workers must be an integer >= 1, got {workers!r}; pass --workers 1+")
        if not isinstance(gpus_per_worker, (int, float)) or not gpus_per_worker >= 0:
            raise ConfigError(f"gpus_per_worker must be a number >= 0, got {gpus_per_worker!r}")
        self.address = address
        self.workers = workers
        self.gpus_per_worker = float(gpus_per_worker)
        self.batch_size = batch_size
        self.started_ = False

    # -- the cluster ---------------------------------------------------------------------------

    def _ray(self, ctx: RunContext) -> Any:
        """The ``ray`` module, connected: the running session, the given address, or a local
        cluster started here."""
        ray = require("ray")
        if ray.is_initialized():
            return ray
        t0 = time.perf_counter()
        if self.address is not None:
            _check_reachable(str(self.address))
        kwargs: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
        if self.address is None:
            # "local": a new cluster for this run, even where `ray start` runs one on this machine;
            # private to this process, so Ray's notices about serving a cluster are not shown
            kwargs.update(address="local", num_cpus=self.workers or os.cpu_count() or 1, include_dashboard=False,
                          logging_level=logging.ERROR)
        elif not str(self.address).startswith("ray://"):
            kwargs.update(address=self.address, include_dashboard=False)
        try:
            if str(self.address).startswith("ray://"):
                ray.init(self.address, **kwargs)
            else:
                ray.init(**kwargs)
        except (ConnectionError, RuntimeError, TimeoutError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
            where = f"the Ray cluster at {self.address!r}" if self.address else "a local Ray cluster"
            raise ConfigError(f"cannot connect to {where} ({first}); start it with 'ray start --head' "
                              "or fix --ray-address") from None
        self.started_ = True
        ctx.timings["ray_init_s"] = time.perf_counter() - t0
        log.info("ray engine: %s, %s", self.address or "a local cluster", ray.cluster_resources())
        return ray

    def _shutdown(self) -> None:
        if self.started_:
            require("ray").shutdown()
            self.started_ = False

    def _workers(self, ray: Any) -> int:
        if self.workers is not None:
            return self.workers
        if self.gpus_per_worker > 0:
            return max(1, int(ray.cluster_resources().get("GPU", 0) // self.gpus_per_worker))
        return max(1, int(ray.cluster_resources().get("CPU", 1)))

    # -- encode --------------------------------------------------------------------------------

    def prepare(self, data: MiningData, retriever: Any, ctx: RunContext) -> None:
        """Encode the corpus chunks the embedding cache misses on the cluster, then prepare the
        retriever on the driver (from the cache; BM25 builds its index there, once)."""
        encoders = [r for r in _walk(retriever) if _encodes_corpus(r)]
        if encoders and not ctx.cache_dir:
            raise ConfigError("the ray engine encodes the corpus into the embedding cache; pass --cache-dir "
                              "on storage every node sees")
        ray = self._ray(ctx)
        try:
            for r in encoders:
                self._encode(ray, data, r, ctx)
            t0 = time.perf_counter()
            prepare = getattr(retriever, "prepare", None)
            if prepare is not None:
                prepare(data, ctx)
            ctx.timings["ray_prepare_driver_s"] = time.perf_counter() - t0
        except BaseException:
            self._shutdown()
            raise

    def _encode(self, ray: Any, data: MiningData, retriever: Any, ctx: RunContext) -> None:
        from negmine.encoders.cache import CHUNK, EmbeddingCache

        assert ctx.cache_dir is not None
        t0 = time.perf_counter()
        encoder = retriever._encoder()
        texts = data.corpus.full_texts()
        cache = EmbeddingCache(ctx.cache_dir)
        starts = range(0, len(texts), CHUNK)
        todo = [s for s in starts if cache.load(cache.key(encoder, "document", texts[s : s + CHUNK]),
                                                len(texts[s : s + CHUNK])) is None]
        if len(starts) > 1 and todo:  # the assembled entry makes the chunks unnecessary
            import hashlib

            keys = "".join(cache.key(encoder, "document", texts[s : s + CHUNK]) for s in starts)
            if cache.load("whole-" + hashlib.sha256(keys.encode()).hexdigest()[:32], len(texts)) is not None:
                todo = []
        name = retriever.name
        ctx.stats[f"ray_encode_{name}_chunks"] = len(todo)
        if not todo:
            return
        release = getattr(encoder, "release", None)
        if release is not None:
            release()  # ship the encoder's settings, not a loaded model
        workers = min(self._workers(ray), len(todo))
        rows = [{"start": s, "texts": texts[s : s + CHUNK]} for s in todo]
        remote: dict[str, Any] = {"num_gpus": self.gpus_per_worker} if self.gpus_per_worker > 0 else {"num_cpus": 1}
        dctx = ray.data.DataContext.get_current()
        switches = ("enable_progress_bars", "enable_operator_progress_bars", "enable_auto_log_stats")
        before = {sw: getattr(dctx, sw) for sw in switches}
        encoded, pids, busy = 0, set(), 0.0
        try:
            for sw in switches:  # the driver shows one bar per stage (below), not Ray Data's
                setattr(dctx, sw, False)
            ds = ray.data.from_items(rows, override_num_blocks=len(rows))
            ds = ds.map_batches(_EncodeChunks, fn_constructor_kwargs={"encoder": encoder, "cache_dir": ctx.cache_dir},
                                batch_size=self.batch_size, compute=ray.data.ActorPoolStrategy(size=workers),
                                **remote)
            for row in progress(ds.iter_rows(), desc="encode", total=len(rows), unit="chunk"):
                encoded += int(row["encoded"])
                busy += float(row["seconds"])
                pids.add(int(row["pid"]))
        finally:
            for sw, value in before.items():
                setattr(dctx, sw, value)
        wall = time.perf_counter() - t0
        ctx.encoding["document_encoded"] = ctx.encoding.get("document_encoded", 0) + encoded
        ctx.timings[f"ray_encode_{name}_s"] = wall
        ctx.stats[f"ray_encode_{name}_workers"] = len(pids)
        ctx.stats[f"ray_encode_{name}_docs_per_s"] = round(encoded / wall, 1) if wall > 0 else None
        ctx.stats[f"ray_encode_{name}_docs_per_s_per_worker"] = round(encoded / busy, 1) if busy > 0 else None

    # -- retrieve ------------------------------------------------------------------------------

    def retrieve_shards(self, data: MiningData, retriever: Any, k: int, ctx: RunContext,
                        shards: Sequence[tuple[int, int]]) -> Iterator[tuple[int, int, Candidates]]:
        """Each shard a Ray task (at most ``workers`` in flight), yielded as it completes."""
        ray = self._ray(ctx)
        try:
            yield from self._retrieve(ray, data, retriever, k, ctx, shards)
        finally:
            self._shutdown()

    def _retrieve(self, ray: Any, data: MiningData, retriever: Any, k: int, ctx: RunContext,
                  shards: Sequence[tuple[int, int]]) -> Iterator[tuple[int, int, Candidates]]:
        t0 = time.perf_counter()
        held = ray.put((data, retriever))  # one object: the retriever's corpus stays the data's corpus
        token = held.hex()
        opts: dict[str, Any] = {"max_retries": MAX_RETRIES, "retry_exceptions": False, "num_cpus": 1}
        if self.gpus_per_worker > 0:
            opts["num_gpus"] = self.gpus_per_worker
        task = ray.remote(_retrieve_shard).options(**opts)
        workers = self._workers(ray)
        queue = list(shards)
        pending: dict[Any, tuple[int, int]] = {}
        pids: set[int] = set()
        busy = 0.0
        try:
            while queue or pending:
                while queue and len(pending) < workers:
                    a, b = queue.pop(0)
                    pending[task.remote(token, [held], k, a, b, ctx.cache_dir, ctx.device)] = (a, b)
                ready, _ = ray.wait(list(pending), num_returns=1)
                pending.pop(ready[0])
                try:
                    a, b, cand, record = ray.get(ready[0])
                except ray.exceptions.RayTaskError as exc:
                    if isinstance(exc.cause, NegmineError):
                        raise exc.cause from None
                    raise
                for key, v in record["timings"].items():
                    ctx.timings[key] = ctx.timings.get(key, 0.0) + v
                for key, n in record["encoding"].items():
                    ctx.encoding[key] = ctx.encoding.get(key, 0) + n
                pids.add(record["pid"])
                busy += record["wall_s"]
                yield a, b, cand
        finally:
            for ref in pending:
                ray.cancel(ref)
        wall = time.perf_counter() - t0
        n_q = sum(b - a for a, b in shards)
        ctx.timings["ray_retrieve_s"] = wall
        ctx.stats["ray_workers"] = workers
        ctx.stats["ray_retrieve_workers_used"] = len(pids)
        ctx.stats["ray_retrieve_queries_per_s"] = round(n_q / wall, 1) if wall > 0 else None
        ctx.stats["ray_retrieve_queries_per_s_per_worker"] = round(n_q / busy, 1) if busy > 0 else None
        ctx.stats["ray_address"] = self.address or "local"
