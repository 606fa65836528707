"""Read-only columns of strings held in Arrow buffers instead of Python lists.

A Python ``str`` costs 49 bytes of header plus its characters, and a list 8 more bytes per item;
an Arrow string column costs its UTF-8 bytes plus an 8-byte offset. For a corpus of a million
40-word documents that is ~300 MB of text in a list against ~250 MB here, and a million short
ids ~60 MB against ~15 MB. :class:`TextColumn` is a :class:`~collections.abc.Sequence` of
``str``: code that indexes, slices, iterates or compares a list of texts reads it unchanged.
pyarrow is imported only when a column is built.
"""

from __future__ import annotations

import bisect
import mmap
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, overload

import numpy as np

__all__ = ["TextColumn", "row_lookup", "take_rows"]

#: strings materialised at a time when a column is iterated
_BATCH = 8192


class TextColumn(Sequence[str]):
    """An immutable sequence of strings stored in Arrow string arrays (one or more chunks).

    ``col[i]`` is a ``str``; ``col[a:b]`` and :meth:`take` return ``list[str]`` (what encoders and
    tokenizers take); iteration materialises 8,192 strings at a time. Equal to any sequence with
    the same strings in the same order; pickles as its Arrow buffers.
    """

    __slots__ = ("_chunks", "_mapping", "_n", "_starts")

    def __init__(self, chunks: Sequence[Any], mapping: _Mapping | None = None) -> None:
        self._mapping = mapping  # set when the chunks live in a memory-mapped spill file
        self._chunks = [c for c in chunks if len(c)]
        self._starts = [0]
        for c in self._chunks:
            self._starts.append(self._starts[-1] + len(c))
        self._n = self._starts[-1]

    # ----------------------------------------------------------------------------- construction
    @classmethod
    def from_arrow(cls, array: Any) -> TextColumn:
        """From a pyarrow ``Array`` or ``ChunkedArray`` of (large) strings without nulls."""
        chunks = array.chunks if hasattr(array, "chunks") else [array]
        return cls(chunks)

    @classmethod
    def from_iter(cls, strings: Iterable[str], batch: int = 65536) -> TextColumn:
        """From any iterable of ``str``, converted ``batch`` strings at a time (never a whole list)."""
        import pyarrow as pa

        chunks: list[Any] = []
        buf: list[str] = []
        for s in strings:
            buf.append(s)
            if len(buf) == batch:
                chunks.append(pa.array(buf, type=pa.large_string()))
                buf = []
        if buf or not chunks:
            chunks.append(pa.array(buf, type=pa.large_string()))
        return cls(chunks)

    # ----------------------------------------------------------------------------- sequence API
    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> str: ...

    @overload
    def __getitem__(self, i: slice) -> list[str]: ...

    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            start, stop, step = i.indices(self._n)
            if step != 1:
                return [self[j] for j in range(start, stop, step)]
            return self._range(start, stop)
        j = int(i)
        if j < 0:
            j += self._n
        if not 0 <= j < self._n:
            raise IndexError(f"index {i} out of range for a column of {self._n} strings")
        c = bisect.bisect_right(self._starts, j) - 1
        value: str = self._chunks[c][j - self._starts[c]].as_py()
        return value

    def _range(self, start: int, stop: int) -> list[str]:
        out: list[str] = []
        if start >= stop:
            return out
        c = bisect.bisect_right(self._starts, start) - 1
        while start < stop:
            lo = start - self._starts[c]
            hi = min(stop, self._starts[c + 1]) - self._starts[c]
            out.extend(self._chunks[c].slice(lo, hi - lo).to_pylist())
            self._release(c)
            start = self._starts[c + 1]
            c += 1
        return out

    def _release(self, c: int) -> None:
        if self._mapping is not None:
            self._mapping.release(self._chunks[c])

    def __iter__(self) -> Iterator[str]:
        for chunk in self._chunks:
            for lo in range(0, len(chunk), _BATCH):
                yield from chunk.slice(lo, _BATCH).to_pylist()
            if self._mapping is not None:  # a streaming pass keeps one chunk resident, not the file
                self._mapping.release(chunk)

    def take(self, rows: Sequence[int] | np.ndarray) -> list[str]:
        """The strings at ``rows`` (in that order), gathered chunk by chunk (Arrow's own take on a
        chunked column would first concatenate every chunk into one copy)."""
        import pyarrow as pa

        idx = np.asarray(rows, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self._n):
            raise IndexError(f"row out of range for a column of {self._n} strings")
        out: list[str] = [""] * idx.size
        which = np.searchsorted(np.asarray(self._starts[1:]), idx, side="right")
        order = np.argsort(which, kind="stable")
        bounds = np.searchsorted(which[order], np.arange(len(self._chunks) + 1))
        for c in range(len(self._chunks)):
            pick = order[bounds[c] : bounds[c + 1]]
            if not pick.size:
                continue
            got = self._chunks[c].take(pa.array(idx[pick] - self._starts[c])).to_pylist()
            self._release(c)
            for i, value in zip(pick.tolist(), got):
                out[i] = value
        return out

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TextColumn):
            if self._n != other._n:
                return False
            mine, theirs = self.arrow(), other.arrow()
            return bool(mine.equals(theirs if theirs.type == mine.type else theirs.cast(mine.type)))
        if isinstance(other, Sequence) and not isinstance(other, (str, bytes)):
            return len(other) == self._n and all(a == b for a, b in zip(self, other))
        return NotImplemented

    def __add__(self, other: Sequence[str]) -> list[str]:
        """``column + list`` is a list, as for two lists (code written for lists keeps working)."""
        return [*self, *other]

    def __radd__(self, other: Sequence[str]) -> list[str]:
        return [*other, *self]

    __hash__ = None  # type: ignore[assignment]  # mutable-sequence semantics: compared, not hashed

    def __repr__(self) -> str:
        head = ", ".join(repr(s) for s in self[:3])
        return f"TextColumn([{head}{', ...' if self._n > 3 else ''}], n={self._n})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (TextColumn, (self._chunks,))  # by value: a pickled column owns its bytes

    @property
    def mapped(self) -> bool:
        """Whether the strings live in a memory-mapped file (see :func:`spill`)."""
        return self._mapping is not None

    # ------------------------------------------------------------------------------------ arrow
    def arrow(self) -> Any:
        """The column as one pyarrow ``ChunkedArray`` (no copy)."""
        import pyarrow as pa

        return pa.chunked_array(self._chunks, type=self._chunks[0].type if self._chunks else pa.large_string())

    @property
    def nbytes(self) -> int:
        """Bytes of the Arrow buffers (UTF-8 data and offsets)."""
        return sum(int(c.nbytes) for c in self._chunks)


