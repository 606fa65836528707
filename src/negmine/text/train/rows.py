"""The training rows of :func:`negmine.text.train.train`: ``n-tuple`` rows from the mined rows, as a
``datasets.Dataset``, and how much the negatives changed between two minings."""

from __future__ import annotations

from typing import Any

import numpy as np

from negmine.core.optional import require


def trim_rows(rows: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """``rows`` with the first ``n`` negatives (ids and scores) of each."""
    return [{**r, "negative_ids": list(r["negative_ids"])[:n], "negative_scores": list(r["negative_scores"])[:n]}
            for r in rows]


def training_rows(rows: list[dict[str, Any]], texts: dict[tuple[str, str], dict[str, str]],
                  num_negatives: int) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """``n-tuple`` rows using the first ``num_negatives`` negatives of each mined row, and counts:
    ``rows``, ``queries``, ``queries_used``, ``queries_left_out_short`` (fewer negatives)."""
    from negmine.text.writers.export import export_rows

    trimmed = trim_rows(rows, num_negatives)
    out = export_rows("n-tuple", trimmed, texts, num_negatives=num_negatives)
    short = sum(1 for r in trimmed if len(r["negative_ids"]) < num_negatives)
    return out, {"rows": len(out), "queries": len(rows), "queries_used": len(rows) - short,
                 "queries_left_out_short": short}


def to_dataset(rows: list[dict[str, Any]]) -> Any:
    """A ``datasets.Dataset`` of training rows, one column per field."""
    from negmine.text.writers.export import rows_to_columns

    return require("datasets").Dataset.from_dict(rows_to_columns(rows))


def negative_change(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> dict[str, float | int]:
    """How much the negatives changed between two sets of mined rows (same queries):
    ``new_pair_share`` = share of the new (query, negative) pairs that were not there before;
    ``mean_jaccard`` = mean over queries of ``|old ∩ new| / |old ∪ new|`` (queries with no
    negatives in either are skipped)."""
    before = {r["query_id"]: set(r["negative_ids"]) for r in old}
    after = {r["query_id"]: set(r["negative_ids"]) for r in new}
    pairs = sum(len(s) for s in after.values())
    fresh = sum(len(s - before.get(q, set())) for q, s in after.items())
    jac = [len(before.get(q, set()) & s) / len(before.get(q, set()) | s)
           for q, s in after.items() if before.get(q) or s]
    return {"pairs_before": sum(len(s) for s in before.values()), "pairs_after": pairs, "new_pairs": fresh,
            "new_pair_share": fresh / pairs if pairs else 0.0,
            "mean_jaccard": float(np.mean(jac)) if jac else 1.0}
