"""Exceptions raised by negmine.

Every user-facing error says *what* went wrong, *where* (file and line, or up to three offending
ids) and *how to fix it*, in one line. The CLI prints that line and exits with code 2.
"""

from __future__ import annotations

from collections.abc import Iterable


class NegmineError(Exception):
    """Base class of every error negmine raises on purpose."""


class DataError(NegmineError, ValueError):
    """The input data is malformed or inconsistent (bad JSON, missing fields, unknown ids...)."""


class ConfigError(NegmineError, ValueError):
    """An option or a combination of options is invalid."""


class MissingDependencyError(NegmineError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


def examples(items: Iterable[object], limit: int = 3) -> str:
    """Format up to ``limit`` example ids for an error message, e.g. ``'a', 'b', 'c' (+4 more)``."""
    items = list(items)
    shown = ", ".join(repr(str(x)) for x in items[:limit])
    if len(items) > limit:
        shown += f" (+{len(items) - limit} more)"
    return shown
