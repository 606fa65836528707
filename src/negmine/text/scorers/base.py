"""The scorer protocol.

A scorer reads the mining data and the retrieval candidates and returns a :class:`ScoreMatrix`:

- ``scores float32[n_queries, k]`` aligned cell by cell with ``Candidates.ids`` (``NaN`` where a
  cell is padding or could not be scored);
- ``positive_scores float32[n_pairs]`` aligned with ``MiningData.positives`` (``NaN`` when unscored);
- for judges, ``verdicts int8[n_queries, k]``: ``VERDICT_BETTER`` (2, at least as relevant as the
  positive), ``VERDICT_WORSE`` (1, relevant but worse), ``VERDICT_IRRELEVANT`` (0) or
  ``VERDICT_FAILED`` (-1: the call failed or the answer could not be parsed — such a candidate is
  never made a negative: fail closed);
- ``stats``: counts for the report (pairs scored, cache hits, calls, tokens, failures...).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from negmine.text.types import Candidates, MiningData, ScoreMatrix

__all__ = ["VERDICT_BETTER", "VERDICT_FAILED", "VERDICT_IRRELEVANT", "VERDICT_WORSE", "ScoreMatrix", "Scorer"]

VERDICT_FAILED = -1
VERDICT_IRRELEVANT = 0
VERDICT_WORSE = 1
VERDICT_BETTER = 2


class Scorer(Protocol):
    name: str

    def config(self) -> dict[str, Any]: ...

    def score(self, data: MiningData, candidates: Candidates, *, mask: np.ndarray | None = None,
              cache_dir: str | None = None) -> ScoreMatrix: ...
