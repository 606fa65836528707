"""What knowledge-graph samplers fit on and draw from: the :class:`Graph` (training triples and a
stable ``uint64`` key per entity and relation), the :class:`KGSampler` protocol, and the keys
the engines hash and filter with (a triple's key per call, the filter keys of corruptions, the
keys of the known triples).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from negmine.core.keys import KG_RELATION_SALT, mix, string_keys
from negmine.kg.data import KGData, triple_keys

__all__ = ["Graph", "KGSampler", "call_keys", "corruption_keys", "known_keys"]


@dataclass(frozen=True)
class Graph:
    """What samplers fit on: the training triples and a stable ``uint64`` key per entity and
    relation (hashes of their labels, so keys do not depend on ids or file order)."""

    num_entities: int
    num_relations: int
    train: np.ndarray
    entity_keys: np.ndarray
    relation_keys: np.ndarray
    entity_labels: tuple[str, ...] = ()

    @classmethod
    def from_data(cls, data: KGData) -> Graph:
        return cls(data.num_entities, data.num_relations, data.train, string_keys(data.entities),
                   string_keys(["r:" + r for r in data.relations]), tuple(data.entities))

    @classmethod
    def from_ids(cls, train: np.ndarray, num_entities: int, num_relations: int) -> Graph:
        """For callers with ids only (PyKEEN's mapped triples): keys are hashes of the ids."""
        with np.errstate(over="ignore"):
            ek = mix(np.arange(num_entities, dtype=np.uint64))
            rk = mix(np.arange(num_relations, dtype=np.uint64) ^ KG_RELATION_SALT)
        return cls(num_entities, num_relations, np.asarray(train, dtype=np.int64), ek, rk)

    def triple_hash(self, triples: np.ndarray) -> np.ndarray:
        t = np.asarray(triples, dtype=np.int64)
        with np.errstate(over="ignore"):
            return mix(mix(mix(self.entity_keys[t[:, 0]]) ^ self.relation_keys[t[:, 1]]) ^ self.entity_keys[t[:, 2]])

class KGSampler(Protocol):
    name: str

    def config(self) -> dict[str, Any]: ...

    def fit(self, graph: Graph) -> KGSampler: ...

    def head_probability(self, triples: np.ndarray) -> np.ndarray: ...

    def within(self, triples: np.ndarray) -> np.ndarray: ...

def call_keys(graph: Graph, triples: np.ndarray, draw: int) -> np.ndarray:
    """``uint64[B]``: the key of each triple for call ``draw`` (0: the plain triple hash)."""
    q = graph.triple_hash(triples)
    if draw:
        with np.errstate(over="ignore"):
            q = q ^ mix(np.array([draw], dtype=np.uint64))
    return q

def corruption_keys(graph: Graph, t: np.ndarray, side: np.ndarray, ent: np.ndarray) -> np.ndarray:
    """``int64`` filter keys of the corruptions ``(side, ent)`` ``[B, M]`` of triples ``t``."""
    n_e, n_r = graph.num_entities, graph.num_relations
    h = np.where(side == 0, ent, t[:, 0:1])
    tl = np.where(side == 1, ent, t[:, 2:3])
    return (h * n_r + t[:, 1:2]) * n_e + tl

def known_keys(data: KGData, splits: list[str] | None = None) -> np.ndarray:
    """``int64`` keys of the known triples of ``splits`` (default: every split)."""
    return triple_keys(data.known(splits), data.num_entities, data.num_relations)
