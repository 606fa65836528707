"""The options and the result of :func:`negmine.text.train.train` (:mod:`negmine.text.train.trainer`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from negmine.core.errors import ConfigError
from negmine.text.encoders.st import DEFAULT_MODEL

#: the record written next to a trained model
RECORD = "negmine-train.json"
#: ``--batch-sampler`` choices
BATCH_SAMPLERS = ("no-duplicates", "default", "mined")


@dataclass
class TrainConfig:
    """Options of :func:`train` (the ``negmine train`` flags).

    Parameters
    ----------
    model
        Starting sentence-transformers model: a hub name or a local path (see
        :func:`negmine.text.encoders.resolve_model`; MiniLM resolves to its packaged copy).
    loss
        ``mnrl``, ``cached-mnrl``, ``gist`` or ``debiased`` (see :mod:`negmine.text.train.losses`).
    epochs, batch_size, lr, warmup_ratio, max_steps
        Optimisation: passes over the rows, rows per batch, AdamW learning rate with linear decay
        after ``warmup_ratio`` of the steps; ``max_steps`` stops earlier (and overrides ``epochs``).
    max_seq_length
        Tokens per text during training (and re-mining / evaluation encoding).
    seed
        Seeds weights-independent randomness: batch order, dropout.
    num_negatives
        Use at most this many mined negatives per row (the first ones, in the mined order);
        ``None`` uses every mined negative; ``0`` trains on (anchor, positive) pairs only.
    temperature
        Softmax temperature; ``None`` uses the loss's default (0.05; 0.01 for ``gist``).
    tau_plus
        Class prior of the ``debiased`` loss.
    mini_batch_size
        GradCache mini-batch of ``cached-mnrl``.
    guide
        Guide model of ``gist``; ``None`` uses the mining model (the dense model named in the
        mined manifest), else the starting model.
    remine_every
        Re-mine with the live model every this many steps (see the module docstring).
    batch_sampler
        ``no-duplicates`` (sentence-transformers' ``NO_DUPLICATES``), ``default`` (its plain
        random ``BATCH_SAMPLER``) or ``mined`` (:class:`negmine.text.st.MinedBatchSampler`: no known
        positive or likely false negative of another row in a batch, hard batches).
    hardness
        ``mined`` sampler: share of batch slots filled from the run's neighbour graph, in [0, 1].
    mask_false_negatives, mask_target
        Wrap ``mnrl`` / ``cached-mnrl`` in :class:`negmine.text.st.FalseNegativeMasking`: mask in-batch
        candidates scoring above the bound calibrated on known positives for a hidden-positive
        rate of ``mask_target``.
    eval_dataset, eval_split, eval_steps
        A BEIR directory and split to evaluate on (nDCG@10, Recall@100, MRR@10, MAP@100) before
        training, every ``eval_steps`` steps, and at the end.
    query_prompt, document_prompt
        Prompts prepended to anchors / documents during training and live encoding.
    encode_batch_size
        Batch size of the live encoding (re-mining, evaluation).
    """

    model: str = DEFAULT_MODEL
    loss: str = "mnrl"
    epochs: float = 1
    batch_size: int = 16
    lr: float = 2e-5
    warmup_ratio: float = 0.1
    max_steps: int | None = None
    max_seq_length: int | None = 128
    seed: int = 0
    num_negatives: int | None = None
    temperature: float | None = None
    tau_plus: float = 0.1
    mini_batch_size: int = 8
    guide: str | None = None
    remine_every: int | None = None
    batch_sampler: str = "no-duplicates"
    hardness: float = 0.5
    mask_false_negatives: bool = False
    mask_target: float = 0.05
    eval_dataset: str | None = None
    eval_split: str = "test"
    eval_steps: int | None = None
    query_prompt: str | None = None
    document_prompt: str | None = None
    encode_batch_size: int = 32

    def validate(self) -> None:
        """Raise :class:`ConfigError` (one line, naming the flag) on an invalid option."""
        from negmine.text.train import LOSSES

        LOSSES.get(self.loss)

        def positive(name: str, value: Any, flag: str, *, allow_none: bool = False, zero: bool = False) -> None:
            if value is None and allow_none:
                return
            ok = isinstance(value, int) and not isinstance(value, bool) and (value >= 0 if zero else value >= 1)
            if not ok:
                raise ConfigError(f"{name} must be an integer >= {0 if zero else 1}, got {value!r}; fix {flag}")

        positive("batch_size", self.batch_size, "--batch-size")
        positive("max_steps", self.max_steps, "--max-steps", allow_none=True)
        positive("max_seq_length", self.max_seq_length, "--max-seq-length", allow_none=True)
        positive("num_negatives", self.num_negatives, "--num-negatives", allow_none=True, zero=True)
        positive("mini_batch_size", self.mini_batch_size, "--mini-batch-size")
        positive("remine_every", self.remine_every, "--remine-every", allow_none=True)
        positive("eval_steps", self.eval_steps, "--eval-steps", allow_none=True)
        positive("encode_batch_size", self.encode_batch_size, "--encode-batch-size")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ConfigError(f"seed must be an integer, got {self.seed!r}; fix --seed")
        if not (isinstance(self.epochs, (int, float)) and self.epochs > 0):
            raise ConfigError(f"epochs must be > 0, got {self.epochs!r}; fix --epochs")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise ConfigError(f"lr must be > 0, got {self.lr!r}; fix --lr")
        if not (isinstance(self.warmup_ratio, (int, float)) and 0 <= self.warmup_ratio < 1):
            raise ConfigError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio!r}; fix --warmup-ratio")
        if self.temperature is not None and not self.temperature > 0:
            raise ConfigError(f"temperature must be > 0, got {self.temperature!r}; fix --temperature")
        if not 0 <= self.tau_plus < 1:
            raise ConfigError(f"tau_plus must be in [0, 1), got {self.tau_plus!r}; fix --tau-plus")
        if self.batch_sampler not in BATCH_SAMPLERS:
            raise ConfigError(f"unknown batch sampler {self.batch_sampler!r}; known: {', '.join(BATCH_SAMPLERS)}; "
                              "fix --batch-sampler")
        if isinstance(self.hardness, bool) or not (isinstance(self.hardness, (int, float))
                                                   and 0 <= self.hardness <= 1):
            raise ConfigError(f"hardness must be in [0, 1], got {self.hardness!r}; fix --hardness")
        if not isinstance(self.mask_false_negatives, bool):
            raise ConfigError(f"mask_false_negatives must be true or false, got {self.mask_false_negatives!r}")
        if isinstance(self.mask_target, bool) or not (isinstance(self.mask_target, (int, float))
                                                      and 0 < self.mask_target < 1):
            raise ConfigError(f"mask_target must be in (0, 1), got {self.mask_target!r}; fix --mask-target")
        if self.mask_false_negatives and self.loss not in ("mnrl", "cached-mnrl"):
            raise ConfigError(f"--mask-false-negatives wraps the mnrl and cached-mnrl losses, not {self.loss!r}; "
                              "pass --loss mnrl or --loss cached-mnrl")
        if self.eval_steps is not None and self.eval_dataset is None:
            raise ConfigError("--eval-steps needs --eval-dataset DIR")


@dataclass
class TrainResult:
    """Where the model went and what happened (the content of ``negmine-train.json``)."""

    model_dir: Path
    record: dict[str, Any] = field(default_factory=dict)
