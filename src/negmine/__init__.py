"""negmine: mine the negatives contrastive models train on — hard, but not false.

>>> import negmine
>>> data = negmine.load_beir("path/to/scifact", split="train")          # doctest: +SKIP
>>> result = negmine.mine(data, negmine.text.retrievers.BM25(), num_negatives=5)  # doctest: +SKIP
>>> result.save("out/")                                                  # doctest: +SKIP

``import negmine`` imports no heavy dependency (torch, faiss, bm25s, pyarrow, datasets); each
backend imports its own on first use.
"""

from __future__ import annotations

from negmine import _aliases

_aliases.install()  # the pre-layout import paths (negmine.retrievers, negmine.rundir, ...) keep working

from negmine.core.errors import ConfigError, DataError, MissingDependencyError, NegmineError  # noqa: E402
from negmine.text import encoders, filters, retrievers, samplers  # noqa: E402
from negmine.text.compat import mine_hard_negatives  # noqa: E402 (light: heavy imports happen inside the call)
from negmine.text.data import from_pairs, load_beir, load_files, load_pairs  # noqa: E402
from negmine.text.pipeline import MiningResult, mine  # noqa: E402
from negmine.text.types import Candidates, Corpus, MiningData, Qrels, Queries  # noqa: E402

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """``negmine.rundir``, ``negmine.compare`` ...: the old module attributes, imported on first use."""
    if name in _aliases.MOVED and "." not in name:
        import importlib

        return importlib.import_module(f"negmine.{name}")
    raise AttributeError(f"module 'negmine' has no attribute {name!r}")

__all__ = [
    "Candidates",
    "ConfigError",
    "Corpus",
    "DataError",
    "MiningData",
    "MiningResult",
    "MissingDependencyError",
    "NegmineError",
    "Qrels",
    "Queries",
    "__version__",
    "encoders",
    "filters",
    "from_pairs",
    "load_beir",
    "load_files",
    "load_pairs",
    "mine",
    "mine_hard_negatives",
    "retrievers",
    "samplers",
]
