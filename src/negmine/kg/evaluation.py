"""Scoring helpers on a trained KGE model: all-candidate scores, filtered ranks, hardness.

Filtered ranking (Bordes et al. 2013): for a test triple, every other entity on the replaced
side is scored, known true triples (of every split) other than the test triple are left out,
and the rank is ``1 + #higher + #tied / 2`` (PyKEEN's "realistic" rank). Both sides count,
as PyKEEN's ``both``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from negmine.core.optional import require
from negmine.kg.data import triple_keys

__all__ = ["all_scores", "filtered_ranks", "hardness_percentile", "rank_metrics"]



def all_scores(model: Any, triples: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """``float32[B, 2, n_e]``: the model's score of each triple with its head (side 0) or its
    tail (side 1) replaced by every entity."""
    torch = require("torch")
    t = np.asarray(triples, dtype=np.int64).reshape(-1, 3)
    out: list[np.ndarray] = []
    model.eval()
    with torch.no_grad():
        for a in range(0, len(t), batch_size):
            b = torch.as_tensor(t[a:a + batch_size])
            h = model.score_h(b[:, 1:]).cpu().numpy()
            tl = model.score_t(b[:, :2]).cpu().numpy()
            out.append(np.stack([h, tl], axis=1).astype(np.float32))
    return np.concatenate(out) if out else np.zeros((0, 2, model.num_entities), np.float32)


def filtered_ranks(scores: np.ndarray, triples: np.ndarray, known_keys: np.ndarray, num_entities: int,
                   num_relations: int) -> np.ndarray:
    """``float64[B, 2]`` realistic filtered ranks of ``triples`` given ``scores`` from
    :func:`all_scores` and the sorted ``int64`` keys of every known triple."""
    t = np.asarray(triples, dtype=np.int64)
    ent = np.arange(num_entities)
    heads = np.where(np.arange(2)[None, :, None] == 0, ent[None, None, :], t[:, None, None, 0])
    tails = np.where(np.arange(2)[None, :, None] == 1, ent[None, None, :], t[:, None, None, 2])
    keys = (heads * num_relations + t[:, None, None, 1]) * num_entities + tails
    pos = np.searchsorted(known_keys, keys)
    known = known_keys[np.minimum(pos, len(known_keys) - 1)] == keys
    own = keys == triple_keys(t, num_entities, num_relations)[:, None, None]
    true = np.take_along_axis(scores, np.stack([t[:, 0], t[:, 2]], axis=1)[:, :, None], axis=2)
    other = ~known & ~own
    higher = ((scores > true) & other).sum(-1)
    tied = ((scores == true) & other).sum(-1)
    return 1.0 + higher + tied / 2.0


def rank_metrics(ranks: np.ndarray) -> dict[str, float]:
    """Filtered MRR and Hits@1/3/10 over both sides of ``ranks`` (``float[B, 2]``)."""
    r = np.asarray(ranks, dtype=np.float64).ravel()
    return {"mrr": float(np.mean(1.0 / r)), "hits@1": float(np.mean(r <= 1)), "hits@3": float(np.mean(r <= 3)),
            "hits@10": float(np.mean(r <= 10))}


def hardness_percentile(scores: np.ndarray, triples: np.ndarray, negatives: np.ndarray,
                        side: np.ndarray) -> np.ndarray:
    """``float64[k]``: for each emitted corruption, the share of the other entities on its side
    (neither the true one nor itself) whose corruption the model scores lower (0.5 ≈ random,
    1 = the model's most plausible corruption). ``negatives int64[B, N, 3]``, ``side int8[B, N]``
    (``-1`` = none) as :class:`negmine.kg.engines.Corruptions`; ``scores`` from :func:`all_scores`."""
    rows, draws = np.nonzero(side >= 0)
    s = side[rows, draws].astype(np.int64)
    neg = negatives[rows, draws]
    cand = np.where(s == 0, neg[:, 0], neg[:, 2])
    true = np.where(s == 0, triples[rows, 0], triples[rows, 2])
    row_scores = scores[rows, s]  # [k, n_e]
    mine = row_scores[np.arange(len(rows)), cand]
    lower = (row_scores < mine[:, None]).sum(1) - (row_scores[np.arange(len(rows)), true] < mine).astype(int)
    n_other = scores.shape[2] - 2
    return lower / max(1, n_other)
