"""The prompt of the LLM judge (:mod:`negmine.text.scorers.llm_judge`): the system message and the
user message of one batch (query, known positives, numbered candidates, answer schema)."""

from __future__ import annotations

import re
from collections.abc import Sequence

#: Version of the prompt and answer schema; recorded in ``config()`` (and so in the manifest) and
#: part of every cache key. Change it whenever :data:`SYSTEM_PROMPT` or the user prompt changes.
PROMPT_VERSION = "judge-v1"

SYSTEM_PROMPT = (
    "You are a careful relevance judge for search training data. You compare candidate passages "
    "with the passages already known to answer a query, and you reply with JSON only."
)

_INSTRUCTIONS = """\
For each candidate, compare it with the known relevant passage(s) and choose exactly one label:
- "better": it answers the query at least as well as the known relevant passage(s).
- "worse": it is on the query's topic, but answers it less well than the known relevant passage(s).
- "irrelevant": it does not answer the query.

Reply with one JSON object and nothing else, with exactly one entry for each candidate id from 1 to {n}:
{{"verdicts": [{{"id": 1, "label": "better" | "worse" | "irrelevant"}}, ...]}}"""

_NO_POSITIVE = '(none known: label a candidate "better" if it fully answers the query)'

_WS = re.compile(r"\s+")


def build_prompt(query: str, positives: Sequence[str], candidates: Sequence[str], max_chars: int | None) -> str:
    """The user message for one batch: the query, the known positives (``[P1]``, ``[P2]``...) and the
    candidates numbered ``[1]..[n]``, one passage per line (whitespace collapsed, cut at
    ``max_chars`` characters), then the labels and the JSON answer schema."""

    def clip(text: str) -> str:
        text = _WS.sub(" ", text).strip()
        return text if max_chars is None or len(text) <= max_chars else text[:max_chars].rstrip() + " …"

    pos = "\n".join(f"[P{i}] {clip(t)}" for i, t in enumerate(positives, 1)) or _NO_POSITIVE
    cands = "\n".join(f"[{i}] {clip(t)}" for i, t in enumerate(candidates, 1))
    return (
        f"Query: {clip(query)}\n\n"
        f"Known relevant passage(s):\n{pos}\n\n"
        f"Candidate passages:\n{cands}\n\n"
        f"{_INSTRUCTIONS.format(n=len(candidates))}"
    )
