"""Hard negatives from the model being trained, with a guard against false negatives.

:class:`LiveHard` is the sampler behind ``negmine.kg.PyKEENSampler(model=..., sampler="hard")``.
For each positive ``(h, r, t)`` of a batch:

1. **Pool** (never all entities): ``pool`` distinct draws of a cheap stream sampler (the
   *base*), each already past the known-triple filter (rejected draws are redrawn), plus the
   ``cache`` entries of the replaced entity (NSCaching, Zhang et al. 2019: the candidates that
   scored highest the last time that entity was replaced on that side).
2. **Score** the pool with the model being trained (``model.score_hrt``, no gradient), or with
   a frozen copy refreshed every ``refresh`` epochs; log-weight ``score / temperature`` (as
   self-adversarial sampling, Sun et al. 2019, weighs its negatives).
3. **Guard** against false negatives, with what the data knows:

   - ``filter``: never a known triple (the training triples plus any ``known_triples``; always on);
   - ``cardinality``: the side follows the relation's Bernoulli statistics (Wang et al. 2014),
     so a 1-to-N relation has its head replaced, where a corruption is rarely true;
   - ``type``: candidates only among the entities seen in that slot of that relation (the base
     stream is ``typed``), so no type-violating "easy" candidate and no pool wasted on them;
   - ``structure`` (graphs small enough for HaSa's table, :mod:`negmine.kg.hasa`): the
     structure penalty of :class:`~negmine.kg.hasa.HaSa` added to the log-weight;
   - ``margin``: a candidate the model scores above ``score(positive) − margin`` is refused
     (the text pipeline's margin below the positive): the most plausible corruptions are the
     likeliest true facts.

4. **Draw** ``k`` by Gumbel-top-k keyed by ``(seed, triple, call, candidate)``; a triple left
   with fewer than ``k`` admissible candidates is filled with further filtered base draws
   outside the pool (never a refused one), so every triple still gets exactly ``k``.

Determinism: the draws are a function of ``(seed, triple labels, call number, model weights,
cache)``: the same weights, seed and cache give the same draws; the cache is updated after each
call from the scored pools (rows later in the batch win, a fixed order).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from negmine.core.errors import ConfigError
from negmine.core.optional import require
from negmine.core.select import top_k
from negmine.kg.engines import Corruptions, corrupt_exact, pool_corrupt
from negmine.kg.filters import KnownFilter
from negmine.kg.graph import Graph
from negmine.kg.samplers import Bernoulli, Typed, Uniform

__all__ = ["GUARDS", "LiveHard", "ModelScorer"]

GUARDS = ("cardinality", "type", "structure", "margin")


class ModelScorer:
    """Scores ``int64[n, 3]`` triples with a PyKEEN model (higher = more plausible), without
    gradients, keeping the model's train/eval mode.

    Parameters
    ----------
    model
        A PyKEEN ``Model`` (anything with ``score_hrt(LongTensor[n, 3]) -> FloatTensor[n, 1]``).
    refresh
        ``"batch"``: score with the live weights on every call; an ``int`` ``N``: score with a
        frozen copy of the model taken at the first call and again every ``N`` epochs
        (:meth:`tick` counts the epochs).
    """

    def __init__(self, model: Any, refresh: str | int = "batch", batch_size: int = 1 << 16) -> None:
        if refresh != "batch" and not (isinstance(refresh, int) and refresh >= 1):
            raise ConfigError(f"refresh must be 'batch' or a number of epochs >= 1, got {refresh!r}")
        self.model = model
        self.refresh = refresh
        self.batch_size = batch_size
        self.frozen_: Any = None
        self.epoch_ = 0.0
        self.refreshed_at_: float | None = None

    def tick(self, epochs: float) -> None:
        """Advance the epoch counter (fractions: a batch is ``batch / n_train`` of an epoch)."""
        self.epoch_ += epochs

    def _scoring_model(self) -> Any:
        if self.refresh == "batch":
            return self.model
        assert isinstance(self.refresh, int)
        if self.refreshed_at_ is None or self.epoch_ - self.refreshed_at_ >= self.refresh - 1e-9:
            self.frozen_ = copy.deepcopy(self.model)
            self.refreshed_at_ = float(np.floor(self.epoch_ + 1e-9))
        return self.frozen_

    def __call__(self, triples: np.ndarray) -> np.ndarray:
        torch = require("torch")
        m = self._scoring_model()
        t = np.asarray(triples, dtype=np.int64).reshape(-1, 3)
        out = np.empty(len(t), dtype=np.float64)
        device = getattr(m, "device", "cpu")
        with torch.no_grad():
            for a in range(0, len(t), self.batch_size):
                hrt = torch.as_tensor(t[a:a + self.batch_size], device=device)
                out[a:a + self.batch_size] = m.score_hrt(hrt).view(-1).double().cpu().numpy()
        return out


class LiveHard:
    """Hard negatives scored by a live model, behind a false-negative guard (module docstring).

    Parameters
    ----------
    scorer
        ``scorer(int64[n, 3]) -> float64[n]`` (a :class:`ModelScorer`).
    temperature
        Log-weight ``score / temperature`` (model score units; TransE scores are negative
        distances).
    pool
        Base stream draws scored per triple (a few hundred; never all entities).
    cache
        Entries kept per (side, entity) from the last scored pools (NSCaching); 0: none.
    guard
        Any of ``cardinality``, ``type``, ``structure``, ``margin`` (the known-triple filter is
        always on).
    margin
        For ``margin``: candidates scoring above ``score(positive) − margin`` are refused.
    strength
        For ``structure``: HaSa's penalty strength.
    """

    name = "live-hard"

    def __init__(self, scorer: Any, *, temperature: float = 1.0, pool: int = 128, cache: int = 16,
                 guard: tuple[str, ...] | list[str] = ("cardinality", "margin"), margin: float = 0.0,
                 strength: float = 1.0) -> None:
        if not temperature > 0:
            raise ConfigError(f"temperature must be > 0, got {temperature}")
        if pool < 1 or cache < 0:
            raise ConfigError(f"pool must be >= 1 and cache >= 0, got pool={pool}, cache={cache}")
        unknown = [g for g in guard if g not in GUARDS]
        if unknown:
            raise ConfigError(f"unknown guard {unknown[0]!r}; choose among {', '.join(GUARDS)}")
        if not np.isfinite(margin):
            raise ConfigError(f"margin must be finite, got {margin}")
        self.scorer = scorer
        self.temperature = float(temperature)
        self.pool = int(pool)
        self.cache = int(cache)
        self.guard = tuple(g for g in GUARDS if g in guard)
        self.margin = float(margin)
        self.strength = float(strength)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "temperature": self.temperature, "pool": self.pool, "cache": self.cache,
                "guard": list(self.guard), "margin": self.margin if "margin" in self.guard else None,
                "refresh": getattr(self.scorer, "refresh", None)}

    def fit(self, graph: Graph) -> LiveHard:
        self.graph_ = graph
        card, typed = "cardinality" in self.guard, "type" in self.guard
        base: Any = Typed(sides="bernoulli" if card else "half") if typed else (Bernoulli() if card else Uniform())
        self.base_ = base.fit(graph)
        self.penalty_: Any = None
        if "structure" in self.guard:
            from negmine.kg.hasa import HaSa

            h = HaSa(np.ones((graph.num_entities, 1)), strength=self.strength).fit(graph)
            self.features_, self.penalty_ = h.features_, h.penalty_
        self.cache_ = np.full((2, graph.num_entities, self.cache), -1, dtype=np.int64)
        self.last_: dict[str, float] = {}
        return self

    # the engine's protocol (the exact engine is never used: every call goes through corrupt_batch)
    def head_probability(self, triples: np.ndarray) -> np.ndarray:
        return np.asarray(self.base_.head_probability(triples))

    def within(self, triples: np.ndarray) -> np.ndarray:
        return np.asarray(self.base_.within(triples))

    def _weights(self, triples: np.ndarray, side: np.ndarray, ent: np.ndarray) -> np.ndarray:
        t = np.asarray(triples, dtype=np.int64)
        head = np.where(side == 0, ent, t[:, 0:1])
        tail = np.where(side == 1, ent, t[:, 2:3])
        cand = np.stack([head, np.broadcast_to(t[:, 1:2], head.shape), tail], axis=-1).reshape(-1, 3)
        scores = self.scorer(np.concatenate([t, cand])).astype(np.float64)
        pos, neg = scores[:len(t)], scores[len(t):].reshape(side.shape)
        logw = neg / self.temperature
        refused = np.zeros(side.shape, dtype=bool)
        if "margin" in self.guard:
            refused = neg > pos[:, None] - self.margin
        if self.penalty_ is not None:
            logw = logw + self.penalty_[self.features_[t[:, 1:2], head, tail]]
        self.last_["scored"] += float(side.size)
        self.last_["refused_margin"] += float(refused.sum())
        return np.where(refused, -np.inf, logw)

    def _update_cache(self, triples: np.ndarray, codes: np.ndarray, logw: np.ndarray) -> None:
        if not self.cache:
            return
        n_e = self.graph_.num_entities
        for s in (0, 1):
            w = np.where((codes >= 0) & (codes // n_e == s), logw, -np.inf)
            order = top_k(w, min(self.cache, w.shape[1]))
            top = np.take_along_axis(codes, order, axis=1) % n_e
            top = np.where(np.take_along_axis(w, order, axis=1) > -np.inf, top, -1)
            replaced = triples[:, 0 if s == 0 else 2]
            # the last row replacing an entity wins (a fixed order)
            last = len(replaced) - 1 - np.unique(replaced[::-1], return_index=True)[1]
            self.cache_[s, replaced[last], :top.shape[1]] = top[last]
            self.cache_[s, replaced[last], top.shape[1]:] = -1

    def _cached(self, triples: np.ndarray) -> np.ndarray | None:
        if not self.cache:
            return None
        n_e = self.graph_.num_entities
        h = self.cache_[0, triples[:, 0]]
        t = self.cache_[1, triples[:, 2]]
        return np.concatenate([np.where(h >= 0, h, -1), np.where(t >= 0, n_e + t, -1)], axis=1)

    def corrupt_batch(self, graph: Graph, t: np.ndarray, k: int, seed: int, known: KnownFilter,
                      draw: int) -> Corruptions:
        if graph is not self.graph_:
            raise ConfigError("this live sampler was fitted on another graph; fit it on the graph you corrupt")
        self.last_ = {"scored": 0.0, "refused_margin": 0.0}  # counts of this call, for reports and tests
        if graph.num_entities < 2:
            return corrupt_exact(self.base_, graph, t, k, seed, known, draw)
        return pool_corrupt(self._weights, self.base_, graph, t, k, seed, known, draw, self.pool,
                            extra=self._cached(t), on_scored=self._update_cache)
