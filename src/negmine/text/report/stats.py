"""The structured mining report: score distributions, filter counts, shortfalls, timings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from negmine.core.stats import describe, round_floats

if TYPE_CHECKING:
    from negmine.text.result import MiningResult

MAX_IDS = 1000  # query ids listed in the JSON report per category


def build_report(result: MiningResult) -> dict[str, Any]:
    """Everything a user should check about a mining run, as plain JSON-ready data."""
    data = result.data
    cand = result.candidates
    cols = result.columns
    n_q = len(data.queries)
    valid = cand.ids >= 0
    n_valid = int(valid.sum())

    chosen = cols >= 0
    safe_cols = np.where(chosen, cols, 0)
    neg_scores = np.take_along_axis(cand.scores, safe_cols, axis=1)[chosen]
    neg_ranks = safe_cols[chosen]
    ref = result.positive_reference
    diffs = (ref[:, None] - np.take_along_axis(cand.scores, safe_cols, axis=1))[chosen]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (np.take_along_axis(cand.scores, safe_cols, axis=1) / ref[:, None])[chosen]

    filters = []
    for name, removed in result.filter_counts:
        filters.append({"name": name, "removed": removed,
                        "removed_pct": 100.0 * removed / n_valid if n_valid else 0.0})
    got = chosen.sum(axis=1)
    short = np.flatnonzero(got < result.num_negatives)
    short_ids = sorted(data.queries.ids[int(i)] for i in short)
    skipped = list(data.stats.get("skipped_query_ids", []))
    report: dict[str, Any] = {
        "queries": {
            "mined": n_q,
            "skipped_no_positive": int(data.stats.get("queries_skipped_no_positive", 0)),
            "skipped_no_positive_ids": sorted(skipped)[:MAX_IDS],
        },
        "documents": len(data.corpus),
        "qrels_unknown_dropped": int(data.stats.get("qrels_unknown_dropped", 0)),
        "positives": {"pairs": len(data.positives.indices), "excluded_pairs": len(data.exclude.indices)},
        "candidates": {"depth": int(cand.ids.shape[1]), "retrieved": n_valid},
        "filters": filters,
        "negatives": {
            "requested_per_query": result.num_negatives,
            "chosen": int(chosen.sum()),
            "mean_per_query": float(got.mean()) if n_q else 0.0,
        },
        "shortfall": {
            "queries": len(short),
            "pct": 100.0 * len(short) / n_q if n_q else 0.0,
            "missing_negatives": int((result.num_negatives - got).sum()),
            "query_ids": short_ids[:MAX_IDS],
        },
        "scores": {
            "positive": describe(cand.positive_scores),
            "negative": describe(neg_scores),
            "difference": describe(diffs),
            "negative_over_positive": describe(ratio),
        },
        "ranks": describe(neg_ranks.astype(np.float64)),
        "retrievers": _agreement(result),
        **_scorers(result),
        **({"calibration": result.calibration} if result.calibration is not None else {}),
        **({"run": result.stats} if result.stats else {}),
        "encoding": dict(result.encoding),
        "timings": dict(result.timings),
    }
    return round_floats(report)


def _scorers(result: MiningResult) -> dict[str, Any]:
    """Cross-encoder score distributions and judge counts, when scorers ran."""
    out: dict[str, Any] = {}
    matrices = result.matrices
    chosen = result.columns >= 0
    cols = np.where(chosen, result.columns, 0)
    for name, m in matrices.items():
        entry: dict[str, Any] = {"stats": {k: v for k, v in m.stats.items() if isinstance(v, (int, float, str))}}
        if name == "cross-encoder":
            entry["positive"] = describe(m.positive_scores)
            entry["negative"] = describe(np.take_along_axis(m.scores, cols, axis=1)[chosen])
        out.setdefault("scorers", {})[name] = entry
    judges = [f for f in result.filters if getattr(f, "needs", None) == "llm-judge"]
    found = result.diagnostics.get("llm-judge", {})
    flagged = found.get("flagged")
    for f in judges:
        if flagged is not None:
            skipped = sorted(result.data.queries.ids[i] for i in found.get("skipped_queries", []))
            out["judge"] = {"flagged": int(flagged.sum()), "queries_with_flags": int(flagged.any(axis=1).sum()),
                            "queries_skipped_too_many_flags": len(skipped), "skipped_query_ids": skipped[:MAX_IDS],
                            "max_flagged": f.max_flagged, "drop": f.drop, "relabel": f.relabel}
    return out


def _agreement(result: MiningResult) -> dict[str, Any]:
    """Which retrievers found the candidates and the chosen negatives, and how much they agree
    (mean per-query Jaccard overlap of their candidate sets)."""
    cand = result.candidates
    names = cand.source_names
    chosen = result.columns >= 0
    src = np.take_along_axis(cand.sources, np.where(chosen, result.columns, 0), axis=1)[chosen]
    combos: dict[str, int] = {}
    for mask, count in zip(*np.unique(src, return_counts=True)):
        label = "+".join(n for b, n in enumerate(names) if int(mask) >> b & 1) or "none"
        combos[label] = int(count)
    out: dict[str, Any] = {"names": names, "negatives_by_source": combos}
    if cand.member_ranks is not None and len(names) > 1:
        found = cand.member_ranks >= 0
        jac = {}
        for i in range(len(names)):
            for j in range(i + 1, len(names)):
                inter = (found[..., i] & found[..., j]).sum(axis=1)
                union = (found[..., i] | found[..., j]).sum(axis=1)
                jac[f"{names[i]}~{names[j]}"] = float(np.mean(np.where(union > 0, inter / np.maximum(union, 1), 0.0)))
        out["candidate_jaccard"] = jac
    return out


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def render_text(report: dict[str, Any]) -> str:
    """A human-readable rendering of :func:`build_report`'s output (the CLI prints it)."""
    lines: list[str] = []
    q = report["queries"]
    lines.append(
        f"queries mined: {q['mined']}   skipped (no positive): {q['skipped_no_positive']}   "
        f"documents: {report['documents']}   candidates/query: {report['candidates']['depth']}"
    )
    if report.get("qrels_unknown_dropped"):
        lines.append(f"qrels rows with unknown ids dropped: {report['qrels_unknown_dropped']}")
    lines.append("")
    head = f"{'scores':<22}" + "".join(f"{c:>9}" for c in ("count", "mean", "min", "p25", "p50", "p75", "max"))
    lines.append(head)
    for name in ("positive", "negative", "difference", "negative_over_positive"):
        d = report["scores"][name]
        lines.append(f"{name:<22}" + "".join(f"{_fmt(d[c]):>9}" for c in
                                              ("count", "mean", "min", "p25", "p50", "p75", "max")))
    r = report["ranks"]
    lines.append(f"{'negative rank':<22}" + "".join(f"{_fmt(r[c]):>9}" for c in
                                                    ("count", "mean", "min", "p25", "p50", "p75", "max")))
    lines.append("")
    lines.append(f"retrieved candidates: {report['candidates']['retrieved']}")
    for f in report["filters"]:
        lines.append(f"  removed by {f['name']:<18} {f['removed']:>9}  ({f['removed_pct']:.2f}%)")
    n = report["negatives"]
    s = report["shortfall"]
    lines.append(
        f"negatives chosen: {n['chosen']} ({n['mean_per_query']:.2f}/query, asked {n['requested_per_query']})"
    )
    if s["queries"]:
        ex = ", ".join(s["query_ids"][:3])
        lines.append(
            f"shortfall: {s['queries']} queries ({s['pct']:.2f}%) got fewer than asked, "
            f"{s['missing_negatives']} negatives missing (e.g. {ex}); widen range_max or relax filters"
        )
    else:
        lines.append("shortfall: none")
    policy = (report.get("run") or {}).get("default_policy")
    if policy:
        lines.append(f"default policy: {policy['reason']}")
    cal = report.get("calibration")
    if cal and cal.get("note"):
        lines.append(f"calibration: {cal['note']} (on {cal['calibration_queries']} queries)")
        if cal.get("pair_policies"):
            lines.append(f"calibration: {cal['pair_policies']}")
    elif cal:
        lines.append(
            f"calibrated relative margin: {cal['chosen_relative_margin']} for target HP-FNR {cal['target_fnr']} "
            f"(estimated {cal['estimated_hp_fnr']:.4f}, 95% CI {cal['estimated_hp_fnr_ci95'][0]:.4f}-"
            f"{cal['estimated_hp_fnr_ci95'][1]:.4f}, on {cal['calibration_queries']} queries"
            + ("" if cal["target_met"] else "; TARGET NOT MET, strictest margin used") + ")"
        )
    agree = report.get("retrievers") or {}
    if len(agree.get("names", [])) > 1:
        lines.append("negatives by source: " + ", ".join(f"{k} {v}" for k, v in agree["negatives_by_source"].items()))
        lines.append("candidate overlap (Jaccard): " + ", ".join(
            f"{k} {v:.3f}" for k, v in agree.get("candidate_jaccard", {}).items()))
    enc = report.get("encoding") or {}
    if enc:
        lines.append("embeddings: " + ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in sorted(enc.items())))
    t = report.get("timings") or {}
    if t:
        lines.append("timings: " + ", ".join(f"{k[:-2] if k.endswith('_s') else k} {v:.2f}s" for k, v in t.items()))
    return "\n".join(lines)
