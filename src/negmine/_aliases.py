"""The import paths of negmine before the core/text/rec/kg layout, kept working.

``negmine.retrievers``, ``negmine.filters``, ``negmine.rundir``, ``negmine.compare_run`` ... now
live under :mod:`negmine.core` and :mod:`negmine.text`. A meta-path finder maps every old dotted
name (and every submodule under it) to the new module *object*, so ``from negmine.retrievers
import BM25`` and ``negmine.text.retrievers.BM25`` are the same class, never a second copy.
New code imports the new paths; this table only serves user code written against the old ones.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType

# old name under ``negmine.`` -> new name under ``negmine.``; the longest matching prefix wins
MOVED: dict[str, str] = {
    "errors": "core.errors", "_optional": "core.optional", "_progress": "core.progress",
    "redact": "core.redact", "rundir": "core.rundir", "writers._atomic": "core.atomic",
    "writers.targets": "core.targets",
    "compare_render": "text.compare.render", "compare_run": "text.compare.run",
    "compare_sweep": "text.compare.sweep",
    "report.html_format": "text.report.html.format", "report.html_page": "text.report.html.page",
    "report.html_plots": "text.report.html.plots", "report.html_sections": "text.report.html.sections",
    **{name: "text." + name for name in (
        "audit", "calibrate", "compare", "compat", "data", "detector", "evaluate", "filters", "holdout",
        "options", "pipeline", "readers", "registry", "samplers", "textcol", "types",
        "encoders", "engines", "report", "retrievers", "scorers", "st", "train", "writers")},
}


def new_name(fullname: str) -> str | None:
    """``negmine.retrievers.dense`` -> ``negmine.text.retrievers.dense``; None if not an old path."""
    if not fullname.startswith("negmine."):
        return None
    rest = fullname[len("negmine."):]
    parts = rest.split(".")
    for cut in range(len(parts), 0, -1):
        target = MOVED.get(".".join(parts[:cut]))
        if target is not None:
            return "negmine." + ".".join([target, *parts[cut:]])
    return None


class _AliasFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname: str, path: object = None,
                  target: object = None) -> importlib.machinery.ModuleSpec | None:
        new = new_name(fullname)
        if new is None or importlib.util.find_spec(new) is None:
            return None
        return importlib.util.spec_from_loader(fullname, self, origin=new)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(str(spec.origin))
        spec.loader_state = module.__spec__  # the import system overwrites __spec__; exec_module restores it
        return module

    def exec_module(self, module: ModuleType) -> None:
        alias = module.__spec__
        if alias is not None and alias.loader_state is not None:
            module.__spec__ = alias.loader_state


def install() -> None:
    if not any(isinstance(f, _AliasFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _AliasFinder())
