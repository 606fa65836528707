"""Negatives for recommendation from implicit feedback (users as queries, items as documents).

``load_interactions`` -> ``split_interactions`` -> ``mine`` with a sampler (``uniform``,
``popularity``, ``dns``, ``robust``, ``mixed``) and, for the model-based ones, a scorer
(``implicit`` ALS/BPR or given embeddings). Imports nothing heavy.
"""

from __future__ import annotations

from negmine.rec.data import Interactions, RecData, from_arrays, load_interactions, split_interactions
from negmine.rec.mining import RecMiningResult, mine, sample_negatives
from negmine.rec.samplers import DNS, Mixed, Popularity, Robust, Uniform, make_sampler
from negmine.rec.scorers import Scorer, fit_implicit, load_embeddings, make_scorer

__all__ = [
    "DNS", "Interactions", "Mixed", "Popularity", "RecData", "RecMiningResult", "Robust", "Scorer", "Uniform",
    "fit_implicit", "from_arrays", "load_embeddings", "load_interactions", "make_sampler", "make_scorer", "mine",
    "sample_negatives", "split_interactions",
]
