"""Statistics about mined negatives (the report) and its text rendering."""

from __future__ import annotations

from negmine.text.report.stats import build_report, describe, render_text

__all__ = ["build_report", "describe", "render_text"]
