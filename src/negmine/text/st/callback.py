"""Re-mining inside a user's ``SentenceTransformerTrainer``: :class:`RemineCallback` (ANCE, AR2).

Every ``every_steps`` optimisation steps (or ``every_epochs`` epochs) the callback encodes the
corpus and the queries with the model being trained, mines again through :func:`negmine.mine`
(the same data, filters, sampler, number of negatives and seed as the run it started from), and
writes the new negatives into the training dataset's negative columns **in place** — the
trainer's data loader holds that dataset, so the next batches read the new texts; a
:class:`~negmine.text.st.MinedBatchSampler` notices the change, recomposes the rest of the epoch and
takes the new run's likely false negatives. Rows keep their position: a row whose query is left
with too few negatives keeps its previous ones (counted). Each refresh is recorded in
:attr:`RemineCallback.history` (step, mining seconds, share of changed negative cells, share of
new (query, negative) pairs, mean Jaccard) and added to the next trainer log.

Two sources:

- a mining **directory** (``negmine mine --out DIR``): mined again from its manifest's options,
  as ``negmine train --remine-every`` does (:class:`negmine.text.train.remining.Remining`; lexical
  retrievers are replaced by dense retrieval with the live model);
- a :class:`~negmine.MiningResult` plus the keyword arguments it was mined with
  (``filters=``, ``sampler=``, ``target_fnr=``, ...): ``negmine.mine(result.data,
  Dense(encoder=live model), num_negatives=result.num_negatives, seed=result.seed, **those)``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from negmine.core.errors import ConfigError
from negmine.core.optional import require
from negmine.text.result import MiningResult
from negmine.text.types import text_hash

log = logging.getLogger(__name__)

__all__ = ["RemineCallback", "negatives_by_anchor"]


def negatives_by_anchor(result: MiningResult) -> dict[Any, list[str]]:
    """The negative texts of each row of ``result``, keyed by the anchor's text key and by
    ``(anchor key, positive key)`` (pair rows: one positive each), full document texts (title +
    text, as the exports write them), in the mined order, shortfall left out."""
    rows, _ = result.negatives()
    corpus = result.data.corpus
    flat = rows[rows >= 0]
    texts = dict(zip(flat.tolist(), corpus.full_texts_at(flat))) if len(flat) else {}
    pos = result.data.positives
    out: dict[Any, list[str]] = {}
    for q, text in enumerate(result.data.queries.texts):
        negs = [texts[int(d)] for d in rows[q] if d >= 0]
        a = text_hash(text)
        out.setdefault(a, negs)
        for p in corpus.full_texts_at(pos.row(q)):
            out.setdefault((a, text_hash(p)), negs)
    return out


def _callback_base() -> Any:
    return require("transformers").TrainerCallback


class RemineCallback(_callback_base()):  # type: ignore[misc]
    """Re-mine with the model being trained and swap the dataset's negatives (module docstring).

    Parameters
    ----------
    source
        A mining directory, or the :class:`~negmine.MiningResult` the dataset was built from.
    model
        The ``SentenceTransformer`` being trained.
    dataset
        The training ``datasets.Dataset`` (``(anchor, positive, negative_1..n)``); by default the
        one the trainer's data loader holds.
    every_steps, every_epochs
        When to re-mine (one of them): after every this many optimisation steps / epochs (not
        after the last one).
    query_prompt, document_prompt, batch_size
        Encoding of the live model.
    **mine_kwargs
        With a :class:`~negmine.MiningResult` source: the other arguments of :func:`negmine.mine`
        it was mined with (filters, sampler, depth, target_fnr, ...).
    """

    def __init__(self, source: str | Path | MiningResult, model: Any, *, dataset: Any = None,
                 every_steps: int | None = None, every_epochs: int | None = None, query_prompt: str | None = None,
                 document_prompt: str | None = None, batch_size: int = 32, **mine_kwargs: Any) -> None:
        if (every_steps is None) == (every_epochs is None):
            raise ConfigError("RemineCallback: pass exactly one of every_steps=N or every_epochs=N")
        for name, v in (("every_steps", every_steps), ("every_epochs", every_epochs)):
            if v is not None and not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
                raise ConfigError(f"RemineCallback: {name} must be an integer >= 1, got {v!r}")
        if not isinstance(source, MiningResult) and mine_kwargs:
            raise ConfigError("RemineCallback: mining arguments apply to a MiningResult source; a mining directory "
                              f"re-mines with its recorded options (got {', '.join(sorted(mine_kwargs))})")
        self.source = source
        self.model = model
        self.dataset = dataset
        self.every_steps = every_steps
        self.every_epochs = every_epochs
        self.mine_kwargs = mine_kwargs
        self.query_prompt = query_prompt
        self.document_prompt = document_prompt
        self.batch_size = batch_size
        self.history: list[dict[str, Any]] = []
        self.result: MiningResult | None = source if isinstance(source, MiningResult) else None
        self._remining: Any = None
        self._logged = 0

    # ------------------------------------------------------------------------------ mining
    def _encoder(self) -> Any:
        from negmine.text.train.models import LiveEncoder

        return LiveEncoder(self.model, query_prompt=self.query_prompt, document_prompt=self.document_prompt,
                           batch_size=self.batch_size)

    def mine(self, step: int) -> MiningResult:
        """Mine the run's queries with the model's current weights (``step`` names them)."""
        if isinstance(self.source, MiningResult):
            from negmine.text.pipeline import mine
            from negmine.text.retrievers.dense import Dense

            encoder = self._encoder()
            encoder.step = step
            kwargs = {"num_negatives": self.source.num_negatives, "seed": self.source.seed, **self.mine_kwargs}
            return mine(self.source.data, Dense(encoder=encoder), **kwargs)
        if self._remining is None:
            from negmine.text.train.remining import Remining
            from negmine.text.writers.mined import load_mined

            _, _, manifest = load_mined(self.source)
            self._remining = Remining(manifest, self._encoder(), int(manifest.get("num_negatives") or 0))
            self._remining.prepare()
        self._remining.encoder.step = step
        self._remining.remine()
        result: MiningResult = self._remining.result
        return result

    # ---------------------------------------------------------------------------- swapping
    def refresh(self, step: int, dataset: Any, batch_sampler: Any = None) -> dict[str, Any]:
        """Re-mine now and write the new negatives into ``dataset`` in place; the refresh record."""
        from negmine.text.st.index import NON_TEXT_COLUMNS, RunIndex
        from negmine.text.train.rows import negative_change

        t0 = time.perf_counter()
        old = self.result
        result = self.mine(step)
        mine_s = time.perf_counter() - t0
        columns = [c for c in dataset.column_names if c not in NON_TEXT_COLUMNS]
        neg_cols = columns[2:]
        new_negs = negatives_by_anchor(result)
        values = {c: list(dataset[c]) for c in dataset.column_names}
        changed = kept = 0
        for i, (anchor, positive) in enumerate(zip(values[columns[0]], values[columns[1]])):
            a = text_hash(anchor)
            negs = new_negs.get((a, text_hash(positive)), new_negs.get(a))
            if negs is None or len(negs) < len(neg_cols):
                kept += 1
                continue
            for c, text in zip(neg_cols, negs):
                changed += values[c][i] != text
                values[c][i] = text
        _swap(dataset, values)
        if batch_sampler is not None and hasattr(batch_sampler, "index") and hasattr(batch_sampler, "keys"):
            batch_sampler.index = RunIndex.from_result(result)
        cells = len(neg_cols) * len(values[columns[0]])
        record: dict[str, Any] = {"step": step, "mine_s": round(mine_s, 4),
                                  "changed_share": changed / cells if cells else 0.0,
                                  "rows_kept_previous": kept}
        if old is not None:
            record.update(negative_change(old.to_rows(), result.to_rows()))
        record["seconds"] = round(time.perf_counter() - t0, 4)
        self.result = result
        self.history.append(record)
        log.info("re-mined at step %d in %.1fs: %.1f%% of the negative cells changed", step, mine_s,
                 100 * record["changed_share"])
        return record

    def _dataset(self, kwargs: dict[str, Any]) -> tuple[Any, Any]:
        loader = kwargs.get("train_dataloader")
        dataset = self.dataset if self.dataset is not None else getattr(loader, "dataset", None)
        if dataset is None:
            raise ConfigError("RemineCallback: the trainer passed no data loader; pass dataset=train_dataset")
        sampler = getattr(loader, "batch_sampler", None)
        inner = getattr(sampler, "batch_sampler", None)  # accelerate wraps the sampler
        return dataset, inner if inner is not None and hasattr(inner, "index") else sampler

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        step = int(state.global_step)
        if self.every_steps and step % self.every_steps == 0 and step < int(state.max_steps or 0):
            self.refresh(step, *self._dataset(kwargs))
        return control

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        epoch = round(float(state.epoch or 0))
        if self.every_epochs and epoch % self.every_epochs == 0 and epoch < round(float(args.num_train_epochs)):
            self.refresh(int(state.global_step), *self._dataset(kwargs))
        return control

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        if logs is not None and len(self.history) > self._logged:
            last = self.history[-1]
            entries = {"remine_s": last["mine_s"], "remine_changed_share": round(last["changed_share"], 4)}
            _add_to_log(state, logs, entries)
            self._logged = len(self.history)
        return control


def _add_to_log(state: Any, logs: dict[str, Any], entries: dict[str, Any]) -> None:
    """Add ``entries`` to the log being written and to its copy in ``state.log_history`` (the
    trainer appends that copy before it calls the callbacks)."""
    logs.update(entries)
    history = getattr(state, "log_history", None)
    if history and history[-1].get("step") == state.global_step:
        history[-1].update(entries)


def _swap(dataset: Any, values: dict[str, list[Any]]) -> None:
    """Replace the rows of a ``datasets.Dataset`` in place (same columns, same features): the
    trainer's data loader and batch sampler keep their reference to this object."""
    datasets = require("datasets")
    new = datasets.Dataset.from_dict(values, features=dataset.features)
    if len(new) != len(dataset):
        raise RuntimeError("re-mining changed the number of training rows")
    dataset._data = new._data
    dataset._indices = None
    dataset._fingerprint = new._fingerprint
