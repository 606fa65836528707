"""Writers: the canonical ``mined`` file, its manifest, and export formats derived from it."""

from __future__ import annotations

from negmine.writers.export import FORMATS, export_file, export_rows
from negmine.writers.mined import check_output_dir, load_mined

__all__ = ["FORMATS", "check_output_dir", "export_file", "export_rows", "load_mined"]
