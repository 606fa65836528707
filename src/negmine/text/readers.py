"""Reading input files: jsonl/parquet records, BEIR corpus, queries and qrels, each checked.

Every problem is a :class:`~negmine.core.errors.DataError` naming the file and line (or up to three
offending ids) and how to fix it. A well-formed corpus is read by pyarrow into a memory-mapped
Arrow file (:func:`read_corpus`); everything else goes through the line-by-line checking reader.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from negmine.core.errors import DataError, examples
from negmine.core.optional import require
from negmine.text.types import Corpus

__all__ = ["check_text", "read_corpus", "read_qrels", "read_queries"]


# ---------------------------------------------------------------------------------------- readers
def _records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, record)`` from a jsonl or parquet file."""
    if not path.is_file():
        raise DataError(f"{path}: file not found; check the path")
    _check_readable(path)
    if path.suffix == ".parquet":
        pq = require("pyarrow.parquet")
        try:
            table = pq.read_table(path)
        except Exception as exc:  # pyarrow raises ArrowInvalid / OSError subclasses for unreadable files
            raise DataError(
                f"{path}: not a readable parquet file ({exc.__class__.__name__}); check the file or re-export it"
            ) from None
        for i, rec in enumerate(table.to_pylist(), start=1):
            yield i, rec
        return
    with _open(path) as fh:
        for i, raw in enumerate(_lines(fh, path), start=1):
            line = _decode(raw, path, i)
            if i == 1:
                line = line.removeprefix(_BOM)
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"{path}:{i}: malformed JSON ({exc.msg} at column {exc.colno}); fix or remove this line"
                ) from None
            if not isinstance(rec, dict):
                raise DataError(f"{path}:{i}: expected a JSON object, got {type(rec).__name__}; fix this line")
            yield i, rec


_BOM = "\ufeff"


def _unreadable(path: Path, exc: OSError) -> DataError:
    reason = exc.strerror or exc.__class__.__name__
    return DataError(f"{path}: cannot be read ({reason}); check the path and its permissions")


def _check_readable(path: Path) -> None:
    """Refuse a file that exists but cannot be opened (permissions, a directory...)."""
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise _unreadable(path, exc) from None


def _open(path: Path) -> BinaryIO:
    try:
        return path.open("rb")
    except OSError as exc:
        raise _unreadable(path, exc) from None


def _lines(fh: BinaryIO, path: Path) -> Iterator[bytes]:
    try:
        yield from fh
    except OSError as exc:  # an I/O error mid-file
        raise _unreadable(path, exc) from None


