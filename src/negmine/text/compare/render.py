"""The files :func:`negmine.text.compare.compare` writes: ``compare.md``, ``compare.json``, the copy
of the sweep file and the ``compare.png`` plot."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from negmine.core.tables import markdown_table
from negmine.text.compare.sweep import PRIMARY, Sweep
from negmine.text.evaluate import METRICS

log = logging.getLogger(__name__)


def _f(v: Any, fmt: str) -> str:
    return "—" if v is None else format(v, fmt)


def render_markdown(summary: dict[str, Any]) -> str:
    """The table of ``compare.md`` from the ``compare.json`` content."""
    rows = summary["rows"]
    audit = any("hp_fnr" in r for r in rows)
    multi = len(summary["seeds"]) > 1
    cols = ["setting", "nDCG@10", "Recall@100", "MRR@10", "MAP@100", "Δ nDCG@10", "p", "train s", "mine s",
            "neg score", "neg rank", "shortfall %", *(["HP-FNR"] if audit else [])]
    lines = [
        f"# negmine compare: {Path(summary['config']).name}",
        "",
        f"Dataset `{summary['dataset']}`: mined and trained on `{summary['train_split']}`, evaluated on "
        f"`{summary['eval_split']}` ({summary['eval_queries']} queries); "
        f"seeds {', '.join(map(str, summary['seeds']))}; baseline **{summary['baseline']}**.",
        "",
    ]
    cells_of_rows = []
    for r in rows:
        cells = [r["setting"] + ("" if r["trained"] else " (untrained)")]
        for m in METRICS:
            sd = r["metrics_std"][m]
            cells.append(f"{r['metrics'][m]:.4f}" + (f" ±{sd:.4f}" if multi and r["trained"] else ""))
        cells += [_f(r["delta"], "+.4f"), _f(r["p_value"], ".4g"), _f(r.get("train_s"), ".1f"),
                  _f(r.get("mine_s"), ".1f"), _f(r.get("mean_negative_score"), ".4f"), _f(r.get("mean_rank"), ".1f"),
                  _f(r.get("shortfall_pct"), ".1f")]
        if audit:
            cells.append(_f(r.get("hp_fnr"), ".4f"))
        cells_of_rows.append(cells)
    lines.append(markdown_table(cols, cells_of_rows, align="-" + "r" * (len(cols) - 1)))
    t = summary["test"]
    lines += [
        "",
        f"Metrics are means over seeds{' (± standard deviation over seeds)' if multi else ''}. "
        f"Δ nDCG@10 is the difference to the baseline; p is a paired two-sided randomisation test over the "
        f"{summary['eval_queries']} queries (sign flips of the per-query differences, per-query scores averaged "
        f"over seeds; exact up to {t['exact_up_to']} non-zero differences, else {t['permutations']:,} "
        f"permutations with seed {t['seed']}). train s: optimisation time; mine s: retrieval + filtering + "
        "sampling (a retrieval shared between settings is counted in each). neg score / neg rank: mean retrieval "
        "score and candidate rank of the mined negatives; shortfall %: queries with fewer negatives than asked"
        + ("; HP-FNR: share of mined negatives that are hidden positives." if audit else "."),
        "",
        f"Reproduce: `{summary['command']}` (config sha256 {summary['config_sha256'][:12]}).",
        "",
    ]
    return "\n".join(lines)


def _plot(summary: dict[str, Any], path: Path) -> None:
    from negmine.core.atomic import write_atomic
    from negmine.core.optional import require

    figure = require("matplotlib.figure").Figure
    canvas = require("matplotlib.backends.backend_agg").FigureCanvasAgg
    rows = summary["rows"]
    names = [r["setting"] for r in rows]
    values = [r["metrics"][PRIMARY] for r in rows]
    errors = [r["metrics_std"][PRIMARY] for r in rows]
    fig = figure(figsize=(max(4.0, 1.1 * len(rows) + 1.5), 3.6), dpi=120, layout="constrained")
    canvas(fig)
    ax = fig.add_subplot(1, 1, 1)
    colors = ["#adb5bd" if r["setting"] == summary["baseline"] else "#4c72b0" for r in rows]
    ax.bar(range(len(rows)), values, color=colors, yerr=errors if any(errors) else None, capsize=3)
    base = next(r for r in rows if r["setting"] == summary["baseline"])["metrics"][PRIMARY]
    ax.axhline(base, color="#c44e52", linestyle="--", linewidth=1, label=f"baseline ({summary['baseline']})")
    for i, r in enumerate(rows):
        label = f"{values[i]:.3f}" + ("" if r["p_value"] is None or r["p_value"] >= 0.05 else "*")
        ax.annotate(label, (i, values[i]), ha="center", va="bottom", fontsize=8, xytext=(0, 2),
                    textcoords="offset points")
    ax.set_xticks(range(len(rows)), names, rotation=20, ha="right")
    top = max([v + e for v, e in zip(values, errors)] + [base])
    ax.set_ylim(0, top * 1.3 if top > 0 else 1.0)  # headroom for the value labels and the legend
    ax.set_ylabel("nDCG@10")
    ax.set_title(f"nDCG@10 on {summary['eval_split']} (* p < 0.05 vs baseline)")
    ax.legend(loc="upper right", fontsize=8, frameon=False)
    write_atomic(path, lambda fh: fig.savefig(fh, format="png", metadata={"Software": None}, facecolor="white"))


def write_outputs(sweep: Sweep, summary: dict[str, Any]) -> tuple[dict[str, Path], str]:
    """Write the sweep's files into ``sweep.out``; ``(files by kind, the markdown table)``."""
    from negmine.core.atomic import write_json, write_text
    from negmine.core.optional import available

    out = sweep.out
    markdown = render_markdown(summary)
    files = {"markdown": out / "compare.md", "json": out / "compare.json"}
    copy = out / "sweep.toml"
    if not copy.exists() or copy.read_text(encoding="utf-8") != sweep.text:
        write_text(copy, sweep.text)
    files["config"] = copy
    write_json(files["json"], summary)
    write_text(files["markdown"], markdown)
    if available("matplotlib"):
        files["plot"] = out / "compare.png"
        _plot(summary, files["plot"])
    else:
        log.warning("matplotlib is not installed: compare.png not drawn (pip install 'negmine[report]')")
    return files, markdown
