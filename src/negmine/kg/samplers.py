"""Corruption samplers for knowledge-graph triples: which head or tail replaces the true one.

Three engines behind one call (:func:`corrupt`), all keyed by ``(seed, triple labels, ...)``
through negmine's splitmix64 hash (:func:`negmine.text.samplers.uniform`), so a triple's negatives do
not depend on batch size, on the order of the triples file or on the ids.

**Stream** (``uniform``, ``bernoulli``, ``typed``: O(1) per negative, as PyKEEN's samplers).
Each triple owns an endless stream of candidate draws; draw ``m`` is one 64-bit hash of
``(seed, triple, call, m)``: its high 32 bits pick the side (head with the sampler's
``p_head``), its low 32 bits an entity uniformly among the side's allowed entities other than the
true one (every entity, or the slot's observed entities for ``typed``). The negatives are the
first ``k`` draws of the stream that are neither a known triple (the filter) nor a repeat of an
earlier one: a rejected draw is *redrawn* (the next one of the stream), never dropped, so every
triple gets exactly ``k`` distinct filtered negatives — by construction sampling without
replacement from the stated distribution. The stream is read in vectorised blocks; which block
size does not change the result. A triple with at most ``4·k + 16`` allowed entities on its two
sides (tiny graphs, narrow ``typed`` slots), or whose first block of draws was mostly rejected
(an estimated ``≤ 8·k + 64`` allowed entities left), or whose stream is still short after
``64·k + 256`` draws (nearly every corruption a known triple), is completed exactly: its remaining allowed
candidates get the stream's probability ``p_side / |side|`` and are drawn by Gumbel-top-k (the
same distribution, without replacement); a shortfall (``-1`` rows,
reported, never padded) only when fewer than ``k`` allowed corruptions exist at all.

**Pool** (``hard`` on graphs with more entities than its ``pool``, and the live-model sampler of
:mod:`negmine.kg.live`): a pool of a few hundred distinct filtered stream draws per triple is
scored (cosine of entity embeddings, or the model being trained) and ``k`` are drawn from it by
Gumbel-top-k on ``score / temperature`` (sampling-importance-resampling, as NSCaching and
self-adversarial sampling approximate their softmax): never all entities.

**Exact** (``lemon``, ``hasa``, ``hard`` on small graphs): every candidate entity of both sides
gets a log-weight (``within``: ``float64[B, 2, n_e]``), the true entity and known triples are
removed, each side is normalised and weighted by ``p_head``, and ``k`` are drawn without
replacement by Gumbel-top-k (the first draw follows the stated distribution exactly).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from negmine.core.errors import ConfigError
from negmine.core.keys import (
    KG_FILL_SALT,
    KG_POOL_SALT,
    KG_RELATION_SALT,
    KG_SIDE_SALTS,
    KG_STREAM_SALT,
    gumbel,
    mix,
    string_keys,
    uniform,
    uniform_pairs,
)
from negmine.core.select import top_k
from negmine.kg.data import KGData, triple_keys
from negmine.kg.filters import KnownFilter, NoFilter

__all__ = [
    "SAMPLERS", "Bernoulli", "Corruptions", "Graph", "Hard", "KGSampler", "Lemon", "Typed", "Uniform",
    "corrupt", "make_sampler", "pool_corrupt", "stream_codes",
]

log = logging.getLogger(__name__)

SAMPLERS = ("uniform", "bernoulli", "typed", "hard", "lemon", "hasa")
_SIDE_SALT = KG_SIDE_SALTS
_CELLS = 1 << 21  # candidate cells per block (bounds memory: ~50 MB of float64 work arrays)
_POOL_CELLS = 1 << 18  # pool cells per block: the scored candidates' vectors stay in cache
_STREAM_SALT = KG_STREAM_SALT
_POOL_SALT = KG_POOL_SALT
_FILL_SALT = KG_FILL_SALT
_LOW32 = np.uint64(0xFFFFFFFF)
_TWO32 = float(1 << 32)


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
            return _corrupt_exact(self, graph, t, k, seed, known, draw)
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


def _call_keys(graph: Graph, triples: np.ndarray, draw: int) -> np.ndarray:
    """``uint64[B]``: the key of each triple for call ``draw`` (0: the plain triple hash)."""
    q = graph.triple_hash(triples)
    if draw:
        with np.errstate(over="ignore"):
            q = q ^ mix(np.array([draw], dtype=np.uint64))
    return q


def _triple_keys_of(graph: Graph, t: np.ndarray, side: np.ndarray, ent: np.ndarray) -> np.ndarray:
    """``int64`` filter keys of the corruptions ``(side, ent)`` ``[B, M]`` of triples ``t``."""
    n_e, n_r = graph.num_entities, graph.num_relations
    h = np.where(side == 0, ent, t[:, 0:1])
    tl = np.where(side == 1, ent, t[:, 2:3])
    return (h * n_r + t[:, 1:2]) * n_e + tl


def corrupt(sampler: KGSampler, graph: Graph, triples: np.ndarray, num_negatives: int, seed: int,
            known: KnownFilter | None = None, draw: int = 0) -> Corruptions:
    """``num_negatives`` distinct corruptions of each of ``triples`` (``int64[B, 3]``) — see the
    module docstring for the three engines. ``draw`` varies the noise between calls (PyKEEN
    batches)."""
    if num_negatives < 1:
        raise ConfigError(f"num_negatives must be >= 1, got {num_negatives}; pass --num-negatives 1 or more")
    known = known or NoFilter()
    t = np.asarray(triples, dtype=np.int64).reshape(-1, 3)
    own = getattr(sampler, "corrupt_batch", None)
    if own is not None:
        c: Corruptions = own(graph, t, num_negatives, seed, known, draw)
        return c
    if hasattr(sampler, "stream"):
        codes, filtered = stream_codes(sampler, graph, t, num_negatives, seed, known, draw)
        return _from_codes(t, codes, graph.num_entities, filtered)
    return _corrupt_exact(sampler, graph, t, num_negatives, seed, known, draw)


def _from_codes(t: np.ndarray, codes: np.ndarray, n_e: int, filtered: int) -> Corruptions:
    """Corruptions from candidate codes ``side · n_e + entity`` (``-1``: none)."""
    ok = codes >= 0
    side = np.where(ok, codes // max(n_e, 1), -1)
    ent = codes % max(n_e, 1)
    neg = np.repeat(t[:, None, :], codes.shape[1], axis=1)
    neg[:, :, 0] = np.where(side == 0, ent, neg[:, :, 0])
    neg[:, :, 2] = np.where(side == 1, ent, neg[:, :, 2])
    neg[~ok] = -1
    return Corruptions(neg, side.astype(np.int8), filtered)


def _first_occurrence(codes: np.ndarray) -> np.ndarray:
    """``bool[B, M]``: True where ``codes[i, j]`` does not occur in ``codes[i, :j]``."""
    order = np.argsort(codes, axis=1, kind="stable")
    srt = np.take_along_axis(codes, order, axis=1)
    first_sorted = np.ones(codes.shape, dtype=bool)
    first_sorted[:, 1:] = srt[:, 1:] != srt[:, :-1]
    out = np.empty(codes.shape, dtype=bool)
    np.put_along_axis(out, order, first_sorted, axis=1)
    return out


def stream_codes(sampler: Any, graph: Graph, t: np.ndarray, k: int, seed: int, known: KnownFilter,
                 draw: int = 0, exclude: np.ndarray | None = None, salt: np.uint64 = _STREAM_SALT
                 ) -> tuple[np.ndarray, int]:
    """The stream engine: ``int64[B, k]`` codes ``side · n_e + entity`` of the first ``k``
    distinct allowed draws of each triple's stream (``-1``: shortfall), and the number of draws
    the filter rejected (redrawn). ``exclude`` (``int64[B, m]`` codes, ``-1`` padding) are taken
    as already drawn (never repeated)."""
    n_e = graph.num_entities
    m0 = 0 if exclude is None else exclude.shape[1]
    acc = np.full((len(t), m0 + k), -1, dtype=np.int64)
    if m0:
        acc[:, :m0] = exclude
    got = np.zeros(len(t), dtype=np.int64)
    q = _call_keys(graph, t, draw)
    with np.errstate(over="ignore"):
        base = mix(mix(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64)) ^ q)
    start, limit = 0, 64 * k + 256
    lo, hi = sampler.segments(t)
    small = (hi - lo).sum(axis=1) <= 4 * k + 16  # few allowed entities (tiny graphs, narrow slots): exact
    rows = np.flatnonzero(~small)
    support = (hi - lo).sum(axis=1)
    width = k + k // 4 + 2
    filtered = 0
    early = np.zeros(0, dtype=np.int64)
    while len(rows) and start < limit:
        with np.errstate(over="ignore"):
            z = mix(base[rows, None] ^ mix(np.arange(start, start + width, dtype=np.uint64) ^ salt)[None, :])
        tr = t[rows]
        side, ent, ok = sampler.stream(tr, z)
        hit = known.contains(_triple_keys_of(graph, tr, side, ent)) & ok
        filtered += int(hit.sum())
        code = np.where(ok & ~hit, side * n_e + ent, -1)
        fresh = _first_occurrence(np.concatenate([acc[rows], code], axis=1))[:, m0 + k:] & (code >= 0)
        need = k - got[rows]
        rank = np.cumsum(fresh, axis=1)
        take = fresh & (rank <= need[:, None])
        r_i, c_i = np.nonzero(take)
        acc[rows[r_i], m0 + got[rows][r_i] + rank[r_i, c_i] - 1] = code[r_i, c_i]
        got[rows] += take.sum(axis=1)
        if start == 0:  # few fresh draws in the first block: few allowed candidates, enumerate them
            few = fresh.mean(axis=1) * support[rows] <= 8 * k + 64
            early = rows[few & (got[rows] < k)]
            rows = rows[~few]
        start += width
        rows = rows[got[rows] < k]
        width = min(2 * width, limit - start)
    rows = np.union1d(np.union1d(rows, early), np.flatnonzero(small))
    if len(rows):  # few allowed candidates, or nearly all known: complete exactly from the remaining ones
        extra, f2 = _complete(sampler, graph, t[rows], acc[rows], k - got[rows], seed, known, draw)
        filtered += f2
        r_i, c_i = np.nonzero(extra >= 0)
        acc[rows[r_i], m0 + got[rows][r_i] + c_i] = extra[r_i, c_i]
    return acc[:, m0:], filtered


def _complete(sampler: Any, graph: Graph, t: np.ndarray, taken: np.ndarray, need: np.ndarray, seed: int,
              known: KnownFilter, draw: int) -> tuple[np.ndarray, int]:
    """Finish the streams of triples ``t`` exactly: every allowed candidate not ``taken``
    (codes, ``-1`` padding) gets the stream's probability ``p_side / |side's allowed|`` and
    ``need[i]`` are drawn without replacement by Gumbel-top-k. ``int64[B, max(need)]`` codes.

    The filtered candidates of a side depend only on ``(relation, kept entity)``: they are
    enumerated once per such group (a dense block of facts shares one), then handed to its rows."""
    n_e, n_r = graph.num_entities, graph.num_relations
    width = int(need.max()) if len(need) else 0
    out = np.full((len(t), width), -1, dtype=np.int64)
    if not width:
        return out, 0
    lo, hi = sampler.segments(t)
    sizes = sampler.side_sizes(t)
    p = np.clip(sampler.head_probability(t), 0.0, 1.0)
    filtered = 0
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for s in (0, 1):
        kept = t[:, 2] if s == 0 else t[:, 0]
        true = t[:, 0] if s == 0 else t[:, 2]
        _, first, inv = np.unique(t[:, 1] * n_e + kept, return_index=True, return_inverse=True)
        inv = inv.ravel()
        glo, length = lo[first, s], hi[first, s] - lo[first, s]
        bounds = np.concatenate([[0], np.cumsum(length)])
        g_ent: list[np.ndarray] = []
        g_id: list[np.ndarray] = []
        a = 0
        while a < len(first):  # group supports in blocks of about _CELLS cells
            b = max(a + 1, int(np.searchsorted(bounds, bounds[a] + _CELLS, side="right")) - 1)
            L = length[a:b]
            g = np.repeat(np.arange(a, b), L)
            off = np.arange(int(L.sum())) - np.repeat(np.cumsum(L) - L, L) + np.repeat(glo[a:b], L)
            ent = sampler.support_entities(off)
            rel, kp = t[first[g], 1], kept[first[g]]
            keys = (ent * n_r + rel) * n_e + kp if s == 0 else (kp * n_r + rel) * n_e + ent
            hit = known.contains(keys)
            filtered += int(hit.sum())
            g_ent.append(ent[~hit])
            g_id.append(g[~hit])
            a = b
        ents, gids = np.concatenate(g_ent), np.concatenate(g_id)
        gptr = np.searchsorted(gids, np.arange(len(first) + 1))
        cnt = gptr[inv + 1] - gptr[inv]
        row = np.repeat(np.arange(len(t)), cnt)
        ent = ents[np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt) + np.repeat(gptr[inv], cnt)]
        keep = ent != true[row]
        parts.append((row[keep], np.full(int(keep.sum()), s, dtype=np.int64), ent[keep]))
    row = np.concatenate([x[0] for x in parts])
    side = np.concatenate([x[1] for x in parts])
    code = side * n_e + np.concatenate([x[2] for x in parts])
    tr_, tc_ = np.nonzero(taken >= 0)
    taken_keys = np.sort(tr_ * (2 * n_e) + taken[tr_, tc_])
    ck = row * (2 * n_e) + code
    if len(taken_keys):
        pos = np.minimum(np.searchsorted(taken_keys, ck), len(taken_keys) - 1)
        fresh = taken_keys[pos] != ck
        row, side, code = row[fresh], side[fresh], code[fresh]
    pside = np.stack([p, 1.0 - p], axis=1)
    with np.errstate(divide="ignore"):
        logw = np.log(pside[row, side]) - np.log(np.maximum(sizes[row, side], 1))
    q = _call_keys(graph, t, draw)
    prio = logw + _gumbel_keyed(seed, q[row], code)
    order = np.lexsort((code, -prio, row))
    row_o, prio_o, code_o = row[order], prio[order], code[order]
    first_of_row = np.searchsorted(row_o, np.arange(len(t)))
    rank = np.arange(len(order)) - first_of_row[row_o]
    pick = (rank < need[row_o]) & (prio_o > -np.inf)
    out[row_o[pick], rank[pick]] = code_o[pick]
    return out, filtered


def _gumbel_keyed(seed: int, q: np.ndarray, code: np.ndarray) -> np.ndarray:
    """Gumbel noise ``float64[n]`` from ``(seed, call key, candidate code)`` (elementwise)."""
    return gumbel(uniform_pairs(seed, q ^ _POOL_SALT, code))


def allowed_by(base: Any, t: np.ndarray, side: np.ndarray, ent: np.ndarray) -> np.ndarray:
    """``bool[B, M]``: whether the base sampler could draw ``(side, ent)`` for each triple (its
    typed slot, if any; never the true entity)."""
    ok = ent != np.where(side == 0, t[:, 0:1], t[:, 2:3])
    pools = getattr(base, "pools_", None)
    if pools is not None:
        ok &= pools[t[:, 1:2], side, ent]
    return np.asarray(ok)


def pool_corrupt(weights: Any, base: Any, graph: Graph, t: np.ndarray, k: int, seed: int, known: KnownFilter,
                 draw: int, pool: int, extra: np.ndarray | None = None,
                 on_scored: Any = None) -> Corruptions:
    """The pool engine: per triple, ``pool`` distinct filtered draws of the ``base`` stream
    sampler (plus ``extra`` candidate codes ``int64[B, C]``, e.g. a cache, checked against the
    filter and the base sampler's slots), log-weighted by ``weights(triples, side, ent)``
    (``-inf``: refused by a guard), and ``k`` drawn by Gumbel-top-k keyed by ``(seed, triple,
    call, candidate)``. Rows with fewer than ``k`` weighted candidates are filled with further
    filtered draws of the base stream that are not in the pool (never a refused candidate):
    exactly ``k`` per triple unless fewer than ``k`` allowed corruptions exist.
    ``on_scored(triples, codes, logw)`` sees every scored pool (the live sampler's cache)."""
    n_e = graph.num_entities
    out = np.full((len(t), k), -1, dtype=np.int64)
    filtered = 0
    width = pool + (0 if extra is None else extra.shape[1])
    step = max(1, _POOL_CELLS // max(1, width))
    for a in range(0, len(t), step):
        b = t[a:a + step]
        codes, f = stream_codes(base, graph, b, pool, seed, known, draw, salt=_POOL_SALT)
        filtered += f
        if extra is not None:
            ex = extra[a:a + step]
            es, ee = ex // n_e, ex % n_e
            ok = (ex >= 0) & allowed_by(base, b, es, ee)
            ok &= ~known.contains(_triple_keys_of(graph, b, es, ee))
            codes = np.concatenate([codes, np.where(ok, ex, -1)], axis=1)
            codes = np.where(_first_occurrence(codes) & (codes >= 0), codes, -1)
        valid = codes >= 0
        side, ent = np.where(valid, codes // n_e, 0), np.where(valid, codes % n_e, 0)
        logw = np.where(valid, weights(b, side, ent), -np.inf)
        if on_scored is not None:
            on_scored(b, codes, logw)
        q = _call_keys(graph, b, draw)
        prio = logw + _gumbel_keyed(seed, np.broadcast_to(q[:, None], codes.shape), np.maximum(codes, 0))
        order = top_k(prio, min(k, prio.shape[1]))
        chosen = np.take_along_axis(prio, order, axis=1) > -np.inf
        picked = np.where(chosen, np.take_along_axis(codes, order, axis=1), -1)
        out[a:a + step, :picked.shape[1]] = picked
        got = chosen.sum(axis=1)
        short = np.flatnonzero(got < k)
        if len(short):  # fill with unscored draws outside the pool (refused candidates stay out)
            fill, f = stream_codes(base, graph, b[short], k, seed, known, draw, exclude=codes[short],
                                   salt=_FILL_SALT)
            filtered += f
            r_i, c_i = np.nonzero(np.arange(k)[None, :] < (k - got[short])[:, None])
            vals = fill[r_i, c_i]
            out[a + short[r_i], got[short][r_i] + c_i] = vals
    # a fill may be short too: keep the -1 cells at the end of each row
    out = np.take_along_axis(out, np.argsort(out < 0, axis=1, kind="stable"), axis=1)
    return _from_codes(t, out, n_e, filtered)


def _corrupt_exact(sampler: KGSampler, graph: Graph, t: np.ndarray, num_negatives: int, seed: int,
                   known: KnownFilter, draw: int = 0, exclude: np.ndarray | None = None) -> Corruptions:
    """The exact engine: weigh every entity of both sides (see the module docstring).
    ``exclude`` (``int64[B, m]`` codes ``side · n_e + entity``, ``-1`` padding) are never drawn."""
    n_e = graph.num_entities
    cand_keys = np.concatenate([graph.entity_keys ^ _SIDE_SALT[0], graph.entity_keys ^ _SIDE_SALT[1]])
    out = np.full((len(t), num_negatives, 3), -1, dtype=np.int64)
    side = np.full((len(t), num_negatives), -1, dtype=np.int8)
    filtered = 0
    step = max(1, _CELLS // (2 * n_e))
    for a in range(0, len(t), step):
        b = t[a:a + step]
        w = np.array(sampler.within(b), dtype=np.float64)
        w[np.arange(len(b)), 0, b[:, 0]] = -np.inf
        w[np.arange(len(b)), 1, b[:, 2]] = -np.inf
        p = np.clip(sampler.head_probability(b), 0.0, 1.0)
        with np.errstate(divide="ignore"):
            side_log = np.stack([np.log(p), np.log1p(-p)], axis=1)[:, :, None]
        w = _log_softmax(w) + side_log
        ent = np.broadcast_to(np.arange(n_e), (len(b), 2, n_e))
        sides = np.broadcast_to(np.arange(2)[None, :, None], (len(b), 2, n_e))
        keys = _triple_keys_of(graph, b, sides.reshape(len(b), -1), ent.reshape(len(b), -1)).reshape(w.shape)
        hit = known.contains(keys)
        filtered += int((hit & np.isfinite(w)).sum())
        w = np.where(hit, -np.inf, w).reshape(len(b), 2 * n_e)
        if exclude is not None:
            ex = exclude[a:a + step]
            r_i, c_i = np.nonzero(ex >= 0)
            w[r_i, ex[r_i, c_i]] = -np.inf
        q = _call_keys(graph, b, draw)
        prio = w - np.log(-np.log(uniform(seed, q, cand_keys)))
        order = top_k(prio, num_negatives)
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

