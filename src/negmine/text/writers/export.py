"""Training files derived from the canonical mined file (exports never re-mine).

============  =======================================================================
format        one row is
============  =======================================================================
triplet       (anchor, positive, negative) per query × positive × negative
n-tuple       (anchor, positive, negative_1..negative_n) per query × positive;
              rows short of ``n`` negatives are left out (counted)
labeled-pair  (anchor, document, label 1/0) per positive and per negative
labeled-list  (anchor, [documents], [labels]) per query
flag          FlagEmbedding: {"query", "pos": [...], "neg": [...]} (+ ``prompt``, ``type``)
tevatron      Tevatron: {"query_id", "query", "positive_passages", "negative_passages"}
tevatron-ids  Tevatron 2's id-based form: {"query_id", "query_text", "positive_document_ids",
              "negative_document_ids"}, plus a corpus file of {"docid", "text"}
============  =======================================================================

Scores (``scores="retrieval"`` or ``"cross-encoder"``: which matrix of the mining run) are added
as sentence-transformers' ``output_scores`` does (``scores`` columns; ``score`` instead of
``label``), as FlagEmbedding's ``pos_scores`` / ``neg_scores``, as a ``score`` in every Tevatron
passage, and as ``positive_scores`` / ``negative_scores`` lists in ``tevatron-ids`` rows.

Queries with no negative at all are left out of ``flag``, ``tevatron`` and ``tevatron-ids`` (both
trainers crash on an empty negative list: FlagEmbedding with ZeroDivisionError, Tevatron with
IndexError) and counted, unless ``keep_empty``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from negmine.core.atomic import dumps, write_jsonl, write_parquet_batches
from negmine.core.errors import ConfigError, DataError, examples
from negmine.core.targets import check_output_file
from negmine.text import registry as text_registry
from negmine.text.writers.formats import MinedRow

log = logging.getLogger(__name__)

FORMATS = tuple(text_registry.formats.entries)  # registration order: triplet, n-tuple, ... tevatron-ids
#: score matrix name -> (positive column, negative column) of the canonical mined rows
SCORES = {
    "retrieval": ("positive_scores", "negative_scores"),
    "cross-encoder": ("positive_ce_scores", "negative_ce_scores"),
}
#: formats whose trainers cannot use a query without negatives
NEEDS_NEGATIVES = ("flag", "tevatron", "tevatron-ids")
#: FlagEmbedding reads only these (``datasets.load_dataset('json', ...)``)
FLAG_SUFFIXES = (".jsonl", ".json")
Texts = dict[tuple[str, str], dict[str, str]]
#: rows per parquet record batch when an export is written
BATCH_ROWS = 8192


def _full(t: dict[str, str]) -> str:
    return f"{t['title']} {t['text']}".strip() if t["title"] else t["text"]


class _Lookup:
    def __init__(self, texts: Texts) -> None:
        self.texts = texts

    def query(self, qid: str) -> str:
        return self._get("query", qid)["text"]

    def doc(self, did: str) -> str:
        return _full(self._get("doc", did))

    def passage(self, did: str) -> dict[str, Any]:
        t = self._get("doc", did)
        return {"docid": did, "title": t["title"], "text": t["text"]}

    def _get(self, kind: str, i: str) -> dict[str, str]:
        try:
            return self.texts[(kind, i)]
        except KeyError:
            raise DataError(f"no text for {kind} {i!r} in the mining output; re-run 'negmine mine'") from None


@dataclass
class Export:
    """Rows of one export and what was left out.

    ``rows`` are the training rows; ``corpus`` the ``{"docid", "text"}`` rows of
    ``tevatron-ids`` (empty otherwise); ``counts`` holds ``rows``, ``queries``,
    ``queries_left_out_short`` (``n-tuple``: fewer negatives than asked),
    ``queries_left_out_no_negatives`` (``flag``/``tevatron``/``tevatron-ids``) and, with scores,
    ``queries_negative_above_positive`` (queries where the chosen scores rank a negative above a
    positive).
    """

    rows: list[dict[str, Any]]
    corpus: list[dict[str, str]] = field(default_factory=list)
    counts: dict[str, Any] = field(default_factory=dict)


def _check_options(fmt: str, scores: str | None, prompt: str | None, type_: str | None) -> None:
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; known formats: {', '.join(FORMATS)}")
    if scores is not None and scores not in SCORES:
        raise ConfigError(f"unknown score matrix {scores!r}; choose one of: {', '.join(SCORES)}")
    if fmt != "flag" and (prompt is not None or type_ is not None):
        raise ConfigError(f"--prompt and --type are FlagEmbedding columns; use them with --format flag, not {fmt}")


def _scores(r: dict[str, Any], scores: str) -> tuple[list[float], list[float]]:
    pos_col, neg_col = SCORES[scores]
    if pos_col not in r or neg_col not in r:
        hint = " (mine with --cross-encoder MODEL)" if scores == "cross-encoder" else ""
        raise ConfigError(
            f"the mining run has no {scores} scores{hint}; choose --scores "
            + " or ".join(n for n, (p, q) in SCORES.items() if p in r and q in r)
        )
    ps, ns = [float(x) for x in r[pos_col]], [float(x) for x in r[neg_col]]
    if not all(math.isfinite(x) for x in ps + ns):
        raise DataError(
            f"query {r['query_id']!r} has a non-finite {scores} score (NaN or infinite), which trainers cannot "
            "use; export without scores or choose another --scores"
        )
    return ps, ns


def build_export(fmt: str, rows: Iterable[dict[str, Any]], texts: Texts, *, num_negatives: int,
                 scores: str | None = None, keep_empty: bool = False, prompt: str | None = None,
                 type_: str | None = None) -> Export:
    """The training rows of ``fmt`` from canonical mined rows and their texts.

    Parameters
    ----------
    fmt
        One of :data:`FORMATS`.
    rows
        Canonical mined rows (``query_id``, ``positive_ids``, ``negative_ids``, score lists).
    texts
        ``{("query"|"doc", id): {"title", "text"}}``.
    num_negatives
        Negatives asked per query (``n-tuple`` leaves out shorter rows).
    scores
        ``None`` (no scores) or a key of :data:`SCORES`: which score matrix to write.
    keep_empty
        Keep queries without negatives in ``flag``/``tevatron``/``tevatron-ids`` (trainers crash
        on them; only for inspection).
    prompt, type_
        FlagEmbedding's optional ``prompt`` (query instruction) and ``type`` columns (``flag``).
    """
    stream = ExportStream(fmt, texts, num_negatives=num_negatives, scores=scores, keep_empty=keep_empty,
                          prompt=prompt, type_=type_)
    out = list(stream.rows(rows))
    return Export(out, stream.corpus(), stream.counts())


class ExportStream:
    """The rows of an export produced one mined row at a time (:meth:`rows` is a generator), so a
    large run is written in batches instead of held whole; :meth:`counts` and :meth:`corpus` are
    complete once :meth:`rows` is exhausted. Options as :func:`build_export`."""

    def __init__(self, fmt: str, texts: Texts, *, num_negatives: int, scores: str | None = None,
                 keep_empty: bool = False, prompt: str | None = None, type_: str | None = None) -> None:
        _check_options(fmt, scores, prompt, type_)
        self.fmt, self.scores, self.keep_empty = fmt, scores, keep_empty
        self.prompt, self.type_, self.num_negatives = prompt, type_, num_negatives
        self.t = _Lookup(texts)
        self.builder: Callable[[ExportStream, MinedRow], list[dict[str, Any]]] = text_registry.formats.get(fmt).load()
        self.docs: set[str] = set()
        self.n_rows = self.n_queries = self.short = self.empty = self.inverted = 0
        self.inverted_ids: list[str] = []

    def rows(self, mined: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for r in mined:
            for row in self._rows_of(r):
                self.n_rows += 1
                yield row

    def _rows_of(self, r: dict[str, Any]) -> list[dict[str, Any]]:
        """The rows of one mined row, from the format's row builder (registered in
        ``negmine.text.registry.formats``), after the checks every format shares."""
        fmt, scores, t = self.fmt, self.scores, self.t
        self.n_queries += 1
        P, N = list(r["positive_ids"]), list(r["negative_ids"])
        if fmt == "n-tuple" and len(N) < self.num_negatives:
            self.short += 1
            return []
        if fmt in NEEDS_NEGATIVES and not N and not self.keep_empty:
            self.empty += 1
            return []
        ps: list[float] = []
        ns: list[float] = []
        if scores is not None:
            ps, ns = _scores(r, scores)
            if ps and ns and max(ns) > min(ps):
                self.inverted += 1
                self.inverted_ids.append(r["query_id"])
        row = MinedRow(r["query_id"], t.query(r["query_id"]), P, N, ps, ns, scores)
        return self.builder(self, row)

    def corpus(self) -> list[dict[str, str]]:
        """``tevatron-ids``' ``{"docid", "text"}`` rows (empty for the other formats)."""
        return [{"docid": d, "text": self.t.doc(d)} for d in sorted(self.docs)]

    def counts(self) -> dict[str, Any]:
        """What was exported and left out (logs a warning when scores rank a negative above a
        positive)."""
        counts: dict[str, Any] = {"rows": self.n_rows, "queries": self.n_queries,
                                  "queries_left_out_short": self.short, "queries_left_out_no_negatives": self.empty}
        if self.scores is not None:
            counts["scores"] = self.scores
            counts["queries_negative_above_positive"] = self.inverted
            if self.inverted:
                log.warning(
                    "%d of %d exported queries have a negative with a higher %s score than a positive (e.g. %s): a "
                    "distillation teacher would teach that order; consider --scores cross-encoder or no scores",
                    self.inverted, self.n_queries - self.short - self.empty, self.scores,
                    examples(self.inverted_ids),
                )
        if self.fmt == "tevatron-ids":
            counts["corpus_documents"] = len(self.docs)
        return counts


