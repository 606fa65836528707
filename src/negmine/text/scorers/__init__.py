"""Scorers: a second opinion on (query, candidate) pairs — cross-encoders, LLM judges.

They produce a :class:`ScoreMatrix` aligned with the candidates; they never replace the
retrieval scores (both are kept and written).
"""

from __future__ import annotations

from negmine.text.scorers.base import (
    VERDICT_BETTER,
    VERDICT_FAILED,
    VERDICT_IRRELEVANT,
    VERDICT_WORSE,
    ScoreMatrix,
    Scorer,
)

__all__ = ["VERDICT_BETTER", "VERDICT_FAILED", "VERDICT_IRRELEVANT", "VERDICT_WORSE", "ScoreMatrix", "Scorer"]
