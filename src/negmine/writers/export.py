"""Training files derived from the canonical mined file (exports never re-mine).

=============  =====================================================================
format         one row is
=============  =====================================================================
triplet        (anchor, positive, negative) per query × positive × negative
n-tuple        (anchor, positive, negative_1..negative_n) per query × positive;
               rows short of ``n`` negatives are left out (counted)
labeled-pair   (anchor, document, label 1/0) per positive and per negative
labeled-list   (anchor, [documents], [labels]) per query
flag           FlagEmbedding: {"query", "pos": [...], "neg": [...]}
tevatron       Tevatron: {"query_id", "query", "positive_passages", "negative_passages"}
=============  =====================================================================

``with_scores`` adds the mining scores as sentence-transformers' ``output_scores`` does
(``scores`` columns; ``score`` instead of ``label``), and FlagEmbedding's ``pos_scores`` /
``neg_scores``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from negmine.errors import ConfigError, DataError
from negmine.writers._atomic import write_jsonl, write_parquet

FORMATS = ("triplet", "n-tuple", "labeled-pair", "labeled-list", "flag", "tevatron")
Texts = dict[tuple[str, str], dict[str, str]]


def _full(t: dict[str, str]) -> str:
    return f"{t['title']} {t['text']}".strip() if t["title"] else t["text"]


class _Lookup:
    def __init__(self, texts: Texts) -> None:
        self.texts = texts

    def query(self, qid: str) -> str:
        return self._get("query", qid)["text"]

    def doc(self, did: str) -> str:
        return _full(self._get("doc", did))

    def passage(self, did: str) -> dict[str, str]:
        t = self._get("doc", did)
        return {"docid": did, "title": t["title"], "text": t["text"]}

    def _get(self, kind: str, i: str) -> dict[str, str]:
        try:
            return self.texts[(kind, i)]
        except KeyError:
            raise DataError(f"no text for {kind} {i!r} in the mining output; re-run 'negmine mine'") from None


def export_rows(fmt: str, rows: Iterable[dict[str, Any]], texts: Texts, *, num_negatives: int,
                with_scores: bool = False) -> list[dict[str, Any]]:
    """Rows of training data in ``fmt`` from canonical mined rows and their texts."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; known formats: {', '.join(FORMATS)}")
    t = _Lookup(texts)
    out: list[dict[str, Any]] = []
    for r in rows:
        q = t.query(r["query_id"])
        pos = list(zip(r["positive_ids"], r["positive_scores"]))
        neg = list(zip(r["negative_ids"], r["negative_scores"]))
        if fmt == "triplet":
            for p, ps in pos:
                for n, ns in neg:
                    row: dict[str, Any] = {"anchor": q, "positive": t.doc(p), "negative": t.doc(n)}
                    if with_scores:
                        row["scores"] = [ps, ns]
                    out.append(row)
        elif fmt == "n-tuple":
            if len(neg) < num_negatives:
                continue
            for p, ps in pos:
                row = {"anchor": q, "positive": t.doc(p)}
                row.update({f"negative_{i + 1}": t.doc(n) for i, (n, _) in enumerate(neg)})
                if with_scores:
                    row["scores"] = [ps] + [ns for _, ns in neg]
                out.append(row)
        elif fmt == "labeled-pair":
            for group, label in ((pos, 1), (neg, 0)):
                for d, s in group:
                    extra = {"score": s} if with_scores else {"label": label}
                    out.append({"anchor": q, "document": t.doc(d), **extra})
        elif fmt == "labeled-list":
            docs = [t.doc(d) for d, _ in pos + neg]
            if with_scores:
                out.append({"anchor": q, "documents": docs, "scores": [s for _, s in pos + neg]})
            else:
                out.append({"anchor": q, "documents": docs, "labels": [1] * len(pos) + [0] * len(neg)})
        elif fmt == "flag":
            row = {"query": q, "pos": [t.doc(p) for p, _ in pos], "neg": [t.doc(n) for n, _ in neg]}
            if with_scores:
                row.update(pos_scores=[s for _, s in pos], neg_scores=[s for _, s in neg])
            out.append(row)
        else:  # tevatron
            out.append({
                "query_id": r["query_id"], "query": q,
                "positive_passages": [t.passage(p) for p, _ in pos],
                "negative_passages": [t.passage(n) for n, _ in neg],
            })
    return out


def rows_to_columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    if not rows:
        return {}
    return {k: [r[k] for r in rows] for k in rows[0]}


def export_file(directory: str | Path, fmt: str, out: str | Path, *, with_scores: bool = False,
                overwrite: bool = False) -> dict[str, int]:
    """Write ``fmt`` rows derived from the mining output in ``directory`` to ``out``
    (``.jsonl`` or ``.parquet``); returns counts (rows written, queries left out)."""
    from negmine.writers.mined import load_mined

    out = Path(out)
    if out.suffix not in (".jsonl", ".parquet"):
        raise ConfigError(f"{out}: unknown file type {out.suffix!r}; name the output *.jsonl or *.parquet")
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; known formats: {', '.join(FORMATS)}")
    if out.exists() and not overwrite:
        raise ConfigError(f"{out}: already exists; choose another --out or pass --overwrite")
    rows, texts, manifest = load_mined(directory)
    n = int(manifest.get("num_negatives", 0))
    data = export_rows(fmt, rows, texts, num_negatives=n, with_scores=with_scores)
    short = sum(1 for r in rows if len(r["negative_ids"]) < n) if fmt == "n-tuple" else 0
    if out.suffix == ".parquet":
        write_parquet(out, rows_to_columns(data))
    else:
        write_jsonl(out, data)
    return {"rows": len(data), "queries": len(rows), "queries_left_out_short": short}