def export_rows(fmt: str, rows: Iterable[dict[str, Any]], texts: Texts, *, num_negatives: int,
                with_scores: bool = False, scores: str | None = None, keep_empty: bool = False,
                prompt: str | None = None, type_: str | None = None) -> list[dict[str, Any]]:
    """Rows of training data in ``fmt`` (see :func:`build_export`); ``with_scores`` is
    ``scores="retrieval"``."""
    if with_scores and scores is None:
        scores = "retrieval"
    return build_export(fmt, rows, texts, num_negatives=num_negatives, scores=scores, keep_empty=keep_empty,
                        prompt=prompt, type_=type_).rows


def rows_to_columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    if not rows:
        return {}
    return {k: [r[k] for r in rows] for k in rows[0]}


def corpus_path_for(out: Path) -> Path:
    """Where ``tevatron-ids`` writes its corpus by default: ``train.jsonl`` -> ``train.corpus.jsonl``."""
    return out.with_name(f"{out.stem}.corpus{out.suffix}")


def _write(path: Path, rows: Iterable[dict[str, Any]], what: str) -> None:
    """Write ``rows`` to ``path`` atomically, streaming: jsonl line by line, parquet in record
    batches of :data:`BATCH_ROWS` rows (an export is never held whole in memory)."""
    try:
        if path.suffix == ".parquet":
            write_parquet_batches(path, rows, BATCH_ROWS)
        else:
            write_jsonl(path, rows)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be written ({exc.strerror or exc}); choose another {what}") from None


