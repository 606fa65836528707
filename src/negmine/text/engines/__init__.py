"""Engines execute a run's stages: ``local`` (in this process, the default) and ``ray`` (a Ray
cluster; extra ``ray``). Both produce the same artifacts and the same bytes (DESIGN.md §7).

An engine implements :class:`Engine`: ``prepare`` (make the corpus side ready — e.g. encode it
into the embedding cache) and ``retrieve_shards`` (retrieve the given query shards, yielding
each as it completes, in any order). The pipeline stores each shard as it arrives and assembles
them in query order, so resuming, reuse and the output do not depend on the engine.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from negmine.core.registry import Registry
from negmine.text.types import Candidates, MiningData, RunContext

__all__ = ["ENGINES", "ENGINE_REGISTRY", "Engine", "LocalEngine", "get_engine"]


class Engine(Protocol):
    name: str

    def prepare(self, data: MiningData, retriever: Any, ctx: RunContext) -> None: ...

    def retrieve_shards(self, data: MiningData, retriever: Any, k: int, ctx: RunContext,
                        shards: Sequence[tuple[int, int]]) -> Iterator[tuple[int, int, Candidates]]: ...


class LocalEngine:
    """Every stage in this process, shard after shard."""

    name = "local"

    def prepare(self, data: MiningData, retriever: Any, ctx: RunContext) -> None:
        prepare = getattr(retriever, "prepare", None)
        if prepare is not None:
            prepare(data, ctx)

    def retrieve_shards(self, data: MiningData, retriever: Any, k: int, ctx: RunContext,
                        shards: Sequence[tuple[int, int]]) -> Iterator[tuple[int, int, Candidates]]:

        n_q = len(data.queries)
        for a, b in shards:
            sub = data if (a, b) == (0, n_q) else data.query_slice(a, b)
            yield a, b, retriever.retrieve(sub, k, ctx)


#: the engines by name, each class loaded on use (ray is an optional extra)
ENGINE_REGISTRY = Registry("engine")
ENGINE_REGISTRY.register("local", "negmine.text.engines:LocalEngine", "every stage in this process (default)")
ENGINE_REGISTRY.register("ray", "negmine.text.engines.ray:RayEngine",
                         "encoding on Ray Data actors, search shards as Ray tasks; the same bytes", ("ray",))
#: engine name -> "module:attribute" of its class
ENGINES = {name: e.target for name, e in ENGINE_REGISTRY.entries.items()}


def get_engine(engine: str | Engine | None, **options: Any) -> Engine:
    """An engine object from a name (``local``, ``ray``) and its options, or the object itself."""
    if engine is None:
        return LocalEngine()
    if not isinstance(engine, str):
        return engine
    cls = ENGINE_REGISTRY.get(engine).load()  # unknown names: "unknown engine 'x'; known engines: ..."
    return cls(**options) if options and engine != "local" else cls()
