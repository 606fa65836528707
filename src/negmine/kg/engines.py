"""The corruption engines behind :func:`corrupt`: which head or tail replaces the true one.

Three engines behind one call (:func:`corrupt`), all keyed by ``(seed, triple labels, ...)``
through negmine's splitmix64 hash (:func:`negmine.core.keys.uniform`), so a triple's negatives do
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

from dataclasses import dataclass
from typing import Any

import numpy as np

from negmine.core.errors import ConfigError
from negmine.core.keys import (
    KG_FILL_SALT,
    KG_POOL_SALT,
    KG_SIDE_SALTS,
    KG_STREAM_SALT,
    gumbel,
    mix,
    uniform,
    uniform_pairs,
)
from negmine.core.select import top_k
from negmine.kg.filters import KnownFilter, NoFilter
from negmine.kg.graph import Graph, KGSampler, call_keys, corruption_keys

__all__ = ["Corruptions", "allowed_by", "corrupt", "corrupt_exact", "pool_corrupt", "stream_codes"]

_SIDE_SALT = KG_SIDE_SALTS
_CELLS = 1 << 21  # candidate cells per block (bounds memory: ~50 MB of float64 work arrays)
_POOL_CELLS = 1 << 18  # pool cells per block: the scored candidates' vectors stay in cache
_STREAM_SALT = KG_STREAM_SALT
_POOL_SALT = KG_POOL_SALT
_FILL_SALT = KG_FILL_SALT


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
    return corrupt_exact(sampler, graph, t, num_negatives, seed, known, draw)


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
    q = call_keys(graph, t, draw)
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
        hit = known.contains(corruption_keys(graph, tr, side, ent)) & ok
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
    q = call_keys(graph, t, draw)
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
            ok &= ~known.contains(corruption_keys(graph, b, es, ee))
            codes = np.concatenate([codes, np.where(ok, ex, -1)], axis=1)
            codes = np.where(_first_occurrence(codes) & (codes >= 0), codes, -1)
        valid = codes >= 0
        side, ent = np.where(valid, codes // n_e, 0), np.where(valid, codes % n_e, 0)
        logw = np.where(valid, weights(b, side, ent), -np.inf)
        if on_scored is not None:
            on_scored(b, codes, logw)
        q = call_keys(graph, b, draw)
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


def corrupt_exact(sampler: KGSampler, graph: Graph, t: np.ndarray, num_negatives: int, seed: int,
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
        keys = corruption_keys(graph, b, sides.reshape(len(b), -1), ent.reshape(len(b), -1)).reshape(w.shape)
        hit = known.contains(keys)
        filtered += int((hit & np.isfinite(w)).sum())
        w = np.where(hit, -np.inf, w).reshape(len(b), 2 * n_e)
        if exclude is not None:
            ex = exclude[a:a + step]
            r_i, c_i = np.nonzero(ex >= 0)
            w[r_i, ex[r_i, c_i]] = -np.inf
        q = call_keys(graph, b, draw)
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
