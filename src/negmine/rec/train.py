"""Train a recommender on sampled negatives (torch, CPU) and evaluate it by full ranking.

Two models, both user/item embedding tables:

- ``mf-bpr``: matrix factorisation with the BPR loss (Rendle et al., UAI 2009),
  ``−log σ(s(u, i) − s(u, j))`` averaged over the negatives ``j`` of each positive, dot-product
  scores.
- ``simplex``: SimpleX (Mao et al., CIKM 2021): the cosine contrastive loss
  ``(1 − cos(p_u, v_i)) + w / |N| · Σ_j max(0, cos(p_u, v_j) − m)`` (margin ``m``, negative weight
  ``w``, many negatives) with SimpleX's user tower, which aggregates the user's interacted items:
  ``p_u = g · e_u + (1 − g) · W · mean(v_j for j in the user's training items)`` (gate ``g =
  gamma``, ``W`` a learned ``d × d`` map started at the identity; SimpleX's "mean" aggregator).

Negatives are drawn for every batch with the library's sampler, seeded by the run's seed and the
epoch and keyed by ``(user id, positive id, slot)``, so what a model trains on is what ``negmine
rec mine`` would write with that seed. ``live-dns`` scores its candidates with the model being
trained, at the moment the batch is drawn (:class:`~negmine.rec.live.LiveScorer` reads the
weights in place). The model is saved in the embeddings format the ``embeddings`` scorer reads
(the user tower's output as the user vector).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from negmine.core.errors import ConfigError, DataError
from negmine.core.optional import require
from negmine.core.progress import progress
from negmine.rec.context import Context
from negmine.rec.interactions import RecData
from negmine.rec.live import LiveScorer
from negmine.rec.samplers import Sampler
from negmine.rec.scorers import Scorer

__all__ = ["MODELS", "TrainConfig", "Trainer", "evaluate", "train"]

log = logging.getLogger(__name__)

MODELS = ("mf-bpr", "simplex")


@dataclass
class TrainConfig:
    """Options of :func:`train` (Adam, full passes over the training positives)."""

    model: str = "mf-bpr"
    dim: int = 64
    epochs: int = 20
    batch_size: int = 1024
    lr: float = 5e-3
    weight_decay: float = 0.0
    l2: float = 1e-5  # on the embeddings of each batch (BPR's regulariser)
    num_negatives: int = 1
    margin: float = 0.8
    negative_weight: float = 1.0
    gamma: float = 0.5  # simplex: user tower gate
    seed: int = 0

    def validate(self) -> None:
        """Every field checked against its declaration in :mod:`negmine.rec.options` (finite,
        in range, a known model), as the CLI checks its flags; a one-line ConfigError otherwise."""
        from negmine.rec.options import check

        if self.model not in MODELS:
            raise ConfigError(f"unknown model {self.model!r}; use one of {', '.join(MODELS)}")
        for name in ("dim", "epochs", "batch_size", "num_negatives", "lr", "margin", "negative_weight", "gamma",
                     "seed"):
            setattr(self, name, check(name, getattr(self, name), "TrainConfig"))
        for name in ("weight_decay", "l2"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ConfigError(f"TrainConfig: {name} must be a finite number >= 0, got {v!r}")


@dataclass
class TrainResult:
    """The trained embeddings (as a :class:`Scorer`), the options, and the loss per epoch."""

    scorer: Scorer
    config: TrainConfig
    sampler: dict[str, Any]
    data: RecData
    history: list[dict[str, float]] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)

    def save(self, path: str | Path) -> Path:
        """The embeddings as ``.npz`` (``user_ids``, ``user_vectors``, ``item_ids``,
        ``item_vectors``), written atomically; ``simplex`` vectors (user tower output) are
        L2-normalised so that the dot product is the cosine it was trained on."""
        from negmine.core.atomic import write_atomic

        p = Path(path)
        inter = self.data.interactions

        def w(fh: Any) -> None:
            np.savez(fh, user_ids=inter.user_ids, user_vectors=self.scorer.user_factors,
                     item_ids=inter.item_ids, item_vectors=self.scorer.item_factors)

        write_atomic(p, w)
        return p


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7919 + 17) & 0x7FFFFFFFFFFFFFFF


def train(data: RecData, sampler: Sampler, config: TrainConfig, *, scorer: Scorer | None = None) -> TrainResult:
    """Train ``config.model`` on ``data.train`` with ``config.num_negatives`` negatives per
    positive from ``sampler`` (``scorer`` for the fixed-model samplers ``dns``/``robust``;
    ``live-dns`` scores with the model being trained), on the CPU."""
    return Trainer(data, sampler, config, scorer=scorer).fit()


class Trainer:
    """One training run, step by step: the model (torch), its optimiser, the sampling context.

    ``fit()`` runs every epoch and returns a :class:`TrainResult`; ``run_epoch(e)`` runs one;
    ``negatives(rows, epoch)`` draws the negatives of training interactions ``rows`` (indices
    into ``data.train`` in CSR order) as epoch ``epoch`` would with the weights as they are now.
    Torch runs on one thread while the trainer works (small tables; reproducible), restored after.
    """

    def __init__(self, data: RecData, sampler: Sampler, config: TrainConfig, *, scorer: Scorer | None = None) -> None:
        config.validate()
        if sampler.needs_scorer and scorer is None:
            raise ConfigError(f"sampler {sampler.name!r} needs a scorer; pass --scorer als|bpr|embeddings")
        if getattr(sampler, "live", False) and scorer is not None:
            raise ConfigError(f"sampler {sampler.name!r} scores with the model being trained; drop --scorer")
        self.data, self.sampler, self.config, self.scorer = data, sampler, config, scorer
        self.history: list[dict[str, float]] = []
        torch = self._torch = require("torch", extra="rec")
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            self._build()
        finally:
            torch.set_num_threads(threads)

    def _build(self) -> None:
        torch, data, c = self._torch, self.data, self.config
        self._gen = torch.Generator().manual_seed(c.seed)
        n_u, n_i, d = data.n_users, data.n_items, c.dim
        self.user = torch.nn.Embedding(n_u, d)
        self.item = torch.nn.Embedding(n_i, d)
        with torch.no_grad():
            self.user.weight.copy_(torch.randn(n_u, d, generator=self._gen) * 0.1)
            self.item.weight.copy_(torch.randn(n_i, d, generator=self._gen) * 0.1)
        params = [*self.user.parameters(), *self.item.parameters()]
        self.transform = None
        tower = c.model == "simplex" and c.gamma < 1.0
        if tower:
            self.transform = torch.nn.Parameter(torch.eye(d))
            params.append(self.transform)
        self.opt = torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay)
        self.users = data.train.query_of_pair()
        self.items = data.train.indices
        self.live = LiveScorer(self.user.weight.detach().numpy(), self.item.weight.detach().numpy(),
                               cosine=c.model == "simplex", gamma=c.gamma if tower else 1.0,
                               transform=None if self.transform is None else self.transform.detach().numpy(),
                               history=data.train if tower else None)
        self.ctx = Context(data, 0, self.live if getattr(self.sampler, "live", False) else self.scorer)
        self.keys = self.ctx.pair_keys(self.users, self.items)
        self._indptr = torch.from_numpy(data.train.indptr)
        self._indices = torch.from_numpy(data.train.indices)

    # ------------------------------------------------------------------------------ sampling
    def negatives(self, rows: np.ndarray, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """``(items int64[n, num_negatives], scores float32[n, num_negatives])`` for training
        interactions ``rows`` in epoch ``epoch``, with the current weights."""
        from negmine.rec.mining import CHUNK_CELLS

        rows = np.asarray(rows, np.int64)
        n_neg = self.config.num_negatives
        self.ctx.seed = _epoch_seed(self.config.seed, epoch)
        live = getattr(self.sampler, "live", False)
        step = max(1, CHUNK_CELLS // (n_neg * max(int(getattr(self.sampler, "candidates", 1)), 1)))
        neg = np.empty((len(rows), n_neg), np.int64)
        sc = np.empty((len(rows), n_neg), np.float32)
        for a in range(0, len(rows), step):
            r = rows[a : a + step]
            if live:
                neg[a : a + step], sc[a : a + step] = self.sampler.sample(  # type: ignore[call-arg]
                    self.ctx, self.users[r], self.keys[r], n_neg, positives=self.items[r])
            else:
                neg[a : a + step], sc[a : a + step] = self.sampler.sample(self.ctx, self.users[r], self.keys[r], n_neg)
        return neg, sc

    # ------------------------------------------------------------------------------ training
    def _user_vectors(self, u: Any) -> Any:
        """The user tower in torch for user rows ``u`` (a LongTensor)."""
        torch = self._torch
        e = self.user(u)
        if self.transform is None:
            return e
        starts, ends = self._indptr[u], self._indptr[u + 1]
        counts = ends - starts
        offsets = torch.cumsum(counts, 0) - counts
        idx = torch.repeat_interleave(starts - offsets, counts) + torch.arange(int(counts.sum()))
        mean = torch.nn.functional.embedding_bag(self._indices[idx], self.item.weight, offsets, mode="mean")
        g = self.config.gamma
        return g * e + (1 - g) * mean @ self.transform.T

    def run_epoch(self, epoch: int) -> dict[str, float]:
        """One pass over the training positives in a seeded random order; returns the epoch's
        mean loss, wall and CPU seconds, and the wall seconds spent drawing negatives (also
        appended to ``history``)."""
        torch, c = self._torch, self.config
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            t0, c0 = time.perf_counter(), time.process_time()
            perm = torch.randperm(len(self.users), generator=self._gen)
            total = 0.0
            sample_s = 0.0
            for a in range(0, len(self.users), c.batch_size):
                b = perm[a : a + c.batch_size]
                t1 = time.perf_counter()
                neg, _ = self.negatives(b.numpy(), epoch)
                sample_s += time.perf_counter() - t1
                u = self._user_vectors(torch.from_numpy(self.users[b.numpy()]))
                i = self.item.weight[torch.from_numpy(self.items[b.numpy()])]
                loss = _loss(torch, c, u, i, self.item.weight, torch.from_numpy(neg))
                self.opt.zero_grad()
                loss.backward()
                self.opt.step()
                total += float(loss.detach()) * len(b)
        finally:
            torch.set_num_threads(threads)
        row = {"epoch": epoch, "loss": total / max(len(self.users), 1), "seconds": time.perf_counter() - t0,
               "cpu_seconds": time.process_time() - c0, "sampling_seconds": sample_s}
        self.history.append(row)
        if not math.isfinite(row["loss"]):
            raise ConfigError(f"training {c.model} diverged at epoch {epoch} (loss {row['loss']}, lr {c.lr}); "
                              "lower --lr")
        log.info("epoch %d loss %.4f (%.1f s)", epoch, row["loss"], row["seconds"])
        return row

    def model(self) -> Scorer:
        """The model now as plain factors (user tower output; L2-normalised for ``simplex``)."""
        uf, vf = self.live.snapshot()
        c = self.config
        info = {"name": c.model, **asdict(c), "sampler": self.sampler.config()}
        return Scorer(uf, vf, info)

    def fit(self) -> TrainResult:
        for epoch in progress(range(self.config.epochs), desc=f"training {self.config.model}", unit="epoch"):
            self.run_epoch(epoch)
        return TrainResult(self.model(), self.config, self.sampler.config(), self.data, self.history,
                           {"rejected_draws": self.ctx.rejected, "guard_refused": self.ctx.guard_refused,
                            "guard_fallback": self.ctx.guard_fallback})


_EPS = 1e-12  # torch.nn.functional.normalize's


def _loss(torch: Any, c: TrainConfig, u: Any, i: Any, table: Any, j: Any) -> Any:
    """The batch loss of users ``u (B, d)``, positives ``i (B, d)`` and negatives ``table[j]``
    (``j (B, N)``, ``-1`` = no negative in that slot)."""
    valid = j >= 0
    count = valid.sum(dim=1).clamp(min=1)
    jj = j.clamp(min=0)
    if c.model == "mf-bpr":
        v = table[jj]  # (B, N, d); plain indexing: a faster backward than Embedding
        w = valid.float()
        pos = (u * i).sum(-1, keepdim=True)  # (B, 1)
        neg = torch.einsum("bd,bnd->bn", u, v)
        per = torch.nn.functional.softplus(neg - pos) * w  # −log σ(pos − neg)
        reg = c.l2 * ((u * u).sum() + (i * i).sum() + ((v * v).sum(-1) * w).sum()) / len(u)
        return (per.sum(1) / count).mean() + reg
    normalize = torch.nn.functional.normalize
    un = normalize(u, dim=-1)
    pos = (un * normalize(i, dim=-1)).sum(-1)
    # Only negatives past the margin carry loss or gradient (the hinge is flat below it): find them
    # without autograd, then differentiate through those alone. Same loss and gradients as the
    # dense form; on Gowalla at margin 0.5 about 2% of the negatives are past it, and the step is
    # about 3x faster than normalising and back-propagating all B x N of them.
    with torch.no_grad():
        v = table[jj]
        cos = torch.einsum("bd,bnd->bn", un, v) / torch.linalg.vector_norm(v, dim=-1).clamp_min(_EPS)
        rb, rn = ((cos > c.margin) & valid).nonzero(as_tuple=True)
    va = table[jj[rb, rn]]
    ca = (un[rb] * va).sum(-1) / torch.linalg.vector_norm(va, dim=-1).clamp_min(_EPS)
    hinge = torch.zeros(len(u), dtype=ca.dtype).index_add(0, rb, torch.relu(ca - c.margin))
    return ((1 - pos) + c.negative_weight * hinge / count).mean()


def evaluate(scorer: Scorer, data: RecData, k: int = 20, block: int = 512) -> dict[str, Any]:
    """Full-ranking ``Recall@k`` (hits / held-out positives, as RecBole) and ``NDCG@k`` on
    ``data.test``: every item is ranked for each user with a held-out positive, except the
    user's training positives. Returns the means and ``per_user`` arrays (for paired tests).
    Data without held-out positives is a :class:`~negmine.core.errors.DataError` (nothing to measure)."""
    from negmine.rec.options import check

    k = check("k", k, "evaluate")
    test, train_q = data.test, data.train
    users = np.flatnonzero(test.counts() > 0)
    if not len(users):
        raise DataError(f"{data.interactions.source}: no held-out positives to evaluate on; use --test-fraction > 0 "
                        "(or --split leave-last) with users that have 2+ positives")
    recall = np.zeros(len(users))
    ndcg = np.zeros(len(users))
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    for a in range(0, len(users), block):
        ub = users[a : a + block]
        s = scorer.user_factors[ub] @ scorer.item_factors.T
        rows = np.repeat(np.arange(len(ub)), train_q.counts()[ub])
        cols = np.concatenate([train_q.row(u) for u in ub]) if len(ub) else np.zeros(0, np.int64)
        s[rows, cols] = -np.inf
        kk = min(k, s.shape[1])
        top = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
        top = np.take_along_axis(top, np.argsort(-np.take_along_axis(s, top, axis=1), axis=1, kind="stable"), axis=1)
        for j, u in enumerate(ub.tolist()):
            rel = np.isin(top[j], test.row(u))
            n_rel = len(test.row(u))
            recall[a + j] = rel.sum() / n_rel
            ndcg[a + j] = float((rel * discounts[:kk]).sum() / discounts[: min(n_rel, kk)].sum())
    return {f"recall@{k}": float(recall.mean()), f"ndcg@{k}": float(ndcg.mean()),
            "users": len(users), "per_user": {"user_rows": users, f"recall@{k}": recall, f"ndcg@{k}": ndcg}}
