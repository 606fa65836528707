"""``train(mined_dir, out, ...)``: fine-tune a sentence-transformers model on a mining output.

The training rows are the ``n-tuple`` export of the mined directory, ``(anchor, positive,
negative_1..negative_n)`` with one row per (query, positive); a query with fewer than ``n``
negatives is left out (counted in ``negmine-train.json``, never padded). Batches come from
sentence-transformers' no-duplicates sampler, so no text appears twice in a batch and the
in-batch negatives are really other documents.

Re-mining (``remine_every=N``, the ANCE / AR2 pattern) trains in **segments** of ``N``
optimisation steps. After each segment the live model re-encodes the corpus and the queries,
the query set is re-mined with the settings of the mined directory (its manifest ``options``:
data, filters, sampler, number of negatives, seed), and the next segment trains on the new
negatives. The HF ``Trainer`` cannot swap its dataset in the middle of an epoch (its data loader
is built once per ``train()`` call), hence segments: one optimizer and one learning-rate
schedule, created once for the whole run, carry over from segment to segment, so the
optimisation is continuous; only the batches change. Segment ``i`` draws its batches from a
fresh shuffle seeded with ``seed + i`` — with ``N`` shorter than an epoch, which rows a segment
sees is random rather than each row exactly once per epoch. Lexical candidate sources
(``bm25``, ``precomputed``) are replaced by dense retrieval with the live model when re-mining
(ANCE: warm up on BM25 negatives, then mine with the model itself); inside ``union`` /
``hybrid`` only the dense members switch to the live model.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from negmine._optional import require
from negmine._progress import enabled as progress_enabled
from negmine.encoders.base import Kind
from negmine.encoders.st import DEFAULT_MODEL, resolve_model
from negmine.errors import ConfigError, DataError

log = logging.getLogger(__name__)

__all__ = ["LiveEncoder", "TrainConfig", "TrainResult", "train"]

RECORD = "negmine-train.json"


@dataclass
class TrainConfig:
    """Options of :func:`train` (the ``negmine train`` flags).

    Parameters
    ----------
    model
        Starting sentence-transformers model: a hub name or a local path (see
        :func:`negmine.encoders.resolve_model`; MiniLM resolves to its packaged copy).
    loss
        ``mnrl``, ``cached-mnrl``, ``gist`` or ``debiased`` (see :mod:`negmine.train.losses`).
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
    eval_dataset: str | None = None
    eval_split: str = "test"
    eval_steps: int | None = None
    query_prompt: str | None = None
    document_prompt: str | None = None
    encode_batch_size: int = 32

    def validate(self) -> None:
        """Raise :class:`ConfigError` (one line, naming the flag) on an invalid option."""
        from negmine.train import LOSSES

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
        if self.eval_steps is not None and self.eval_dataset is None:
            raise ConfigError("--eval-steps needs --eval-dataset DIR")


@dataclass
class TrainResult:
    """Where the model went and what happened (the content of ``negmine-train.json``)."""

    model_dir: Path
    record: dict[str, Any] = field(default_factory=dict)


