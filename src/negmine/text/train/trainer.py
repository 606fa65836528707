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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from negmine.core.errors import ConfigError, DataError
from negmine.core.optional import require
from negmine.text.train.config import RECORD, TrainConfig, TrainResult
from negmine.text.train.fit import Fit, monitor_class, run_evaluation
from negmine.text.train.models import LiveEncoder, load_model, mining_model
from negmine.text.train.remining import Remining
from negmine.text.train.rows import negative_change as negative_change
from negmine.text.train.rows import to_dataset, training_rows, trim_rows

log = logging.getLogger(__name__)

__all__ = ["LiveEncoder", "TrainConfig", "TrainResult", "train"]


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



def train(mined_dir: str | Path, out: str | Path, config: TrainConfig | None = None, *, overwrite: bool = False,
          **options: Any) -> TrainResult:
    """Fine-tune a sentence-transformers model on the negatives mined into ``mined_dir`` and save
    it to ``out`` (``SentenceTransformer(out)`` loads it) with ``out/negmine-train.json``. (Over
    80 lines only through this docstring; the steps are ``_config``, ``_TrainingData.load``,
    ``_loss``, ``_Evaluator`` and ``_record``.)

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
    cfg = _config(config, options)
    out = Path(out)
    _check_out(out, overwrite)
    data = _TrainingData.load(mined_dir, cfg)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    model, model_path = load_model(cfg.model, max_seq_length=cfg.max_seq_length)
    loss, masking, guide_info = _loss(cfg, model, data.manifest)
    sampler_factory = None
    if cfg.batch_sampler == "mined":
        from negmine.text.st.run import load_run
        from negmine.text.st.sampler import MinedBatchSampler

        t_index = time.perf_counter()
        sampler_factory = MinedBatchSampler.factory(load_run(mined_dir), hardness=cfg.hardness)
        timings["sampler_index_s"] = time.perf_counter() - t_index
    encoder = LiveEncoder(model, query_prompt=cfg.query_prompt, document_prompt=cfg.document_prompt,
                          batch_size=cfg.encode_batch_size)
    remining = None
    if cfg.remine_every is not None:
        remining = Remining(data.manifest, encoder, data.n)
        remining.prepare()
    evaluator = _Evaluator(cfg, encoder)
    timings["load_s"] = time.perf_counter() - t0

    dataset = to_dataset(data.train_rows)
    est_steps = cfg.max_steps or max(1, math.ceil(cfg.epochs * math.ceil(len(data.train_rows) / cfg.batch_size)))
    monitor = monitor_class()(est_steps, evaluator.at, cfg.eval_steps)
    evaluator.at(0)
    eval_before = evaluator.seconds
    t_train = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="negmine-train-") as tmp:
        fit = Fit(cfg, model, loss, monitor, tmp, max(1, est_steps // 50))
        if sampler_factory is not None:
            fit.batch_sampler = sampler_factory
            fit.on_remined = _index_refresher(sampler_factory)
        monitor.open()
        try:
            total = fit.once(dataset) if remining is None else fit.with_remining(dataset, data.rows, remining, data.n)
        finally:
            monitor.close()
    timings["train_s"] = time.perf_counter() - t_train - fit.remine_s - (evaluator.seconds - eval_before)
    timings["remine_s"] = fit.remine_s
    if evaluator.data is not None and (not evaluator.evaluations or evaluator.evaluations[-1]["step"] != total):
        evaluator.at(total)
    timings["eval_s"] = evaluator.seconds

    t_save = time.perf_counter()
    record = _record(cfg, data, mined_dir, model_path, guide_info, loss, dataset, total, fit, monitor, evaluator,
                     sampler_factory, masking)
    _save(model, out, record, t_save, timings, t_start)
    return TrainResult(out, record)


def _config(config: TrainConfig | None, options: dict[str, Any]) -> TrainConfig:
    """``config`` with ``options`` applied, validated (unknown names refused)."""
    known = set(asdict(TrainConfig()))
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(f"unknown training option(s) {', '.join(map(repr, unknown))}; known options: "
                          f"{', '.join(sorted(known))}")
    cfg = TrainConfig(**{**asdict(config or TrainConfig()), **options})
    cfg.validate()
    return cfg


@dataclass
class _TrainingData:
    """The mining run read for training: its rows trimmed to ``n`` negatives, the training rows."""

    rows: list[dict[str, Any]]
    manifest: dict[str, Any]
    train_rows: list[Any]
    counts: dict[str, Any]
    n: int
    mined_n: int

    @classmethod
    def load(cls, mined_dir: str | Path, cfg: TrainConfig) -> _TrainingData:
        from negmine.text.writers.mined import load_mined

        rows, texts, manifest = load_mined(mined_dir)
        for module in ("torch", "sentence_transformers", "transformers", "datasets", "accelerate"):
            require(module)
        mined_n = int(manifest.get("num_negatives", max((len(r["negative_ids"]) for r in rows), default=0)))
        n = mined_n if cfg.num_negatives is None else cfg.num_negatives
        if n > mined_n:
            raise ConfigError(f"--num-negatives {n}: the mining run in {mined_dir} has at most {mined_n} negatives "
                              f"per query; pass --num-negatives {mined_n} or fewer")
        rows = trim_rows(rows, n)
        train_rows, counts = training_rows(rows, texts, n)
        if not train_rows:
            raise DataError(f"{mined_dir}: no query has {n} negatives ({counts['queries']} queries, all short); "
                            "pass a smaller --num-negatives")
        if counts["queries_left_out_short"]:
            log.warning("%d of %d queries have fewer than %d negatives and are left out of training",
                        counts["queries_left_out_short"], counts["queries"], n)
        return cls(rows, manifest, train_rows, counts, n, mined_n)


def _loss(cfg: TrainConfig, model: Any, manifest: dict[str, Any]) -> tuple[Any, Any, dict[str, Any] | None]:
    """The loss (wrapped by false-negative masking if asked), the masking wrapper, the GIST guide."""
    guide_info: dict[str, Any] | None = None
    guide = None
    if cfg.loss == "gist":
        mined_model = mining_model(manifest)
        guide_name = cfg.guide or mined_model or cfg.model
        source = "--guide" if cfg.guide else ("mining model" if mined_model else "starting model")
        guide, guide_path = load_model(guide_name, max_seq_length=cfg.max_seq_length, role="guide")
        guide_info = {"name": guide_name, "path": guide_path, "source": source}
    from negmine.text.train.losses import build_loss

    loss = build_loss(cfg.loss, model, temperature=cfg.temperature, tau_plus=cfg.tau_plus,
                      mini_batch_size=cfg.mini_batch_size, guide=guide)
    masking = None
    if cfg.mask_false_negatives:
        from negmine.text.st.masking import FalseNegativeMasking

        loss = masking = FalseNegativeMasking(loss, target=cfg.mask_target)
    return loss, masking, guide_info


class _Evaluator:
    """Evaluations on ``--eval-dataset`` during training (none without one), and their time."""

    def __init__(self, cfg: TrainConfig, encoder: Any) -> None:
        self.encoder = encoder
        self.evaluations: list[dict[str, Any]] = []
        self.seconds = 0.0
        self.data = None
        if cfg.eval_dataset is not None:
            from negmine.text.data import load_beir

            self.data = load_beir(cfg.eval_dataset, cfg.eval_split, exclude_splits=[])

    def at(self, step: int) -> None:
        if self.data is not None:
            self.evaluations.append(run_evaluation(self.data, self.encoder, step))
            self.seconds += self.evaluations[-1]["seconds"]


def _index_refresher(sampler_factory: Any) -> Any:
    """After a re-mining, the mined batch sampler reads the new run."""

    def take_new_run(result: Any) -> None:
        from negmine.text.st.index import RunIndex

        sampler_factory.index = RunIndex.from_result(result)

    return take_new_run


def _record(cfg: TrainConfig, data: _TrainingData, mined_dir: str | Path, model_path: str,
            guide_info: dict[str, Any] | None, loss: Any, dataset: Any, total: int, fit: Any, monitor: Any,
            evaluator: _Evaluator, sampler_factory: Any, masking: Any) -> dict[str, Any]:
    """What ``negmine-train.json`` records (timings are added by ``_save``)."""
    from negmine.text.train.losses import DEFAULT_TEMPERATURE
    from negmine.text.writers.mined import versions

    resolved_t = cfg.temperature if cfg.temperature is not None else DEFAULT_TEMPERATURE.get(cfg.loss)
    get_config: Any = getattr(loss, "get_config_dict", dict)
    loss_params: dict[str, Any] = get_config()
    segments = fit.segments
    return {
        "negmine": versions().get("negmine", "unknown"),
        "config": {**asdict(cfg), "temperature": resolved_t, "num_negatives": data.n},
        "seed": cfg.seed,
        "mined_dir": str(Path(mined_dir)),
        "mined_run_id": data.manifest.get("run_id"),
        "mined_config": data.manifest.get("config"),
        "model": {"name": cfg.model, "path": model_path},
        "guide": guide_info,
        "loss": {"name": cfg.loss, "class": type(loss).__name__,
                 "params": {k: v for k, v in loss_params.items() if isinstance(v, (int, float, str, bool))}},
        "dataset": {**data.counts, "num_negatives": data.n, "mined_num_negatives": data.mined_n,
                    "columns": list(dataset.column_names)},
        "steps": total,
        "train_loss": (sum(s["train_loss"] * s["steps"] for s in segments) / total) if total else None,
        "segments": segments,
        "loss_history": monitor.history,
        "evaluations": evaluator.evaluations,
        "refreshes": fit.refreshes,
        "batch_sampler": _sampler_record(cfg, sampler_factory),
        "masking": _masking_record(masking),
        "versions": versions(),
    }


def _sampler_record(cfg: TrainConfig, factory: Any) -> dict[str, Any]:
    """The batch sampler in the training record: name, and for ``mined`` its index and statistics."""
    out: dict[str, Any] = {"name": cfg.batch_sampler}
    if factory is not None:
        out["hardness"] = cfg.hardness
        out["index"] = dict(factory.index.stats)
        out["compose_s"] = round(sum(s.seconds for s in factory.samplers), 4)
        for key in ("neighbour_slots", "forced_rows", "recomposed"):
            out[key] = sum(s.stats[key] for s in factory.samplers)
    return out


def _masking_record(masking: Any) -> dict[str, Any] | None:
    """In-batch false-negative masking in the training record: the target, masked cells per step."""
    if masking is None:
        return None
    steps = len(masking.history)
    return {"target": masking.target, "window": masking.window, "steps": steps,
            "masked_cells": masking.total_masked, "scored_cells": masking.total_cells,
            "masked_share": masking.total_masked / masking.total_cells if masking.total_cells else 0.0,
            "masked_per_step": [h["masked"] for h in masking.history],
            "final_bound": masking.bound if math.isfinite(masking.bound) else None,
            "seconds": round(masking.seconds, 4)}


def _save(model: Any, out: Path, record: dict[str, Any], t_save: float, timings: dict[str, float],
          t_start: float) -> None:
    """Write the model and its record to a temporary sibling directory, then move it into place."""
    from negmine.core.atomic import _umask as umask
    from negmine.core.atomic import write_json

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
