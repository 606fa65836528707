"""Negative samplers for implicit feedback: for each training ``(user, positive item)``, items the
user is not known to like.

Every sampler draws through the :class:`~negmine.rec.context.Context` (keyed, position-free draws
that never return an excluded item), so the output does not depend on the order of the
interactions, on chunking or on other users. Negatives are drawn with replacement (as RecBole,
word2vec and implicit do) from a proposal distribution; the model-based samplers pick among
uniform candidates with a scorer. :func:`make_sampler` builds one by name through the registry
(:data:`negmine.rec.registry.SAMPLERS`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from negmine.core.errors import ConfigError
from negmine.core.keys import REC_SCORE_STREAM, gumbel, uniform
from negmine.rec.context import Context
from negmine.rec.options import check, check_mix
from negmine.rec.registry import SAMPLERS as REGISTRY
from negmine.rec.scorers import Scorer

__all__ = ["DNS", "SAMPLERS", "Context", "LiveDNS", "Mixed", "Popularity", "Robust", "Sampler", "Uniform",
           "make_sampler"]


class Sampler(Protocol):
    name: str
    needs_scorer: bool

    def config(self) -> dict[str, Any]: ...

    def sample(self, ctx: Context, users: np.ndarray, pair_keys: np.ndarray, num_negatives: int,
               stream: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """``(items int64[n, num_negatives], scores float32[n, num_negatives])``; scores are the
        scorer's (``NaN`` without one), ``-1``/``-inf`` for a shortfall."""
        ...


def _scored(ctx: Context, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    if ctx.scorer is None:
        return np.full(items.shape, np.nan, np.float32)
    return ctx.scores(users, items)


class Uniform:
    """Every allowed item equally likely (RecBole ``distribution: uniform``; BPR's sampler).

    Examples
    --------
    >>> from negmine.rec.data import from_arrays, split_interactions
    >>> data = split_interactions(from_arrays([1, 1, 2], [10, 11, 12], [5, 5, 5], [1, 2, 3]), "time", 0)
    >>> items, _ = Uniform().sample(Context(data, 0), np.array([0]), np.array([7], np.uint64), 3)
    >>> sorted(set(items[0].tolist()))  # user 1 likes items 10, 11 (rows 0, 1): only row 2 is left
    [2]
    """

    name = "uniform"
    needs_scorer = False

    def config(self) -> dict[str, Any]:
        return {"name": self.name}

    def sample(self, ctx: Context, users: np.ndarray, pair_keys: np.ndarray, num_negatives: int,
               stream: int = 0) -> tuple[np.ndarray, np.ndarray]:
        items = ctx.draw(users, pair_keys, num_negatives, stream, None)
        return items, _scored(ctx, users, items)


class Popularity:
    """``p(i) ∝ count(i)^alpha`` over training positives (word2vec's unigram^0.75, Mikolov et al.
    2013; RecBole ``distribution: popularity`` is ``alpha = 1``). ``alpha = 0`` is uniform over
    every item; with ``alpha > 0`` an item nobody liked in training is never drawn."""

    name = "popularity"
    needs_scorer = False

    def __init__(self, alpha: float = 0.75) -> None:
        self.alpha = check("alpha", alpha, "popularity sampler")

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "alpha": self.alpha}

    def weights(self, ctx: Context) -> np.ndarray:
        return np.power(ctx.data.item_counts().astype(np.float64), self.alpha)

    def sample(self, ctx: Context, users: np.ndarray, pair_keys: np.ndarray, num_negatives: int,
               stream: int = 0) -> tuple[np.ndarray, np.ndarray]:
        items = ctx.draw(users, pair_keys, num_negatives, stream, self.weights(ctx))
        return items, _scored(ctx, users, items)


