"""Training losses for ``negmine train``: sentence-transformers' contrastive losses, and the
debiased contrastive loss of Chuang et al. (2020) as a sentence-transformers loss.

=============  ==========================================================================
name           loss
=============  ==========================================================================
mnrl           ``MultipleNegativesRankingLoss`` (InfoNCE over in-batch + mined negatives)
cached-mnrl    ``CachedMultipleNegativesRankingLoss`` (the same, GradCache mini-batches)
gist           ``GISTEmbedLoss`` (n negatives): a guide model masks negatives it scores above
               the positive (:class:`MultiNegativeGISTEmbedLoss`)
debiased       :class:`DebiasedMultipleNegativesLoss` (false-negative-corrected InfoNCE)
=============  ==========================================================================

Every loss reads a batch of ``(anchor, positive, negative_1..negative_n)`` rows; the
negatives of an anchor are the other anchors' positives and every mined negative in the batch.

This module imports torch; :mod:`negmine.text.train` imports it only when a loss is built.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from negmine.core.errors import ConfigError

__all__ = [
    "DEFAULT_TEMPERATURE",
    "DebiasedMultipleNegativesLoss",
    "MultiNegativeGISTEmbedLoss",
    "build_loss",
    "cached_mnrl_loss",
    "debiased_loss",
    "gist_loss",
    "merge_columns",
    "mnrl_loss",
]

#: temperature used when none is given: sentence-transformers' defaults (scale 20 for MNRL, 0.01 for GIST)
DEFAULT_TEMPERATURE = {"mnrl": 0.05, "cached-mnrl": 0.05, "gist": 0.01, "debiased": 0.05}


def _st_losses() -> Any:
    """sentence-transformers' loss namespace (moved in v5.4; the old path still works but warns)."""
    import importlib

    try:
        return importlib.import_module("sentence_transformers.sentence_transformer.losses")
    except ModuleNotFoundError:  # sentence-transformers < 5.4
        return importlib.import_module("sentence_transformers.losses")


