"""Corruption samplers for knowledge-graph triples: the distribution each one draws from.

A sampler is fitted on a :class:`~negmine.kg.graph.Graph` and says how likely each head or tail
replacement is: a stream sampler (``uniform``, ``bernoulli``, ``typed``) by a side probability
and the side's allowed entities (O(1) per draw), the others (``hard``, ``lemon``, ``hasa`` in
:mod:`negmine.kg.hasa`) by a log-weight per candidate entity (``within``) or per pooled
candidate (``pool_weights``). :func:`corrupt` (:mod:`negmine.kg.engines`) draws from them,
keyed by ``(seed, triple labels, ...)``; :func:`make_sampler` builds one by name through
:data:`negmine.kg.registry.SAMPLER_REGISTRY`.

Every name this module exported before the engines and the graph had modules of their own
(``Graph``, ``Corruptions``, ``corrupt``, ``pool_corrupt``, ``stream_codes``, ``known_keys``,
``SAMPLERS``, ``make_sampler``) is still importable from here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from negmine.core.errors import ConfigError
from negmine.core.keys import gumbel, uniform
from negmine.kg.engines import Corruptions, corrupt, corrupt_exact, pool_corrupt, stream_codes
from negmine.kg.filters import KnownFilter
from negmine.kg.graph import Graph, KGSampler, known_keys
from negmine.kg.registry import SAMPLERS, make_sampler

__all__ = [
    "SAMPLERS", "Bernoulli", "Corruptions", "Graph", "Hard", "KGSampler", "Lemon", "Typed", "Uniform",
    "corrupt", "known_keys", "make_sampler", "pool_corrupt", "stream_codes",
]

_LOW32 = np.uint64(0xFFFFFFFF)
_TWO32 = float(1 << 32)


class _Base:
    name = "base"
    graph_: Graph | None = None

    def config(self) -> dict[str, Any]:
        return {"name": self.name}

    def fit(self, graph: Graph) -> _Base:
        self.graph_ = graph
        return self

    @property
    def graph(self) -> Graph:
        if self.graph_ is None:
            raise RuntimeError(f"sampler {self.name!r} used before fit()")
        return self.graph_

    def head_probability(self, triples: np.ndarray) -> np.ndarray:
        return np.full(len(triples), 0.5)

    def within(self, triples: np.ndarray) -> np.ndarray:
        return np.zeros((len(triples), 2, self.graph.num_entities))


class _Streamed(_Base):
    """A sampler whose side is drawn with ``head_probability`` and whose entity is uniform over
    the side's allowed entities: O(1) per draw (:func:`corrupt`'s stream engine)."""

    def stream(self, triples: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For ``uint64[B, M]`` draw hashes: ``(side int64, entity int64, ok bool)`` ``[B, M]``;
        ``ok`` is False where the drawn side has no allowed entity."""
        n_e = self.graph.num_entities
        p = self.head_probability(triples)
        side = ((z >> np.uint64(32)).astype(np.float64) >= p[:, None] * _TWO32).astype(np.int64)
        true = np.where(side == 0, triples[:, 0:1], triples[:, 2:3])
        size = np.uint64(max(n_e - 1, 0))
        r = (((z & _LOW32) * size) >> np.uint64(32)).astype(np.int64)
        ent = r + (r >= true)
        return side, ent, np.full(z.shape, n_e > 1)

    def segments(self, triples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each side's allowed entities as ``[start, end)`` ranges ``int64[B, 2]`` of
        :meth:`support_entities` (the true entity included: the caller removes it)."""
        n = len(triples)
        return np.zeros((n, 2), dtype=np.int64), np.full((n, 2), self.graph.num_entities, dtype=np.int64)

    def support_entities(self, idx: np.ndarray) -> np.ndarray:
        return idx

    def side_sizes(self, triples: np.ndarray) -> np.ndarray:
        """``int64[B, 2]``: how many entities each side may draw (the true one excluded)."""
        return np.full((len(triples), 2), max(self.graph.num_entities - 1, 0), dtype=np.int64)


class Uniform(_Streamed):
    """Head or tail with probability ½, then any entity uniformly (Bordes et al. 2013, TransE;
    PyKEEN's ``BasicNegativeSampler``). The easiest negatives; rarely false ones on sparse graphs."""

    name = "uniform"


class Bernoulli(_Streamed):
    """Per relation, corrupt the head with probability ``tph / (tph + hpt)`` (Wang et al. 2014,
    TransH; PyKEEN's ``BernoulliNegativeSampler``): ``tph`` is the mean number of tails per head
    of the relation, ``hpt`` the mean number of heads per tail. A 1-to-N relation (many tails per
    head) gets its head replaced, which is less likely to produce a true fact.

    Attributes
    ----------
    p_head_ : float64[n_r]
    """

    name = "bernoulli"

    def fit(self, graph: Graph) -> Bernoulli:
        super().fit(graph)
        tr = graph.train
        n_r = graph.num_relations
        count = np.bincount(tr[:, 1], minlength=n_r).astype(np.float64)
        n_e = max(graph.num_entities, 1)
        heads = np.bincount(np.unique(tr[:, 1] * n_e + tr[:, 0]) // n_e, minlength=n_r)
        tails = np.bincount(np.unique(tr[:, 1] * n_e + tr[:, 2]) // n_e, minlength=n_r)
        with np.errstate(invalid="ignore", divide="ignore"):
            tph = count / heads
            hpt = count / tails
            p = tph / (tph + hpt)
        self.p_head_ = np.where(np.isfinite(p), p, 0.5)
        return self

    def head_probability(self, triples: np.ndarray) -> np.ndarray:
        return self.p_head_[np.asarray(triples)[:, 1]]


class Typed(_Streamed):
    """Only entities observed in that slot of that relation in training (PyKEEN's
    ``PseudoTypedNegativeSampler``, Kotnis & Nastase 2018), head or tail with probability ½.
    Type-consistent, hence harder than uniform, and never outside the slot's observed entities.
``sides="bernoulli"`` picks the side with :class:`Bernoulli`'s per-relation probability instead.

    Attributes
    ----------
    pools_ : bool[n_r, 2, n_e]
        ``pools_[r, 0]`` the heads seen with ``r``, ``pools_[r, 1]`` its tails.
    """

    name = "typed"

    def __init__(self, sides: str = "half") -> None:
        if sides not in ("half", "bernoulli"):
            raise ConfigError(f"typed sides must be 'half' or 'bernoulli', got {sides!r}")
        self.sides = sides

    def config(self) -> dict[str, Any]:
        return {"name": self.name, **({"sides": self.sides} if self.sides != "half" else {})}

    def head_probability(self, triples: np.ndarray) -> np.ndarray:
        if self.sides == "bernoulli":
            return self.bernoulli_.head_probability(triples)
        return super().head_probability(triples)

    def fit(self, graph: Graph) -> Typed:
        super().fit(graph)
        if self.sides == "bernoulli":
            self.bernoulli_ = Bernoulli().fit(graph)
        tr = graph.train
        pools = np.zeros((graph.num_relations, 2, graph.num_entities), dtype=bool)
        pools[tr[:, 1], 0, tr[:, 0]] = True
        pools[tr[:, 1], 1, tr[:, 2]] = True
        self.pools_ = pools
        # the same pools as sorted keys (r·2 + side)·n_e + entity, for O(1) stream draws
        n_e = graph.num_entities
        self.keys_ = np.flatnonzero(pools.ravel()).astype(np.int64)
        self.start_ = np.searchsorted(self.keys_, np.arange(2 * graph.num_relations + 1) * n_e)
        return self

    def _rank(self, g: np.ndarray, ent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Position of ``ent`` in slot pool ``g`` (its insertion point) and whether it is in it."""
        key = g * self.graph.num_entities + ent
        pos = np.searchsorted(self.keys_, key)
        return pos, self.keys_[np.minimum(pos, len(self.keys_) - 1)] == key

    def segments(self, triples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        g2 = 2 * np.asarray(triples, dtype=np.int64)[:, 1:2] + np.arange(2)[None, :]
        return self.start_[g2], self.start_[g2 + 1]

    def support_entities(self, idx: np.ndarray) -> np.ndarray:
        return self.keys_[idx] % self.graph.num_entities

    def side_sizes(self, triples: np.ndarray) -> np.ndarray:
        t = np.asarray(triples, dtype=np.int64)
        g2 = 2 * t[:, 1:2] + np.arange(2)[None, :]
        _, inside = self._rank(g2, np.stack([t[:, 0], t[:, 2]], axis=1))
        return self.start_[g2 + 1] - self.start_[g2] - inside

    def stream(self, triples: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        t = np.asarray(triples, dtype=np.int64)
        p = self.head_probability(t)
        side = ((z >> np.uint64(32)).astype(np.float64) >= p[:, None] * _TWO32).astype(np.int64)
        g2 = 2 * t[:, 1:2] + np.arange(2)[None, :]                      # [B, 2] slot of each side
        pos2, in2 = self._rank(g2, np.stack([t[:, 0], t[:, 2]], axis=1))  # per triple, not per draw
        head = side == 0
        g = np.where(head, g2[:, 0:1], g2[:, 1:2])
        pos = np.where(head, pos2[:, 0:1], pos2[:, 1:2])
        inpool = np.where(head, in2[:, 0:1], in2[:, 1:2])
        lo = self.start_[g]
        size = self.start_[g + 1] - lo - inpool
        r = (((z & _LOW32) * size.astype(np.uint64)) >> np.uint64(32)).astype(np.int64)
        idx = lo + r + (inpool & (r >= pos - lo))
        ent = self.keys_[np.minimum(idx, len(self.keys_) - 1)] % self.graph.num_entities
        return side, ent, size > 0

    def within(self, triples: np.ndarray) -> np.ndarray:
        return np.where(self.pools_[np.asarray(triples)[:, 1]], 0.0, -np.inf)


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(n > 0, n, 1.0)


class Hard(_Base):
    """Entities close to the replaced one under a KGE model's entity embeddings (or any supplied
    ``float[n_e, d]`` embeddings): weight ``∝ exp(cos(e, replaced) / temperature)`` within each
    side, head or tail with probability ½. ``temperature → 0`` takes the nearest neighbours;
    large temperatures tend to ``uniform``. Harder than ``typed``, and the sampler most prone to
    false negatives (a near neighbour is often a true answer).

    On a graph with more than ``pool`` entities the weights are computed on a pool of ``pool``
    distinct filtered uniform draws per triple only (:func:`pool_corrupt`), never on all
    entities; on smaller graphs every entity is weighed (exact).
    """

    name = "hard"

    def __init__(self, embeddings: np.ndarray | None = None, temperature: float = 0.1, pool: int = 256) -> None:
        if not temperature > 0:
            raise ConfigError(f"temperature must be > 0, got {temperature}")
        if pool < 1:
            raise ConfigError(f"pool must be >= 1, got {pool}")
        self.embeddings = embeddings
        self.temperature = float(temperature)
        self.pool = int(pool)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "temperature": self.temperature, "pool": self.pool}

    def fit(self, graph: Graph) -> Hard:
        super().fit(graph)
        if self.embeddings is None:
            raise ConfigError(f"sampler {self.name!r} needs entity embeddings; "
                              "pass --embeddings FILE or --kge-epochs N")
        e = np.asarray(self.embeddings)
        if e.ndim != 2 or e.shape[0] != graph.num_entities:
            raise ConfigError(f"embeddings have shape {e.shape}; expected ({graph.num_entities}, d), "
                              "one row per entity")
        if not np.isfinite(e).all():
            raise ConfigError("embeddings contain NaN or infinite values; re-export them")
        self.unit_ = _unit(e)
        self._sim: np.ndarray | None = None
        self.base_ = Uniform().fit(graph)
        return self

    @property
    def sim_(self) -> np.ndarray:
        """``float64[n_e, n_e]`` cosine similarities (exact engine only: small graphs)."""
        sim: np.ndarray | None = getattr(self, "_sim", None)
        if sim is None:
            sim = self._sim = self.unit_ @ self.unit_.T
        return sim

    def within(self, triples: np.ndarray) -> np.ndarray:
        t = np.asarray(triples)
        return np.stack([self.sim_[t[:, 0]], self.sim_[t[:, 2]]], axis=1) / self.temperature

    def pool_weights(self, triples: np.ndarray, side: np.ndarray, ent: np.ndarray) -> np.ndarray:
        """``float64[B, M]`` log-weights of the pool candidates ``(side, ent)`` ``[B, M]``."""
        t = np.asarray(triples)
        u = self.unit_.astype(np.float32, copy=False)
        cand = u[ent]                                                   # [B, M, d]
        s0 = np.einsum("bmd,bd->bm", cand, u[t[:, 0]])
        s1 = np.einsum("bmd,bd->bm", cand, u[t[:, 2]])
        return np.where(side == 0, s0, s1).astype(np.float64) / self.temperature

    def corrupt_batch(self, graph: Graph, t: np.ndarray, k: int, seed: int, known: KnownFilter,
                      draw: int) -> Corruptions:
        if graph.num_entities <= self.pool:
            return corrupt_exact(self, graph, t, k, seed, known, draw)
        return pool_corrupt(self.pool_weights, self.base_, graph, t, k, seed, known, draw, self.pool)


class Lemon(_Base):
    """LEMON (Rony et al. 2022, "LEMON: LanguagE MOdel for Negative sampling of knowledge graph
    embeddings"): embed each entity's text (its label, or a description) with a sentence encoder
    (the packaged all-MiniLM-L6-v2 by default), cluster the embeddings with k-means (seeded,
    k-means++ initialisation keyed by label hashes), and corrupt within the replaced entity's
    cluster, uniformly, head or tail with probability ½. Semantically close, hence hard,
    corruptions without a trained KGE model.

    Parameters
    ----------
    text_embeddings
        ``float[n_e, d]`` precomputed text embeddings; ``None`` encodes ``texts`` (default: the
        labels, ``_`` as spaces) with ``model``.
    clusters
        Number of clusters; ``None`` uses ``⌈√n_e⌉``.
    """

    name = "lemon"

    def __init__(self, text_embeddings: np.ndarray | None = None, *, texts: list[str] | None = None,
                 clusters: int | None = None, model: str = "sentence-transformers/all-MiniLM-L6-v2",
                 seed: int = 0) -> None:
        if clusters is not None and clusters < 1:
            raise ConfigError(f"clusters must be >= 1, got {clusters}")
        self.text_embeddings = text_embeddings
        self.texts = texts
        self.clusters = clusters
        self.model = model
        self.seed = seed

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "clusters": self.clusters, "model": self.model, "seed": self.seed}

    def fit(self, graph: Graph) -> Lemon:
        super().fit(graph)
        emb = self.text_embeddings
        if emb is None:
            texts = self.texts or [e.replace("_", " ") for e in graph.entity_labels]
            if len(texts) != graph.num_entities:
                raise ConfigError(f"lemon needs one text per entity ({graph.num_entities}), got {len(texts)}")
            from negmine.text.encoders.st import SentenceTransformerEncoder

            emb = SentenceTransformerEncoder(self.model).encode(texts, "document")
        emb = np.asarray(emb, dtype=np.float64)
        if emb.shape[0] != graph.num_entities:
            raise ConfigError(f"text embeddings have {emb.shape[0]} rows; expected {graph.num_entities}")
        k = self.clusters or int(np.ceil(np.sqrt(graph.num_entities)))
        self.labels_ = kmeans(_unit(emb), min(k, graph.num_entities), graph.entity_keys, self.seed)
        return self

    def within(self, triples: np.ndarray) -> np.ndarray:
        t = np.asarray(triples)
        same_h = self.labels_[None, :] == self.labels_[t[:, 0], None]
        same_t = self.labels_[None, :] == self.labels_[t[:, 2], None]
        return np.where(np.stack([same_h, same_t], axis=1), 0.0, -np.inf)


def kmeans(x: np.ndarray, k: int, keys: np.ndarray, seed: int, iters: int = 100) -> np.ndarray:
    """Cluster labels ``int64[n]`` of the rows of ``x`` (Lloyd's algorithm after k-means++
    seeding whose random choices are Gumbel draws keyed by ``keys``: order-free)."""
    n = len(x)
    g = gumbel(uniform(seed, np.arange(k, dtype=np.uint64), keys))  # [k, n]
    centres = [int(np.argmax(g[0]))]
    d2 = ((x - x[centres[0]]) ** 2).sum(1)
    for j in range(1, k):
        with np.errstate(divide="ignore"):
            c = int(np.argmax(np.log(d2) + g[j]))
        centres.append(c)
        d2 = np.minimum(d2, ((x - x[c]) ** 2).sum(1))
    mu = x[centres]
    labels = np.full(n, -1, dtype=np.int64)
    for _ in range(iters):
        dist = ((x[:, None, :] - mu[None, :, :]) ** 2).sum(-1)
        new = np.argmin(dist, axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
        for j in range(k):
            members = labels == j
            if members.any():
                mu[j] = x[members].mean(0)
    return labels
