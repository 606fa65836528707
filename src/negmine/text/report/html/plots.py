"""The plots of the HTML report (:mod:`negmine.text.report.html`): matplotlib figures on an Agg canvas,
inlined as PNG data URIs, and the sections that are mostly plots (distributions, audit,
retrievers, calibration)."""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

from negmine.text.report.html.format import _e, _finite, _num, _pct, _table

POS_COLOR = "#1b9e77"
NEG_COLOR = "#d95f02"
ACCENT = "#3b5bdb"
WARN = "#c92a2a"


class _Plots:
    """matplotlib figures drawn on an Agg canvas (no pyplot, no global backend switch) and
    returned as ``<img>`` tags with PNG data URIs."""

    def __init__(self) -> None:
        from negmine.core.optional import require

        self._mpl = require("matplotlib")
        self._figure = require("matplotlib.figure").Figure
        self._canvas = require("matplotlib.backends.backend_agg").FigureCanvasAgg
        self.count = 0

    def context(self) -> Any:
        return self._mpl.rc_context({
            "font.size": 9, "axes.titlesize": 10, "axes.titleweight": "bold", "axes.labelsize": 9,
            "axes.spines.top": False, "axes.spines.right": False, "axes.edgecolor": "#888888",
            "axes.grid": True, "grid.color": "#e9ecef", "grid.linewidth": 0.8, "axes.axisbelow": True,
            "legend.frameon": False, "xtick.color": "#495057", "ytick.color": "#495057",
            "svg.fonttype": "none",
        })

    def new(self, width: float = 6.0, height: float = 3.4) -> tuple[Any, Any]:
        fig = self._figure(figsize=(width, height), dpi=120, layout="constrained")
        self._canvas(fig)
        return fig, fig.add_subplot(1, 1, 1)

    def img(self, fig: Any, alt: str) -> str:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=120, metadata={"Software": None}, facecolor="white")
        w, h = (round(float(x) * 120) for x in fig.get_size_inches())
        data = base64.b64encode(buf.getvalue()).decode("ascii")
        self.count += 1
        return (f'<img class="plot" src="data:image/png;base64,{data}" width="{w}" height="{h}" '
                f'alt="{_e(alt)}">')


def _figure_box(img: str, caption: str) -> str:
    return f'<figure class="card">{img}<figcaption>{caption}</figcaption></figure>'


def _empty_box(message: str) -> str:
    return f'<figure class="card empty"><p class="muted">{_e(message)}</p></figure>'


def _bins(values: Sequence[float], max_bins: int = 50, zero_edge: bool = False) -> Any:
    """Histogram bin edges ("auto" rule, at most ``max_bins``); ``zero_edge`` shifts them so that 0
    is an edge and no bin mixes values on both sides of it."""
    import numpy as np

    arr = np.asarray(values, dtype=np.float64)
    edges = np.histogram_bin_edges(arr, bins="auto")
    if len(edges) - 1 > max_bins:
        edges = np.histogram_bin_edges(arr, bins=max_bins)
    width = float(edges[1] - edges[0]) if len(edges) > 1 else 0.0
    if zero_edge and width > 0:
        lo = math.floor(float(arr.min()) / width) * width
        n = max(1, math.ceil((float(arr.max()) - lo) / width + 1e-9))
        edges = lo + width * np.arange(n + 1)
    return edges


