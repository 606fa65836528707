"""The result of a recommendation mining run: the negatives of every training interaction, with
the data they came from, and the ways out (the report, the run directory, a ``datasets.Dataset``).

A data type: the report and the writer sit above it and are imported by the methods that need
them, never at module level, so nothing here reaches back down to the miner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from negmine.core.manifest import run_id
from negmine.core.optional import require
from negmine.rec.interactions import RecData

__all__ = ["RecMiningResult"]


@dataclass
class RecMiningResult:
    """Negatives of every training interaction: ``users``/``positives int64[n]`` (rows),
    ``negatives int64[n, N]`` (item rows, ``-1`` = shortfall), ``scores float32[n, N]`` (the
    scorer's, ``NaN`` without one), ``ranks int64[n, N]`` (rank among all items under the scorer,
    ``-1`` when not computed), ``positive_scores float32[n]`` (``NaN`` without a scorer)."""

    data: RecData
    users: np.ndarray
    positives: np.ndarray
    negatives: np.ndarray
    scores: np.ndarray
    ranks: np.ndarray
    positive_scores: np.ndarray
    sampler: dict[str, Any]
    scorer: dict[str, Any] | None
    seed: int
    timings: dict[str, float]
    counters: dict[str, int] = field(default_factory=dict)

    @property
    def num_negatives(self) -> int:
        return int(self.negatives.shape[1])

    @cached_property
    def report(self) -> dict[str, Any]:
        from negmine.rec.report import build_report

        return build_report(self)

    def config(self) -> dict[str, Any]:
        return {"sampler": self.sampler, "scorer": self.scorer, "num_negatives": self.num_negatives,
                "split": self.data.split, "min_rating": self.data.interactions.stats.get("min_rating"),
                "low_ratings": self.data.interactions.low_ratings}

    def run_id(self) -> str:
        identity = {"config": self.config(), "seed": self.seed}
        return run_id(identity, self.data.interactions.fingerprint(), length=16)

    def columns(self) -> dict[str, Any]:
        """Arrow columns of ``mined.parquet``, one row per training interaction, sorted by
        ``(user_id, positive_id)``: ids, negative ids, scores, ranks (lists), sampler name."""
        pa = require("pyarrow")
        inter = self.data.interactions
        ok = self.negatives >= 0
        offsets = np.concatenate([[0], np.cumsum(ok.sum(axis=1))]).astype(np.int32)
        neg_ids = inter.item_ids[self.negatives[ok]]

        def lists(values: np.ndarray) -> Any:
            return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values))

        has_scores = self.scorer is not None
        cols: dict[str, Any] = {
            "user_id": pa.array(inter.user_ids[self.users]),
            "positive_id": pa.array(inter.item_ids[self.positives]),
            "negative_ids": lists(neg_ids),
            "negative_scores": (lists(self.scores[ok]) if has_scores
                                else pa.nulls(len(self.users), pa.list_(pa.float32()))),
            "negative_ranks": lists(self.ranks[ok].astype(np.int32)),
            "positive_score": pa.array(self.positive_scores, mask=np.isnan(self.positive_scores)),
            "sampler": pa.array([self.sampler["name"]] * len(self.users)),
        }
        return cols

    def save(self, directory: str | Path, *, overwrite: bool = False) -> Path:
        """Write ``mined.parquet``, ``report.json`` and ``manifest.json`` atomically."""
        from negmine.rec.writer import write_run

        return write_run(self, Path(directory), overwrite=overwrite)

    def to_dataset(self) -> Any:
        """The mined table as a ``datasets.Dataset`` (extra ``hf``): ``user_id``, ``positive_id``,
        ``negative_ids`` (and scores, ranks)."""
        datasets = require("datasets")
        return datasets.Dataset(require("pyarrow").table(self.columns()))
