"""The exact sums behind the exact re-scoring (:func:`negmine.text.retrievers.base.rescore_exact`), in
a module of their own so that the numpy path and the compiled one
(:mod:`negmine.text.retrievers.rescore_jit`, which checks itself against them) share one
definition without importing each other."""

from __future__ import annotations

import numpy as np


def exact_sums(q_emb: np.ndarray, d_emb: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """``float64[n, kk]``: the exact products of
    :func:`~negmine.text.retrievers.base.rescore_exact`, summed by numpy's pairwise reduction,
    before rounding to float32; ``-inf`` where ``ids < 0``."""
    valid = ids >= 0
    docs = d_emb[np.where(valid, ids, 0)].astype(np.float64)
    return np.where(valid, (docs * q_emb[:, None, :].astype(np.float64)).sum(-1), -np.inf)