class DebiasedMultipleNegativesLoss(nn.Module):
    r"""The debiased contrastive loss (Chuang et al., "Debiased Contrastive Learning", NeurIPS 2020)
    on ``(anchor, positive, negative_1..negative_n)`` batches.

    Mined and in-batch negatives are drawn from unlabeled documents, so a fraction ``tau_plus``
    of them are really positives. Instead of summing over the negatives as InfoNCE does, the loss
    subtracts the expected contribution of those hidden positives. For anchor ``i`` with
    ``s⁺ = cos(anchor_i, positive_i)`` and negatives ``s_j`` = the cosine to every other positive
    in the batch and to every mined negative in the batch (``N`` of them, own ones included):

    .. math::

        N g = \max\Big(\frac{\sum_j e^{s_j/t} - \tau^+ N e^{s^+/t}}{1 - \tau^+},\; N e^{-1/t}\Big),
        \qquad
        L_i = -\log \frac{e^{s^+/t}}{e^{s^+/t} + N g}

    and the loss is the mean of ``L_i`` over the anchors. The lower bound ``N e^{-1/t}`` is the
    smallest value the sum can take with cosine scores, so the estimate never goes negative.
    With ``tau_plus = 0`` the loss is exactly ``MultipleNegativesRankingLoss`` with
    ``scale = 1 / temperature``. Computed in log space (stable at small temperatures).

    Unlike :class:`GISTEmbedLoss`, which removes suspected false negatives one by one with a guide
    model, this loss corrects for them on average, with no second model; unlike
    ``MultipleNegativesRankingLoss``, it does not push away the hidden positives at full weight.

    Parameters
    ----------
    model
        The ``SentenceTransformer`` being trained.
    tau_plus
        Class prior ``τ⁺``: the expected share of the negatives that are positives, ``0 <= τ⁺ < 1``.
    temperature
        ``t`` in the formula (``scale = 1 / t`` in sentence-transformers' terms), ``> 0``.

    Examples
    --------
    >>> loss = DebiasedMultipleNegativesLoss(model, tau_plus=0.1, temperature=0.05)  # doctest: +SKIP
    >>> SentenceTransformerTrainer(model=model, train_dataset=rows, loss=loss).train()  # doctest: +SKIP
    """

    def __init__(self, model: Any, tau_plus: float = 0.1, temperature: float = 0.05) -> None:
        super().__init__()
        if not 0.0 <= tau_plus < 1.0:
            raise ConfigError(f"tau_plus must be in [0, 1), got {tau_plus!r}; pass e.g. --tau-plus 0.1")
        if not temperature > 0.0:
            raise ConfigError(f"temperature must be > 0, got {temperature!r}; pass e.g. --temperature 0.05")
        self.model = model
        self.tau_plus = float(tau_plus)
        self.temperature = float(temperature)

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        embeddings = [self.model(features)["sentence_embedding"] for features in sentence_features]
        return self.compute_loss_from_embeddings(embeddings, labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None = None) -> Tensor:
        """The loss of one batch from its column embeddings ``[anchors, positives, negatives_1, ...]``,
        each ``float[batch, dim]``."""
        if len(embeddings) < 2:
            raise ValueError(f"expected (anchor, positive, ...) columns, got {len(embeddings)} column(s)")
        anchors = nn.functional.normalize(embeddings[0], dim=-1)
        docs = nn.functional.normalize(torch.cat(embeddings[1:], dim=0), dim=-1)
        b = anchors.size(0)
        logits = anchors @ docs.T / self.temperature  # (b, b * (1 + n)); column i is anchor i's positive
        rows = torch.arange(b, device=logits.device)
        pos = logits[rows, rows]
        n = logits.size(1) - 1
        if n == 0:  # one anchor and no mined negative: nothing to contrast with
            return logits.sum() * 0.0
        own = torch.zeros_like(logits, dtype=torch.bool)
        own[rows, rows] = True
        log_sum = torch.logsumexp(logits.masked_fill(own, -math.inf), dim=1)  # log Σ_j e^{s_j/t}
        if self.tau_plus > 0.0:
            # log(Σ - τ⁺ N e^{s⁺/t}) = log Σ + log(1 - e^{log(τ⁺ N) + s⁺/t - log Σ}); -inf when not positive
            ratio = torch.exp(torch.clamp(math.log(self.tau_plus * n) + pos - log_sum, max=0.0))
            rest = 1.0 - ratio
            log_est = torch.where(rest > 0, log_sum + torch.log(torch.clamp(rest, min=1e-30)),
                                  torch.full_like(log_sum, -math.inf))
            log_est = log_est - math.log1p(-self.tau_plus)
        else:
            log_est = log_sum
        log_ng = torch.clamp(log_est, min=math.log(n) - 1.0 / self.temperature)
        return (torch.logaddexp(pos, log_ng) - pos).mean()

    def get_config_dict(self) -> dict[str, Any]:
        return {"tau_plus": self.tau_plus, "temperature": self.temperature}

    @property
    def citation(self) -> str:
        return """
@inproceedings{chuang2020debiased,
    title={Debiased Contrastive Learning},
    author={Chuang, Ching-Yao and Robinson, Joshua and Lin, Yen-Chen and Torralba, Antonio and Jegelka, Stefanie},
    booktitle={Advances in Neural Information Processing Systems},
    year={2020}
}
"""


def merge_columns(features: list[dict[str, Any]], *, pad_token_id: int = 0, padding_side: str = "right") -> dict[
        str, Any]:
    """Stack several tokenized columns (``input_ids`` / ``attention_mask`` / ``token_type_ids``
    ``int[batch, len]`` each) into one column of ``batch × len(features)`` rows, padding to the
    longest (``pad_token_id`` for ids, 0 elsewhere, on ``padding_side``); other entries must be
    equal across columns (such as ``modality``)."""
    out: dict[str, Any] = {}
    for key, first in features[0].items():
        values = [f[key] for f in features]
        if isinstance(first, Tensor) and first.ndim == 2:
            width = max(int(v.size(1)) for v in values)
            fill = pad_token_id if key == "input_ids" else 0
            padded = []
            for v in values:
                pad = torch.full((v.size(0), width - v.size(1)), fill, dtype=v.dtype, device=v.device)
                padded.append(torch.cat([pad, v] if padding_side == "left" else [v, pad], dim=1))
            out[key] = torch.cat(padded, dim=0)
        elif isinstance(first, Tensor):
            raise ValueError(f"cannot merge feature {key!r} of shape {tuple(first.shape)} across negative columns")
        elif all(v == first for v in values):
            out[key] = first
        else:
            raise ValueError(f"feature {key!r} differs across negative columns; cannot merge them")
    return out