def _distribution_section(rows: Sequence[Mapping[str, Any]], report: Mapping[str, Any], plots: _Plots) -> str:
    pos: list[float] = []
    neg: list[float] = []
    diff: list[float] = []
    ranks: list[int] = []
    for r in rows:
        p = _finite(r.get("positive_scores") or [])
        pos.extend(p)
        ref = min(p) if p else None
        for s in _finite(r.get("negative_scores") or []):
            neg.append(s)
            if ref is not None:
                diff.append(ref - s)
        ranks.extend(int(x) for x in r.get("negative_ranks") or [])
    boxes = []

    if pos or neg:
        fig, ax = plots.new()
        edges = _bins(pos + neg)
        if pos:
            ax.hist(pos, bins=edges, density=True, alpha=0.55, color=POS_COLOR, label=f"positives (n={len(pos):,})")
        if neg:
            ax.hist(neg, bins=edges, density=True, alpha=0.55, color=NEG_COLOR, label=f"negatives (n={len(neg):,})")
        ax.set(title="Retrieval scores", xlabel="score", ylabel="density")
        ax.legend()
        boxes.append(_figure_box(plots.img(fig, "histogram of positive and negative scores"),
                                 "Scores of the known positives and of the chosen negatives (each normalised "
                                 "to area 1). Negatives far to the right of the positives are suspicious."))
    else:
        boxes.append(_empty_box("No scores to plot."))

    if diff:
        fig, ax = plots.new()
        edges = _bins(diff, zero_edge=True)
        at_or_above = [x for x in diff if x <= 0]
        below = [x for x in diff if x > 0]
        ax.hist(below, bins=edges, color=ACCENT, alpha=0.8, label="below the positive")
        if at_or_above:
            ax.hist(at_or_above, bins=edges, color=WARN, alpha=0.8, label="at or above the positive")
        ax.axvline(0, color="#343a40", linewidth=1, linestyle="--")
        ax.set(title="Positive − negative score", xlabel="lowest positive score − negative score",
               ylabel="negatives")
        ax.legend()
        share = len(at_or_above) / len(diff)
        verdict = (f"<b>{share:.1%}</b> of negatives ({len(at_or_above):,}) score at or above their query's lowest "
                   "positive: candidates for false negatives (a margin filter removes them)." if at_or_above else
                   "No negative scores at or above its query's lowest positive.")
        boxes.append(_figure_box(
            plots.img(fig, "histogram of positive minus negative scores"),
            f"Per negative: its query's lowest positive score minus the negative's score. {verdict}"))
    else:
        boxes.append(_empty_box("No positive/negative pair with finite scores."))

    if ranks:
        import numpy as np

        fig, ax = plots.new()
        top = max(ranks)
        edges = np.arange(-0.5, top + 1.5, 1.0) if top < 60 else _bins(ranks, 60)
        ax.hist(ranks, bins=edges, color=NEG_COLOR, alpha=0.85)
        ax.set(title="Raw ranks of the negatives", xlabel="rank among the retrieved candidates (0 = top)",
               ylabel="negatives")
        if top < 60:
            ax.xaxis.get_major_locator().set_params(integer=True)
        boxes.append(_figure_box(plots.img(fig, "histogram of negative ranks"),
                                 "Where the chosen negatives sat in the retriever's ranking, positives included "
                                 "(0 is the best-scored candidate). Low ranks are hard negatives."))
    else:
        boxes.append(_empty_box("No negatives were chosen."))
    boxes.append(_filters_plot(report, plots))
    return '<div class="plots">' + "".join(boxes) + "</div>"


