"""negmine's samplers as a PyKEEN ``NegativeSampler`` (importing this module imports PyKEEN).

>>> from pykeen.pipeline import pipeline                                   # doctest: +SKIP
>>> pipeline(dataset="Nations", model="TransE", negative_sampler=negmine.kg.PyKEENSampler,
...          negative_sampler_kwargs=dict(sampler="typed", num_negs_per_pos=4, seed=0))

Hard negatives from the model being trained (:mod:`negmine.kg.live`): build the model first and
hand it to both PyKEEN and the sampler.

>>> model = TransE(triples_factory=tf, embedding_dim=50)                   # doctest: +SKIP
>>> SLCWATrainingLoop(model=model, triples_factory=tf, negative_sampler=negmine.kg.PyKEENSampler,
...                   negative_sampler_kwargs=dict(sampler="hard", model=model, refresh="batch",
...                                                guard=("cardinality", "type", "margin")))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from negmine.core.errors import ConfigError
from negmine.core.keys import string_keys
from negmine.core.optional import require
from negmine.kg.data import triple_keys
from negmine.kg.engines import corrupt
from negmine.kg.graph import Graph
from negmine.kg.registry import make_filter, make_sampler

_pykeen_sampling = require("pykeen.sampling")
torch = require("torch")

__all__ = ["PyKEENSampler"]


class PyKEENSampler(_pykeen_sampling.NegativeSampler):  # type: ignore[name-defined]
    """A PyKEEN negative sampler drawing with one of negmine's samplers.

    Parameters
    ----------
    mapped_triples, num_entities, num_relations, num_negs_per_pos
        As PyKEEN passes them.
    sampler
        ``uniform``, ``bernoulli``, ``typed``, ``hard``, ``lemon`` or ``hasa``.
    sampler_kwargs
        Options of that sampler (``embeddings`` for ``hard``/``hasa``; ``text_embeddings`` or
        ``texts`` for ``lemon``; ``temperature``, ``strength``, ...).
    filter
        ``exact`` (default), ``bloom`` or ``none``: corruptions that are known triples are never
        drawn. Known triples: the training triples plus ``known_triples`` (``int[n, 3]``).
    entity_labels, relation_labels
        Labels in id order: random keys then come from labels, as in :func:`negmine.kg.mine`.
    seed
        Noise comes from ``(seed, triple, candidate, call number)``: each batch differs, and the
        same seed with PyKEEN's same seed trains the same model.

    model, refresh
        With ``sampler="hard"`` (or ``"hasa"``: adds the ``structure`` guard): score a pool of
        candidates per positive with this PyKEEN model — the one being trained — on every batch
        (``refresh="batch"``) or with a copy refreshed every ``refresh`` epochs
        (:class:`negmine.kg.live.LiveHard`); ``sampler_kwargs`` then takes ``temperature``,
        ``pool``, ``cache``, ``margin``, ``strength``.
    guard
        With ``model``: any of ``cardinality``, ``type``, ``structure``, ``margin``
        (:data:`negmine.kg.live.GUARDS`); the known-triple filter is always on.

    Shortfalls (fewer allowed corruptions than ``num_negs_per_pos``) are masked out through
    PyKEEN's filter mask, never padded with a true triple.
    """

    def __init__(self, *, mapped_triples: Any, num_entities: int | None = None, num_relations: int | None = None,
                 num_negs_per_pos: int | None = None, sampler: str = "uniform",
                 sampler_kwargs: Mapping[str, Any] | None = None, filter: str = "exact",
                 error_rate: float = 0.001, known_triples: Any = None, entity_labels: Sequence[str] | None = None,
                 relation_labels: Sequence[str] | None = None, seed: int = 0, model: Any = None,
                 refresh: str | int = "batch", guard: Sequence[str] = ("cardinality", "margin"),
                 **kwargs: Any) -> None:
        super().__init__(mapped_triples=mapped_triples, num_entities=num_entities, num_relations=num_relations,
                         num_negs_per_pos=num_negs_per_pos, **kwargs)
        train = mapped_triples.detach().cpu().numpy().astype(np.int64)
        n_e, n_r = int(self.num_entities), int(self.num_relations)
        graph = Graph.from_ids(train, n_e, n_r)
        if entity_labels is not None and relation_labels is not None:
            graph = Graph(n_e, n_r, train, string_keys(list(entity_labels)),
                          string_keys(["r:" + r for r in relation_labels]), tuple(entity_labels))
        self.graph = graph
        self.sampler_name = sampler
        self.live = model is not None
        if self.live:
            from negmine.kg.live import LiveHard, ModelScorer

            if sampler not in ("hard", "hasa"):
                raise ConfigError(f"model= scores hard negatives; use sampler='hard' or 'hasa', not {sampler!r}")
            guards = tuple(guard) + (("structure",) if sampler == "hasa" else ())
            self.neg_sampler: Any = LiveHard(ModelScorer(model, refresh), guard=guards,
                                             **dict(sampler_kwargs or {})).fit(graph)
        else:
            self.neg_sampler = make_sampler(sampler, **dict(sampler_kwargs or {})).fit(graph)
        self.num_train = max(1, len(train))
        known = train if known_triples is None else np.concatenate(
            [train, np.asarray(known_triples.cpu() if hasattr(known_triples, "cpu") else known_triples,
                               dtype=np.int64).reshape(-1, 3)])
        self.known = make_filter(filter, triple_keys(known, n_e, n_r), error_rate=error_rate)
        self.seed = int(seed)
        self.calls = 0

    def _draw(self, positive_batch: Any) -> tuple[Any, Any]:
        self.calls += 1
        pos = positive_batch.detach().cpu().numpy().astype(np.int64)
        flat = pos.reshape(-1, 3)
        if self.live:
            self.neg_sampler.scorer.tick(len(flat) / self.num_train)
        c = corrupt(self.neg_sampler, self.graph, flat, self.num_negs_per_pos, self.seed, self.known, draw=self.calls)
        neg = np.where(c.ok[:, :, None], c.negatives, flat[:, None, :])  # masked-out rows hold the positive
        shape = (*pos.shape[:-1], self.num_negs_per_pos)
        return torch.as_tensor(neg.reshape(*shape, 3)), torch.as_tensor(c.ok.reshape(shape))

    def corrupt_batch(self, positive_batch: Any) -> Any:
        return self._draw(positive_batch)[0]

    def sample(self, positive_batch: Any) -> tuple[Any, Any]:
        neg, ok = self._draw(positive_batch)
        return neg, (None if bool(ok.all()) else ok)