class DNS:
    """Dynamic negative sampling (Zhang et al., SIGIR 2013; RecBole ``dynamic`` with
    ``candidate_num``): draw ``candidates`` items uniformly, score them with the model, keep the
    highest-scoring one, once per negative. Here the model is fixed (ALS/BPR fitted on the training
    split, or given embeddings), not the model being trained. Ties go to the earlier draw."""

    name = "dns"
    needs_scorer = True

    def __init__(self, candidates: int = 10) -> None:
        self.candidates = check("candidates", candidates, f"{self.name} sampler")

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "candidates": self.candidates}

    def priority(self, ctx: Context, users: np.ndarray, scores: np.ndarray, keys: np.ndarray) -> np.ndarray:
        return scores.astype(np.float64)

    def sample(self, ctx: Context, users: np.ndarray, pair_keys: np.ndarray, num_negatives: int,
               stream: int = 0) -> tuple[np.ndarray, np.ndarray]:
        n, m = len(users), self.candidates
        cand = ctx.draw(users, pair_keys, num_negatives * m, stream, None)
        scores = ctx.scores(users, cand)
        with np.errstate(over="ignore"):
            keys = pair_keys + np.uint64(stream)  # each stream of a mixed sampler its own tie-breaking noise
        prio = self.priority(ctx, users, scores, keys).reshape(n, num_negatives, m)
        prio = np.where(cand.reshape(n, num_negatives, m) >= 0, prio, -np.inf)
        best = np.argmax(prio, axis=2)[..., None]  # first maximum: the earlier draw wins a tie
        items = np.take_along_axis(cand.reshape(n, num_negatives, m), best, axis=2)[..., 0]
        return items, np.take_along_axis(scores.reshape(n, num_negatives, m), best, axis=2)[..., 0]


