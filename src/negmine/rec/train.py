"""Train a recommender on sampled negatives (torch, CPU) and evaluate it by full ranking.

Two models, both user/item embedding tables:

- ``mf-bpr``: matrix factorisation with the BPR loss (Rendle et al., UAI 2009),
  ``−log σ(s(u, i) − s(u, j))`` averaged over the negatives ``j`` of each positive, dot-product
  scores.
- ``simplex``: the cosine contrastive loss of SimpleX (Mao et al., CIKM 2021),
  ``(1 − cos(u, i)) + w / |N| · Σ_j max(0, cos(u, j) − m)`` with margin ``m`` and negative
  weight ``w``. SimpleX's behaviour-aggregation user tower is left out: users are plain
  embeddings, so the comparison isolates the loss and the negatives.

Negatives are drawn afresh every epoch with the library's sampler (seed derived from the run's
seed and the epoch), so what a model trains on is exactly what ``negmine rec mine`` would write.
The model is saved in the embeddings format the ``embeddings`` scorer reads.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from negmine._optional import require
from negmine._progress import progress
from negmine.errors import ConfigError, DataError
from negmine.rec.data import RecData
from negmine.rec.mining import sample_negatives
from negmine.rec.samplers import Sampler
from negmine.rec.scorers import Scorer

__all__ = ["MODELS", "TrainConfig", "evaluate", "train"]

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
    seed: int = 0

    def validate(self) -> None:
        """Every field checked against its declaration in :mod:`negmine.rec.options` (finite,
        in range, a known model), as the CLI checks its flags; a one-line ConfigError otherwise."""
        from negmine.rec.options import check

        if self.model not in MODELS:
            raise ConfigError(f"unknown model {self.model!r}; use one of {', '.join(MODELS)}")
        for name in ("dim", "epochs", "batch_size", "num_negatives", "lr", "margin", "negative_weight", "seed"):
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

    def save(self, path: str | Path) -> Path:
        """The embeddings as ``.npz`` (``user_ids``, ``user_vectors``, ``item_ids``,
        ``item_vectors``), written atomically; ``simplex`` vectors are L2-normalised so that the
        dot product is the cosine it was trained on."""
        from negmine.writers._atomic import write_atomic

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
    positive from ``sampler`` (``scorer`` for the model-based samplers), on the CPU."""
    config.validate()
    torch = require("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small tables: one thread is faster (and deterministic); restored below
    try:
        return _train(torch, data, sampler, config, scorer)
    finally:
        torch.set_num_threads(threads)


def _train(torch: Any, data: RecData, sampler: Sampler, config: TrainConfig, scorer: Scorer | None) -> TrainResult:
    gen = torch.Generator().manual_seed(config.seed)
    n_u, n_i, d = data.n_users, data.n_items, config.dim
    user = torch.nn.Embedding(n_u, d)
    item = torch.nn.Embedding(n_i, d)
    with torch.no_grad():
        user.weight.copy_(torch.randn(n_u, d, generator=gen) * 0.1)
        item.weight.copy_(torch.randn(n_i, d, generator=gen) * 0.1)
    params = [*user.parameters(), *item.parameters()]
    opt = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    users = data.train.query_of_pair()
    items = data.train.indices
    tu, ti = torch.from_numpy(users), torch.from_numpy(items)
    history = []
    for epoch in progress(range(config.epochs), desc=f"training {config.model}", unit="epoch"):
        t0 = time.perf_counter()
        neg, _ = sample_negatives(data, sampler, config.num_negatives, _epoch_seed(config.seed, epoch), scorer=scorer)
        tn = torch.from_numpy(neg)
        perm = torch.randperm(len(users), generator=gen)
        total = 0.0
        for a in range(0, len(users), config.batch_size):
            b = perm[a : a + config.batch_size]
            u, i, j = user(tu[b]), item(ti[b]), tn[b]
            valid = (j >= 0).float()
            v = item(j.clamp(min=0))  # (B, N, d)
            loss = _loss(torch, config, u, i, v, valid)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(b)
        history.append({"epoch": epoch, "loss": total / max(len(users), 1), "seconds": time.perf_counter() - t0})
        if not math.isfinite(history[-1]["loss"]):
            raise ConfigError(f"training {config.model} diverged at epoch {epoch} (loss {history[-1]['loss']}, "
                              f"lr {config.lr}); lower --lr")
        log.info("epoch %d loss %.4f", epoch, history[-1]["loss"])
    uf = user.weight.detach().numpy().astype(np.float32)
    vf = item.weight.detach().numpy().astype(np.float32)
    if config.model == "simplex":
        uf = uf / np.maximum(np.linalg.norm(uf, axis=1, keepdims=True), 1e-12)
        vf = vf / np.maximum(np.linalg.norm(vf, axis=1, keepdims=True), 1e-12)
    info = {"name": config.model, **asdict(config), "sampler": sampler.config()}
    return TrainResult(Scorer(uf, vf, info), config, sampler.config(), data, history)


def _loss(torch: Any, c: TrainConfig, u: Any, i: Any, v: Any, valid: Any) -> Any:
    count = valid.sum(dim=1).clamp(min=1)
    if c.model == "mf-bpr":
        pos = (u * i).sum(-1, keepdim=True)  # (B, 1)
        neg = torch.einsum("bd,bnd->bn", u, v)
        per = torch.nn.functional.softplus(neg - pos) * valid  # −log σ(pos − neg)
        reg = c.l2 * ((u * u).sum() + (i * i).sum() + ((v * v).sum(-1) * valid).sum()) / len(u)
        return (per.sum(1) / count).mean() + reg
    un = torch.nn.functional.normalize(u, dim=-1)
    pos = (un * torch.nn.functional.normalize(i, dim=-1)).sum(-1)
    neg = torch.einsum("bd,bnd->bn", un, torch.nn.functional.normalize(v, dim=-1))
    hinge = torch.relu(neg - c.margin) * valid
    return ((1 - pos) + c.negative_weight * hinge.sum(1) / count).mean()


def evaluate(scorer: Scorer, data: RecData, k: int = 20, block: int = 512) -> dict[str, Any]:
    """Full-ranking ``Recall@k`` (hits / held-out positives, as RecBole) and ``NDCG@k`` on
    ``data.test``: every item is ranked for each user with a held-out positive, except the
    user's training positives. Returns the means and ``per_user`` arrays (for paired tests).
    Data without held-out positives is a :class:`~negmine.errors.DataError` (nothing to measure)."""
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
