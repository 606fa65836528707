"""The report people look at: one self-contained HTML file per mining output.

:func:`render_html` reads a ``negmine mine --out`` directory (``mined.*``, ``texts.*``,
``manifest.json``, ``report.json``) and, when given or present, an ``audit.json`` written by
``negmine audit --out``, and returns a single HTML page that needs no network access to view:
plots are inline base64 PNG images drawn with matplotlib's Agg canvas, styles and the small
search script are inline, and a Content-Security-Policy forbids fetching anything.

The page shows the run summary (versions, configuration, seed), the statistics of
``report.json``, histograms of positive scores, negative scores, their difference and the
negatives' raw ranks, the candidates each filter removed, the audit (table and HP-FNR with 95%
intervals), retriever agreement, the calibration curve, and a searchable per-query table with
the query, its positives and its negatives (scores, raw ranks, sources and text snippets).

Example
-------
>>> from negmine.report.html import write_html
>>> write_html("out/", "out/report.html")  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from negmine.errors import DataError
from negmine.writers._atomic import write_text

MAX_QUERIES = 5000  # rows of the per-query table; the rest is in mined.parquet
SNIPPET_CHARS = 240
POS_COLOR = "#1b9e77"
NEG_COLOR = "#d95f02"
ACCENT = "#3b5bdb"
WARN = "#c92a2a"
STAT_COLUMNS = ("count", "mean", "std", "min", "p5", "p25", "p50", "p75", "p95", "max")
SCORE_ROWS = (
    ("positive", "positive score"),
    ("negative", "negative score"),
    ("difference", "positive − negative"),
    ("negative_over_positive", "negative / positive"),
)

__all__ = ["MAX_QUERIES", "render_html", "write_html"]


# ------------------------------------------------------------------------------------ public API
def render_html(directory: str | Path, audit: str | Path | Mapping[str, Any] | None = None) -> str:
    """The HTML report of a mining output, as one self-contained page.

    Parameters
    ----------
    directory : str or Path
        A ``negmine mine --out`` directory (``manifest.json``, ``report.json``, ``mined.*``,
        ``texts.*``).
    audit : str, Path, mapping or None
        An audit to include: the path of an ``audit.json`` written by ``negmine audit --out``, or
        its parsed content (``{"settings": [rows], "retrieval": {...}}``). ``None`` uses
        ``directory/audit.json`` when it exists.

    Returns
    -------
    str
        The page. Every text from the data is escaped; plots are inline PNG data URIs, so the
        page loads nothing from the network. The per-query table holds at most
        :data:`MAX_QUERIES` queries (in query-id order), with a note when more were mined.

    Raises
    ------
    DataError
        ``directory`` is not a mining output, or the audit file is missing or malformed.
    MissingDependencyError
        matplotlib is not installed (``pip install 'negmine[report]'``).
    """
    from negmine.writers.mined import load_mined

    d = Path(directory)
    rows, texts, manifest = load_mined(d)
    report_path = d / "report.json"
    if not report_path.is_file():
        raise DataError(f"{report_path}: not found; re-run 'negmine mine' into {d}")
    report = _read_json(report_path)
    audit_data, audit_source = _load_audit(d, audit)

    plots = _Plots()
    with plots.context():
        sections = [
            ("summary", "Summary", _summary_section(report, manifest)),
            ("statistics", "Statistics", _statistics_section(report)),
            ("distributions", "Distributions", _distribution_section(rows, report, plots)),
        ]
        if audit_data is not None:
            sections.append(("audit", "Audit", _audit_section(audit_data, audit_source, plots)))
        agree = report.get("retrievers") or {}
        if len(agree.get("names") or []) > 1:
            sections.append(("retrievers", "Retrievers", _retrievers_section(agree, plots)))
        if report.get("calibration"):
            sections.append(("calibration", "Calibration", _calibration_section(report["calibration"], plots)))
    sections.append(("queries", "Queries", _queries_section(rows, texts, report)))
    sections.append(("run", "Run details", _run_section(manifest, report)))
    title = f"negmine report · {d.resolve().name}"
    return _page(title, manifest, sections)


def write_html(directory: str | Path, out_path: str | Path, audit_path: str | Path | None = None) -> Path:
    """Render :func:`render_html` and write it atomically to ``out_path``.

    Parameters
    ----------
    directory : str or Path
        A ``negmine mine --out`` directory.
    out_path : str or Path
        The HTML file to write (parent directories are created).
    audit_path : str, Path or None
        An ``audit.json`` to include; ``None`` uses ``directory/audit.json`` when present.

    Returns
    -------
    Path
        ``out_path``.
    """
    out = Path(out_path)
    write_text(out, render_html(directory, audit_path))
    return out


# ------------------------------------------------------------------------------------ inputs
def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); re-create the file") from None


def _load_audit(directory: Path, audit: str | Path | Mapping[str, Any] | None
                ) -> tuple[dict[str, Any] | None, str]:
    if isinstance(audit, Mapping):
        data, source = dict(audit), "given audit"
    else:
        path = Path(audit) if audit is not None else directory / "audit.json"
        if audit is None and not path.is_file():
            return None, ""
        if not path.is_file():
            raise DataError(f"{path}: audit file not found; pass the audit.json written by 'negmine audit --out DIR'")
        data, source = _read_json(path), str(path)
    if not isinstance(data, dict) or not isinstance(data.get("settings"), list):
        raise DataError(f"{source}: not a negmine audit (expected {{'settings': [...], 'retrieval': {{...}}}}); "
                        "pass the audit.json written by 'negmine audit --out DIR'")
    return data, source


# ------------------------------------------------------------------------------------ formatting
def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(v: Any, digits: int = 4) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        if math.isinf(v):
            return "∞" if v > 0 else "−∞"
        if v != 0 and (abs(v) >= 1e5 or abs(v) < 10 ** -digits):
            return f"{v:.{digits - 1}e}"
        return f"{v:.{digits}f}"
    return _e(v)


def _pct(v: Any) -> str:
    return "–" if not isinstance(v, (int, float)) or math.isnan(v) else f"{100 * v:.1f}%"


def _snippet(entry: Mapping[str, str] | None) -> str:
    if not entry:
        return '<span class="muted">(text not stored)</span>'
    title = (entry.get("title") or "").strip()
    text = " ".join((entry.get("text") or "").split())
    if len(text) > SNIPPET_CHARS:
        text = text[:SNIPPET_CHARS].rsplit(" ", 1)[0] + "…"
    head = f"<b>{_e(title)}</b> — " if title else ""
    return head + _e(text)


def _table(header: Sequence[str], body: Sequence[Sequence[str]], cls: str = "") -> str:
    """A table of already-escaped cells; columns after the first are right-aligned numbers."""
    th = "".join(f"<th>{h}</th>" for h in header)
    tr = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in body)
    return f'<table class="grid {cls}"><thead><tr>{th}</tr></thead><tbody>{tr}</tbody></table>'


def _finite(values: Sequence[Any]) -> list[float]:
    out = []
    for v in values:
        if v is None:
            continue
        f = float(v)
        if math.isfinite(f):
            out.append(f)
    return out


# ------------------------------------------------------------------------------------ plots
class _Plots:
    """matplotlib figures drawn on an Agg canvas (no pyplot, no global backend switch) and
    returned as ``<img>`` tags with PNG data URIs."""

    def __init__(self) -> None:
        from negmine._optional import require

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


# ------------------------------------------------------------------------------------ sections
def _summary_section(report: Mapping[str, Any], manifest: Mapping[str, Any]) -> str:
    q = report.get("queries") or {}
    neg = report.get("negatives") or {}
    short = report.get("shortfall") or {}
    cfg = manifest.get("config") or {}
    retr = (cfg.get("retriever") or {}).get("name", "?")
    members = (cfg.get("retriever") or {}).get("members")
    if isinstance(members, list) and members:
        names = [m.get("name", "?") if isinstance(m, Mapping) else str(m) for m in members]
        retr += " (" + ", ".join(names) + ")"
    sampler = (cfg.get("sampler") or {}).get("name", "?")
    filters = ", ".join(f.get("name", "?") for f in cfg.get("filters") or []) or "none"
    cards = [
        ("queries mined", _num(q.get("mined")),
         f"{_num(q.get('skipped_no_positive', 0))} skipped (no positive)"),
        ("documents", _num(report.get("documents")),
         f"{_num((report.get('candidates') or {}).get('depth'))} candidates per query"),
        ("negatives", _num(neg.get("chosen")),
         f"{_num(neg.get('mean_per_query'), 2)} per query, asked {_num(neg.get('requested_per_query'))}"),
        ("shortfall", _num(short.get("queries", 0)) + " queries",
         f"{_num(short.get('missing_negatives', 0))} negatives missing" if short.get("queries") else "none"),
        ("retriever", _e(retr), f"sampler {_e(sampler)}"),
        ("seed", _num(manifest.get("seed")), "same inputs and seed, same bytes"),
    ]
    out = '<div class="cards">' + "".join(
        f'<div class="stat"><div class="label">{label}</div><div class="value">{value}</div>'
        f'<div class="sub">{sub}</div></div>' for label, value, sub in cards) + "</div>"
    out += f'<p class="filters-line">Filters: {_e(filters)}.'
    if short.get("queries"):
        ex = ", ".join(_e(x) for x in (short.get("query_ids") or [])[:5])
        out += (f' <span class="warn">{_num(short.get("queries"))} queries ({_num(short.get("pct"), 2)}%) got fewer '
                f"negatives than asked (e.g. {ex}); widen range_max or relax the filters.</span>")
    out += "</p>"
    policy = (report.get("run") or {}).get("default_policy")
    if isinstance(policy, Mapping) and policy.get("reason"):
        warn = "" if policy.get("fnr_measured") else ' class="warn"'
        out += (f'<p class="filters-line">Default policy (no policy option given): '
                f'<span{warn}>{_e(policy["reason"])}</span>.</p>')
    return out


def _statistics_section(report: Mapping[str, Any]) -> str:
    scores = report.get("scores") or {}
    body = []
    for key, label in SCORE_ROWS:
        d = scores.get(key) or {}
        body.append([_e(label), *(_num(d.get(c)) for c in STAT_COLUMNS)])
    ranks = report.get("ranks") or {}
    body.append(["negative rank", *(_num(ranks.get(c), 2) for c in STAT_COLUMNS)])
    out = '<div class="card scroll">' + _table(["", *STAT_COLUMNS], body, "stats") + "</div>"
    filters = report.get("filters") or []
    retrieved = (report.get("candidates") or {}).get("retrieved", 0)
    fbody = [[_e(f.get("name", "?")), _num(f.get("removed")), _num(f.get("removed_pct"), 2) + "%"] for f in filters]
    neg = report.get("negatives") or {}
    fbody.append(["<b>negatives chosen</b>", f"<b>{_num(neg.get('chosen'))}</b>",
                  f"{_num(neg.get('mean_per_query'), 2)} / query"])
    out += ('<div class="card scroll">' + _table([f"of {_num(retrieved)} retrieved candidates", "removed",
                                                    "% of retrieved"], fbody, "narrow") + "</div>")
    notes = []
    if report.get("qrels_unknown_dropped"):
        notes.append(f"{_num(report['qrels_unknown_dropped'])} qrels rows naming unknown ids were dropped.")
    pos = report.get("positives") or {}
    if pos:
        notes.append(f"{_num(pos.get('pairs'))} positive pairs mined from; {_num(pos.get('excluded_pairs'))} "
                     "pairs (all splits) never used as negatives.")
    skipped = (report.get("queries") or {}).get("skipped_no_positive_ids") or []
    if skipped:
        notes.append("Queries skipped for having no positive, e.g. " + ", ".join(_e(x) for x in skipped[:5]) + ".")
    timings = report.get("timings") or {}
    if timings:
        notes.append("Timings: " + ", ".join(
            f"{_e(k[:-2] if k.endswith('_s') else k)} {v:.2f} s" for k, v in timings.items()
            if isinstance(v, (int, float))) + ".")
    enc = report.get("encoding") or {}
    if enc:
        notes.append("Embeddings: " + ", ".join(f"{_e(k.replace('_', ' '))} {_e(v)}" for k, v in sorted(enc.items()))
                     + ".")
    return out + "".join(f'<p class="note">{n}</p>' for n in notes)


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
    out = (f"<p>{html.escape(str(cal.get('note', '')))}"
           + ("" if met else ' <span class="warn">Target not met: the closest policy was used.</span>')
           + f" Searched {_num(cal.get('policies'))} policies on {_num(cal.get('calibration_queries'))} queries, "
           f"hiding {_pct(cal.get('hide_fraction'))} of their positives; estimates cross-fitted.</p>")
    det = cal.get("detector")
    if isinstance(det, Mapping) and det:
        out += "<p>False-negative detector: " + html.escape(", ".join(
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
    body = [[html.escape(str(f.get("policy") or f.get("label") or "")), _num(f["hp_fnr"]),
             f"{_num((f.get('hp_fnr_ci95') or [None])[0], 3)} – {_num((f.get('hp_fnr_ci95') or [None, None])[1], 3)}",
             _pct(f["coverage"]), _num(f["mean_rank"], 1)] for f in best]
    table = _table(["policy", "HP-FNR", "95% CI", "coverage", "mean rank"], body, "narrow")
    boxes = _figure_box(plots.img(fig, "policy frontier: HP-FNR against mean rank, colour = coverage"),
                        "Each dot is a policy (reference × margin × sampler × detector threshold); the star is "
                        "the hardest one meeting the target.") + f'<div class="card">{table}</div>'
    return out + f'<div class="plots">{boxes}</div>'


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


def _queries_section(rows: Sequence[Mapping[str, Any]], texts: Mapping[tuple[str, str], Mapping[str, str]],
                     report: Mapping[str, Any]) -> str:
    asked = (report.get("negatives") or {}).get("requested_per_query")
    shown = rows[:MAX_QUERIES]
    trs = []
    for r in shown:
        qid = str(r.get("query_id", ""))
        qtext = (texts.get(("query", qid)) or {}).get("text", "")
        pids = [str(x) for x in r.get("positive_ids") or []]
        pscores = list(r.get("positive_scores") or [])
        nids = [str(x) for x in r.get("negative_ids") or []]
        nscores = list(r.get("negative_scores") or [])
        nranks = list(r.get("negative_ranks") or [])
        nsrc = [str(x) for x in r.get("negative_sources") or []]
        finite_pos = _finite(pscores)
        ref = min(finite_pos) if finite_pos else None
        key = " ".join([qid, qtext, *pids, *nids]).lower()

        pos_items = []
        for i, pid in enumerate(pids):
            s = pscores[i] if i < len(pscores) else None
            pos_items.append(
                f'<li><span class="id">{_e(pid)}</span><span class="score">{_num(s)}</span>'
                f'<div class="snip">{_snippet(texts.get(("doc", pid)))}</div></li>')
        neg_items = []
        for i, nid in enumerate(nids):
            s = nscores[i] if i < len(nscores) else None
            rank = nranks[i] if i < len(nranks) else None
            src = nsrc[i] if i < len(nsrc) else ""
            hot = ref is not None and s is not None and math.isfinite(float(s)) and float(s) >= ref
            diff = f'<span class="diff">Δ {_num(ref - float(s), 3)}</span>' if ref is not None and s is not None else ""
            neg_items.append(
                f'<li{" class=hot" if hot else ""}><span class="rank">#{_e(rank)}</span>'
                f'<span class="id">{_e(nid)}</span><span class="score">{_num(s)}</span>{diff}'
                + (f'<span class="src">{_e(src)}</span>' if src else "")
                + f'<div class="snip">{_snippet(texts.get(("doc", nid)))}</div></li>')
        short = ""
        if isinstance(asked, int) and len(nids) < asked:
            short = f'<div class="badge warn">{len(nids)} of {asked} negatives</div>'
        trs.append(
            f'<tr data-key="{_e(key)}"><td class="qcell"><div class="id">{_e(qid)}</div>'
            f'<div class="qtext">{_e(qtext)}</div>{short}</td>'
            f'<td><ul class="docs">{"".join(pos_items)}</ul></td>'
            f'<td><ol class="docs">{"".join(neg_items) or "<li class=muted>none</li>"}</ol></td></tr>')
    note = ""
    if len(rows) > MAX_QUERIES:
        note = (f'<p class="note warn" id="q-cap">Showing the first {MAX_QUERIES:,} of {len(rows):,} queries '
                "(in query-id order); every query is in mined.parquet.</p>")
    controls = (
        '<div class="search"><input id="q-search" type="search" autocomplete="off" '
        'placeholder="Filter by query id, query text or document id…" aria-label="filter queries">'
        f'<span id="q-count" class="muted">{len(shown):,} queries</span></div>'
        '<p class="note">Type several words to match all of them; <code>report.html#q=WORDS</code> opens a '
        "filtered view. Negatives are listed with their raw rank among the candidates (#0 = top), score, "
        "Δ = the query's lowest positive score minus the negative's score, and the retrievers that found them. "
        '<span class="hot-key">Highlighted</span> negatives score at or above a positive of their query.</p>'
    )
    table = ('<div class="card scroll"><table id="query-table" class="queries"><thead><tr><th>query</th>'
             "<th>positives (id, score, text)</th><th>negatives (rank, id, score, Δ, source, text)</th></tr></thead>"
             f'<tbody>{"".join(trs)}</tbody></table>'
             '<p id="q-none" class="muted" hidden>No query matches.</p></div>')
    return note + controls + table


def _run_section(manifest: Mapping[str, Any], report: Mapping[str, Any]) -> str:
    cfg = manifest.get("config") or {}
    kv = [
        ("run id", _e(manifest.get("run_id", "?"))),
        ("negmine", _e(manifest.get("negmine", "?"))),
        ("seed", _num(manifest.get("seed"))),
        ("negatives per query", _num(manifest.get("num_negatives"))),
        ("candidate depth", _num(cfg.get("depth"))),
        ("retriever", _e(json.dumps(cfg.get("retriever", {}), sort_keys=True))),
        ("filters", "<br>".join(_e(json.dumps(f, sort_keys=True)) for f in cfg.get("filters") or []) or "none"),
        ("sampler", _e(json.dumps(cfg.get("sampler", {}), sort_keys=True))),
        ("data fingerprint", f"<code>{_e(manifest.get('data_fingerprint', '?'))}</code>"),
    ]
    for role, inp in (manifest.get("inputs") or {}).items():
        if isinstance(inp, Mapping):
            kv.append((f"input: {_e(role)}", f"{_e(inp.get('path', '?'))} <span class=muted>"
                       f"({_num(inp.get('bytes'))} bytes, sha256 {_e(str(inp.get('sha256', ''))[:12])}…)</span>"))
    rows = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in kv)
    versions = manifest.get("versions") or {}
    vers = " ".join(f'<span class="pill">{_e(k)} {_e(v)}</span>' for k, v in versions.items())
    out = f'<div class="card"><table class="kv">{rows}</table></div>'
    out += f'<h3>Versions</h3><p class="pills">{vers or "<span class=muted>not recorded</span>"}</p>'
    out += ("<details><summary>Full configuration (manifest.json)</summary>"
            f"<pre>{_e(json.dumps(dict(manifest), indent=2, sort_keys=True))}</pre></details>")
    return out


# ------------------------------------------------------------------------------------ page
_CSS = """
:root{--fg:#212529;--muted:#6c757d;--line:#dee2e6;--bg:#f5f6f8;--card:#fff;--accent:#3b5bdb;--warn:#c92a2a;
--pos:#1b9e77;--neg:#d95f02}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);
font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Liberation Sans","DejaVu Sans",Arial,sans-serif}
header{background:#1f2937;color:#f8f9fa;padding:18px 0 0}
header .wrap{display:flex;flex-wrap:wrap;align-items:baseline;gap:6px 18px}
header h1{margin:0;font-size:20px;font-weight:600}
header .meta{color:#adb5bd;font-size:13px}
nav{width:100%;display:flex;flex-wrap:wrap;gap:2px;margin-top:12px}
nav a{color:#dee2e6;text-decoration:none;padding:6px 10px;border-radius:6px 6px 0 0;font-size:13px}
nav a:hover{background:#374151;color:#fff}
.wrap{max-width:1200px;margin:0 auto;padding:0 24px}
main{padding-bottom:48px}
section{margin-top:28px}
h2{font-size:17px;margin:0 0 10px;padding-bottom:6px;border-bottom:2px solid var(--line)}
h3{font-size:14px;margin:18px 0 6px}
p{margin:6px 0 10px}
.muted{color:var(--muted)}
.warn{color:var(--warn)}
.note{color:#495057;font-size:13px}
code,pre{font-family:ui-monospace,"DejaVu Sans Mono","Liberation Mono",monospace;font-size:12px}
pre{background:#f8f9fa;border:1px solid var(--line);border-radius:6px;padding:10px;overflow:auto;max-height:420px}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px;margin:0 0 12px}
.scroll{overflow-x:auto}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:12px}
.stat{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 14px}
.stat .label{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}
.stat .value{font-size:22px;font-weight:600;margin:2px 0;overflow-wrap:anywhere}
.stat .sub{font-size:12px;color:var(--muted)}
.filters-line{margin-top:12px}
.plots{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(460px,100%),1fr));gap:12px;align-items:start}
.plots.one{grid-template-columns:1fr}
figure{margin:0}
figure img.plot{display:block;width:100%;height:auto}
.plots.one figure img.plot{max-width:960px;margin:0 auto}
figcaption{font-size:12.5px;color:#495057;margin-top:6px}
figure.empty{display:flex;align-items:center;justify-content:center;min-height:120px}
table.grid{border-collapse:collapse;width:100%;font-size:13px}
table.grid.narrow{width:auto;min-width:50%}
table.grid th,table.grid td{padding:5px 10px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
table.grid th:first-child,table.grid td:first-child{text-align:left}
table.grid td:last-child{white-space:normal}
table.grid.audit td:last-child,table.grid.audit th:last-child{text-align:left}
table.grid.audit th,table.grid.audit td:first-child{white-space:normal}
table.grid.audit th,table.grid.audit td{padding:5px 7px}
.nowrap{white-space:nowrap;display:inline-block;margin-right:10px}
table.grid thead th{background:#f1f3f5;font-weight:600;color:#343a40}
table.grid tbody tr:hover{background:#f8f9fa}
table.kv{border-collapse:collapse;font-size:13px;width:100%}
table.kv th{text-align:left;color:var(--muted);font-weight:500;padding:4px 16px 4px 0;vertical-align:top;
white-space:nowrap}
table.kv td{padding:4px 0;overflow-wrap:anywhere}
.pills{display:flex;flex-wrap:wrap;gap:6px}
.pill{background:#e7f5ff;color:#1c3d5a;border-radius:999px;padding:2px 10px;font-size:12px}
details summary{cursor:pointer;color:var(--accent);margin:8px 0}
.search{display:flex;align-items:center;gap:12px;margin:8px 0}
.search input{flex:1;max-width:520px;padding:8px 12px;font-size:14px;border:1px solid #ced4da;border-radius:6px}
.search input:focus{outline:2px solid #a5b4fc;border-color:var(--accent)}
table.queries{border-collapse:collapse;width:100%;table-layout:fixed;font-size:13px}
table.queries th{text-align:left;background:#f1f3f5;padding:6px 8px;border-bottom:1px solid var(--line)}
table.queries th:nth-child(1){width:24%}
table.queries th:nth-child(2){width:30%}
table.queries td{vertical-align:top;padding:8px;border-bottom:1px solid var(--line)}
table.queries td.qcell .id{font-weight:600;color:var(--accent)}
table.queries .qtext{margin-top:2px}
ul.docs,ol.docs{list-style:none;margin:0;padding:0}
.docs li{padding:4px 0;border-top:1px dashed #e9ecef}
.docs li:first-child{border-top:0;padding-top:0}
.docs .id{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:12px;font-weight:600;margin-right:8px}
.docs .score{font-variant-numeric:tabular-nums;margin-right:8px}
.docs .rank{color:var(--muted);margin-right:6px;font-variant-numeric:tabular-nums}
.docs .diff{color:var(--muted);font-size:12px;margin-right:8px}
.docs .src{background:#fff4e6;color:#a34e00;border-radius:4px;padding:0 6px;font-size:11.5px}
.docs .snip{color:#495057;font-size:12.5px;margin-top:1px;display:-webkit-box;-webkit-line-clamp:2;
-webkit-box-orient:vertical;overflow:hidden}
.docs li:hover .snip{-webkit-line-clamp:unset}
.docs li.hot{background:#fff5f5}
.docs li.hot .diff{color:var(--warn);font-weight:600}
.hot-key{background:#fff5f5;color:var(--warn);padding:0 4px;border-radius:3px}
.badge{display:inline-block;font-size:11.5px;border-radius:4px;padding:0 6px;margin-top:6px;background:#fff5f5}
footer{color:var(--muted);font-size:12px;padding:24px 0}
"""

_JS = """
(function () {
  var input = document.getElementById("q-search");
  var rows = Array.prototype.slice.call(document.querySelectorAll("#query-table tbody tr"));
  var count = document.getElementById("q-count");
  var none = document.getElementById("q-none");
  function apply() {
    var terms = input.value.toLowerCase().split(/\\s+/).filter(function (t) { return t.length > 0; });
    var shown = 0;
    rows.forEach(function (tr) {
      var key = tr.getAttribute("data-key") || "";
      var ok = terms.every(function (t) { return key.indexOf(t) >= 0; });
      tr.hidden = !ok;
      if (ok) { shown += 1; }
    });
    count.textContent = shown.toLocaleString() + " of " + rows.length.toLocaleString() + " queries";
    none.hidden = shown > 0;
    document.body.dataset.rowsShown = String(shown);
  }
  if (input) {
    input.addEventListener("input", apply);
    var m = /^#q=(.*)$/.exec(window.location.hash);  /* report.html#q=TERMS opens a filtered view */
    if (m) { input.value = decodeURIComponent(m[1]); }
    apply();
  }
  window.addEventListener("load", function () {
    var imgs = Array.prototype.slice.call(document.images);
    var ok = imgs.every(function (img) { return img.complete && img.naturalWidth > 0; });
    document.body.dataset.imagesOk = ok ? "true" : "false";
    document.body.dataset.images = String(imgs.length);
    document.body.dataset.rows = String(rows.length);
  });
})();
"""

_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"


def _page(title: str, manifest: Mapping[str, Any], sections: Sequence[tuple[str, str, str]]) -> str:
    nav = "".join(f'<a href="#{sid}">{_e(name)}</a>' for sid, name, _ in sections)
    body = "".join(f'<section id="{sid}"><h2>{_e(name)}</h2>{content}</section>' for sid, name, content in sections)
    meta = (f"run {_e(manifest.get('run_id', '?'))} · negmine {_e(manifest.get('negmine', '?'))} · "
            f"seed {_e(manifest.get('seed', '?'))}")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="negmine {_e(manifest.get("negmine", ""))}">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>\n"
        f'<body><header><div class="wrap"><h1>{_e(title)}</h1><span class="meta">{meta}</span>'
        f"<nav>{nav}</nav></div></header>\n"
        f'<main class="wrap">{body}</main>\n'
        '<footer class="wrap">Generated by negmine from manifest.json, report.json, the mined file and '
        "texts file of this run. Self-contained: no network access needed.</footer>\n"
        f"<script>{_JS}</script></body></html>\n"
    )
