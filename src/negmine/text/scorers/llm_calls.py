"""The bookkeeping of the LLM judge (:mod:`negmine.text.scorers.llm_judge`): the outcome of each call,
the batches of candidates they judged, and the statistics tallied over them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from negmine.text.scorers.base import VERDICT_BETTER, VERDICT_FAILED, VERDICT_IRRELEVANT, VERDICT_WORSE

#: Verdict of a cell that was not judged: padding (``ids == -1``) or outside the judge mask.
VERDICT_UNJUDGED = -2


@dataclass
class Call:
    """The outcome of one logical call (one prompt to one model, retries included)."""

    verdicts: list[int]
    cached: bool = False
    failed: bool = False
    retries: int = 0
    parse_failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None


@dataclass
class Batch:
    """The candidates of one query judged in one prompt, and the calls made for them."""

    q: int
    cols: np.ndarray  # int64 column positions in the candidate row
    prompt: str
    calls: list[Call] = field(default_factory=list)  # [cheap] or [cheap, verify]


def judge_stats(batches: list[Batch], verdicts: np.ndarray) -> dict[str, Any]:
    """The ``stats`` of :meth:`~negmine.text.scorers.llm_judge.LLMJudge.score`: calls, retries, failures,
    tokens and cache hits over the calls of ``batches``, and verdict counts of ``verdicts``."""
    errors: dict[str, int] = {}
    stats: dict[str, Any] = dict.fromkeys(
        ("calls", "calls_verify", "failed_calls", "retries", "parse_failures", "prompt_tokens",
         "completion_tokens", "cache_hits"), 0,
    )
    for b in batches:
        for stage, call in enumerate(b.calls):
            if call.cached:
                stats["cache_hits"] += 1
                continue
            stats["calls_verify" if stage else "calls"] += 1
            stats["failed_calls"] += int(call.failed)
            stats["retries"] += call.retries
            stats["parse_failures"] += call.parse_failures
            stats["prompt_tokens"] += call.prompt_tokens
            stats["completion_tokens"] += call.completion_tokens
            if call.error is not None:
                errors[call.error] = errors.get(call.error, 0) + 1
    stats.update(
        judged=int((verdicts != VERDICT_UNJUDGED).sum()),
        better=int((verdicts == VERDICT_BETTER).sum()),
        worse=int((verdicts == VERDICT_WORSE).sum()),
        irrelevant=int((verdicts == VERDICT_IRRELEVANT).sum()),
        failed=int((verdicts == VERDICT_FAILED).sum()),
        errors=errors,
    )
    return stats
