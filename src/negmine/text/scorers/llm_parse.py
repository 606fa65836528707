"""Reading the LLM judge's answers (:mod:`negmine.text.scorers.llm_judge`): verdicts from the JSON in
an answer, and token counts from a completion's ``usage``."""

from __future__ import annotations

import json
import re
from typing import Any

from negmine.text.scorers.base import VERDICT_BETTER, VERDICT_FAILED, VERDICT_IRRELEVANT, VERDICT_WORSE

#: Answer label -> verdict code.
LABELS: dict[str, int] = {"better": VERDICT_BETTER, "worse": VERDICT_WORSE, "irrelevant": VERDICT_IRRELEVANT}

_THINK = re.compile(r"<think>.*?</think>", re.S | re.I)
_FENCE = re.compile(r"```[a-zA-Z]*\s*(.*?)```", re.S)


def _extract_json(content: str) -> Any:
    """The answer's JSON value, tolerating ``<think>`` blocks, code fences and surrounding prose;
    ``None`` when there is none."""
    text = _THINK.sub("", content).strip()
    chunks = [m.group(1).strip() for m in _FENCE.finditer(text)] + [text]
    decoder = json.JSONDecoder()
    for chunk in chunks:
        try:
            return json.loads(chunk)
        except ValueError:
            pass
        for start in (i for i, ch in enumerate(chunk) if ch == "{"):
            try:
                obj, _ = decoder.raw_decode(chunk, start)
            except ValueError:
                continue
            if isinstance(obj, dict) and "verdicts" in obj:
                return obj
    return None


def _as_id(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def parse_verdicts(content: str, n: int) -> list[int]:
    """Verdict codes for candidates ``1..n`` from an answer ``{"verdicts": [{"id", "label"}...]}``.

    Code fences, ``<think>`` blocks and prose around the JSON are tolerated, as is a bare list of
    entries. A candidate gets :data:`VERDICT_FAILED` when its id is missing or appears more than
    once, or its label is not one of ``better``/``worse``/``irrelevant`` (case-insensitive); every
    candidate fails when no JSON answer is found. Entries with out-of-range ids are ignored (the
    candidate they were meant for is then missing).
    """
    obj = _extract_json(content)
    items = obj.get("verdicts") if isinstance(obj, dict) else obj
    if not isinstance(items, list):
        return [VERDICT_FAILED] * n
    found: dict[int, int] = {}
    duplicated: set[int] = set()
    for item in items:
        if not isinstance(item, dict):
            continue
        i = _as_id(item.get("id"))
        if i is None or not 1 <= i <= n:
            continue
        label = item.get("label")
        verdict = LABELS.get(label.strip().lower(), VERDICT_FAILED) if isinstance(label, str) else VERDICT_FAILED
        if i in found:
            duplicated.add(i)
        found[i] = verdict
    return [VERDICT_FAILED if i in duplicated else found.get(i, VERDICT_FAILED) for i in range(1, n + 1)]


def token_count(usage: Any, name: str) -> int:
    """``usage[name]`` of a chat completion when it is a count (a non-negative integer), else 0."""
    value = usage.get(name) if isinstance(usage, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0

