"""``mine``: negatives for every training ``(user, positive item)``, with a report, and the
result object that saves them (``mined.parquet``, ``manifest.json``, ``report.json``)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from negmine.core.errors import ConfigError, DataError
from negmine.core.manifest import run_id
from negmine.core.optional import require
from negmine.core.progress import progress
from negmine.rec.data import RecData
from negmine.rec.live import LiveScorer
from negmine.rec.samplers import Context, Sampler
from negmine.rec.scorers import Scorer

__all__ = ["RecMiningResult", "mine", "sample_negatives"]

CHUNK_CELLS = 1 << 20  # candidate cells per chunk: bounds memory, never changes the output


def sample_negatives(data: RecData, sampler: Sampler, num_negatives: int, seed: int, *,
                     scorer: Scorer | LiveScorer | None = None, users: np.ndarray | None = None,
                     items: np.ndarray | None = None, ctx: Context | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(negatives int64[n, num_negatives], scores float32[n, num_negatives])`` for the pairs
    ``users``/``items int64[n]`` (default: every training positive, in CSR order). Rows are
    processed in chunks; each row depends only on ``(seed, user id, item id)`` (and, for a live
    sampler, on the model's weights at the call)."""
    from negmine.rec.options import check

    num_negatives = check("num_negatives", num_negatives, "sample_negatives")
    seed = check("seed", seed, "sample_negatives")
    if sampler.needs_scorer and scorer is None:
        raise ConfigError(f"sampler {sampler.name!r} needs a scorer; pass --scorer als|bpr|embeddings")
    if users is None or items is None:
        users, items = data.train.query_of_pair(), data.train.indices
    ctx = ctx or Context(data, seed, scorer)
    keys = ctx.pair_keys(users, items)
    per_row = num_negatives * max(int(getattr(sampler, "candidates", 1)), 1)
    step = max(1, CHUNK_CELLS // per_row)
    neg = np.empty((len(users), num_negatives), np.int64)
    sc = np.empty((len(users), num_negatives), np.float32)
    for a in progress(range(0, len(users), step), desc=f"sampling ({sampler.name})",
                      total=-(-len(users) // step), unit="chunk"):
        b = a + step
        if getattr(sampler, "live", False):
            neg[a:b], sc[a:b] = sampler.sample(ctx, users[a:b], keys[a:b], num_negatives,  # type: ignore[call-arg]
                                               positives=items[a:b])
        else:
            neg[a:b], sc[a:b] = sampler.sample(ctx, users[a:b], keys[a:b], num_negatives)
    return neg, sc


@dataclass
class RecMiningResult:
    """Negatives of every training interaction: ``users``/``positives int64[n]`` (rows),
    ``negatives int64[n, N]`` (item rows, ``-1`` = shortfall), ``scores float32[n, N]`` (the
    scorer's, ``NaN`` without one), ``ranks int64[n, N]`` (rank among all items under the scorer,
    ``-1`` when not computed), ``positive_scores float32[n]`` (``NaN`` without a scorer)."""

    data: RecData
    users: np.ndarray
    positives: np.ndarray
    negatives: np.ndarray
    scores: np.ndarray
    ranks: np.ndarray
    positive_scores: np.ndarray
    sampler: dict[str, Any]
    scorer: dict[str, Any] | None
    seed: int
    timings: dict[str, float]
    counters: dict[str, int] = field(default_factory=dict)

    @property
    def num_negatives(self) -> int:
        return int(self.negatives.shape[1])

    @cached_property
    def report(self) -> dict[str, Any]:
        from negmine.rec.report import build_report

        return build_report(self)

    def config(self) -> dict[str, Any]:
        return {"sampler": self.sampler, "scorer": self.scorer, "num_negatives": self.num_negatives,
                "split": self.data.split, "min_rating": self.data.interactions.stats.get("min_rating"),
                "low_ratings": self.data.interactions.low_ratings}

    def run_id(self) -> str:
        identity = {"config": self.config(), "seed": self.seed}
        return run_id(identity, self.data.interactions.fingerprint(), length=16)

    def columns(self) -> dict[str, Any]:
        """Arrow columns of ``mined.parquet``, one row per training interaction, sorted by
        ``(user_id, positive_id)``: ids, negative ids, scores, ranks (lists), sampler name."""
        pa = require("pyarrow")
        inter = self.data.interactions
        ok = self.negatives >= 0
        offsets = np.concatenate([[0], np.cumsum(ok.sum(axis=1))]).astype(np.int32)
        neg_ids = inter.item_ids[self.negatives[ok]]

        def lists(values: np.ndarray) -> Any:
            return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values))

        has_scores = self.scorer is not None
        cols: dict[str, Any] = {
            "user_id": pa.array(inter.user_ids[self.users]),
            "positive_id": pa.array(inter.item_ids[self.positives]),
            "negative_ids": lists(neg_ids),
            "negative_scores": (lists(self.scores[ok]) if has_scores
                                else pa.nulls(len(self.users), pa.list_(pa.float32()))),
            "negative_ranks": lists(self.ranks[ok].astype(np.int32)),
            "positive_score": pa.array(self.positive_scores, mask=np.isnan(self.positive_scores)),
            "sampler": pa.array([self.sampler["name"]] * len(self.users)),
        }
        return cols

    def save(self, directory: str | Path, *, overwrite: bool = False) -> Path:
        """Write ``mined.parquet``, ``report.json`` and ``manifest.json`` atomically."""
        from negmine.rec.writer import write_run

        return write_run(self, Path(directory), overwrite=overwrite)

    def to_dataset(self) -> Any:
        """The mined table as a ``datasets.Dataset`` (extra ``hf``): ``user_id``, ``positive_id``,
        ``negative_ids`` (and scores, ranks)."""
        datasets = require("datasets")
        return datasets.Dataset(require("pyarrow").table(self.columns()))


def mine(data: RecData, sampler: Sampler, *, num_negatives: int = 1, seed: int = 0, scorer: Scorer | None = None,
         ranks: bool | None = None, max_rank_cells: int = 200_000_000) -> RecMiningResult:
    """Sample ``num_negatives`` negatives for every training positive of ``data``.

    ``ranks`` (default: when a scorer is given and ``n_users · n_items <= max_rank_cells``)
    adds each negative's rank among all items under the scorer.

    Examples
    --------
    >>> from negmine.rec.data import from_arrays, split_interactions
    >>> from negmine.rec.samplers import Uniform
    >>> data = split_interactions(from_arrays([1, 1, 2, 2], [10, 11, 10, 12], [5] * 4, [1, 2, 3, 4]), "time", 0)
    >>> r = mine(data, Uniform(), num_negatives=2, seed=0)
    >>> r.negatives.shape, int((r.negatives == r.positives[:, None]).sum())
    ((4, 2), 0)
    """
    t0 = time.perf_counter()
    if not len(data.train.indices):
        raise DataError(f"{data.interactions.source}: 0 training interactions to mine; check --min-rating and "
                        "the split")
    ctx = Context(data, seed, scorer)
    users, items = data.train.query_of_pair(), data.train.indices
    neg, sc = sample_negatives(data, sampler, num_negatives, seed, scorer=scorer, users=users, items=items, ctx=ctx)
    if not (neg >= 0).any():
        raise DataError(f"{data.interactions.source}: 0 negatives for {len(users)} training interactions: every item "
                        "is a known positive of its user (or a low rating with --low-ratings ignore); mining needs "
                        "items a user has not liked")
    t1 = time.perf_counter()
    want_ranks = scorer is not None and data.n_users * data.n_items <= max_rank_cells if ranks is None else ranks
    if want_ranks and scorer is None:
        raise ConfigError("ranks need a scorer; pass --scorer als|bpr|embeddings")
    rk = scorer.ranks(users, neg) if want_ranks and scorer is not None else np.full(neg.shape, -1, np.int64)
    pos_sc = (scorer.score(users, items[:, None])[:, 0] if scorer is not None
              else np.full(len(users), np.nan, np.float32))
    t2 = time.perf_counter()
    return RecMiningResult(
        data, users, items.copy(), neg, sc, rk, pos_sc, sampler.config(),
        scorer.info if scorer is not None else None, seed,
        {"sample": round(t1 - t0, 3), "ranks": round(t2 - t1, 3)},
        {"rejected_draws": ctx.rejected, "exact_fallback": ctx.exact_fallback},
    )