def _filters_plot(report: Mapping[str, Any], plots: _Plots) -> str:
    """A funnel: candidates retrieved, removed by each filter (in order), left, chosen."""
    filters = report.get("filters") or []
    retrieved = int((report.get("candidates") or {}).get("retrieved", 0))
    chosen = int((report.get("negatives") or {}).get("chosen", 0))
    removed = [int(f.get("removed", 0)) for f in filters]
    labels = ["retrieved", *(f"− {f.get('name', '?')}" for f in filters), "left after filters", "chosen"]
    values = [retrieved, *removed, retrieved - sum(removed), chosen]
    colors = ["#868e96", *([WARN] * len(filters)), ACCENT, NEG_COLOR]
    fig, ax = plots.new()
    y = list(range(len(labels)))
    ax.barh(y, values, color=colors, alpha=0.85, height=0.62)
    ax.set_ylim(max(len(labels), 6) - 0.5, -0.5)  # top to bottom; few rows keep slim bars
    ax.set_yticks(y, labels=labels)
    ax.grid(axis="y", visible=False)
    ax.margins(x=0.2)
    ax.set(title="Candidates: retrieved, filtered, chosen", xlabel="candidate cells (query × candidate)")
    for yy, v in zip(y, values):
        share = f" ({100 * v / retrieved:.1f}%)" if retrieved and 0 < yy < len(labels) - 1 else ""
        ax.annotate(f"{v:,}{share}", (v, yy), xytext=(4, 0), textcoords="offset points", va="center", fontsize=8)
    return _figure_box(plots.img(fig, "bar chart of candidates removed per filter"),
                       "Each filter's bar counts the candidates it newly removed (filters run top to bottom); "
                       "the sampler then chose the negatives among those left.")

def _audit_section(audit: Mapping[str, Any], source: str, plots: _Plots) -> str:
    rows = [r for r in audit.get("settings") or [] if isinstance(r, Mapping)]
    info = audit.get("retrieval") or {}
    has_div = any("diversity_mean_pairwise_sim" in r for r in rows)
    header = ["setting", "HP\u2011FNR", "95% CI", "hidden hits", "mean neg. score", "mean rank", "score / s⁺",
              "coverage", "set score", *(["diversity"] if has_div else []), "removed by filters"]
    body = []
    for r in rows:
        ci = r.get("hp_fnr_ci95") or [None, None]
        removed = r.get("removed_by_filters") or {}
        body.append([
            _e(r.get("setting", "?")), _num(r.get("hp_fnr")), f"{_num(ci[0], 3)} – {_num(ci[1], 3)}",
            f"{_num(r.get('hidden_hits'))} / {_num(r.get('negatives_audited'))}",
            _num(r.get("mean_negative_score")), _num(r.get("mean_rank"), 1), _num(r.get("mean_score_over_positive"), 3),
            _pct(r.get("coverage")), _num(r.get("set_score"), 3),
            *([_num(r.get("diversity_mean_pairwise_sim"), 3)] if has_div else []),
            " ".join(f'<span class="nowrap">{_e(k)} {_num(v)}</span>' for k, v in removed.items()) or "–",
        ])
    first = rows[0] if rows else {}
    intro = (
        f"<p>Hidden-positive false-negative rate (HP-FNR): some known positives were hidden from the miner; "
        f"the share of mined negatives that are hidden positives estimates how often a setting picks false "
        f"negatives (Wilson 95% interval). {len(rows)} settings on {_num(info.get('retrievals', 1))} retrieval "
        f"(depth {_num(info.get('depth'))}); {_num(first.get('queries_audited', 0))} queries with "
        f"{_num(first.get('hidden_positives', 0))} hidden positives audited. "
        f'<span class="muted">Source: {_e(source)}.</span></p>'
    )
    out = intro + '<div class="card scroll">' + _table(header, body, "audit") + "</div>"
    plotted = [r for r in rows if isinstance(r.get("hp_fnr"), (int, float)) and math.isfinite(r["hp_fnr"])]
    if plotted:
        fig, ax = plots.new(8.0, 0.9 + 0.42 * len(plotted))
        y = list(range(len(plotted)))
        vals = [float(r["hp_fnr"]) for r in plotted]
        lo = [max(0.0, v - float((r.get("hp_fnr_ci95") or [v, v])[0] or v)) for v, r in zip(vals, plotted)]
        hi = [max(0.0, float((r.get("hp_fnr_ci95") or [v, v])[1] or v) - v) for v, r in zip(vals, plotted)]
        ax.barh(y, vals, xerr=[lo, hi], color=NEG_COLOR, alpha=0.85, height=0.6,
                error_kw={"ecolor": "#343a40", "capsize": 3, "linewidth": 1})
        ax.set_yticks(y, labels=[str(r.get("setting", "?")) for r in plotted])
        ax.invert_yaxis()
        ax.grid(axis="y", visible=False)
        ax.set(title="Hidden-positive false-negative rate per setting", xlabel="HP-FNR (95% CI)")
        ax.set_xlim(0, min(1.0, max(v + h for v, h in zip(vals, hi)) * 1.2 + 1e-3))
        for yy, v, h in zip(y, vals, hi):
            ax.annotate(f"{v:.3f}", (v + h, yy), xytext=(4, 0), textcoords="offset points", va="center", fontsize=8)
        out += '<div class="plots one">' + _figure_box(
            plots.img(fig, "bar chart of hidden-positive false-negative rate per setting"),
            "Lower is safer; read it next to coverage and hardness in the table: a setting that removes every "
            "hard candidate has a low HP-FNR and easy negatives.") + "</div>"
    return out