class MultiNegativeGISTEmbedLoss(_st_losses().GISTEmbedLoss):  # type: ignore[misc]
    """sentence-transformers' ``GISTEmbedLoss`` (Solatorio 2024) on ``(anchor, positive,
    negative_1..negative_n)`` rows.

    ``GISTEmbedLoss`` reads at most one negative column; here the ``n`` negative columns are
    stacked into one column of ``batch × n`` rows, so every anchor is contrasted with every mined
    negative in the batch (its own and the other rows'), as with ``mnrl`` — each one masked out
    when the guide model scores it above the anchor's positive. With one negative column it is
    ``GISTEmbedLoss`` unchanged.
    """

    def forward(self, sentence_features: Iterable[dict[str, Any]], labels: Tensor | None = None) -> Tensor:
        features = list(sentence_features)
        if len(features) > 3:
            tok = self.model.tokenizer
            features = [*features[:2], merge_columns(features[2:], pad_token_id=int(tok.pad_token_id or 0),
                                                     padding_side=str(getattr(tok, "padding_side", "right")))]
        loss: Tensor = super().forward(features, labels)
        return loss


def mnrl_loss(model: Any, *, temperature: float, **_: Any) -> nn.Module:
    """``MultipleNegativesRankingLoss`` (van den Oord et al. 2018; Henderson et al. 2017) with
    ``scale = 1 / temperature``: in-batch and mined negatives, no false-negative guard."""
    return _st_losses().MultipleNegativesRankingLoss(model, scale=1.0 / temperature)


def cached_mnrl_loss(model: Any, *, temperature: float, mini_batch_size: int, **_: Any) -> nn.Module:
    """``CachedMultipleNegativesRankingLoss`` (GradCache, Gao et al. 2021): the same loss as
    ``mnrl`` for large batches in small memory; ``mini_batch_size`` changes memory, not the result."""
    if mini_batch_size < 1:
        raise ConfigError(f"mini_batch_size must be >= 1, got {mini_batch_size}; pass e.g. --mini-batch-size 8")
    return _st_losses().CachedMultipleNegativesRankingLoss(model, scale=1.0 / temperature,
                                                           mini_batch_size=mini_batch_size)


def gist_loss(model: Any, *, temperature: float, guide: Any = None, **_: Any) -> nn.Module:
    """:class:`MultiNegativeGISTEmbedLoss` (Solatorio 2024): the guide model scores every in-batch and
    mined negative, and those it scores above the anchor's positive are masked out of the softmax."""
    if guide is None:
        raise ConfigError("the gist loss needs a guide model")
    return MultiNegativeGISTEmbedLoss(model, guide, temperature=temperature)


def debiased_loss(model: Any, *, temperature: float, tau_plus: float, **_: Any) -> nn.Module:
    """:class:`DebiasedMultipleNegativesLoss` (Chuang et al. 2020)."""
    return DebiasedMultipleNegativesLoss(model, tau_plus=tau_plus, temperature=temperature)


def build_loss(name: str, model: Any, *, temperature: float | None = None, tau_plus: float = 0.1,
               mini_batch_size: int = 8, guide: Any = None) -> nn.Module:
    """The loss registered as ``name`` in :data:`negmine.text.train.LOSSES`, for ``model``.

    Parameters
    ----------
    name
        ``mnrl``, ``cached-mnrl``, ``gist`` or ``debiased``.
    model
        The ``SentenceTransformer`` being trained.
    temperature
        Softmax temperature (``scale = 1 / temperature``); ``None`` uses :data:`DEFAULT_TEMPERATURE`.
    tau_plus
        Class prior of the ``debiased`` loss.
    mini_batch_size
        Mini-batch of ``cached-mnrl`` (memory, not the result).
    guide
        The guide ``SentenceTransformer`` of ``gist`` (required there).
    """
    from negmine.text.train import LOSSES

    factory = LOSSES.get(name).load()  # unknown names fail here, listing the known ones
    t = DEFAULT_TEMPERATURE.get(name, 0.05) if temperature is None else float(temperature)
    if not t > 0.0:
        raise ConfigError(f"temperature must be > 0, got {temperature!r}; pass e.g. --temperature 0.05")
    loss: nn.Module = factory(model, temperature=t, tau_plus=tau_plus, mini_batch_size=mini_batch_size, guide=guide)
    return loss