class _Mapping:
    """A read-only memory map of an (already unlinked) spill file. :meth:`release` drops the pages
    of one chunk from this process's resident set (``MADV_DONTNEED``: they stay in the page cache
    and come back on the next touch), so a pass over a large corpus holds one chunk, not all."""

    def __init__(self, mm: mmap.mmap) -> None:
        import pyarrow as pa

        self.mm = mm
        self.buffer = pa.py_buffer(mm)  # zero-copy view: Arrow reads the file's pages in place
        self.base = self.buffer.address
        self.page = mmap.PAGESIZE

    def release(self, chunk: Any) -> None:
        advice = getattr(mmap, "MADV_DONTNEED", None)
        if advice is None:  # a platform without madvise: the kernel still evicts under pressure
            return
        bufs = [b for b in chunk.buffers() if b is not None and b.size]
        if not bufs:
            return
        lo = min(b.address for b in bufs) - self.base
        hi = max(b.address + b.size for b in bufs) - self.base
        if lo < 0 or hi > len(self.mm):  # not ours (a copy): nothing to release
            return
        start = lo - lo % self.page
        self.mm.madvise(advice, start, hi - start)


def spill(batches: Iterable[Any], schema: Any, names: Sequence[str]) -> dict[str, TextColumn]:
    """Write record ``batches`` to an Arrow IPC file and map it back: the columns ``names`` as
    :class:`TextColumn` whose strings are file-backed pages, not heap.

    The file is created already unlinked in ``$NEGMINE_TMPDIR`` (else the system temporary
    directory; it must be on disk, not a RAM-backed tmpfs, to save memory), so it disappears when
    the process ends, however it ends. Its pages count in the process's RSS only while they are
    resident; passes over a column release them chunk by chunk."""
    import pyarrow as pa

    with tempfile.TemporaryFile(dir=os.environ.get("NEGMINE_TMPDIR") or None, prefix="negmine-corpus-") as fh:
        with pa.ipc.new_file(fh, schema) as writer:
            for batch in batches:
                writer.write_batch(batch)
        fh.flush()
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)  # holds its own descriptor
    mapping = _Mapping(mm)
    table = pa.ipc.open_file(mapping.buffer).read_all()
    return {name: TextColumn(table.column(name).chunks, mapping) for name in names}


def row_lookup(column: Sequence[str], names: Sequence[str]) -> np.ndarray:
    """``int64[len(names)]``: the row of each of ``names`` in ``column`` (``-1`` where absent).

    A :class:`TextColumn` is searched by Arrow's hash join (no Python dict of every id); a list
    through a dict."""
    if isinstance(column, TextColumn) and len(column):
        import pyarrow as pa
        import pyarrow.compute as pc

        values = column.arrow()
        got = pc.index_in(pa.array(list(names), type=values.type), value_set=values)
        return np.asarray(got.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64).reshape(-1)
    row = {d: i for i, d in enumerate(column)}
    return np.fromiter((row.get(n, -1) for n in names), dtype=np.int64, count=len(names))


def take_rows(column: Sequence[str], rows: Sequence[int] | np.ndarray) -> list[str]:
    """The strings of ``column`` at ``rows``: one Arrow gather for a :class:`TextColumn`, plain
    indexing for a list."""
    if isinstance(column, TextColumn):
        return column.take(rows)
    return [column[int(i)] for i in np.asarray(rows, dtype=np.int64).reshape(-1)]
