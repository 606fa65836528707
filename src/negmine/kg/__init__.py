"""Negatives for knowledge-graph embeddings: corruptions that are hard, but not true facts.

``negmine.kg`` loads triples (:func:`load_triples`, :func:`load_dataset`), corrupts them with a
sampler (``uniform``, ``bernoulli``, ``typed``, ``hard``, ``lemon``, ``hasa``) behind a
known-triple filter (``exact`` or ``bloom``), and writes them with negmine's discipline
(:func:`mine`). :class:`PyKEENSampler` plugs the same samplers into PyKEEN's training loop
(imported on first use: PyKEEN and torch are heavy).
"""

from __future__ import annotations

from typing import Any

from negmine.kg.data import KGData, load_dataset, load_entity_text, load_triples
from negmine.kg.engines import corrupt
from negmine.kg.filters import BloomFilter, ExactFilter
from negmine.kg.graph import Graph
from negmine.kg.registry import SAMPLERS, make_filter, make_sampler

__all__ = [
    "SAMPLERS", "BloomFilter", "ExactFilter", "Graph", "KGData", "KGMiningResult", "PyKEENSampler", "corrupt",
    "load_dataset", "load_entity_text", "load_triples", "make_filter", "make_sampler", "mine",
]


def __getattr__(name: str) -> Any:
    if name in ("mine", "KGMiningResult"):
        from negmine.kg import mining as _mine

        return getattr(_mine, name)
    if name == "PyKEENSampler":
        from negmine.kg.pykeen_sampler import PyKEENSampler

        return PyKEENSampler
    raise AttributeError(f"module 'negmine.kg' has no attribute {name!r}")
