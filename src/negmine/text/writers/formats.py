"""The row builders of the export formats, one per format, registered in
``negmine.text.registry.formats``: each turns one mined row into the rows its trainer reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from negmine.text.writers.export import ExportStream


@dataclass(frozen=True)
class MinedRow:
    """One mined row as a row builder sees it: the query's id and text, positive and negative
    document ids, and their scores (empty lists unless ``scores`` names which)."""

    query_id: str
    query: str
    positives: list[str]
    negatives: list[str]
    positive_scores: list[float]
    negative_scores: list[float]
    scores: str | None


def triplet_rows(s: ExportStream, r: MinedRow) -> list[dict[str, Any]]:
    """(anchor, positive, negative): every positive with every negative."""
    out: list[dict[str, Any]] = []
    for i, p in enumerate(r.positives):
        for j, n in enumerate(r.negatives):
            row: dict[str, Any] = {"anchor": r.query, "positive": s.t.doc(p), "negative": s.t.doc(n)}
            if r.scores:
                row["scores"] = [r.positive_scores[i], r.negative_scores[j]]
            out.append(row)
    return out


def n_tuple_rows(s: ExportStream, r: MinedRow) -> list[dict[str, Any]]:
    """(anchor, positive, negative_1..negative_n): one row per positive."""
    out: list[dict[str, Any]] = []
    for i, p in enumerate(r.positives):
        row: dict[str, Any] = {"anchor": r.query, "positive": s.t.doc(p)}
        row.update({f"negative_{j + 1}": s.t.doc(n) for j, n in enumerate(r.negatives)})
        if r.scores:
            row["scores"] = [r.positive_scores[i], *r.negative_scores]
        out.append(row)
    return out


def labeled_pair_rows(s: ExportStream, r: MinedRow) -> list[dict[str, Any]]:
    """(anchor, document, label 1/0), or the document's score with ``--scores``."""
    out: list[dict[str, Any]] = []
    for group, group_scores, label in ((r.positives, r.positive_scores, 1), (r.negatives, r.negative_scores, 0)):
        for i, d in enumerate(group):
            extra = {"score": group_scores[i]} if r.scores else {"label": label}
            out.append({"anchor": r.query, "document": s.t.doc(d), **extra})
    return out


def labeled_list_rows(s: ExportStream, r: MinedRow) -> list[dict[str, Any]]:
    """(anchor, [documents], [labels]) or [scores]: one row per query."""
    documents = [s.t.doc(d) for d in r.positives + r.negatives]
    if r.scores:
        return [{"anchor": r.query, "documents": documents, "scores": r.positive_scores + r.negative_scores}]
    return [{"anchor": r.query, "documents": documents, "labels": [1] * len(r.positives) + [0] * len(r.negatives)}]


def flag_rows(s: ExportStream, r: MinedRow) -> list[dict[str, Any]]:
    """FlagEmbedding's query, pos, neg (+ pos_scores, neg_scores, prompt, type)."""
    row: dict[str, Any] = {"query": r.query, "pos": [s.t.doc(p) for p in r.positives],
                           "neg": [s.t.doc(n) for n in r.negatives]}
    if r.scores:
        row.update(pos_scores=r.positive_scores, neg_scores=r.negative_scores)
    if s.prompt is not None:
        row["prompt"] = s.prompt
    if s.type_ is not None:
        row["type"] = s.type_
    return [row]


def tevatron_rows(s: ExportStream, r: MinedRow) -> list[dict[str, Any]]:
    """Tevatron's query_id, query, positive_passages, negative_passages (docid, title, text[, score])."""
    pos_p = [s.t.passage(p) for p in r.positives]
    neg_p = [s.t.passage(n) for n in r.negatives]
    if r.scores:
        for passage, score in zip(pos_p + neg_p, r.positive_scores + r.negative_scores):
            passage["score"] = score
    return [{"query_id": r.query_id, "query": r.query, "positive_passages": pos_p, "negative_passages": neg_p}]


def tevatron_ids_rows(s: ExportStream, r: MinedRow) -> list[dict[str, Any]]:
    """Tevatron 2's id-based rows; the documents they name go to the corpus file."""
    row: dict[str, Any] = {"query_id": r.query_id, "query_text": r.query, "positive_document_ids": r.positives,
                           "negative_document_ids": r.negatives}
    if r.scores:
        row.update(positive_scores=r.positive_scores, negative_scores=r.negative_scores)
    s.docs.update(r.positives + r.negatives)
    return [row]