class LiveDNS(DNS):
    """Dynamic negative sampling with the model being trained, as the original (Zhang et al.,
    SIGIR 2013; RecBole's ``dynamic``): for each negative, ``candidates`` items drawn uniformly
    (keyed by seed, user, positive and slot, so position-free, and never a known positive of any
    split) are scored by the *current* model (a :class:`~negmine.rec.live.LiveScorer` in the
    context) and the highest-scoring one is kept (ties: the earlier draw).

    Guard against false negatives (both off by default), from what the data and the model know:

    - ``guard_margin`` ``M``: a candidate scored above ``score(user, positive) − M`` is refused
      (the text pipeline's margin below the positive; as the kg live guard);
    - ``guard_similarity`` ``S``: a candidate whose item vector has cosine ``≥ S`` with the
      positive item's is refused (a near-duplicate detector on the item side).

    Of the candidates left the hardest wins; when the guard refuses every candidate of a slot the
    *least* plausible one is taken, so every interaction still gets exactly ``num_negatives``
    negatives (counted in ``ctx.guard_fallback``). Differs from :class:`DNS` only in where the
    scores come from (the live model rather than a model fitted before training) and the guard;
    with a fixed :class:`Scorer` in the context it is a guarded DNS.

    Examples
    --------
    >>> import numpy as np
    >>> from negmine.rec.data import from_arrays, split_interactions
    >>> from negmine.rec.live import LiveScorer
    >>> data = split_interactions(from_arrays([1, 2, 2, 2], [10, 11, 12, 13]), "random", 0)
    >>> model = LiveScorer(np.ones((2, 1), np.float32), np.array([[0], [1], [3], [2]], np.float32))
    >>> ctx = Context(data, 0, model)
    >>> LiveDNS(8).sample(ctx, np.array([0]), ctx.pair_keys(np.array([0]), np.array([0])), 1)[0].tolist()
    [[2]]
    """

    name = "live-dns"
    needs_scorer = False
    live = True

    def __init__(self, candidates: int = 10, guard_margin: float | None = None,
                 guard_similarity: float | None = None) -> None:
        super().__init__(candidates)
        self.guard_margin = check("guard_margin", guard_margin, "live-dns sampler", required=False)
        self.guard_similarity = check("guard_similarity", guard_similarity, "live-dns sampler", required=False)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "candidates": self.candidates, "guard_margin": self.guard_margin,
                "guard_similarity": self.guard_similarity}

    def sample(self, ctx: Context, users: np.ndarray, pair_keys: np.ndarray, num_negatives: int,
               stream: int = 0, positives: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        if ctx.scorer is None:
            raise ConfigError("live-dns picks with the model being trained: use it in 'negmine rec train' or "
                              "'rec compare' (to mine a file, use --sampler dns with --scorer)")
        guarded = self.guard_margin is not None or self.guard_similarity is not None
        if guarded and positives is None:
            raise ConfigError("live-dns with a guard needs each row's positive item (positives=...)")
        n, m = len(users), self.candidates
        cand = ctx.draw(users, pair_keys, num_negatives * m, stream, None)
        valid = cand >= 0
        scores = np.where(valid, ctx.scorer.score(users, np.maximum(cand, 0)), -np.inf).astype(np.float32)
        ok = valid.copy()
        if positives is not None and self.guard_margin is not None:
            pos = ctx.scorer.score(users, np.asarray(positives, np.int64)[:, None])
            ok &= ~(scores > pos - np.float32(self.guard_margin))
        if positives is not None and self.guard_similarity is not None:
            ok &= ~(ctx.scorer.item_similarity(np.asarray(positives, np.int64), np.maximum(cand, 0))
                    >= np.float32(self.guard_similarity))
        ctx.guard_refused += int((valid & ~ok).sum())
        s3, ok3 = scores.reshape(n, num_negatives, m), ok.reshape(n, num_negatives, m)
        best = np.argmax(np.where(ok3, s3, -np.inf), axis=2)  # first maximum: the earlier draw wins a tie
        if guarded:
            any_ok = ok3.any(axis=2)
            least = np.argmin(np.where(valid.reshape(n, num_negatives, m), s3, np.inf), axis=2)
            best = np.where(any_ok, best, least)
            ctx.guard_fallback += int((~any_ok & valid.reshape(n, num_negatives, m).any(axis=2)).sum())
        items = np.take_along_axis(cand.reshape(n, num_negatives, m), best[..., None], axis=2)[..., 0]
        return items, np.take_along_axis(s3, best[..., None], axis=2)[..., 0]


class Robust(DNS):
    """Hard, but probably not liked: of ``candidates`` uniform draws, sample one with probability
    ``∝ exp(s / T) · σ(−(s − r_u) / T)²``, where ``s`` is the model's score and ``r_u`` the median
    score of the user's training positives. ``exp(s / T)`` prefers hard candidates, as DNS does;
    the squared sigmoid is the model's estimate that the item is *not* an unlabeled positive of
    the user, so candidates scored above the user's typical positive are down-weighted rather
    than preferred (Gumbel-max, seeded per cell).

    Inspired by NBPO (Yu & Qin, "Sampler Design for Implicit Feedback Data by Noisy-label Robust
    Learning", SIGIR 2020), which treats unobserved items as noisy labels. Differences: NBPO
    learns a noise (label-flip) model jointly with the recommender and changes the loss; here
    the "likely positive" estimate comes from a fixed model's score relative to the user's own
    positives, and only the sampling changes.
    """

    name = "robust"

    def __init__(self, candidates: int = 10, temperature: float = 0.1) -> None:
        super().__init__(candidates)
        self.temperature = check("temperature", temperature, "robust sampler")

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "candidates": self.candidates, "temperature": self.temperature}

    def priority(self, ctx: Context, users: np.ndarray, scores: np.ndarray, keys: np.ndarray) -> np.ndarray:
        if not isinstance(ctx.scorer, Scorer):
            raise ConfigError("robust needs a fixed scorer; pass --scorer als|bpr|embeddings")
        ref = ctx.scorer.reference(ctx.data.train)[users][:, None]
        s = scores.astype(np.float64)
        t = self.temperature
        x = (s - ref) / t
        log_not_liked = -np.logaddexp(0.0, x)  # log σ(−x)
        g = gumbel(uniform(ctx.seed, keys, np.arange(s.shape[1], dtype=np.uint64) + REC_SCORE_STREAM))
        return s / t + 2.0 * log_not_liked + g


