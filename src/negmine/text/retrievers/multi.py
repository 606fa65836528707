"""Several retrievers at once: ``union`` (provenance kept, one chosen score) and ``hybrid``
(reciprocal-rank fusion)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from negmine.core.errors import ConfigError
from negmine.text.retrievers.base import resort
from negmine.text.types import Candidates, MiningData, RunContext

RRF_K = 60


def _rank_lookup(ids: np.ndarray, n_docs: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted keys ``q * n_docs + doc`` of a candidate matrix and the 0-based rank of each."""
    q, r = np.nonzero(ids >= 0)
    keys = q.astype(np.int64) * n_docs + ids[q, r]
    order = np.argsort(keys)
    return keys[order], r[order].astype(np.int32)


def _ranks_of(keys: np.ndarray, ranks: np.ndarray, query: np.ndarray, docs: np.ndarray, n_docs: int) -> np.ndarray:
    """Rank of each (query, doc) in a looked-up candidate matrix, ``-1`` where absent."""
    want = query.astype(np.int64) * n_docs + np.where(docs >= 0, docs, 0)
    pos = np.searchsorted(keys, want)
    pos_c = np.minimum(pos, max(len(keys) - 1, 0))
    found = (len(keys) > 0) & (docs >= 0) & (keys[pos_c] == want) if len(keys) else np.zeros(want.shape, bool)
    return np.where(found, ranks[pos_c] if len(keys) else -1, -1).astype(np.int32)


def rrf(member_ranks: np.ndarray) -> np.ndarray:
    """Reciprocal-rank fusion ``Σ_r 1 / (60 + rank_r)`` with 1-based ranks; 0 where no retriever found it."""
    r = member_ranks.astype(np.float64)
    return np.where(member_ranks >= 0, 1.0 / (RRF_K + r + 1.0), 0.0).sum(-1).astype(np.float32)


class Union:
    """Candidates from several retrievers, each candidate keeping which retrievers found it and its
    rank and score in each (NV-Retriever's teacher ensembling; R²anker's several negative
    generators). Rows hold the union of every member's top ``k``, ranked by ``score``: the name of
    one member (its score for every candidate, including those only the others found) or
    ``"rrf"`` (reciprocal-rank fusion).

    Examples
    --------
    >>> from negmine.text.retrievers import BM25, Dense
    >>> from negmine.text.encoders import HashingEncoder
    >>> Union([BM25(), Dense(encoder=HashingEncoder())], score="dense").config()["score"]
    'dense'
    """

    name = "union"

    def __init__(self, members: Sequence[Any], *, score: str | None = None) -> None:
        if len(members) < 1:
            raise ConfigError("union needs at least one retriever; e.g. --members bm25,dense")
        names = [m.name for m in members]
        if len(set(names)) != len(names):
            raise ConfigError(f"union members must have different names, got {', '.join(names)}")
        if len(members) > 8:
            raise ConfigError("union supports at most 8 retrievers")
        self.members = list(members)
        self.score = score or names[0]
        if self.score != "rrf" and self.score not in names:
            raise ConfigError(f"unknown union score {self.score!r}; use one of: {', '.join([*names, 'rrf'])}")

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "score": self.score, "members": [m.config() for m in self.members]}

    def prepare(self, data: MiningData, ctx: RunContext | None = None) -> None:
        """Let each member load or encode the corpus once, before sharded retrieval."""
        for m in self.members:
            prepare = getattr(m, "prepare", None)
            if prepare is not None:
                prepare(data, ctx)

    def retrieve(self, data: MiningData, k: int, ctx: RunContext | None = None) -> Candidates:
        ctx = ctx if ctx is not None else RunContext()
        n_q, n_docs = len(data.queries), len(data.corpus)
        results = []
        for m in self.members:
            sub = ctx.child()
            results.append(m.retrieve(data, k, sub))
            ctx.absorb(sub, prefix=f"{m.name}_")

        # union of ids per row: sort the concatenation, drop repeats
        allids = np.concatenate([r.ids for r in results], axis=1)
        srt = np.sort(np.where(allids >= 0, allids, np.iinfo(np.int64).max), axis=1)
        dup = np.zeros_like(srt, dtype=bool)
        dup[:, 1:] = srt[:, 1:] == srt[:, :-1]
        srt[dup] = np.iinfo(np.int64).max
        srt = np.sort(srt, axis=1)
        width = int((srt != np.iinfo(np.int64).max).sum(axis=1).max(initial=0))
        ids = np.where(srt[:, :width] == np.iinfo(np.int64).max, -1, srt[:, :width])

        qrow = np.broadcast_to(np.arange(n_q)[:, None], ids.shape)
        ranks = np.stack([_ranks_of(*_rank_lookup(r.ids, n_docs), qrow, ids, n_docs) for r in results], axis=-1)
        scores_each = np.stack([m.score_cells(data, ids, ctx) for m in self.members], axis=-1)
        pos_q, pos_d = data.positives.query_of_pair(), data.positives.indices
        if self.score == "rrf":
            chosen = np.where(ids >= 0, rrf(ranks), -np.inf).astype(np.float32)
            pos_ranks = np.stack([_ranks_of(*_rank_lookup(r.ids, n_docs), pos_q, pos_d, n_docs) for r in results],
                                 axis=-1)
            pos_scores = rrf(pos_ranks)
        else:
            j = [m.name for m in self.members].index(self.score)
            chosen = scores_each[..., j]
            pos_scores = results[j].positive_scores

        # order rows by the chosen score; carry the per-member arrays along
        out_ids, out_scores = resort(ids, chosen, width)
        order = _reorder(ids, out_ids)
        ranks = np.take_along_axis(ranks, order[..., None], axis=1)
        scores_each = np.take_along_axis(scores_each, order[..., None], axis=1)
        ranks[out_ids < 0] = -1
        bits = (ranks >= 0).astype(np.uint8) << np.arange(len(results), dtype=np.uint8)
        return Candidates(
            ids=out_ids, scores=out_scores, sources=bits.sum(-1).astype(np.uint8),
            source_names=[m.name for m in self.members], positive_scores=pos_scores.astype(np.float32),
            member_ranks=ranks, member_scores=scores_each.astype(np.float32),
        )


def _reorder(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Column positions in ``before`` of each cell of ``after`` (same rows, same set of ids)."""
    big = np.iinfo(np.int64).max
    b = np.where(before >= 0, before, big)
    a = np.where(after >= 0, after, big)
    ob = np.argsort(b, axis=1, kind="stable")
    sb = np.take_along_axis(b, ob, axis=1)
    idx = np.stack([np.searchsorted(sb[i], a[i]) for i in range(len(a))]) if len(a) else np.zeros_like(a)
    idx = np.minimum(idx, b.shape[1] - 1)
    return np.take_along_axis(ob, idx, axis=1)


class Hybrid(Union):
    """Reciprocal-rank fusion of several retrievers into one ranked list:
    ``RRF(d) = Σ_r 1 / (60 + rank_r(d))`` (1-based ranks; a retriever that did not return ``d``
    adds nothing). Scores are RRF values (at most ``R / 61``), so score thresholds and SimANS
    parameters must be on that scale; rank windows and ``top`` are the natural companions."""

    name = "hybrid"

    def __init__(self, members: Sequence[Any]) -> None:
        super().__init__(members, score="rrf")