def export_file(directory: str | Path, fmt: str, out: str | Path | IO[str], *, with_scores: bool = False,
                scores: str | None = None, overwrite: bool = False, keep_empty: bool = False,
                prompt: str | None = None, type_: str | None = None,
                corpus_out: str | Path | None = None) -> dict[str, Any]:
    """Write ``fmt`` rows derived from the mining output in ``directory`` to ``out`` (a
    ``.jsonl``/``.parquet`` path, or an open text stream for jsonl) and return the counts of
    :class:`Export` (plus ``out`` and, for ``tevatron-ids``, ``corpus_out``).

    Everything is checked before the run is read: the format and options, the file type (a
    ``flag`` export must be ``.jsonl``/``.json``, FlagEmbedding reads nothing else), that ``out``
    does not exist (unless ``overwrite``) and that its directory is writable.
    """
    from negmine.text.writers.mined import load_mined

    if with_scores and scores is None:
        scores = "retrieval"
    _check_options(fmt, scores, prompt, type_)
    stream = None if isinstance(out, (str, Path)) else out
    path = None if stream is not None else Path(out)  # type: ignore[arg-type]
    if path is not None:
        suffixes = FLAG_SUFFIXES if fmt == "flag" else (".jsonl", ".parquet")
        if path.suffix not in suffixes:
            why = " (FlagEmbedding reads only .json/.jsonl)" if fmt == "flag" else ""
            kind = repr(path.suffix) if path.suffix else "a file without suffix"
            raise ConfigError(
                f"{path}: cannot write a {fmt} export as {kind}{why}; "
                f"name the output {' or '.join('*' + s for s in suffixes)}"
            )
        check_output_file(path, "--out", overwrite=overwrite, read_dirs=[directory])
    corpus_target: Path | None = None
    if fmt == "tevatron-ids":
        if corpus_out is None and path is None:
            raise ConfigError("a tevatron-ids export to stdout needs --corpus-out FILE for its corpus")
        corpus_target = Path(corpus_out) if corpus_out is not None else corpus_path_for(path)  # type: ignore[arg-type]
        if corpus_target.suffix not in (".jsonl", ".parquet"):
            raise ConfigError(f"{corpus_target}: name the corpus file *.jsonl or *.parquet")
        if path is not None and corpus_target.resolve() == path.resolve():
            raise ConfigError(f"{corpus_target}: the corpus file must differ from --out")
        check_output_file(corpus_target, "--corpus-out", overwrite=overwrite, read_dirs=[directory])
    elif corpus_out is not None:
        raise ConfigError(f"--corpus-out is for --format tevatron-ids, not {fmt}")

    rows, texts, manifest = load_mined(directory)
    n = manifest.get("num_negatives", 0)
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise DataError(f"{Path(directory) / 'manifest.json'}: num_negatives is {n!r}, not a count of negatives "
                        "(edited or corrupted); mine again into this directory with --overwrite")
    exp = ExportStream(fmt, texts, num_negatives=n, scores=scores, keep_empty=keep_empty, prompt=prompt,
                       type_=type_)
    if stream is not None:
        for r in exp.rows(rows):
            stream.write(dumps(r, ensure_ascii=False) + "\n")
        stream.flush()
    elif path is not None:
        _write(path, exp.rows(rows), "--out")
    if corpus_target is not None:
        _write(corpus_target, exp.corpus(), "--corpus-out")
    counts = exp.counts()
    if corpus_target is not None:
        counts["corpus_out"] = str(corpus_target)
    counts["out"] = "-" if stream is not None else str(path)
    return counts
