"""``mine``: negatives for every training ``(user, positive item)``, as a
:class:`~negmine.rec.result.RecMiningResult` (which reports and saves them: ``mined.parquet``,
``manifest.json``, ``report.json``); ``sample_negatives``: the negatives of given pairs, in chunks."""

from __future__ import annotations

import time

import numpy as np

from negmine.core.errors import ConfigError, DataError
from negmine.core.progress import progress
from negmine.rec.context import Context
from negmine.rec.interactions import RecData
from negmine.rec.live import LiveScorer
from negmine.rec.result import RecMiningResult
from negmine.rec.samplers import Sampler
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
