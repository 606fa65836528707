"""The registries of the knowledge-graph domain: corruption samplers and known-triple filters.

Built on :mod:`negmine.core.registry`: each component is named once, with the ``"module:Class"``
that implements it (imported on first use), a summary and the optional dependencies it needs.
:func:`make_sampler` and :func:`make_filter` build through them, so no module of the domain
imports a sampler class to find it by name (``negmine.kg.hasa`` extends ``negmine.kg.samplers``;
nothing imports back). Imports nothing heavy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from negmine.core.errors import ConfigError
from negmine.core.registry import Option, Registry

if TYPE_CHECKING:
    from negmine.kg.filters import KnownFilter
    from negmine.kg.samplers import KGSampler

__all__ = [
    "FILTERS",
    "FILTER_REGISTRY",
    "LIVE_SAMPLERS",
    "SAMPLERS",
    "SAMPLER_OPTIONS",
    "SAMPLER_REGISTRY",
    "TRAIN_SAMPLERS",
    "make_filter",
    "make_sampler",
]

SAMPLER_REGISTRY = Registry("sampler")
SAMPLER_REGISTRY.register("uniform", "negmine.kg.samplers:Uniform",
                          "head or tail with probability ½, then any entity uniformly (TransE)")
SAMPLER_REGISTRY.register("bernoulli", "negmine.kg.samplers:Bernoulli",
                          "per relation, the head with probability tph / (tph + hpt) (TransH)")
SAMPLER_REGISTRY.register("typed", "negmine.kg.samplers:Typed",
                          "only entities observed in the replaced slot of the relation")
SAMPLER_REGISTRY.register("hard", "negmine.kg.samplers:Hard",
                          "entities close to the replaced one under KGE embeddings (needs embeddings)")
SAMPLER_REGISTRY.register("lemon", "negmine.kg.samplers:Lemon",
                          "within the replaced entity's k-means cluster of entity-text embeddings "
                          "(encodes with sentence-transformers unless given the embeddings)")
SAMPLER_REGISTRY.register("hasa", "negmine.kg.hasa:HaSa",
                          "hard, weighted down by a structure-based estimate of a true fact (needs embeddings)")

#: the sampler names, in registration order (what error messages and defaults list)
SAMPLERS: tuple[str, ...] = tuple(SAMPLER_REGISTRY.entries)

#: samplers that score candidates with the model being trained (kg compare only: they need a
#: training loop); ``live-hasa`` adds HaSa's structure guard to ``live-hard``'s cardinality and margin
LIVE_SAMPLERS: tuple[str, ...] = ("live-hard", "live-hasa")
#: what ``kg compare --samplers`` accepts
TRAIN_SAMPLERS: tuple[str, ...] = (*SAMPLERS, *LIVE_SAMPLERS)

#: which samplers read each sampler option (declared in negmine.kg.options); an option given to a
#: command whose samplers do not read it is refused
SAMPLER_OPTIONS: dict[str, tuple[str, ...]] = {
    "embeddings": ("hard", "hasa"), "kge_epochs": ("hard", "hasa"),
    "temperature": ("hard", "hasa", "live-hard", "live-hasa"),
    "strength": ("hasa",), "clusters": ("lemon",), "entity_text": ("lemon",), "warmup_epochs": ("hard", "hasa"),
}

_ERROR_RATE = Option("error_rate", float, 0.001, "bloom: target false-positive rate", low=0, high=1,
                     low_open=True, high_open=True)
FILTER_REGISTRY = Registry("filter")
FILTER_REGISTRY.register("exact", "negmine.kg.filters:ExactFilter", "every known triple, exactly")
FILTER_REGISTRY.register("bloom", "negmine.kg.filters:BloomFilter",
                         "a Bloom filter of the known triples (never emits one; drops a valid corruption "
                         "with the stated rate)", options=(_ERROR_RATE,))
FILTER_REGISTRY.register("none", "negmine.kg.filters:NoFilter", "filters nothing: corruptions may be true facts")

#: the filter names, in registration order
FILTERS: tuple[str, ...] = tuple(FILTER_REGISTRY.entries)


def make_sampler(name: str, **options: Any) -> KGSampler:
    """A sampler by name with its options (``embeddings``, ``temperature``, ``strength``, ...)."""
    if name not in SAMPLER_REGISTRY.entries:
        raise ConfigError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")
    cls = SAMPLER_REGISTRY.entries[name].load()
    try:
        sampler: KGSampler = cls(**options)
    except TypeError as exc:
        raise ConfigError(f"sampler {name!r}: {exc}") from None
    return sampler


def make_filter(name: str, keys: np.ndarray, *, error_rate: float = 0.001) -> KnownFilter:
    """``exact``, ``bloom`` or ``none`` over the known-triple ``keys``; a filter gets the options
    its entry declares (``error_rate``: bloom), checked by the filter itself."""
    if name not in FILTER_REGISTRY.entries:
        raise ConfigError(f"unknown filter {name!r}; choose one of {', '.join(FILTERS)}")
    entry = FILTER_REGISTRY.entries[name]
    given = {"error_rate": error_rate}
    built: KnownFilter = entry.load()(keys, **{o.keyword: given[o.key] for o in entry.options})
    return built
