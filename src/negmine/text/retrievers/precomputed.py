"""Candidates supplied by the user: a TREC run file or an npz of ids and scores."""

from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from negmine.core.errors import DataError, examples
from negmine.text.retrievers.base import resort
from negmine.text.types import Candidates, MiningData, RunContext


class Precomputed:
    """Candidates from another system (a TREC run: ``qid Q0 docid rank score tag`` per line) or an
    ``.npz`` with ``query_ids`` (str[n]), ``doc_ids`` (str[n, m], ``""`` = none) and ``scores``
    (float[n, m]) — e.g. citation neighbours (BiCA) or kNN-graph neighbours at a set distance
    (SciNCL). Rows are re-sorted by score (ties to the lower corpus row). Queries the run does
    not list get no candidates (a shortfall); positives it does not list have a ``NaN`` score,
    and margin filters then keep nothing for that query (fail closed).
    """

    name = "precomputed"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path)}

    def _read(self) -> dict[str, list[tuple[str, float]]]:
        if not self.path.is_file():
            raise DataError(f"{self.path}: run file not found; check --run")
        out: dict[str, list[tuple[str, float]]] = {}
        if self.path.suffix == ".npz":
            return self._read_npz()
        with self.path.open("rb") as fh:
            for line_no, raw in enumerate(fh, start=1):
                try:
                    line = raw.decode("utf-8-sig" if line_no == 1 else "utf-8")
                except UnicodeDecodeError as exc:
                    raise DataError(f"{self.path}:{line_no}: not UTF-8 text (byte {raw[exc.start:exc.start + 1]!r} "
                                    f"at column {exc.start + 1}); save the run as UTF-8") from None
                parts = line.split()
                if not parts:
                    continue
                if len(parts) != 6:
                    raise DataError(
                        f"{self.path}:{line_no}: a TREC run line has 6 fields (qid Q0 docid rank score tag)"
                    )
                try:
                    score = float(parts[4])
                except ValueError:
                    raise DataError(f"{self.path}:{line_no}: score {parts[4]!r} is not a number") from None
                if not math.isfinite(score):
                    raise DataError(f"{self.path}:{line_no}: score {parts[4]!r} is not finite; write a finite "
                                    "score on every line")
                out.setdefault(parts[0], []).append((parts[2], score))
        return out

    def _read_npz(self) -> dict[str, list[tuple[str, float]]]:
        """An npz of plain arrays (never unpickled: object arrays are refused with what to write)."""
        if not zipfile.is_zipfile(self.path):
            raise DataError(f"{self.path}: not an .npz archive (not a zip file); write it with numpy.savez, or "
                            "pass a TREC run file")
        try:
            with np.load(self.path, allow_pickle=False) as z:
                missing = [k for k in ("query_ids", "doc_ids", "scores") if k not in z]
                if missing:
                    raise DataError(f"{self.path}: missing arrays {', '.join(missing)}; need query_ids, doc_ids, "
                                    "scores")
                qids, dids, scores = z["query_ids"], z["doc_ids"], z["scores"]
        except ValueError as exc:
            if "pickle" in str(exc) or "Object arrays" in str(exc):
                raise DataError(f"{self.path}: holds object arrays, which negmine does not unpickle (a pickle can "
                                "run code); save query_ids and doc_ids as string arrays (e.g. "
                                "numpy.array(ids, dtype=str)) and scores as floats") from None
            raise DataError(f"{self.path}: not a readable .npz ({exc}); write it with numpy.savez") from None
        except (OSError, zipfile.BadZipFile, EOFError) as exc:
            raise DataError(f"{self.path}: not a readable .npz ({exc}); write it with numpy.savez") from None
        if dids.ndim != 2 or dids.shape != scores.shape or qids.ndim != 1 or len(qids) != len(dids):
            raise DataError(
                f"{self.path}: doc_ids and scores must be [n_queries, m] with n_queries = len(query_ids)"
            )
        if scores.dtype.kind not in "fiu":
            raise DataError(f"{self.path}: scores are of type {scores.dtype}, not real numbers; save float scores")
        out: dict[str, list[tuple[str, float]]] = {}
        for q, ds, ss in zip(qids, dids, scores):
            row = [(str(d), float(x)) for d, x in zip(ds, ss) if str(d)]
            if not all(math.isfinite(x) for _, x in row):
                raise DataError(f"{self.path}: query {str(q)!r} has a non-finite score; write finite scores")
            out[str(q)] = row
        return out

    def retrieve(self, data: MiningData, k: int, ctx: RunContext | None = None) -> Candidates:
        ctx = ctx if ctx is not None else RunContext()
        run = self._read()
        doc_row = {d: i for i, d in enumerate(data.corpus.ids)}
        unknown = sorted({d for lst in run.values() for d, _ in lst if d not in doc_row})
        if unknown:
            raise DataError(f"{self.path}: {len(unknown)} document id(s) not in the corpus: {examples(unknown)}; "
                            "fix the run or the corpus")
        n_q = len(data.queries)
        width = max([len(run.get(q, [])) for q in data.queries.ids] + [1])
        ids = np.full((n_q, width), -1, dtype=np.int64)
        scores = np.full((n_q, width), -np.inf, dtype=np.float32)
        lookup: dict[tuple[int, int], float] = {}
        for qi, q in enumerate(data.queries.ids):
            seen: dict[int, float] = {}
            for d, s in run.get(q, []):
                seen.setdefault(doc_row[d], s)
            for j, (d_row, s) in enumerate(seen.items()):
                ids[qi, j], scores[qi, j] = d_row, s
                lookup[(qi, d_row)] = s
        ids, scores = resort(ids, scores, min(k, width))
        missing = sum(1 for q in data.queries.ids if q not in run)  # summed over query shards
        ctx.stats["run_queries_missing"] = ctx.stats.get("run_queries_missing", 0) + missing
        pos = np.array([lookup.get((int(q), int(d)), np.nan)
                        for q, d in zip(data.positives.query_of_pair(), data.positives.indices)], dtype=np.float32)
        return Candidates(ids=ids, scores=scores, sources=(ids >= 0).astype(np.uint8),
                          source_names=[self.name], positive_scores=pos)

    def score_cells(self, data: MiningData, ids: np.ndarray, ctx: RunContext | None = None) -> np.ndarray:
        """The run's score of each cell; ``-inf`` for documents the run does not list."""
        run = self._read()
        row_of = {q: i for i, q in enumerate(data.queries.ids)}
        doc_row = {d: i for i, d in enumerate(data.corpus.ids)}
        lookup = {(row_of[q], doc_row[d]): s for q, lst in run.items() if q in row_of for d, s in lst if d in doc_row}
        out = np.full(ids.shape, -np.inf, dtype=np.float32)
        for (q, j), d in np.ndenumerate(ids):
            if d >= 0:
                out[q, j] = lookup.get((q, int(d)), -np.inf)
        return out
