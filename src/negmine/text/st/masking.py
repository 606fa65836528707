"""In-batch false-negative masking with a bound the data sets: :class:`FalseNegativeMasking`.

GISTEmbedLoss masks an in-batch candidate when a guide model scores it above the anchor's positive
minus a hand-set margin. Here the bound comes from the run's own known positives, measured the way
negmine's calibration measures a policy: an in-batch candidate of anchor ``i`` is treated as a
hidden positive, and masked out of the softmax, when its similarity to the anchor is at least
``bound``, where ``bound`` is the lowest score such that the share of known positives scoring below
it — the positives the mask would let through as negatives, its hidden-positive false-negative
rate, if hidden positives score like known ones — has a 95% Wilson upper bound at most ``target``
(:func:`negmine.text.audit.wilson`). With too few positives to certify the target, the bound is the
lowest known positive score seen.

The known positives are the (anchor, positive) pairs of the most recent ``window`` training rows
of the *earlier* steps, scored by the model being trained (detached; no second forward pass), so
the bound follows the model as it trains; the first step, with no positive seen yet, masks nothing.
Computing the bound before the batch (not from its own positives) makes cached MNRL mask exactly
the cells MNRL masks, mini-batch by mini-batch. The row's own positive and its own mined negatives
are never masked (the run already judged its negatives); only other rows' documents are. The
number of masked cells is kept per step (:attr:`FalseNegativeMasking.history`) and logged by
:meth:`FalseNegativeMasking.callback`.

It wraps ``MultipleNegativesRankingLoss`` or ``CachedMultipleNegativesRankingLoss`` by replacing its
similarity function (the rest of the loss, GradCache included, is sentence-transformers' own)::

    loss = FalseNegativeMasking(MultipleNegativesRankingLoss(model), target=0.05)
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from negmine.core.errors import ConfigError
from negmine.core.stats import wilson

__all__ = ["FalseNegativeMasking", "calibrated_bound"]


def calibrated_bound(positive_scores: np.ndarray, target: float) -> float:
    """The lowest score ``b`` among ``positive_scores`` such that the 95% Wilson upper bound of the
    share of scores below ``b`` is at most ``target`` — the largest such ``k``-th smallest score;
    the smallest score when even ``k = 0`` cannot be certified (too few scores)."""
    s = np.sort(np.asarray(positive_scores, dtype=np.float64))
    n = len(s)
    if n == 0:
        return float("inf")
    k = 0
    while k + 1 < n and wilson(k + 1, n)[1] <= target:
        k += 1
    return float(s[k])


class _MaskedSimilarity:
    """The wrapped loss's similarity function, masking other rows' documents above the bound.

    Called with ``(anchors[begin:end], docs_all)`` where ``docs_all`` stacks the positive and
    negative columns (``B`` rows each); MNRL calls it once, cached MNRL once per mini-batch in
    order, so ``begin`` is a running counter reset at each batch."""

    def __init__(self, owner: FalseNegativeMasking, base: Any) -> None:
        self.owner = owner
        self.base = base
        self.batch = 0
        self.next_row = 0

    def __call__(self, a: Tensor, b: Tensor) -> Tensor:
        sim = self.base(a, b)
        t0 = time.perf_counter()
        B = self.batch
        if B <= 0 or b.size(0) % B:
            raise RuntimeError("FalseNegativeMasking: the wrapped loss called its similarity with a shape other than "
                               "(anchors, stacked documents); use directions=('query_to_doc',) only")
        begin = self.next_row
        m = a.size(0)
        rows = torch.arange(begin, begin + m, device=sim.device)
        self.next_row = 0 if begin + m >= B else begin + m
        owner = self.owner
        with torch.no_grad():
            s = sim.detach()
            cols = torch.arange(b.size(0), device=sim.device) % B
            own = cols[None, :] == rows[:, None]
            owner._fresh.extend(s[torch.arange(m, device=sim.device), rows].float().cpu().tolist())
            mask = (~own) & (s >= owner.bound)
            n_masked = int(mask.sum())
            owner._count(n_masked, int((~own).sum()))
        if n_masked:
            sim = sim.masked_fill(mask, float("-inf"))
        owner.seconds += time.perf_counter() - t0
        return sim

    @property
    def __name__(self) -> str:  # similarity_fct_name() in get_config_dict
        return getattr(self.base, "__name__", "cos_sim")


class FalseNegativeMasking(nn.Module):
    """Wrap an MNRL / cached MNRL loss so that in-batch candidates scoring like a known positive
    are masked out (see the module docstring).

    Parameters
    ----------
    loss
        A ``MultipleNegativesRankingLoss`` or ``CachedMultipleNegativesRankingLoss`` (directions
        ``("query_to_doc",)``, the default).
    target
        The hidden-positive false-negative rate the bound is set for, in ``(0, 1)``.
    window
        Known positive pairs (the most recent training rows) the bound is computed from.

    Attributes
    ----------
    bound
        The bound the next step masks with (``inf`` before the first step).
    history
        One entry per step: ``{"step", "masked", "cells", "bound"}`` (cells = other rows'
        documents scored for the batch's anchors).
    """

    def __init__(self, loss: nn.Module, *, target: float = 0.05, window: int = 1024) -> None:
        super().__init__()
        if not (isinstance(target, (int, float)) and 0.0 < target < 1.0):
            raise ConfigError(f"target must be in (0, 1), got {target!r}; e.g. --mask-target 0.05")
        if not (isinstance(window, int) and window >= 1):
            raise ConfigError(f"window must be an integer >= 1, got {window!r}")
        directions = tuple(getattr(loss, "directions", ("query_to_doc",)))
        if not hasattr(loss, "similarity_fct") or directions != ("query_to_doc",):
            raise ConfigError(f"FalseNegativeMasking wraps MultipleNegativesRankingLoss or its cached variant with "
                              f"directions=('query_to_doc',); got {type(loss).__name__} with directions {directions}")
        self.loss = loss
        self.model = loss.model
        self.target = float(target)
        self.window = window
        self._scores: deque[float] = deque(maxlen=window)
        self._fresh: list[float] = []
        self.bound = float("inf")
        self.history: list[dict[str, Any]] = []
        self.total_masked = 0
        self.total_cells = 0
        self.seconds = 0.0  # spent masking and calibrating (the overhead over the wrapped loss)
        self._step_masked = 0
        self._step_cells = 0
        self._sim = _MaskedSimilarity(self, loss.similarity_fct)
        setattr(loss, "similarity_fct", self._sim)  # noqa: B010 (nn.Module typing)

    def _observe(self) -> None:
        """Add the step's known positive scores to the window and move the bound for the next step."""
        self._scores.extend(self._fresh)
        self._fresh = []
        self.bound = calibrated_bound(np.fromiter(self._scores, dtype=np.float64), self.target)

    def _count(self, masked: int, cells: int) -> None:
        self._step_masked += masked
        self._step_cells += cells

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        features = list(sentence_features)
        if len(features) < 2:
            raise ValueError(f"expected (anchor, positive, ...) columns, got {len(features)}")
        first = next(iter(features[0].values()))
        self._sim.batch = int(first.size(0)) if isinstance(first, Tensor) else 0
        self._sim.next_row = 0
        self._step_masked = self._step_cells = 0
        self._fresh = []
        bound = self.bound
        out: Tensor = self.loss(features, labels)
        self.history.append({"step": len(self.history) + 1, "masked": self._step_masked, "cells": self._step_cells,
                             "bound": round(bound, 6)})
        self.total_masked += self._step_masked
        self.total_cells += self._step_cells
        t0 = time.perf_counter()
        self._observe()
        self.seconds += time.perf_counter() - t0
        return out

    def get_config_dict(self) -> dict[str, Any]:
        inner: dict[str, Any] = getattr(self.loss, "get_config_dict", dict)()
        return {**inner, "mask_target": self.target, "mask_window": self.window}

    @property
    def citation(self) -> str:
        return str(getattr(self.loss, "citation", ""))

    def callback(self) -> Any:
        """A ``transformers.TrainerCallback`` that adds ``masked_cells`` (mean per step since the
        last log) and ``mask_bound`` to the trainer's logs."""
        from negmine.core.optional import require

        base: Any = require("transformers").TrainerCallback
        owner = self

        class MaskingLog(base):
            def __init__(self) -> None:
                self.seen = 0

            def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
                       **kwargs: Any) -> Any:
                new = owner.history[self.seen:]
                if logs is not None and new:
                    from negmine.text.st.callback import _add_to_log

                    _add_to_log(state, logs, {"masked_cells": round(sum(h["masked"] for h in new) / len(new), 3),
                                              "mask_bound": round(owner.bound, 4)})
                    self.seen = len(owner.history)
                return control

        return MaskingLog()
