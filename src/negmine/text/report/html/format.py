"""Escaping and number formatting shared by the sections of the HTML report
(:mod:`negmine.text.report.html`)."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

SNIPPET_CHARS = 240


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(v: Any, digits: int = 4) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        if math.isinf(v):
            return "∞" if v > 0 else "−∞"
        if v != 0 and (abs(v) >= 1e5 or abs(v) < 10 ** -digits):
            return f"{v:.{digits - 1}e}"
        return f"{v:.{digits}f}"
    return _e(v)


def _pct(v: Any) -> str:
    return "–" if not isinstance(v, (int, float)) or math.isnan(v) else f"{100 * v:.1f}%"


def _snippet(entry: Mapping[str, str] | None) -> str:
    if not entry:
        return '<span class="muted">(text not stored)</span>'
    title = (entry.get("title") or "").strip()
    text = " ".join((entry.get("text") or "").split())
    if len(text) > SNIPPET_CHARS:
        text = text[:SNIPPET_CHARS].rsplit(" ", 1)[0] + "…"
    head = f"<b>{_e(title)}</b> — " if title else ""
    return head + _e(text)


def _table(header: Sequence[str], body: Sequence[Sequence[str]], cls: str = "") -> str:
    """A table of already-escaped cells; columns after the first are right-aligned numbers."""
    th = "".join(f"<th>{h}</th>" for h in header)
    tr = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in body)
    return f'<table class="grid {cls}"><thead><tr>{th}</tr></thead><tbody>{tr}</tbody></table>'


def _finite(values: Sequence[Any]) -> list[float]:
    out = []
    for v in values:
        if v is None:
            continue
        f = float(v)
        if math.isfinite(f):
            out.append(f)
    return out
