"""Markdown tables, the one format every report, audit and compare summary writes.

:func:`markdown_table` renders a header and rows as a GitHub-flavoured markdown table::

    | a | b |
    |---|---:|
    | x | 1.5 |

Cells are written as given (``str`` of each); the caller formats numbers. A ``|`` inside a cell
is escaped (``\\|``) and a line break becomes a space, so a cell can never split the table.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["ALIGNMENTS", "markdown_table"]

#: alignment code -> the cell of the alignment row (``-`` is the default: no alignment stated)
ALIGNMENTS = {"-": "---", "l": ":---", "r": "---:", "c": ":---:"}


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\r\n", " ").replace("\n", " ").replace("\r", " ")


def _line(cells: Iterable[Any]) -> str:
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def markdown_table(header: Sequence[Any], rows: Iterable[Sequence[Any]], align: Sequence[str] | None = None) -> str:
    """The markdown table of ``header`` and ``rows`` (one line each, joined by ``\\n``, no
    trailing newline).

    Parameters
    ----------
    header
        The column titles.
    rows
        One sequence of cells per row, as many as ``header``.
    align
        One code per column (a string such as ``"-rr"`` works): ``-`` unstated (``---``), ``l``
        left (``:---``), ``r`` right (``---:``), ``c`` centred (``:---:``). ``None``: every
        column unstated.

    Examples
    --------
    >>> print(markdown_table(["sampler", "FNR"], [["uniform", "0.0125"], ["dns", "0.0310"]], align="-r"))
    | sampler | FNR |
    |---|---:|
    | uniform | 0.0125 |
    | dns | 0.0310 |
    """
    width = len(header)
    if width == 0:
        raise ValueError("a markdown table needs at least one column")
    codes = ["-"] * width if align is None else list(align)
    if len(codes) != width or any(c not in ALIGNMENTS for c in codes):
        raise ValueError(f"align must give one of {', '.join(ALIGNMENTS)} for each of the {width} columns, "
                         f"got {align!r}")
    lines = [_line(header), "|" + "".join(ALIGNMENTS[c] + "|" for c in codes)]
    for i, row in enumerate(rows):
        cells = list(row)
        if len(cells) != width:
            raise ValueError(f"row {i} has {len(cells)} cells, the header {width}")
        lines.append(_line(cells))
    return "\n".join(lines)
