"""The ``ray`` engine: the same stages as the local engine, spread over a Ray cluster (extra
``ray``); the same artifacts, the same bytes (DESIGN.md §7, invariant 3).

- **encode** (:meth:`RayEngine.prepare`): the corpus chunks an embedding retriever still misses
  in the embedding cache — the same ``CHUNK``-sized chunks and the same cache keys as
  :func:`negmine.text.encoders.cache.encode_cached` — go through Ray Data ``map_batches`` with a
  callable class (one model per actor, ``concurrency`` = workers, ``num_gpus`` per actor when
  asked, one chunk per batch); each actor writes its chunks to the cache under the entry lock.
  The retriever's own ``prepare`` then runs on the driver and finds every chunk cached. The cache
  directory must be on storage every node sees.
- **retrieve** (:meth:`RayEngine.retrieve_shards`): a copy of the prepared retriever goes to the
  workers once (:mod:`negmine.text.engines.ray_ship`: no corpus texts; embeddings that live in an
  ``.npy`` file travel as its path and each worker memory-maps the file; the BM25 index through
  the object store). Each query shard is a Ray task — or, with ``doc_shard``, exact dense search
  as tasks over (query shard × document shard) merged into the same top-k
  (:mod:`negmine.text.engines.ray_tasks`) — retried when its worker dies, yielded as it completes.
- **device**: a ``--device`` other than ``cpu`` is checked on a worker holding the resources the
  tasks ask for, not on the driver.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from negmine.core.errors import ConfigError, NegmineError
from negmine.core.optional import require
from negmine.core.progress import progress
from negmine.text.engines import ray_tasks
from negmine.text.engines.ray_ship import for_workers, walk
from negmine.text.types import Candidates, MiningData, RunContext

__all__ = ["RayEngine"]

log = logging.getLogger(__name__)

#: retries of a shard whose worker died (Ray system failures; a Python error is not retried)
MAX_RETRIES = 3


def _encodes_corpus(r: Any) -> bool:
    from negmine.text.retrievers.embedding import EmbeddingRetriever

    return isinstance(r, EmbeddingRetriever) and not r.doc_embeddings


class _EncodeChunks:
    """Ray Data callable class: one encoder (model) per actor; each batch is one or more cache
    chunks (``start``, ``stop`` rows of the corpus, their ``texts``), encoded and saved to the
    cache exactly as :func:`~negmine.text.encoders.cache.encode_cached` would."""

    def __init__(self, encoder: Any, cache_dir: str) -> None:
        from negmine.text.encoders.cache import EmbeddingCache

        self.encoder = encoder
        self.cache = EmbeddingCache(cache_dir)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from negmine.text.encoders.cache import _encode_chunk

        encoded, seconds = [], []
        for texts in batch["texts"]:
            stats: dict[str, int] = {}
            t0 = time.perf_counter()
            _encode_chunk(self.encoder, [str(t) for t in texts], "document", self.cache, stats)
            seconds.append(time.perf_counter() - t0)
            encoded.append(stats.get("document_encoded", 0))
        return {"start": np.asarray(batch["start"], dtype=np.int64), "encoded": np.asarray(encoded, dtype=np.int64),
                "seconds": np.asarray(seconds, dtype=np.float64), "pid": np.full(len(encoded), os.getpid())}


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
    doc_shard
        Documents per search task for exact dense search (:class:`~negmine.text.retrievers.Dense`),
        rounded up to a multiple of its ``doc_block`` (so each task multiplies the blocks the
        local search multiplies): each query shard is searched by one task per document shard,
        and the shards' top lists are merged into the same top-k. ``None`` (default): one task
        per query shard over the whole corpus. Other retrievers refuse it.
    """

    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None, gpus_per_worker: float = 0.0,
                 batch_size: int = 1, doc_shard: int | None = None) -> None:
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise ConfigError(f"workers must be an integer >= 1, got {workers!r}; pass --workers 1+")
        if not isinstance(gpus_per_worker, (int, float)) or not gpus_per_worker >= 0:
            raise ConfigError(f"gpus_per_worker must be a number >= 0, got {gpus_per_worker!r}")
        if doc_shard is not None and (isinstance(doc_shard, bool) or not isinstance(doc_shard, int) or doc_shard < 1):
            raise ConfigError(f"doc_shard must be an integer >= 1, got {doc_shard!r}; pass --doc-shard 1+")
        self.address = address
        self.doc_shard = doc_shard
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

    def _resources(self) -> dict[str, Any]:
        """What each task and actor asks of the cluster."""
        return {"num_gpus": self.gpus_per_worker} if self.gpus_per_worker > 0 else {"num_cpus": 1}

    def _doc_bounds(self, retriever: Any, n_docs: int) -> list[tuple[int, int]] | None:
        """The document shards of a document-sharded search, or ``None`` (one task per query shard)."""
        from negmine.text.retrievers.dense import Dense

        if self.doc_shard is None:
            return None
        if not isinstance(retriever, Dense):
            raise ConfigError(f"--doc-shard splits exact dense search by documents; the {retriever.name} retriever "
                              "searches the whole corpus in each task: drop --doc-shard or use --retriever dense")
        size = -(-self.doc_shard // retriever.doc_block) * retriever.doc_block
        return [(lo, min(lo + size, n_docs)) for lo in range(0, n_docs, size)] or None

    def _check_devices(self, ray: Any, retriever: Any) -> None:
        """Refuse a ``--device`` the workers lack, asked of a worker with the tasks' resources."""
        wanted = sorted({d for r in walk(retriever) if (d := getattr(r, "device", "cpu")) != "cpu"})
        if not wanted:
            return
        present = ray.get(ray.remote(ray_tasks.available_devices).options(**self._resources()).remote())
        for device in wanted:
            if device not in present:
                hint = ("pass --gpus-per-worker 1 (or more) so each worker holds a GPU"
                        if device.startswith("cuda") and self.gpus_per_worker == 0 else "add nodes that have it")
                raise ConfigError(f"device {device!r} is not available on the Ray workers (available there: "
                                  f"{', '.join(present)}); {hint}, or pass --device cpu")

    # -- encode --------------------------------------------------------------------------------

    def prepare(self, data: MiningData, retriever: Any, ctx: RunContext) -> None:
        """Encode the corpus chunks the embedding cache misses on the cluster, then prepare the
        retriever on the driver (from the cache; BM25 builds its index there, once)."""
        encoders = [r for r in walk(retriever) if _encodes_corpus(r)]
        if encoders and not ctx.cache_dir:
            raise ConfigError("the ray engine encodes the corpus into the embedding cache; pass --cache-dir "
                              "on storage every node sees")
        ray = self._ray(ctx)
        try:
            self._doc_bounds(retriever, len(data.corpus))  # refused before any work
            self._check_devices(ray, retriever)
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
        from negmine.text.encoders.cache import CHUNK, EmbeddingCache

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
        rows = [{"start": s, "texts": list(texts[s : s + CHUNK])} for s in todo]
        remote = self._resources()
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
        payload, shipped = for_workers(data.corpus, retriever)
        held = ray.put(payload)  # one object: the retriever's corpus stays the tasks' corpus
        doc_bounds = self._doc_bounds(retriever, len(data.corpus))
        submit = _Submit(ray, held, k, len(data.corpus), ctx, {**self._resources(), "max_retries": MAX_RETRIES,
                                                                  "retry_exceptions": False, "num_cpus": 1})
        workers = self._workers(ray)
        # document shards: one query shard more than the workers hold, so a shard's query embedding and
        # merge tasks overlap the next one's searches
        in_flight = workers if doc_bounds is None else -(-workers // len(doc_bounds)) + 1
        queue = list(shards)
        pending: dict[Any, tuple[int, int]] = {}
        pids: set[int] = set()
        busy = 0.0
        try:
            while queue or pending:
                while queue and len(pending) < in_flight:
                    a, b = queue.pop(0)
                    pending[submit(data, a, b, doc_bounds)] = (a, b)
                ready, _ = ray.wait(list(pending), num_returns=1)
                pending.pop(ready[0])
                a, b, cand, record = _get(ray, ready[0])
                for key, v in record["timings"].items():
                    ctx.timings[key] = ctx.timings.get(key, 0.0) + v
                for key, n in record["encoding"].items():
                    ctx.encoding[key] = ctx.encoding.get(key, 0) + n
                for key, n in record["stats"].items():
                    ctx.stats[key] = ctx.stats.get(key, 0) + n
                pids.update(record["pids"])
                busy += record["wall_s"]
                yield a, b, cand
        finally:
            for ref in pending:
                ray.cancel(ref)
        wall = time.perf_counter() - t0
        n_q = sum(b - a for a, b in shards)
        ctx.timings["ray_retrieve_s"] = wall
        ctx.stats.update(shipped)
        ctx.stats["ray_workers"] = workers
        ctx.stats["ray_doc_shards"] = len(doc_bounds) if doc_bounds else 1
        ctx.stats["ray_retrieve_workers_used"] = len(pids)
        ctx.stats["ray_retrieve_queries_per_s"] = round(n_q / wall, 1) if wall > 0 else None
        ctx.stats["ray_retrieve_queries_per_s_per_worker"] = round(n_q / busy, 1) if busy > 0 else None
        ctx.stats["ray_address"] = self.address or "local"


class _Submit:
    """Submits the tasks of one query shard; returns the reference of its candidates."""

    def __init__(self, ray: Any, held: Any, k: int, n_docs: int, ctx: RunContext, opts: dict[str, Any]) -> None:
        self.ray, self.held, self.token, self.k, self.n_docs = ray, held, held.hex(), k, n_docs
        self.env = (ctx.cache_dir, ctx.device)
        self.opts = opts
        self.remote = {fn: ray.remote(fn) for fn in (ray_tasks.retrieve_shard, ray_tasks.embed_queries,
                                                     ray_tasks.search_docs, ray_tasks.finish_shard)}

    def _task(self, fn: Any, **extra: Any) -> Any:
        return self.remote[fn].options(**self.opts, **extra)

    def __call__(self, data: MiningData, a: int, b: int, doc_bounds: list[tuple[int, int]] | None) -> Any:
        from negmine.text.retrievers.embedding import EXTRA

        sub = data.query_slice(a, b)
        rows = (sub.queries, sub.positives, sub.exclude)
        held = [self.held]  # in a list: the task takes it from the object store itself, once per worker
        if doc_bounds is None:
            return self._task(ray_tasks.retrieve_shard).remote(self.token, held, self.k, a, b, *rows, *self.env)
        k_search = min(self.k + EXTRA, self.n_docs)
        q, q_record = self._task(ray_tasks.embed_queries, num_returns=2).remote(self.token, held, *rows, *self.env)
        parts = [self._task(ray_tasks.search_docs).remote(self.token, held, q, lo, hi, k_search)
                 for lo, hi in doc_bounds]
        return self._task(ray_tasks.finish_shard).remote(self.token, held, a, b, *rows, self.k, k_search, q,
                                                         q_record, *parts)


def _get(ray: Any, ref: Any) -> Any:
    """``ray.get``, raising a negmine error a task raised as itself (a one-line error)."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause: Any = exc
        while isinstance(cause, ray.exceptions.RayTaskError):
            cause = cause.cause
        if isinstance(cause, NegmineError):
            raise cause from None
        raise