class Mixed:
    """A stated share of each sampler: of ``N`` negatives, ``round(share · N)`` slots (largest
    remainder) go to each part in order; each part draws from its own random stream."""

    name = "mixed"

    def __init__(self, parts: Sequence[tuple[Sampler, float]]) -> None:
        if not parts or any(isinstance(s, bool) or not isinstance(s, (int, float)) or not math.isfinite(s) or s < 0
                            for _, s in parts) or sum(s for _, s in parts) <= 0:
            raise ConfigError("mixed needs finite shares >= 0 that sum to > 0, e.g. --mix uniform=0.5,dns=0.5")
        total = sum(s for _, s in parts)
        self.parts = [(p, s / total) for p, s in parts]
        self.needs_scorer = any(p.needs_scorer for p, _ in self.parts)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "parts": [{**p.config(), "share": s} for p, s in self.parts]}

    def slots(self, num_negatives: int) -> list[int]:
        raw = np.array([s * num_negatives for _, s in self.parts])
        n = np.floor(raw).astype(int)
        for i in np.argsort(-(raw - n), kind="stable")[: num_negatives - int(n.sum())]:
            n[i] += 1
        return n.tolist()

    def sample(self, ctx: Context, users: np.ndarray, pair_keys: np.ndarray, num_negatives: int,
               stream: int = 0) -> tuple[np.ndarray, np.ndarray]:
        items, scores = [], []
        for j, ((p, _), k) in enumerate(zip(self.parts, self.slots(num_negatives))):
            if k:
                it, sc = p.sample(ctx, users, pair_keys, k, stream + j + 1)
                items.append(it)
                scores.append(sc.astype(np.float32))
        return np.concatenate(items, axis=1), np.concatenate(scores, axis=1)


#: name -> class of the samplers built from options alone (``mixed`` takes parts), read from the
#: registry: the classes above, by their registered names
SAMPLERS: dict[str, Callable[..., Any]] = {n: e.load() for n, e in REGISTRY.entries.items() if n != "mixed"}


def make_sampler(name: str, *, alpha: float = 0.75, candidates: int = 10, temperature: float = 0.1,
                 mix: dict[str, float] | None = None, guard_margin: float | None = None,
                 guard_similarity: float | None = None) -> Sampler:
    """A sampler by name (``uniform``, ``popularity``, ``dns``, ``robust``, ``mixed``,
    ``live-dns``), built through :data:`negmine.rec.registry.SAMPLERS` from the options its entry
    declares; ``mix`` maps part names to shares for ``mixed``; ``guard_*`` are ``live-dns``'s guard.
    Each constructor checks its own options (a one-line :class:`ConfigError` naming the sampler)."""
    values: dict[str, Any] = {"alpha": alpha, "candidates": candidates, "temperature": temperature,
                              "guard_margin": guard_margin, "guard_similarity": guard_similarity}

    def one(n: str) -> Sampler:
        if n not in REGISTRY.entries or n == "mixed":
            raise ConfigError(f"unknown sampler {n!r}; use one of {', '.join(REGISTRY.entries)}")
        entry = REGISTRY.entries[n]
        sampler: Sampler = entry.load()(**{o.keyword: values[o.key] for o in entry.options})
        return sampler

    if name == "mixed":
        if not mix:
            raise ConfigError("sampler 'mixed' needs shares, e.g. --mix uniform=0.5,dns=0.5")
        parts = [(one(n), s) for n, s in check_mix(dict(mix), "mixed sampler").items()]
        mixed: Sampler = REGISTRY.entries["mixed"].load()(parts)
        return mixed
    return one(name)
