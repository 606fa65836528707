"""HaSa-style negatives: hard, but weighted down by how likely the corruption is a true fact.

HaSa (Zhang, Zhang & Molybog, "HaSa: Hardness and Structure-Aware Contrastive Knowledge Graph
Embedding") argues that the harder a negative, the likelier it is a false negative, and uses graph
structure (the shortest-path distance between head and candidate tail) to tell them apart. What
this module implements, exactly:

**Structure feature.** For a triple ``(a, r, b)`` (``a`` the head, ``b`` the tail, either one
the candidate) two distances, each capped at 3, in the undirected training graph:

- ``d_r``: 1 if the reverse triple ``(b, r, a)`` is a training fact; else 2 if some entity ``x``
  (not ``a``, not ``b``) links to both ``a`` and ``b`` through relation ``r`` (either direction);
  else 3;
- ``d_o``: 1 if ``a`` and ``b`` are linked directly by some *other* relation; else 2 if they have
  a common neighbour in the graph of all relations; else 3.

Neither uses the edge ``(a, r, b)`` itself, so a training fact's feature is exactly what it would
be if that fact were missing: the feature of true facts can be measured on the training graph.
The feature is the bucket ``f = 3·(d_r − 1) + (d_o − 1)`` (9 buckets).

**Probability of a true fact.** Hide a fifth of the training triples (chosen by a hash of their
labels), compute features on the rest, and estimate for each bucket
``q(f) = (hidden facts in f + α·π) / (non-training triples in f + α)`` — the share of triples
outside the visible graph that are true held-out facts — with ``π`` the overall share and
``α = 10`` pseudo-counts (empty buckets get ``π``).

**Sampling.** The ``hard`` weight divided by how much likelier than an average non-training
triple the candidate's bucket is to hold a true fact (its likelihood ratio ``q(f)/π``, never
below 1, so no candidate is promoted):
``log w = cos(e, replaced)/temperature − strength · max(0, log(q(f)/π))``, per side, head or tail
with probability ½. A bucket where missing facts are 18 times as common as on average has its
candidates' weight divided by 18 (``strength = 1``). Why a ratio and not ``1 − q(f)``: ``q(f)`` is
small everywhere (a few per cent at most), so ``1 − q(f)`` cannot move a sampler whose weights
span ``e^{±10}``; but a hard candidate is far likelier a true fact than an average triple, and
the ratio carries the structure's evidence on that scale (the posterior odds of a true fact are
the prior odds times this ratio).

Memory is ``n_r · n_e²`` bytes for the feature table (fine for Nations, Kinships, UMLS; a graph
too large for it is refused with a :class:`~negmine.core.errors.ConfigError`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from negmine.core.errors import ConfigError
from negmine.core.keys import uniform
from negmine.kg.graph import Graph
from negmine.kg.samplers import Hard

__all__ = ["HaSa", "structure_features", "true_fact_probability"]

_MAX_CELLS = 200_000_000
ALPHA = 10.0
BUCKETS = 9


def structure_features(train: np.ndarray, num_entities: int, num_relations: int) -> np.ndarray:
    """``uint8[n_r, n_e, n_e]``: ``F[r, a, b]`` is the bucket of the triple ``(a, r, b)``."""
    if num_relations * num_entities * num_entities > _MAX_CELLS:
        raise ConfigError(
            f"hasa's structure table needs {num_relations}·{num_entities}² cells (> {_MAX_CELLS:,}); "
            "use the hard sampler on a graph this large"
        )
    t = np.asarray(train, dtype=np.int64)
    d = np.zeros((num_relations, num_entities, num_entities), dtype=bool)
    d[t[:, 1], t[:, 0], t[:, 2]] = True
    u = d | d.transpose(0, 2, 1)
    idx = np.arange(num_entities)
    u[:, idx, idx] = False
    uf = u.astype(np.float32)
    two_r = np.matmul(uf, uf) > 0
    d_r = np.where(d.transpose(0, 2, 1), 0, np.where(two_r, 1, 2))
    d_r[:, idx, idx] = 2
    count = u.sum(0, dtype=np.int32)
    other = count[None, :, :] - u > 0
    a = (count > 0).astype(np.float32)
    two_all = (a @ a) > 0
    d_o = np.where(other, 0, np.where(two_all[None], 1, 2))
    return (3 * d_r + d_o).astype(np.uint8)


def true_fact_probability(graph: Graph, hidden_fraction: float = 0.2,
                          seed: int = 0) -> tuple[np.ndarray, dict[str, Any]]:
    """``q float64[9]``: estimated probability that a triple outside the training graph with
    structure bucket ``f`` is a true fact (see the module docstring), and the counts behind it."""
    if not 0.0 < hidden_fraction < 1.0:
        raise ConfigError(f"hidden_fraction must be in (0, 1), got {hidden_fraction}")
    tr = graph.train
    hide = uniform(seed, graph.triple_hash(tr), np.zeros(1, np.uint64))[:, 0] < hidden_fraction
    visible, hidden = tr[~hide], tr[hide]
    f = structure_features(visible, graph.num_entities, graph.num_relations)
    outside = np.ones(f.shape, dtype=bool)
    outside[visible[:, 1], visible[:, 0], visible[:, 2]] = False
    n_out = np.bincount(f[outside].ravel(), minlength=BUCKETS).astype(np.float64)
    n_hid = np.bincount(f[hidden[:, 1], hidden[:, 0], hidden[:, 2]], minlength=BUCKETS).astype(np.float64)
    pi = n_hid.sum() / max(1.0, n_out.sum())
    q = (n_hid + ALPHA * pi) / (n_out + ALPHA)
    return np.clip(q, 0.0, 1.0 - 1e-9), {"hidden": int(hide.sum()), "outside": n_out.astype(int).tolist(),
                                          "hidden_per_bucket": n_hid.astype(int).tolist(), "prior": pi}


class HaSa(Hard):
    """Hard negatives weighted down by a structure-based estimate of how likely they are true
    facts (see the module docstring for exactly what is estimated and how it weighs). Needs the
    same embeddings as ``hard``.

    Attributes
    ----------
    q_ : float64[9]
        Per structure bucket, the estimated probability of a true fact.
    features_ : uint8[n_r, n_e, n_e]
    """

    name = "hasa"

    def __init__(self, embeddings: np.ndarray | None = None, temperature: float = 0.1, strength: float = 1.0,
                 hidden_fraction: float = 0.2, pool: int = 256) -> None:
        super().__init__(embeddings, temperature, pool)
        if not strength >= 0:
            raise ConfigError(f"strength must be >= 0, got {strength}")
        self.strength = float(strength)
        self.hidden_fraction = float(hidden_fraction)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "strength": self.strength, "hidden_fraction": self.hidden_fraction,
                "q": [round(float(x), 6) for x in self.q_] if hasattr(self, "q_") else None}

    def fit(self, graph: Graph) -> HaSa:
        super().fit(graph)
        self.q_, self.estimate_ = true_fact_probability(graph, self.hidden_fraction)
        self.features_ = structure_features(graph.train, graph.num_entities, graph.num_relations)
        prior = float(self.estimate_["prior"])
        with np.errstate(divide="ignore"):
            ratio = np.log(self.q_ / prior) if prior > 0 else np.zeros_like(self.q_)
        self.penalty_ = -self.strength * np.maximum(0.0, ratio)
        return self

    def within(self, triples: np.ndarray) -> np.ndarray:
        t = np.asarray(triples)
        hard = super().within(t)
        f_head = self.features_[t[:, 1], :, t[:, 2]]  # candidate a replaces the head: (a, r, t)
        f_tail = self.features_[t[:, 1], t[:, 0], :]  # candidate b replaces the tail: (h, r, b)
        return hard + np.stack([self.penalty_[f_head], self.penalty_[f_tail]], axis=1)

    def pool_weights(self, triples: np.ndarray, side: np.ndarray, ent: np.ndarray) -> np.ndarray:
        t = np.asarray(triples)
        head = np.where(side == 0, ent, t[:, 0:1])
        tail = np.where(side == 1, ent, t[:, 2:3])
        return super().pool_weights(t, side, ent) + self.penalty_[self.features_[t[:, 1:2], head, tail]]
