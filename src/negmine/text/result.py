"""The outcome of a mining run, :class:`MiningResult`: what was retrieved, kept and chosen.

Its methods hand the result to the writers and the report (imported when called): the report,
the rows of ``mined.parquet``, the committed run directory, a training dataset.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from negmine.text.types import Candidates, MiningData, ScoreMatrix, run_id


@dataclass
class MiningResult:
    """The outcome of :func:`negmine.mine`: the candidates, which survived the filters, which were
    chosen, and what the run recorded.

    ``columns int64[n_queries, num_negatives]`` are positions in the candidate rows (``-1`` =
    shortfall); :meth:`negatives` turns them into document rows. ``config`` is the resolved
    configuration (a calibrated run records the filters calibration chose), ``request`` the
    configuration that was asked for (it identifies the run: :meth:`run_id`).
    """

    data: MiningData
    candidates: Candidates
    keep: np.ndarray
    columns: np.ndarray
    num_negatives: int
    seed: int
    config: dict[str, Any]
    filter_counts: list[tuple[str, int]]
    timings: dict[str, float]
    positive_reference: np.ndarray
    request: dict[str, Any] = field(default_factory=dict)
    filters: list[Any] = field(default_factory=list)  # the filters applied, in order
    matrices: dict[str, ScoreMatrix] = field(default_factory=dict)  # scorer name -> its scores
    diagnostics: dict[str, dict[str, Any]] = field(default_factory=dict)  # filter name -> what it found
    encoding: dict[str, int] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] | None = None

    @functools.cached_property
    def report(self) -> dict[str, Any]:
        from negmine.text.report.stats import build_report

        return build_report(self)

    def negatives(self) -> tuple[np.ndarray, np.ndarray]:
        """``(doc_rows int64[n_q, n], scores float32[n_q, n])``, ``-1`` / ``-inf`` for a shortfall."""
        ok = self.columns >= 0
        c = np.where(ok, self.columns, 0)
        rows = np.where(ok, np.take_along_axis(self.candidates.ids, c, axis=1), -1)
        scores = np.where(ok, np.take_along_axis(self.candidates.scores, c, axis=1), -np.inf)
        return rows, scores.astype(np.float32)

    def to_rows(self) -> list[dict[str, Any]]:
        """One dict per query (sorted by query id) in the canonical ``mined`` schema."""
        from negmine.text.writers.mined import result_rows

        return result_rows(self)

    def save(self, directory: str | Path, *, overwrite: bool = False, fmt: str = "parquet",
             extra_manifest: dict[str, Any] | None = None) -> Path:
        """Commit the run into ``directory``: ``mined.parquet`` (or ``.jsonl``), ``texts``,
        ``report.json`` and, last, ``manifest.json`` with the checksums readers verify. Holds the
        directory's lock while writing; refuses a directory holding a different run unless
        ``overwrite``."""
        from negmine.core.rundir import RunDir
        from negmine.text.writers.mined import commit_result

        with RunDir(directory).claim(self.run_id(), overwrite=overwrite) as run:
            commit_result(run, self, fmt=fmt, extra_manifest=extra_manifest)
        return Path(directory)

    def to_dataset(self, fmt: str = "n-tuple", *, with_scores: bool = False) -> Any:
        """The mined data as a ``datasets.Dataset`` in an export format (extra ``hf``)."""
        from negmine.core.optional import require
        from negmine.text.writers.export import export_rows, rows_to_columns

        datasets = require("datasets")
        rows = export_rows(fmt, self.to_rows(), self.texts(), num_negatives=self.num_negatives,
                           with_scores=with_scores)
        return datasets.Dataset.from_dict(rows_to_columns(rows))

    def texts(self) -> dict[tuple[str, str], dict[str, str]]:
        """``{("query"|"doc", id): {"title", "text"}}`` for every query and referenced document."""
        from negmine.text.writers.mined import referenced_texts

        return referenced_texts(self)

    def run_id(self) -> str:
        """Identity of the *requested* run (a calibrated run is identified by its target, not by
        the filters calibration chose)."""
        return run_id(self.request or self.config, self.data)
