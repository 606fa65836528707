"""Exceptions raised by negmine.

Every user-facing error says *what* went wrong, *where* (file and line, or up to three offending
ids) and *how to fix it*, in one line. The CLI prints that line and exits with code 2.
"""

from __future__ import annotations

import errno
import re
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


#: errno values of problems the user fixes in the environment (exit 2, not 1)
ENV_ERRNO = {errno.EACCES: "permission denied", errno.EPERM: "operation not permitted",
             errno.ENOSPC: "no space left on the device", errno.EROFS: "read-only file system",
             errno.EDQUOT: "disk quota exceeded", errno.EISDIR: "is a directory",
             errno.ENOTDIR: "a part of the path is not a directory", errno.ENAMETOOLONG: "file name too long",
             errno.EFBIG: "file too large for the file system"}
#: numpy's message for a write the disk cut short (``tofile``: no errno)
_SHORT_WRITE = re.compile(r"\b\d+ requested and \d+ written\b")


def is_short_write(exc: BaseException) -> bool:
    """Whether ``exc`` is a write the disk cut short without an errno (numpy's ``tofile``):
    in practice a full disk or quota."""
    return isinstance(exc, OSError) and exc.errno is None and bool(_SHORT_WRITE.search(str(exc)))


def environment_error(exc: BaseException) -> str | None:
    """The one line ``negmine: error: ...`` prints for a problem the user fixes outside negmine
    (a permission, a full or read-only disk, a short write, a file that is not UTF-8 text, memory),
    as *what, where: fix*; ``None`` for anything else (a bug: exit 1 with the class name).
    Every command of every domain goes through it (:func:`negmine.cli.main.main`)."""
    if isinstance(exc, MemoryError):
        return ("out of memory; lower --num-negatives, --depth or the batch/block sizes, or mine fewer "
                "queries at a time")
    if isinstance(exc, UnicodeDecodeError):
        return (f"an input is not UTF-8 text (byte {exc.object[exc.start:exc.start + 1]!r} at offset {exc.start}: "
                f"{exc.reason}); save the file as UTF-8 (--debug shows which read failed)")
    if is_short_write(exc):
        return (f"a write was cut short ({exc}): the disk or quota is full; free space or write to "
                "another disk (--out, --cache-dir)")
    if isinstance(exc, OSError) and exc.errno in ENV_ERRNO:
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{ENV_ERRNO[exc.errno]}; check the path, its permissions and free space, or choose another"
    return None