class LiveEncoder:
    """An :class:`~negmine.encoders.Encoder` over a ``SentenceTransformer`` held in memory — the
    model being trained — so re-mining and evaluation see its current weights.

    ``step`` is part of the identity (the weights change with it); use no embedding cache.
    Encoding switches the model to eval mode (no dropout) and restores its mode afterwards.
    """

    def __init__(self, model: Any, *, query_prompt: str | None = None, document_prompt: str | None = None,
                 batch_size: int = 32, normalize: bool = True) -> None:
        self.model = model
        self.query_prompt = query_prompt
        self.document_prompt = document_prompt
        self.batch_size = batch_size
        self.normalize = normalize
        self.step = 0

    def identity(self, kind: Kind) -> str:
        prompt = self.query_prompt if kind == "query" else self.document_prompt
        return f"live-model:step={self.step}:prompt={prompt!r}:normalize={self.normalize}"

    def encode(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        fn = getattr(self.model, "encode_query" if kind == "query" else "encode_document", self.model.encode)
        prompt = self.query_prompt if kind == "query" else self.document_prompt
        kwargs: dict[str, Any] = {
            "batch_size": self.batch_size, "normalize_embeddings": self.normalize, "convert_to_numpy": True,
            "show_progress_bar": progress_enabled() and len(texts) > self.batch_size,
        }
        if prompt is not None:
            kwargs["prompt"] = prompt
        was_training = self.model.training
        try:
            out = fn(list(texts), **kwargs)
        finally:
            self.model.train(was_training)
        return np.asarray(out, dtype=np.float32)


# ---------------------------------------------------------------------------------------------
# training rows


def _trim(rows: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    return [{**r, "negative_ids": list(r["negative_ids"])[:n], "negative_scores": list(r["negative_scores"])[:n]}
            for r in rows]


def training_rows(rows: list[dict[str, Any]], texts: dict[tuple[str, str], dict[str, str]],
                  num_negatives: int) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """``n-tuple`` rows using the first ``num_negatives`` negatives of each mined row, and counts:
    ``rows``, ``queries``, ``queries_used``, ``queries_left_out_short`` (fewer negatives)."""
    from negmine.writers.export import export_rows

    trimmed = _trim(rows, num_negatives)
    out = export_rows("n-tuple", trimmed, texts, num_negatives=num_negatives)
    short = sum(1 for r in trimmed if len(r["negative_ids"]) < num_negatives)
    return out, {"rows": len(out), "queries": len(rows), "queries_used": len(rows) - short,
                 "queries_left_out_short": short}


def _dataset(rows: list[dict[str, Any]]) -> Any:
    from negmine.writers.export import rows_to_columns

    return require("datasets").Dataset.from_dict(rows_to_columns(rows))


def negative_change(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> dict[str, float | int]:
    """How much the negatives changed between two sets of mined rows (same queries):
    ``new_pair_share`` = share of the new (query, negative) pairs that were not there before;
    ``mean_jaccard`` = mean over queries of ``|old ∩ new| / |old ∪ new|`` (queries with no
    negatives in either are skipped)."""
    before = {r["query_id"]: set(r["negative_ids"]) for r in old}
    after = {r["query_id"]: set(r["negative_ids"]) for r in new}
    pairs = sum(len(s) for s in after.values())
    fresh = sum(len(s - before.get(q, set())) for q, s in after.items())
    jac = [len(before.get(q, set()) & s) / len(before.get(q, set()) | s)
           for q, s in after.items() if before.get(q) or s]
    return {"pairs_before": sum(len(s) for s in before.values()), "pairs_after": pairs, "new_pairs": fresh,
            "new_pair_share": fresh / pairs if pairs else 0.0,
            "mean_jaccard": float(np.mean(jac)) if jac else 1.0}


# ---------------------------------------------------------------------------------------------
# models


def load_model(name: str, *, max_seq_length: int | None, role: str = "model") -> tuple[Any, str]:
    """``(SentenceTransformer on cpu, resolved path or name)``; :class:`ConfigError` when it
    cannot be loaded offline."""
    st = require("sentence_transformers")
    path = resolve_model(name)
    try:
        model = st.SentenceTransformer(path, device="cpu")
    except OSError as exc:
        flag = "--guide" if role == "guide" else "--model"
        raise ConfigError(
            f"cannot load {role} {name!r} ({exc.__class__.__name__}); it is not a local directory and cannot be "
            f"downloaded here: pass a local model directory with {flag}"
        ) from None
    if max_seq_length is not None:
        model.max_seq_length = max_seq_length
    return model, path


def mining_model(manifest: dict[str, Any]) -> str | None:
    """The sentence-transformers model a mining run retrieved with (a dense or faiss retriever,
    or such a member of union / hybrid); ``None`` when it used none (BM25, a run file, an
    encoder built in code)."""

    def walk(c: Any) -> str | None:
        if not isinstance(c, dict):
            return None
        m = c.get("model")
        if c.get("name") in ("dense", "faiss") and isinstance(m, str) and m:
            if ":" not in m or Path(m).exists():  # encoders built in code have identities such as "hashing:..."
                return m
        for sub in c.get("members") or []:
            found = walk(sub)
            if found:
                return found
        return None

    return walk((manifest.get("config") or {}).get("retriever"))


# ---------------------------------------------------------------------------------------------
# re-mining


class Remining:
    """Re-mines the query set of a mining output with the live model (see the module docstring).

    Parameters
    ----------
    manifest
        The mined directory's manifest; its ``options`` hold the mining settings.
    encoder
        The :class:`LiveEncoder` of the model being trained.
    num_negatives
        Negatives per training row (the mined rows are trimmed to this many).
    """

    def __init__(self, manifest: dict[str, Any], encoder: LiveEncoder, num_negatives: int) -> None:
        self.manifest = manifest
        self.encoder = encoder
        self.num_negatives = num_negatives
        self.options: dict[str, Any] = {}
        self.data: Any = None
        self.retriever_name = ""

    def prepare(self) -> None:
        """Load the mining input data now, so a missing or changed input fails before training."""
        from negmine.options import DEFAULTS, load_data

        opts = self.manifest.get("options")
        if not isinstance(opts, dict):
            raise DataError("the mining output records no options (it was not written by 'negmine mine'); "
                            "re-mining needs them: mine with 'negmine mine' or train without --remine-every")
        self.options = {**DEFAULTS, **{k: v for k, v in opts.items() if k in DEFAULTS}}
        for key in ("dataset", "corpus", "queries", "qrels", "pairs"):
            p = self.options.get(key)
            if p and not Path(p).exists():
                raise DataError(f"{p}: mining input not found; re-mining reads the data the mining run read "
                                "(relative paths are relative to where 'negmine mine' ran): run from there")
        self.data = load_data(self.options)
        want = self.manifest.get("data_fingerprint")
        if want and self.data.fingerprint() != want:
            raise DataError("the mining input data changed since it was mined (fingerprint differs); "
                            "re-mine with 'negmine mine' before training with --remine-every")

    def _retriever(self) -> Any:
        from negmine.options import build_retriever
        from negmine.retrievers.embedding import EmbeddingRetriever

        o = dict(self.options)
        if o["retriever"] in ("bm25", "precomputed"):
            o["retriever"] = "dense"
        retriever = build_retriever(o)

        def attach(r: Any) -> None:
            if isinstance(r, EmbeddingRetriever):
                r.encoder = self.encoder
            for m in getattr(r, "members", []) or []:
                attach(m)

        attach(retriever)
        self.retriever_name = o["retriever"]
        return retriever

    def remine(self) -> tuple[list[dict[str, Any]], dict[tuple[str, str], dict[str, str]], dict[str, Any]]:
        """``(rows, texts, stats)`` of a fresh mining pass with the live model."""
        from negmine.options import mine_from_options

        # the one orchestration path: the same filters, sampler, scorers and calibration as the
        # mining run, with the live model as the retriever's encoder
        result = mine_from_options(self.options, data=self.data, retriever=self._retriever())
        rows = result.to_rows()
        stats = {"retriever": self.retriever_name, "shortfall_queries": int((result.columns < 0).any(axis=1).sum()),
                 "timings": {k: round(float(v), 4) for k, v in result.timings.items()}}
        return _trim(rows, self.num_negatives), result.texts(), stats


# ---------------------------------------------------------------------------------------------
# the trainer


def _callback_class() -> Any:
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


def _check_out(out: Path, overwrite: bool) -> None:
    if not out.exists():
        return
    if not out.is_dir():
        raise ConfigError(f"{out}: exists and is not a directory; choose another --out")
    if not any(out.iterdir()):
        return
    if not overwrite:
        raise ConfigError(f"{out}: already exists and is not empty; choose another --out or pass --overwrite")
    if not (out / RECORD).is_file():
        raise ConfigError(f"{out}: holds files that are not a negmine-trained model; --overwrite only replaces "
                          "a previous 'negmine train' output: choose another --out")


def _training_args(cfg: TrainConfig, output_dir: str, columns: Sequence[str], *, seed: int, max_steps: int,
                   logging_steps: int) -> Any:
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
        batch_sampler="no_duplicates",
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


def _run_evaluation(data: Any, encoder: LiveEncoder, step: int) -> dict[str, Any]:
    from negmine.evaluate import evaluate
    from negmine.retrievers.dense import Dense

    t0 = time.perf_counter()
    encoder.step = step
    result = evaluate(data, Dense(encoder=encoder))
    log.info("step %d: %s", step, ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items()))
    return {"step": step, "metrics": result.metrics, "seconds": round(time.perf_counter() - t0, 4)}


class _Fit:
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

    def _trainer(self, dataset: Any, *, seed: int, max_steps: int, optimizers: tuple[Any, Any] = (None, None)) -> Any:
        args = _training_args(self.cfg, self.tmp, dataset.column_names, seed=seed, max_steps=max_steps,
                              logging_steps=self.logging_steps)
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
            remining.encoder.step = done
            new_rows, new_texts, stats = remining.remine()
            new_train, counts = training_rows(new_rows, new_texts, n)
            change = negative_change(rows, new_rows)
            seconds = time.perf_counter() - t0
            self.remine_s += seconds
            self.refreshes.append({"step": done, **change, **counts, **stats, "seconds": round(seconds, 4)})
            log.info("re-mined at step %d: %.1f%% new (query, negative) pairs, mean Jaccard %.3f",
                     done, 100 * change["new_pair_share"], change["mean_jaccard"])
            if new_train:
                rows, dataset = new_rows, _dataset(new_train)
            else:
                log.warning("re-mining at step %d left no query with %d negatives; keeping the previous negatives",
                            done, n)


def train(mined_dir: str | Path, out: str | Path, config: TrainConfig | None = None, *, overwrite: bool = False,
          **options: Any) -> TrainResult:
    """Fine-tune a sentence-transformers model on the negatives mined into ``mined_dir`` and save
    it to ``out`` (``SentenceTransformer(out)`` loads it) with ``out/negmine-train.json``.

    Parameters
    ----------
    mined_dir
        The ``--out`` of ``negmine mine`` (mined rows, texts, manifest).
    out
        Model directory to write; refused when it exists and is not empty, unless ``overwrite``
        (which only replaces a previous ``negmine train`` output).
    config
        A :class:`TrainConfig`; ``options`` override its fields (``train(d, o, loss="gist")``).

    Returns
    -------
    TrainResult
        The model directory and the record written to ``negmine-train.json``: configuration,
        seed, the mining run id, dataset counts, loss history, evaluations, re-mining refreshes
        (share of new (query, negative) pairs, mean Jaccard per query) and timings.

    Raises
    ------
    ConfigError
        Invalid options, an unloadable model, or an occupied ``out``.
    DataError
        ``mined_dir`` is not a mining output, or no row has enough negatives.
    """
    t_start = time.perf_counter()
    known = set(asdict(TrainConfig()))
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(f"unknown training option(s) {', '.join(map(repr, unknown))}; known options: "
                          f"{', '.join(sorted(known))}")
    cfg = TrainConfig(**{**asdict(config or TrainConfig()), **options})
    cfg.validate()
    out = Path(out)
    _check_out(out, overwrite)
    from negmine.writers.mined import load_mined, versions

    rows, texts, manifest = load_mined(mined_dir)
    for module in ("torch", "sentence_transformers", "transformers", "datasets", "accelerate"):
        require(module)
    mined_n = int(manifest.get("num_negatives", max((len(r["negative_ids"]) for r in rows), default=0)))
    n = mined_n if cfg.num_negatives is None else cfg.num_negatives
    if n > mined_n:
        raise ConfigError(f"--num-negatives {n}: the mining run in {mined_dir} has at most {mined_n} negatives per "
                          f"query; pass --num-negatives {mined_n} or fewer")
    rows = _trim(rows, n)
    train_rows, counts = training_rows(rows, texts, n)
    if not train_rows:
        raise DataError(f"{mined_dir}: no query has {n} negatives ({counts['queries']} queries, all short); "
                        "pass a smaller --num-negatives")
    if counts["queries_left_out_short"]:
        log.warning("%d of %d queries have fewer than %d negatives and are left out of training",
                    counts["queries_left_out_short"], counts["queries"], n)

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    model, model_path = load_model(cfg.model, max_seq_length=cfg.max_seq_length)
    guide_info: dict[str, Any] | None = None
    guide = None
    if cfg.loss == "gist":
        mined_model = mining_model(manifest)
        guide_name = cfg.guide or mined_model or cfg.model
        source = "--guide" if cfg.guide else ("mining model" if mined_model else "starting model")
        guide, guide_path = load_model(guide_name, max_seq_length=cfg.max_seq_length, role="guide")
        guide_info = {"name": guide_name, "path": guide_path, "source": source}
    from negmine.train.losses import DEFAULT_TEMPERATURE, build_loss

    loss = build_loss(cfg.loss, model, temperature=cfg.temperature, tau_plus=cfg.tau_plus,
                      mini_batch_size=cfg.mini_batch_size, guide=guide)
    encoder = LiveEncoder(model, query_prompt=cfg.query_prompt, document_prompt=cfg.document_prompt,
                          batch_size=cfg.encode_batch_size)
    remining = None
    if cfg.remine_every is not None:
        remining = Remining(manifest, encoder, n)
        remining.prepare()
    eval_data = None
    if cfg.eval_dataset is not None:
        from negmine.data import load_beir

        eval_data = load_beir(cfg.eval_dataset, cfg.eval_split, exclude_splits=[])
    timings["load_s"] = time.perf_counter() - t0

    evaluations: list[dict[str, Any]] = []
    eval_time = [0.0]

    def evaluate_at(step: int) -> None:
        if eval_data is not None:
            evaluations.append(_run_evaluation(eval_data, encoder, step))
            eval_time[0] += evaluations[-1]["seconds"]

    dataset = _dataset(train_rows)
    est_steps = cfg.max_steps or max(1, math.ceil(cfg.epochs * math.ceil(len(train_rows) / cfg.batch_size)))
    logging_steps = max(1, est_steps // 50)
    monitor = _callback_class()(est_steps, evaluate_at, cfg.eval_steps)
    evaluate_at(0)
    eval_before = eval_time[0]
    t_train = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="negmine-train-") as tmp:
        fit = _Fit(cfg, model, loss, monitor, tmp, logging_steps)
        monitor.open()
        try:
            if remining is None:
                total = fit.once(dataset)
            else:
                total = fit.with_remining(dataset, rows, remining, n)
        finally:
            monitor.close()
    remine_s = fit.remine_s
    segments, refreshes = fit.segments, fit.refreshes
    timings["train_s"] = time.perf_counter() - t_train - remine_s - (eval_time[0] - eval_before)
    timings["remine_s"] = remine_s
    if eval_data is not None and (not evaluations or evaluations[-1]["step"] != total):
        evaluate_at(total)
    timings["eval_s"] = eval_time[0]

    t_save = time.perf_counter()
    resolved_t = cfg.temperature if cfg.temperature is not None else DEFAULT_TEMPERATURE.get(cfg.loss)
    get_config: Any = getattr(loss, "get_config_dict", dict)
    loss_params: dict[str, Any] = get_config()
    record: dict[str, Any] = {
        "negmine": versions().get("negmine", "unknown"),
        "config": {**asdict(cfg), "temperature": resolved_t, "num_negatives": n},
        "seed": cfg.seed,
        "mined_dir": str(Path(mined_dir)),
        "mined_run_id": manifest.get("run_id"),
        "mined_config": manifest.get("config"),
        "model": {"name": cfg.model, "path": model_path},
        "guide": guide_info,
        "loss": {"name": cfg.loss, "class": type(loss).__name__,
                 "params": {k: v for k, v in loss_params.items() if isinstance(v, (int, float, str, bool))}},
        "dataset": {**counts, "num_negatives": n, "mined_num_negatives": mined_n,
                    "columns": list(dataset.column_names)},
        "steps": total,
        "train_loss": (sum(s["train_loss"] * s["steps"] for s in segments) / total) if total else None,
        "segments": segments,
        "loss_history": monitor.history,
        "evaluations": evaluations,
        "refreshes": refreshes,
        "versions": versions(),
    }
    _save(model, out, record, t_save, timings, t_start)
    return TrainResult(out, record)


def _save(model: Any, out: Path, record: dict[str, Any], t_save: float, timings: dict[str, float],
          t_start: float) -> None:
    """Write the model and its record to a temporary sibling directory, then move it into place."""
    from negmine.writers._atomic import _umask as umask
    from negmine.writers._atomic import write_json

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        model.save(str(tmp))
        timings["save_s"] = time.perf_counter() - t_save
        timings["total_s"] = time.perf_counter() - t_start
        record["timings"] = {k: round(v, 4) for k, v in timings.items()}
        write_json(tmp / RECORD, record)
        os.chmod(tmp, 0o777 & ~umask())
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