def _retrievers_section(agree: Mapping[str, Any], plots: _Plots) -> str:
    by_source = agree.get("negatives_by_source") or {}
    total = sum(by_source.values()) or 1
    body = [[_e(k), _num(v), f"{100 * v / total:.1f}%"] for k, v in by_source.items()]
    src_table = _table(["found by", "negatives", "share"], body, "narrow")
    jac = agree.get("candidate_jaccard") or {}
    jac_table = _table(["retriever pair", "mean candidate Jaccard"],
                       [[_e(k.replace("~", " ~ ")), _num(v, 3)] for k, v in jac.items()], "narrow") if jac else ""
    out = ("<p>Which retrievers found the chosen negatives, and how much their candidate sets overlap (mean "
           "per-query Jaccard). Negatives found by several retrievers are hard for all of them.</p>")
    boxes = f'<div class="card">{src_table}{jac_table}</div>'
    if by_source:
        fig, ax = plots.new(6.0, 0.8 + 0.42 * len(by_source))
        y = list(range(len(by_source)))
        ax.barh(y, list(by_source.values()), color=ACCENT, height=0.6)
        ax.set_yticks(y, labels=list(by_source))
        ax.invert_yaxis()
        ax.grid(axis="y", visible=False)
        ax.set(title="Negatives by retriever", xlabel="negatives")
        boxes = _figure_box(plots.img(fig, "bar chart of negatives by retriever"),
                            "Chosen negatives by the set of retrievers that found them.") + boxes
    return out + f'<div class="plots">{boxes}</div>'


