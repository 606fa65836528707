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
>>> from negmine.text.report.html import write_html
>>> write_html("out/", "out/report.html")  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from negmine.core.atomic import write_text
from negmine.core.errors import DataError
from negmine.text.report.html.page import _page
from negmine.text.report.html.plots import (
    _audit_section,
    _calibration_section,
    _distribution_section,
    _Plots,
    _retrievers_section,
)
from negmine.text.report.html.sections import _queries_section, _run_section, _statistics_section, _summary_section

MAX_QUERIES = 5000  # rows of the per-query table; the rest is in mined.parquet

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
    from negmine.text.writers.mined import load_mined

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
    sections.append(("queries", "Queries", _queries_section(rows, texts, report, MAX_QUERIES)))
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
