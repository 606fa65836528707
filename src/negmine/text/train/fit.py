"""The Hugging Face ``Trainer`` runs of :func:`negmine.text.train.train`: training arguments, the
monitoring callback (progress, loss history, periodic evaluation) and the segments with
re-mining in between (see :mod:`negmine.text.train.trainer`)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from typing import Any

from negmine.core.optional import require
from negmine.core.progress import enabled as progress_enabled
from negmine.text.train.config import TrainConfig
from negmine.text.train.models import LiveEncoder
from negmine.text.train.remining import Remining
from negmine.text.train.rows import negative_change, to_dataset, training_rows

log = logging.getLogger(__name__)


#: ``--batch-sampler`` names of sentence-transformers' own samplers
ST_SAMPLERS = {"no-duplicates": "no_duplicates", "default": "batch_sampler"}


def monitor_class() -> Any:
    """The ``Monitor`` callback class, built on first use (``transformers`` is imported then)."""
    base: Any = require("transformers").TrainerCallback

    class Monitor(base):
        """Progress bar on stderr, loss history, periodic evaluation; ``offset`` = steps done in
        earlier segments."""

        def __init__(self, total: int, evaluate: Any, eval_steps: int | None) -> None:
            self.total = total
            self.offset = 0
            self.history: list[dict[str, Any]] = []
            self.evaluate = evaluate
            self.eval_steps = eval_steps
            self.bar: Any = None

        def open(self) -> None:
            if progress_enabled():
                from tqdm.auto import tqdm

                self.bar = tqdm(total=self.total, desc="train", unit="step", leave=False, dynamic_ncols=True)

        def close(self) -> None:
            if self.bar is not None:
                self.bar.close()
                self.bar = None

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            step = self.offset + state.global_step
            if self.bar is not None:
                self.bar.update(1)
            if self.eval_steps and step % self.eval_steps == 0 and step < self.total:
                self.evaluate(step)
            return control

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
                   **kwargs: Any) -> Any:
            logs = logs or {}
            if "loss" in logs:
                entry: dict[str, Any] = {"step": self.offset + state.global_step,
                         **{k: float(logs[k]) for k in ("loss", "learning_rate", "grad_norm") if k in logs}}
                self.history.append(entry)
                log.info("step %d: loss %.4f", entry["step"], entry["loss"])
                if self.bar is not None:
                    self.bar.set_postfix(loss=f"{entry['loss']:.4f}")
            return control

    return Monitor


def _training_args(cfg: TrainConfig, output_dir: str, columns: Sequence[str], *, seed: int, max_steps: int,
                   logging_steps: int, batch_sampler: Any = None) -> Any:
    st = require("sentence_transformers")
    transformers = require("transformers")
    kwargs: dict[str, Any] = {}
    if int(transformers.__version__.split(".")[0]) >= 5:
        kwargs["warmup_steps"] = float(cfg.warmup_ratio)  # a float is a ratio in transformers 5
    else:
        kwargs["warmup_ratio"] = float(cfg.warmup_ratio)
    prompts: dict[str, str] = {}
    for column in columns:
        prompt = cfg.query_prompt if column == "anchor" else cfg.document_prompt
        if prompt:
            prompts[column] = prompt
    return st.SentenceTransformerTrainingArguments(
        output_dir=output_dir,
        num_train_epochs=float(cfg.epochs),
        max_steps=max_steps,
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=float(cfg.lr),
        batch_sampler=batch_sampler if batch_sampler is not None else ST_SAMPLERS[cfg.batch_sampler],
        seed=seed,
        data_seed=seed,
        report_to="none",
        save_strategy="no",
        eval_strategy="no",
        use_cpu=True,
        logging_steps=logging_steps,
        disable_tqdm=True,
        dataloader_num_workers=0,
        prompts=prompts or None,
        **kwargs,
    )


def _make_trainer(model: Any, loss: Any, dataset: Any, args: Any, monitor: Any,
                  optimizers: tuple[Any, Any] = (None, None)) -> Any:
    st = require("sentence_transformers")
    transformers = require("transformers")
    trainer = st.SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss,
                                            optimizers=optimizers, callbacks=[monitor])
    for cb in (transformers.PrinterCallback, transformers.ProgressCallback):  # they print to stdout
        trainer.remove_callback(cb)
    return trainer


def run_evaluation(data: Any, encoder: LiveEncoder, step: int) -> dict[str, Any]:
    """Evaluate the live model on ``data`` at ``step``: ``{"step", "metrics", "seconds"}``."""
    from negmine.text.evaluate import evaluate
    from negmine.text.retrievers.dense import Dense

    t0 = time.perf_counter()
    encoder.step = step
    result = evaluate(data, Dense(encoder=encoder))
    log.info("step %d: %s", step, ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items()))
    return {"step": step, "metrics": result.metrics, "seconds": round(time.perf_counter() - t0, 4)}


class Fit:
    """The Trainer runs of one :func:`train` call: one plain run, or segments with re-mining in
    between (one optimizer and one learning-rate schedule across the segments)."""

    def __init__(self, cfg: TrainConfig, model: Any, loss: Any, monitor: Any, tmp: str, logging_steps: int) -> None:
        self.cfg = cfg
        self.model = model
        self.loss = loss
        self.monitor = monitor
        self.tmp = tmp
        self.logging_steps = logging_steps
        self.segments: list[dict[str, Any]] = []
        self.refreshes: list[dict[str, Any]] = []
        self.remine_s = 0.0
        #: the ``batch_sampler`` of the training arguments when not one of ST's own (the mined sampler's factory)
        self.batch_sampler: Any = None
        #: called with each re-mining result (the mined sampler takes the new run's index)
        self.on_remined: Any = None

    def _trainer(self, dataset: Any, *, seed: int, max_steps: int, optimizers: tuple[Any, Any] = (None, None)) -> Any:
        args = _training_args(self.cfg, self.tmp, dataset.column_names, seed=seed, max_steps=max_steps,
                              logging_steps=self.logging_steps, batch_sampler=self.batch_sampler)
        return _make_trainer(self.model, self.loss, dataset, args, self.monitor, optimizers)

    def _segment(self, trainer: Any, dataset: Any, start: int, seed: int) -> int:
        self.monitor.offset = start
        output = trainer.train()
        steps = int(trainer.state.global_step)
        self.segments.append({"start": start, "steps": steps, "seed": seed, "rows": len(dataset),
                              "train_loss": float(output.training_loss)})
        return steps

    def once(self, dataset: Any) -> int:
        """Train ``epochs`` (or ``max_steps``) in one Trainer run; the number of steps taken."""
        cfg = self.cfg
        return self._segment(self._trainer(dataset, seed=cfg.seed, max_steps=cfg.max_steps or -1), dataset, 0,
                             cfg.seed)

    def with_remining(self, dataset: Any, rows: list[dict[str, Any]], remining: Remining, n: int) -> int:
        """Train in segments of ``remine_every`` steps, re-mining after each but the last."""
        cfg = self.cfg
        probe = self._trainer(dataset, seed=cfg.seed, max_steps=-1)
        total = cfg.max_steps or max(1, math.ceil(cfg.epochs * len(probe.get_train_dataloader())))
        self.monitor.total = total
        if self.monitor.bar is not None:
            self.monitor.bar.total = total
        optimizer = probe.create_optimizer()
        scheduler = require("transformers").get_scheduler(
            probe.args.lr_scheduler_type, optimizer=optimizer,
            num_warmup_steps=probe.args.get_warmup_steps(total), num_training_steps=total)
        del probe
        done, i = 0, 0
        while True:
            seed = cfg.seed + i
            trainer = self._trainer(dataset, seed=seed, max_steps=min(int(cfg.remine_every or 1), total - done),
                                    optimizers=(optimizer, scheduler))
            done += self._segment(trainer, dataset, done, seed)
            i += 1
            if done >= total:
                return done
            t0 = time.perf_counter()
            if remining.encoder is not None:
                remining.encoder.step = done
            new_rows, new_texts, stats = remining.remine()
            if self.on_remined is not None:
                self.on_remined(remining.result)
            new_train, counts = training_rows(new_rows, new_texts, n)
            change = negative_change(rows, new_rows)
            seconds = time.perf_counter() - t0
            self.remine_s += seconds
            self.refreshes.append({"step": done, **change, **counts, **stats, "seconds": round(seconds, 4)})
            log.info("re-mined at step %d: %.1f%% new (query, negative) pairs, mean Jaccard %.3f",
                     done, 100 * change["new_pair_share"], change["mean_jaccard"])
            if new_train:
                rows, dataset = new_rows, to_dataset(new_train)
            else:
                log.warning("re-mining at step %d left no query with %d negatives; keeping the previous negatives",
                            done, n)
