"""The rows ``mine_hard_negatives`` returns: the mining result turned into the peer's output
formats (``triplet``, ``n-tuple``, ``labeled-pair``, ``labeled-list``, with or without scores)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _chosen(result: Any, source: str) -> tuple[list[list[int]], list[list[float]]]:
    """Per query, the chosen document rows and their scores, best first (the peer's order)."""
    cols = result.columns
    scores = result.matrices["cross-encoder"].scores if source == "cross-encoder" else result.candidates.scores
    rows_out: list[list[int]] = []
    scores_out: list[list[float]] = []
    for q in range(cols.shape[0]):
        c = cols[q][cols[q] >= 0]
        pairs = sorted(zip((-scores[q, c]).tolist(), c.tolist()))
        rows_out.append([int(result.candidates.ids[q, j]) for _, j in pairs])
        scores_out.append([float(scores[q, j]) for _, j in pairs])
    return rows_out, scores_out


def _positive_scores(result: Any, source: str) -> dict[tuple[int, int], float]:
    pos = result.data.positives
    ps = result.matrices["cross-encoder"].positive_scores if source == "cross-encoder" \
        else result.candidates.positive_scores
    q_of = np.repeat(np.arange(len(pos.indptr) - 1), np.diff(pos.indptr))
    return {(int(q), int(d)): float(s) for q, d, s in zip(q_of, pos.indices, ps)}


def _output(fmt: str, with_scores: bool, a_col: str, p_col: str, by_anchor: dict[str, list[str]],
            q_row: dict[str, int], text_row: dict[str, int], texts: Sequence[str], neg_rows: list[list[int]],
            neg_scores: list[list[float]], pos_scores: dict[tuple[int, int], float],
            n: int) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {a_col: [], p_col: []}
    if fmt == "triplet":
        out["negative"] = []
    elif fmt == "n-tuple":
        out.update({f"negative_{i}": [] for i in range(1, n + 1)})
    score_col = {"labeled-pair": "score" if with_scores else "label",
                 "labeled-list": "scores" if with_scores else "labels"}.get(fmt, "scores")
    if with_scores or fmt in ("labeled-pair", "labeled-list"):
        out[score_col] = []
    for anchor, pos_texts in by_anchor.items():
        q = q_row[anchor]
        negs, ns = neg_rows[q], neg_scores[q]
        if fmt == "labeled-pair":
            for p in pos_texts:
                out[a_col].append(anchor)
                out[p_col].append(p)
                out[score_col].append(pos_scores[(q, text_row[p])] if with_scores else 1)
            for d, s in zip(negs, ns):
                out[a_col].append(anchor)
                out[p_col].append(texts[d])
                out[score_col].append(s if with_scores else 0)
            continue
        for p in pos_texts:
            ps = pos_scores[(q, text_row[p])]
            if fmt == "triplet":
                for d, s in zip(negs, ns):
                    out[a_col].append(anchor)
                    out[p_col].append(p)
                    out["negative"].append(texts[d])
                    if with_scores:
                        out["scores"].append([ps, s])
            elif fmt == "n-tuple":
                if len(negs) < n:
                    continue
                out[a_col].append(anchor)
                out[p_col].append(p)
                for i, d in enumerate(negs, start=1):
                    out[f"negative_{i}"].append(texts[d])
                if with_scores:
                    out["scores"].append([ps, *ns])
            elif negs:  # labeled-list
                out[a_col].append(anchor)
                out[p_col].append([p] + [texts[d] for d in negs])
                out[score_col].append([ps, *ns] if with_scores else [1] + [0] * len(negs))
    return out