def _decode(raw: bytes, path: Path, line: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}:{line}: not valid UTF-8 (byte {raw[exc.start]:#04x} at column {exc.start + 1}); "
            "fix it by saving the file as UTF-8"
        ) from None


_QREL_HEADER_FIRST = ("query", "qid", "topic")


def _field(rec: dict[str, Any], name: str, path: Path | str, line: int, *, required: bool = True,
           is_id: bool = False) -> str:
    """The string value of ``rec[name]`` (a finite number is turned into its string), validated:
    no NaN/Infinity, no lone surrogates; an id (``is_id``) must not be empty or blank."""
    value = rec.get(name)
    if value is None:
        if required:
            raise DataError(f"{path}:{line}: missing field {name!r}; every record needs {name!r}")
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        shown = "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"
        raise DataError(f"{path}:{line}: field {name!r} is {shown}, not a value; write a string or finite number")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise DataError(f"{path}:{line}: field {name!r} must be a string, got {type(value).__name__}")
    if is_id and not value.strip():
        raise DataError(f"{path}:{line}: field {name!r} is empty; every record needs a non-empty id")
    check_text(value, f"{path}:{line}: field {name!r}")
    return value


def check_text(text: str, where: str) -> None:
    """Refuse ``text`` that cannot be written as UTF-8 (a lone surrogate such as ``"\\ud800"``,
    which JSON escapes allow), naming ``where`` and the column."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise DataError(
            f"{where} has a lone surrogate {text[exc.start]!r} at character {exc.start + 1}, which is not "
            "valid Unicode; fix the text (a broken \\uXXXX escape)"
        ) from None


def _check_unique(ids: Sequence[str], what: str, path: Path) -> None:
    seen: set[str] = set()
    dups: list[str] = []
    for i in ids:
        if i in seen:
            dups.append(i)
        seen.add(i)
    if dups:
        raise DataError(
            f"{path}: {len(dups)} duplicate {what} id(s): {examples(dict.fromkeys(dups))}; ids must be unique"
        )


def read_corpus(path: str | Path) -> Corpus:
    """Read a BEIR ``corpus.jsonl`` (or ``.parquet``) with ``_id``, ``text`` and optional ``title``.

    The columns are held in Arrow buffers (:class:`~negmine.text.textcol.TextColumn`), not Python lists.
    A well-formed file is parsed by pyarrow's C++ reader straight into those buffers; a file it
    cannot take as it is (numbers as ids, duplicate keys, bad UTF-8, missing fields...) goes
    through the checking reader below, which either accepts it exactly as before or names the
    line to fix."""
    path = Path(path)
    fast = _read_corpus_arrow(path)
    if fast is not None:
        return fast
    from negmine.text.textcol import TextColumn

    ids: list[str] = []
    titles: list[str] = []
    texts: list[str] = []
    for line, rec in _records(path):
        ids.append(_field(rec, "_id", path, line, is_id=True))
        texts.append(_field(rec, "text", path, line))
        titles.append(_field(rec, "title", path, line, required=False))
    if not ids:
        raise DataError(f"{path}: the corpus is empty; it needs at least one document")
    _check_unique(ids, "document", path)
    return Corpus(ids=TextColumn.from_iter(ids), texts=TextColumn.from_iter(texts),
                  titles=TextColumn.from_iter(titles))


def _read_corpus_arrow(path: Path) -> Corpus | None:
    """The corpus read by pyarrow when every record is plainly valid: string ``_id`` and ``text``,
    optional string ``title``, valid UTF-8, non-blank unique ids. ``None`` whenever anything is
    off, so that the checking reader decides (and words the error) exactly as it always has.

    Streaming: jsonl through pyarrow's incremental JSON reader, parquet by record batch; each
    batch is checked and appended to a spill file that is then memory-mapped
    (:func:`negmine.text.textcol.spill`), so neither the parse nor the corpus lives on the heap."""
    if not path.is_file():
        return None
    _check_readable(path)
    pa = require("pyarrow")
    pc = require("pyarrow.compute")
    from negmine.text.textcol import spill

    schema = pa.schema([("_id", pa.string()), ("title", pa.string()), ("text", pa.string())])
    try:
        if path.suffix == ".parquet":
            pq = require("pyarrow.parquet")
            pfile = pq.ParquetFile(path)
            names = pfile.schema_arrow.names
            if "_id" not in names or "text" not in names:
                return None
            source = pfile.iter_batches(batch_size=1 << 16, columns=[c for c in schema.names if c in names])
        else:
            pj = require("pyarrow.json")
            source = pj.open_json(path, read_options=pj.ReadOptions(block_size=1 << 20),  # 1 MB: peak ~0.1 GB, not ~0.5
                                  parse_options=pj.ParseOptions(explicit_schema=schema,
                                                                unexpected_field_behavior="ignore"))
    except Exception:  # any reader failure: the checking path reports it precisely
        return None

    class Declined(Exception):
        """A batch the checking reader must see."""

    def batches() -> Iterator[Any]:
        for batch in source:
            cols = []
            for name in schema.names:
                if name not in batch.schema.names:  # a parquet file without titles
                    cols.append(pa.array([""] * batch.num_rows, type=pa.string()))
                    continue
                col = batch.column(name)
                if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
                    raise Declined
                if name == "title":
                    col = col.fill_null("")
                elif col.null_count:
                    raise Declined
                try:
                    col.validate(full=True)  # UTF-8 (a lone surrogate cannot be valid UTF-8)
                except Exception:
                    raise Declined from None
                cols.append(col.cast(pa.string()))
            yield pa.record_batch(cols, schema=schema)

    try:
        cols = spill(batches(), schema, schema.names)
    except Exception:  # Declined, or the reader failing mid-file (malformed JSON, a type change)
        return None
    finally:
        pa.default_memory_pool().release_unused()  # the parser's freed blocks, not kept by the pool
    ids = cols["_id"]
    if len(ids) == 0 or pc.count_distinct(ids.arrow()).as_py() != len(ids):
        return None
    if any(not i.strip() for i in ids):  # Python's idea of blank, as the checking reader
        return None
    return Corpus(ids=ids, texts=cols["text"], titles=cols["title"])


def read_queries(path: str | Path) -> dict[str, str]:
    """Read a BEIR ``queries.jsonl`` (or ``.parquet``) into ``{query_id: text}``."""
    path = Path(path)
    ids: list[str] = []
    texts: list[str] = []
    for line, rec in _records(path):
        ids.append(_field(rec, "_id", path, line, is_id=True))
        texts.append(_field(rec, "text", path, line))
    _check_unique(ids, "query", path)
    return dict(zip(ids, texts))


def read_qrels(path: str | Path) -> list[tuple[str, str, float]]:
    """Read a BEIR qrels TSV (header ``query-id corpus-id score``) into ``(qid, docid, grade)`` rows."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found; check the path")
    rows: list[tuple[str, str, float]] = []
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise _unreadable(path, exc) from None
    raw = raw.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte order mark
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        _decode(raw.splitlines()[raw.count(b"\n", 0, exc.start)], path, raw.count(b"\n", 0, exc.start) + 1)
        raise  # unreachable: _decode raises for the offending line
    with io.StringIO(text, newline="") as fh:
        reader = csv.reader(fh, delimiter="\t")
        header = next(reader, None)
        if header is None:
            raise DataError(f"{path}: the qrels file is empty; it needs a header and at least one row")
        first = header[0].strip().lower() if header else ""
        if len(header) < 2 or _is_number(header[-1]) or not first.startswith(_QREL_HEADER_FIRST):
            raise DataError(
                f"{path}:1: the qrels file has no header; add the line 'query-id<TAB>corpus-id<TAB>score' first"
            )
        for line, row in enumerate(reader, start=2):
            if not row or not "".join(row).strip():
                continue
            if len(row) not in (2, 3, 4):
                raise DataError(f"{path}:{line}: expected 3 tab-separated columns, got {len(row)}; fix this line")
            if len(row) == 4:  # TREC qrels: qid iteration docid grade
                row = [row[0], row[2], row[3]]
            grade = 1.0
            if len(row) == 3:
                if not _is_number(row[2]):
                    raise DataError(f"{path}:{line}: score {row[2]!r} is not a number; fix this line")
                grade = float(row[2])
                if not math.isfinite(grade):
                    raise DataError(f"{path}:{line}: score {row[2]!r} is not a finite number; fix this line")
            qid, did = row[0].strip(), row[1].strip()
            for what, value in (("query id", qid), ("document id", did)):
                if not value:
                    raise DataError(f"{path}:{line}: empty {what}; fix this line")
                check_text(value, f"{path}:{line}: {what}")
            rows.append((qid, did, grade))
    return rows


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True
