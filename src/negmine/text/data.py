"""Loading and validating mining inputs: BEIR directories, jsonl/parquet files, Python objects.

All loaders return :class:`~negmine.text.types.MiningData`. Every problem is reported as a
:class:`~negmine.core.errors.DataError` naming the file and line (or up to three offending ids) and
how to fix it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from negmine.core.errors import DataError, examples
from negmine.text.readers import _field, _records, check_text, read_corpus, read_qrels, read_queries
from negmine.text.types import Corpus, MiningData, Qrels, Queries

__all__ = ["from_pairs", "load_beir", "load_files", "load_pairs"]



# --------------------------------------------------------------------------------------- assembly
def _assemble(
    corpus: Corpus,
    query_texts: dict[str, str],
    split_rows: list[tuple[str, str, float]],
    exclude_rows: list[tuple[str, list[tuple[str, str, float]]]],
    *,
    where: str,
    drop_unknown: bool,
    min_relevance: float,
    sources: dict[str, str],
) -> MiningData:
    from negmine.text.textcol import row_lookup

    named = list(dict.fromkeys(d for rows in (split_rows, *(r for _, r in exclude_rows)) for _, d, _ in rows))
    doc_row = {d: int(r) for d, r in zip(named, row_lookup(corpus.ids, named)) if r >= 0}
    stats: dict[str, Any] = {"qrels_unknown_dropped": 0, "queries_skipped_no_positive": 0}

    def known(rows: list[tuple[str, str, float]], where: str) -> list[tuple[str, str, float]]:
        bad_q = [q for q, _, _ in rows if q not in query_texts]
        bad_d = [d for _, d, _ in rows if d not in doc_row]
        if (bad_q or bad_d) and not drop_unknown:
            parts = []
            if bad_q:
                parts.append(f"{len(bad_q)} unknown query id(s) {examples(dict.fromkeys(bad_q))}")
            if bad_d:
                parts.append(f"{len(bad_d)} unknown document id(s) {examples(dict.fromkeys(bad_d))}")
            raise DataError(
                f"{where}: qrels name {' and '.join(parts)} absent from the queries/corpus; "
                "fix the ids or pass --drop-unknown to skip them"
            )
        kept = [r for r in rows if r[0] in query_texts and r[1] in doc_row]
        stats["qrels_unknown_dropped"] += len(rows) - len(kept)
        return kept

    split_rows = known(split_rows, where)
    excluded = [r for path, rows in exclude_rows for r in known(rows, path)]

    # Queries of the split, in order of first appearance; those without a positive are skipped.
    split_qids = list(dict.fromkeys(q for q, _, _ in split_rows))
    pos_rows = [r for r in split_rows if r[2] >= min_relevance]
    with_pos = {q for q, _, _ in pos_rows}
    skipped = [q for q in split_qids if q not in with_pos]
    stats["queries_skipped_no_positive"] = len(skipped)
    qids = [q for q in split_qids if q in with_pos]
    if not qids:
        raise DataError(f"{where}: no query has a positive (grade >= {min_relevance}); check the qrels and split")
    q_row = {q: i for i, q in enumerate(qids)}
    queries = Queries(ids=qids, texts=[query_texts[q] for q in qids])

    def to_qrels(rows: Iterable[tuple[str, str, float]]) -> Qrels:
        rows = [r for r in rows if r[0] in q_row and r[2] >= min_relevance]
        return Qrels.from_pairs(
            len(qids),
            np.array([q_row[q] for q, _, _ in rows], dtype=np.int64),
            np.array([doc_row[d] for _, d, _ in rows], dtype=np.int64),
            np.array([g for _, _, g in rows], dtype=np.float32),
        )

    positives = to_qrels(pos_rows)
    exclude = positives.union(to_qrels(excluded))
    stats["skipped_query_ids"] = skipped
    return MiningData(corpus, queries, positives, exclude, stats=stats, sources=sources)


def load_beir(
    path: str | Path,
    split: str = "train",
    *,
    exclude_splits: Sequence[str] | None = None,
    drop_unknown: bool = False,
    min_relevance: float = 1.0,
) -> MiningData:
    """Load a BEIR directory (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``).

    Parameters
    ----------
    path
        The dataset directory.
    split
        The qrels split whose queries are mined.
    exclude_splits
        Splits whose positives are also never negatives. ``None`` (default): every split in
        ``qrels/`` — the safe choice, since a document labelled relevant anywhere is not a negative.
    drop_unknown
        Skip qrels rows naming unknown ids (counted in the report) instead of failing.
    min_relevance
        Grades below this are not positives (BEIR uses 0 for judged non-relevant).
    """
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"{root}: dataset directory not found; pass a BEIR directory with corpus.jsonl")
    corpus_path = _first_existing(root, ["corpus.jsonl", "corpus.parquet"])
    queries_path = _first_existing(root, ["queries.jsonl", "queries.parquet"])
    qrels_dir = root / "qrels"
    split_path = qrels_dir / f"{split}.tsv"
    if not split_path.is_file():
        have = sorted(p.stem for p in qrels_dir.glob("*.tsv")) if qrels_dir.is_dir() else []
        raise DataError(
            f"{split_path}: split {split!r} not found; available splits: {', '.join(have) or 'none'}"
        )
    if exclude_splits is None:
        extra = sorted(p for p in qrels_dir.glob("*.tsv") if p != split_path)
    else:
        extra = [qrels_dir / f"{s}.tsv" for s in exclude_splits if s != split]
    return load_files(
        corpus_path, queries_path, split_path, exclude_qrels=extra,
        drop_unknown=drop_unknown, min_relevance=min_relevance,
    )


def load_files(
    corpus: str | Path,
    queries: str | Path,
    qrels: str | Path,
    *,
    exclude_qrels: Sequence[str | Path] = (),
    drop_unknown: bool = False,
    min_relevance: float = 1.0,
) -> MiningData:
    """Load BEIR-format files given one by one; ``exclude_qrels`` are further qrels whose positives
    are never negatives (e.g. the other splits)."""
    corpus_obj = read_corpus(corpus)
    query_texts = read_queries(queries)
    split_rows = read_qrels(qrels)
    exclude_rows = [(str(p), read_qrels(p)) for p in exclude_qrels]
    sources = {"corpus": str(corpus), "queries": str(queries), "qrels": str(qrels)}
    sources.update({f"exclude_qrels_{i}": str(p) for i, p in enumerate(exclude_qrels)})
    return _assemble(
        corpus_obj, query_texts, split_rows, exclude_rows, where=str(qrels),
        drop_unknown=drop_unknown, min_relevance=min_relevance, sources=sources,
    )


def _first_existing(root: Path, names: list[str]) -> Path:
    for n in names:
        if (root / n).is_file():
            return root / n
    raise DataError(f"{root}: none of {', '.join(names)} found; a BEIR directory needs them")


# ------------------------------------------------------------------------------------------ pairs
def _text_id(prefix: str, text: str) -> str:
    return prefix + hashlib.sha1(text.encode("utf-8", "surrogatepass"), usedforsecurity=False).hexdigest()[:16]


def from_pairs(
    anchors: Sequence[str],
    positives: Sequence[str],
    corpus: Sequence[str] | None = None,
    *,
    where: str = "pairs",
) -> MiningData:
    """Build mining data from parallel lists of anchor and positive *texts* (the
    sentence-transformers pair shape). The corpus is the positives plus ``corpus``; ids are
    derived from the texts (``q…``/``d…`` + a hash), so they do not depend on row order. A
    query's positives are all the positives paired with the same anchor text.
    """
    if len(anchors) != len(positives):
        raise DataError(f"{where}: {len(anchors)} anchors but {len(positives)} positives; they must pair up")
    for i, (a, p) in enumerate(zip(anchors, positives), start=1):
        if not isinstance(a, str) or not isinstance(p, str):
            raise DataError(f"{where}:{i}: anchor and positive must be strings; fix this row")
        check_text(a, f"{where}:{i}: anchor")
        check_text(p, f"{where}:{i}: positive")
    for i, t in enumerate(corpus or [], start=1):
        if not isinstance(t, str):
            raise DataError(f"{where}: corpus item {i} must be a string, got {type(t).__name__}; fix it")
        check_text(t, f"{where}: corpus item {i}")
    docs = list(dict.fromkeys([*positives, *(corpus or [])]))
    if not docs:
        raise DataError(f"{where}: no documents; pass at least one (anchor, positive) pair")
    corpus_obj = Corpus(ids=[_text_id("d", t) for t in docs], texts=docs)
    query_texts = {_text_id("q", a): a for a in anchors}
    rows = [(_text_id("q", a), _text_id("d", p), 1.0) for a, p in zip(anchors, positives)]
    return _assemble(
        corpus_obj, query_texts, rows, [], where=where, drop_unknown=False, min_relevance=1.0,
        sources={"pairs": where},
    )


def load_pairs(path: str | Path, *, corpus: str | Path | None = None) -> MiningData:
    """Load a jsonl/parquet file with ``anchor`` and ``positive`` text columns; ``corpus`` is an
    optional file of extra documents (a BEIR corpus, or jsonl/parquet with a ``text`` column)."""
    path = Path(path)
    anchors: list[str] = []
    positives: list[str] = []
    for line, rec in _records(path):
        anchors.append(_field(rec, "anchor", path, line))
        positives.append(_field(rec, "positive", path, line))
    extra: list[str] = []
    if corpus is not None:
        cpath = Path(corpus)
        for line, rec in _records(cpath):
            title = _field(rec, "title", cpath, line, required=False)
            text = _field(rec, "text", cpath, line)
            extra.append(f"{title} {text}".strip() if title else text)
    data = from_pairs(anchors, positives, extra, where=str(path))
    sources = {"pairs": str(path)}
    if corpus is not None:
        sources["corpus"] = str(corpus)
    return MiningData(data.corpus, data.queries, data.positives, data.exclude, stats=data.stats, sources=sources)