def _frontier_section(cal: Mapping[str, Any], plots: _Plots) -> str:
    """The policy search of ``--target-fnr`` (and the default policy): its one-line note, the
    frontier of HP-FNR against hardness (mean raw rank) with coverage, and the chosen policy."""
    frontier = [f for f in cal.get("frontier") or [] if isinstance(f, Mapping)]
    chosen: Mapping[str, Any] = cal["chosen"] if isinstance(cal.get("chosen"), Mapping) else {}
    met = cal.get("target_met")
    out = (f"<p>{_e(cal.get('note', ''))}"
           + ("" if met else ' <span class="warn">Target not met: the closest policy was used.</span>')
           + f" Searched {_num(cal.get('policies'))} policies on {_num(cal.get('calibration_queries'))} queries, "
           f"hiding {_pct(cal.get('hide_fraction'))} of their positives; estimates cross-fitted.</p>")
    det = cal.get("detector")
    if isinstance(det, Mapping) and det:
        out += "<p>False-negative detector: " + _e(", ".join(
            f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in det.items()
            if isinstance(v, (int, float, str)))) + "</p>"
    pts = [f for f in frontier if all(isinstance(f.get(k), (int, float)) and math.isfinite(f[k])
                                      for k in ("hp_fnr", "mean_rank", "coverage"))]
    if not pts:
        return out
    fig, ax = plots.new()
    sc = ax.scatter([f["mean_rank"] for f in pts], [f["hp_fnr"] for f in pts], c=[f["coverage"] for f in pts],
                    cmap="viridis", vmin=0, vmax=1, s=18, alpha=0.8)
    fig.colorbar(sc, ax=ax, label="coverage (queries with all negatives)")
    _mechanism_points(ax, pts, chosen)
    if isinstance(chosen.get("hp_fnr"), (int, float)) and isinstance(chosen.get("mean_rank"), (int, float)):
        ax.scatter([chosen["mean_rank"]], [chosen["hp_fnr"]], marker="*", s=220, color=ACCENT, label="chosen",
                   edgecolors="#343a40")
    if isinstance(cal.get("target_fnr"), (int, float)):
        ax.axhline(cal["target_fnr"], color="#343a40", linestyle="--", linewidth=1, label="target")
    ax.set(title="Policies: false negatives vs hardness", xlabel="mean raw rank of the negatives (lower = harder)",
           ylabel="HP-FNR (estimated)")
    ax.set_ylim(bottom=0)
    ax.legend()
    cov, target = cal.get("min_coverage") or 0.0, cal.get("target_fnr") or 1.0
    # the policies that meet coverage and target first, hardest (lowest mean rank) first
    best = sorted(pts, key=lambda f: (f["coverage"] < cov, f["hp_fnr"] > target, f["mean_rank"]))[:12]
    body = [[_e(f.get("policy") or f.get("label") or ""), _num(f["hp_fnr"]),
             f"{_num((f.get('hp_fnr_ci95') or [None])[0], 3)} – {_num((f.get('hp_fnr_ci95') or [None, None])[1], 3)}",
             _pct(f["coverage"]), _num(f["mean_rank"], 1)] for f in best]
    table = _table(["policy", "HP-FNR", "95% CI", "coverage", "mean rank"], body, "narrow")
    boxes = _figure_box(plots.img(fig, "policy frontier: HP-FNR against mean rank, colour = coverage"),
                        "Each dot is a policy (reference × margin × sampler × detector threshold) at the worse of "
                        "its estimates; hollow marks are each way of hiding positives on its own; the star is the "
                        "hardest one meeting the target.") + f'<div class="card">{table}</div>'
    return out + _estimates_table(cal) + f'<div class="plots">{boxes}</div>'


#: the marker of each way of hiding known positives in the frontier plot
_HIDING_MARKERS = {"random": "o", "pool": "^"}


def _mechanism_points(ax: Any, pts: list[Mapping[str, Any]], chosen: Mapping[str, Any]) -> None:
    """Each hiding mechanism's own estimate of every policy (hollow markers), and of the chosen one
    (joined to the star), so that the reader sees both estimates and which one decided."""
    mechs = sorted({m for f in pts for m in (f.get("by_mechanism") or {})})
    for m in mechs:
        xs, ys = [], []
        for f in pts:
            e = (f.get("by_mechanism") or {}).get(m)
            if isinstance(e, Mapping) and all(isinstance(e.get(k), (int, float)) and math.isfinite(e[k])
                                              for k in ("hp_fnr", "mean_rank")):
                xs.append(e["mean_rank"])
                ys.append(e["hp_fnr"])
        if xs:
            ax.scatter(xs, ys, marker=_HIDING_MARKERS.get(m, "s"), s=14, facecolors="none", edgecolors="#868e96",
                       linewidths=0.6, alpha=0.6, label=f"{m} hiding")


