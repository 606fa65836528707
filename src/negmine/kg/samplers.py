"""Corruption samplers for knowledge-graph triples: which head or tail replaces the true one.

Every sampler states, for a batch of triples, a log-weight for each candidate entity on each side
(``within``: ``float64[B, 2, n_e]``, side 0 = replace the head, side 1 = replace the tail) and the
probability of corrupting the head (``head_probability``: ``float64[B]``). The engine
(:func:`corrupt`) then, vectorised over the batch:

1. removes the true entity itself from each side and normalises each side (log-softmax), adding
   ``log p_head`` / ``log (1 − p_head)``;
2. removes every candidate whose corrupted triple the known-triple filter holds (so a known true
   triple is never emitted: not sampled-then-dropped, so no shortfall unless the pool is empty);
3. draws ``num_negatives`` distinct corruptions without replacement by Gumbel-top-k, with the
   Gumbel noise derived from a hash of ``(seed, triple labels, candidate label, side, draw)``
   (:func:`negmine.samplers.uniform` over :func:`negmine.samplers.string_keys` of the labels):
   a triple's negatives do not depend on batch size, on the order of the triples file or on the
   ids; the first draw follows the stated distribution exactly.

Fewer candidates than asked leaves ``-1`` rows (a shortfall, reported, never padded).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from negmine.errors import ConfigError
from negmine.kg.data import KGData, triple_keys
from negmine.kg.filters import KnownFilter, NoFilter
from negmine.samplers import _mix, string_keys, uniform

__all__ = [
    "SAMPLERS", "Bernoulli", "Corruptions", "Graph", "Hard", "KGSampler", "Lemon", "Typed", "Uniform",
    "corrupt", "make_sampler",
]

log = logging.getLogger(__name__)

SAMPLERS = ("uniform", "bernoulli", "typed", "hard", "lemon", "hasa")
_SIDE_SALT = (np.uint64(0x243F6A8885A308D3), np.uint64(0x13198A2E03707344))
_CELLS = 1 << 21  # candidate cells per block (bounds memory: ~50 MB of float64 work arrays)


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
            ek = _mix(np.arange(num_entities, dtype=np.uint64))
            rk = _mix(np.arange(num_relations, dtype=np.uint64) ^ np.uint64(0xA5A5A5A5))
        return cls(num_entities, num_relations, np.asarray(train, dtype=np.int64), ek, rk)

    def triple_hash(self, triples: np.ndarray) -> np.ndarray:
        t = np.asarray(triples, dtype=np.int64)
        with np.errstate(over="ignore"):
            return _mix(_mix(_mix(self.entity_keys[t[:, 0]]) ^ self.relation_keys[t[:, 1]]) ^ self.entity_keys[t[:, 2]])


class KGSampler(Protocol):
    name: str

    def config(self) -> dict[str, Any]: ...

    def fit(self, graph: Graph) -> KGSampler: ...

    def head_probability(self, triples: np.ndarray) -> np.ndarray: ...

    def within(self, triples: np.ndarray) -> np.ndarray: ...


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


class Uniform(_Base):
    """Head or tail with probability ½, then any entity uniformly (Bordes et al. 2013, TransE;
    PyKEEN's ``BasicNegativeSampler``). The easiest negatives; rarely false ones on sparse graphs."""

    name = "uniform"


class Bernoulli(_Base):
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
        heads = np.bincount(np.unique(tr[:, [1, 0]], axis=0)[:, 0], minlength=n_r)
        tails = np.bincount(np.unique(tr[:, [1, 2]], axis=0)[:, 0], minlength=n_r)
        with np.errstate(invalid="ignore", divide="ignore"):
            tph = count / heads
            hpt = count / tails
            p = tph / (tph + hpt)
        self.p_head_ = np.where(np.isfinite(p), p, 0.5)
        return self

    def head_probability(self, triples: np.ndarray) -> np.ndarray:
        return self.p_head_[np.asarray(triples)[:, 1]]


class Typed(_Base):
    """Only entities observed in that slot of that relation in training (PyKEEN's
    ``PseudoTypedNegativeSampler``, Kotnis & Nastase 2018), head or tail with probability ½.
    Type-consistent, hence harder than uniform, and never outside the slot's observed entities.

    Attributes
    ----------
    pools_ : bool[n_r, 2, n_e]
        ``pools_[r, 0]`` the heads seen with ``r``, ``pools_[r, 1]`` its tails.
    """

    name = "typed"

    def fit(self, graph: Graph) -> Typed:
        super().fit(graph)
        tr = graph.train
        pools = np.zeros((graph.num_relations, 2, graph.num_entities), dtype=bool)
        pools[tr[:, 1], 0, tr[:, 0]] = True
        pools[tr[:, 1], 1, tr[:, 2]] = True
        self.pools_ = pools
        return self

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
    """

    name = "hard"

    def __init__(self, embeddings: np.ndarray | None = None, temperature: float = 0.1) -> None:
        if not temperature > 0:
            raise ConfigError(f"temperature must be > 0, got {temperature}")
        self.embeddings = embeddings
        self.temperature = float(temperature)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "temperature": self.temperature}

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
        u = _unit(e)
        self.sim_ = u @ u.T
        return self

    def within(self, triples: np.ndarray) -> np.ndarray:
        t = np.asarray(triples)
        return np.stack([self.sim_[t[:, 0]], self.sim_[t[:, 2]]], axis=1) / self.temperature


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
            from negmine.encoders.st import SentenceTransformerEncoder

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
    g = -np.log(-np.log(uniform(seed, np.arange(k, dtype=np.uint64), keys)))  # [k, n]
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


@dataclass
class Corruptions:
    """``negatives int64[B, N, 3]`` (``-1`` rows: shortfall), ``side int8[B, N]`` (0 head,
    1 tail, -1 none), and ``filtered``: candidate cells with weight that the filter removed."""

    negatives: np.ndarray
    side: np.ndarray
    filtered: int

    @property
    def ok(self) -> np.ndarray:
        return self.side >= 0


def _log_softmax(x: np.ndarray) -> np.ndarray:
    m = np.max(x, axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    total = np.sum(np.exp(x - m), axis=-1, keepdims=True)
    return x - m - np.log(np.where(total > 0, total, 1.0))  # an empty side stays all -inf


def _top(prio: np.ndarray, k: int) -> np.ndarray:
    """Columns of the ``k`` highest priorities of each row, highest first (ties: lower column)."""
    n = prio.shape[1]
    part = np.argpartition(-prio, k - 1, axis=1)[:, :k] if k < n else np.broadcast_to(np.arange(n), prio.shape)
    sub = np.take_along_axis(prio, part, axis=1)
    return np.take_along_axis(part, np.lexsort((part, -sub), axis=1), axis=1)


def corrupt(sampler: KGSampler, graph: Graph, triples: np.ndarray, num_negatives: int, seed: int,
            known: KnownFilter | None = None, draw: int = 0) -> Corruptions:
    """``num_negatives`` distinct corruptions of each of ``triples`` (``int64[B, 3]``) — see the
    module docstring. ``draw`` varies the noise between calls (PyKEEN batches)."""
    if num_negatives < 1:
        raise ConfigError(f"num_negatives must be >= 1, got {num_negatives}; pass --num-negatives 1 or more")
    known = known or NoFilter()
    t = np.asarray(triples, dtype=np.int64).reshape(-1, 3)
    n_e = graph.num_entities
    cand_keys = np.concatenate([graph.entity_keys ^ _SIDE_SALT[0], graph.entity_keys ^ _SIDE_SALT[1]])
    out = np.full((len(t), num_negatives, 3), -1, dtype=np.int64)
    side = np.full((len(t), num_negatives), -1, dtype=np.int8)
    filtered = 0
    step = max(1, _CELLS // (2 * n_e))
    ent = np.arange(n_e)
    for a in range(0, len(t), step):
        b = t[a:a + step]
        w = np.array(sampler.within(b), dtype=np.float64)
        w[np.arange(len(b)), 0, b[:, 0]] = -np.inf
        w[np.arange(len(b)), 1, b[:, 2]] = -np.inf
        p = np.clip(sampler.head_probability(b), 0.0, 1.0)
        with np.errstate(divide="ignore"):
            side_log = np.stack([np.log(p), np.log1p(-p)], axis=1)[:, :, None]
        w = _log_softmax(w) + side_log
        heads = np.where(np.arange(2)[None, :, None] == 0, ent[None, None, :], b[:, None, None, 0])
        tails = np.where(np.arange(2)[None, :, None] == 1, ent[None, None, :], b[:, None, None, 2])
        keys = (heads * graph.num_relations + b[:, None, None, 1]) * n_e + tails
        hit = known.contains(keys)
        filtered += int((hit & np.isfinite(w)).sum())
        w = np.where(hit, -np.inf, w).reshape(len(b), 2 * n_e)
        q = graph.triple_hash(b)
        if draw:
            with np.errstate(over="ignore"):
                q = q ^ _mix(np.array([draw], dtype=np.uint64))
        prio = w - np.log(-np.log(uniform(seed, q, cand_keys)))
        order = _top(prio, num_negatives)
        chosen = np.take_along_axis(prio, order, axis=1) > -np.inf
        s = order // n_e
        e = order % n_e
        neg = np.repeat(b[:, None, :], order.shape[1], axis=1)
        neg[:, :, 0] = np.where(s == 0, e, neg[:, :, 0])
        neg[:, :, 2] = np.where(s == 1, e, neg[:, :, 2])
        k = order.shape[1]
        out[a:a + step, :k] = np.where(chosen[:, :, None], neg, -1)
        side[a:a + step, :k] = np.where(chosen, s, -1)
    return Corruptions(out, side, filtered)


def known_keys(data: KGData, splits: list[str] | None = None) -> np.ndarray:
    """``int64`` keys of the known triples of ``splits`` (default: every split)."""
    return triple_keys(data.known(splits), data.num_entities, data.num_relations)


def make_sampler(name: str, **options: Any) -> KGSampler:
    """A sampler by name with its options (``embeddings``, ``temperature``, ``strength``, ...)."""
    from negmine.kg.hasa import HaSa

    classes: dict[str, Any] = {"uniform": Uniform, "bernoulli": Bernoulli, "typed": Typed, "hard": Hard,
                               "lemon": Lemon, "hasa": HaSa}
    if name not in classes:
        raise ConfigError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")
    try:
        sampler: KGSampler = classes[name](**options)
    except TypeError as exc:
        raise ConfigError(f"sampler {name!r}: {exc}") from None
    return sampler

