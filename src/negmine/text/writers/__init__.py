"""Writers: the canonical ``mined`` file, its manifest, and export formats derived from it."""

from __future__ import annotations

from negmine.text.writers.export import FORMATS, export_file, export_rows
from negmine.text.writers.mined import load_mined

__all__ = ["FORMATS", "export_file", "export_rows", "load_mined"]