def _estimates_table(cal: Mapping[str, Any]) -> str:
    """The chosen policy's estimate under each hiding mechanism (in-sample and cross-fitted)."""
    est = cal.get("estimates")
    if not isinstance(est, Mapping) or not est:
        return ""
    rows = []
    for m, e in est.items():
        for kind in ("chosen", "crossfit"):
            v = e.get(kind) if isinstance(e, Mapping) else None
            if not isinstance(v, Mapping):
                continue
            ci = v.get("hp_fnr_ci95") or [None, None]
            rows.append([_e(f"{m} hiding" + (" (decided)" if m == cal.get("decided_by") else "")),
                         "in-sample" if kind == "chosen" else "cross-fitted", _num(v.get("hp_fnr")),
                         f"{_num(ci[0], 3)} – {_num(ci[1], 3)}", _pct(v.get("coverage")), _num(v.get("mean_rank"), 1)])
    if not rows:
        return ""
    table = _table(["hiding", "estimate", "HP-FNR", "95% CI", "coverage", "mean rank"], rows, "narrow")
    return ("<p>The chosen policy under each way of hiding known positives (the worse one decides):</p>"
            f'<div class="card">{table}</div>')


def _calibration_section(cal: Mapping[str, Any], plots: _Plots) -> str:
    if cal.get("frontier"):
        return _frontier_section(cal, plots)
    curve = [c for c in cal.get("curve") or [] if isinstance(c, Mapping)]
    ci = cal.get("estimated_hp_fnr_ci95") or [None, None]
    met = cal.get("target_met")
    out = (
        f"<p><code>--target-fnr {_num(cal.get('target_fnr'), 3)}</code> chose the relative margin "
        f"<b>{_num(cal.get('chosen_relative_margin'), 3)}</b>: estimated HP-FNR {_num(cal.get('estimated_hp_fnr'))} "
        f"(95% CI {_num(ci[0])} – {_num(ci[1])}) on {_num(cal.get('calibration_queries'))} held-out queries, "
        f"hiding {_pct(cal.get('hide_fraction'))} of their positives."
        + ("" if met else ' <span class="warn">Target not met: the strictest margin was used.</span>') + "</p>"
    )
    if not curve:
        return out
    body = [[_num(c.get("relative_margin"), 3), _num(c.get("hp_fnr")),
             f"{_num((c.get('hp_fnr_ci95') or [None])[0], 3)} – {_num((c.get('hp_fnr_ci95') or [None, None])[1], 3)}",
             _pct(c.get("coverage")), _num(c.get("mean_negative_score"))] for c in curve]
    table = _table(["relative margin", "HP-FNR", "95% CI", "coverage", "mean neg. score"], body, "narrow")
    pts = [c for c in curve if isinstance(c.get("hp_fnr"), (int, float)) and math.isfinite(c["hp_fnr"])]
    boxes = f'<div class="card">{table}</div>'
    if pts:
        fig, ax = plots.new()
        x = [float(c["relative_margin"]) for c in pts]
        y = [float(c["hp_fnr"]) for c in pts]
        lo = [float((c.get("hp_fnr_ci95") or [v, v])[0]) for c, v in zip(pts, y)]
        hi = [float((c.get("hp_fnr_ci95") or [v, v])[1]) for c, v in zip(pts, y)]
        ax.fill_between(x, lo, hi, color=NEG_COLOR, alpha=0.18, linewidth=0, label="95% CI")
        ax.plot(x, y, marker="o", color=NEG_COLOR, label="HP-FNR")
        if isinstance(cal.get("target_fnr"), (int, float)):
            ax.axhline(cal["target_fnr"], color="#343a40", linestyle="--", linewidth=1, label="target")
        if isinstance(cal.get("chosen_relative_margin"), (int, float)):
            ax.axvline(cal["chosen_relative_margin"], color=ACCENT, linestyle=":", linewidth=1.5, label="chosen")
        ax.set(title="HP-FNR vs relative margin", xlabel="relative margin", ylabel="HP-FNR")
        ax.set_ylim(bottom=0)
        ax.legend()
        boxes = _figure_box(plots.img(fig, "calibration curve: HP-FNR against relative margin"),
                            "The loosest margin whose HP-FNR is at most the target is chosen.") + boxes
    return out + f'<div class="plots">{boxes}</div>'
