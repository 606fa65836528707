"""Fine-tune a sentence-transformers model on mined negatives (extra ``train``).

>>> from negmine.text.train import train
>>> result = train("mined/", "model-out/", model="sentence-transformers/all-MiniLM-L6-v2",
...                loss="debiased", epochs=1)                                # doctest: +SKIP
>>> result.record["timings"]["train_s"]                                    # doctest: +SKIP

``import negmine.text.train`` imports neither torch nor sentence-transformers: :func:`train`,
:class:`TrainConfig` and the losses are loaded on first use. :data:`LOSSES` is the registry of
loss names (``negmine train --loss``).
"""

from __future__ import annotations

from negmine.core.lazy import lazy_attributes
from negmine.core.registry import Registry

__all__ = [
    "LOSSES",
    "DebiasedMultipleNegativesLoss",
    "LiveEncoder",
    "TrainConfig",
    "TrainResult",
    "build_loss",
    "train",
]

#: training losses, by name
LOSSES = Registry("loss function")
LOSSES.register("mnrl", "negmine.text.train.losses:mnrl_loss",
                "MultipleNegativesRankingLoss: InfoNCE over in-batch and mined negatives", ("sentence_transformers",))
LOSSES.register("cached-mnrl", "negmine.text.train.losses:cached_mnrl_loss",
                "CachedMultipleNegativesRankingLoss: mnrl with GradCache mini-batches (large batches, small memory)",
                ("sentence_transformers",))
LOSSES.register("gist", "negmine.text.train.losses:gist_loss",
                "GISTEmbedLoss: the mining model as guide masks negatives it scores above the positive",
                ("sentence_transformers",))
LOSSES.register("debiased", "negmine.text.train.losses:debiased_loss",
                "debiased contrastive loss (Chuang et al. 2020) with class prior tau_plus", ("sentence_transformers",))

_LAZY = {
    "DebiasedMultipleNegativesLoss": "negmine.text.train.losses",
    "build_loss": "negmine.text.train.losses",
    "LiveEncoder": "negmine.text.train.trainer",
    "TrainConfig": "negmine.text.train.trainer",
    "TrainResult": "negmine.text.train.trainer",
    "train": "negmine.text.train.trainer",
}

__getattr__ = lazy_attributes(__name__, _LAZY)
