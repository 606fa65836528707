"""negmine: mine the negatives contrastive models train on — hard, but not false.

>>> import negmine
>>> data = negmine.load_beir("path/to/scifact", split="train")          # doctest: +SKIP
>>> result = negmine.mine(data, negmine.retrievers.BM25(), num_negatives=5)  # doctest: +SKIP
>>> result.save("out/")                                                  # doctest: +SKIP

``import negmine`` imports no heavy dependency (torch, faiss, bm25s, pyarrow, datasets); each
backend imports its own on first use.
"""

from __future__ import annotations

from negmine import encoders, filters, retrievers, samplers
from negmine.compat import mine_hard_negatives  # light: heavy imports happen inside the call
from negmine.data import from_pairs, load_beir, load_files, load_pairs
from negmine.errors import ConfigError, DataError, MissingDependencyError, NegmineError
from negmine.pipeline import MiningResult, mine
from negmine.types import Candidates, Corpus, MiningData, Qrels, Queries

__version__ = "0.1.0"

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
