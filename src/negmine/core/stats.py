"""Statistics every domain reports with: proportion intervals, paired tests, distributions.

``wilson`` and ``cluster_wilson`` bound a false-negative rate (the second for negatives that come
in per-query clusters); ``permutation_test`` is the paired sign-flip test behind every comparison
(text, recommendation and knowledge-graph compare); ``describe`` summarises a distribution.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion ``k / n``."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, centre - half), min(1.0, centre + half))


def cluster_wilson_rows(hits: np.ndarray, negatives: np.ndarray, z: float = 1.96) -> tuple[np.ndarray, np.ndarray]:
    """:func:`cluster_wilson` of every row of ``hits`` / ``negatives`` (``[m, n]``: ``m`` rates,
    each over ``n`` clusters) at once: ``(lower float64[m], upper float64[m])``, NaN for a row
    with no negatives. The calibration bounds hundreds of policies per fold with it."""
    k = np.atleast_2d(np.asarray(hits, dtype=np.float64))
    n = np.atleast_2d(np.asarray(negatives, dtype=np.float64))
    total = n.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k.sum(axis=1) / total
        m = (n > 0).sum(axis=1)
        var_c = m / np.maximum(m - 1, 1) * ((k - p[:, None] * n) ** 2).sum(axis=1) / total**2
        deff = np.where((m > 1) & (p > 0) & (p < 1), np.maximum(1.0, var_c / (p * (1 - p) / total)), 1.0)
        n_eff = total / deff
        den = 1 + z * z / n_eff
        centre = (p + z * z / (2 * n_eff)) / den
        half = z * np.sqrt(p * (1 - p) / n_eff + z * z / (4 * n_eff * n_eff)) / den
    none = total == 0
    return (np.where(none, np.nan, np.maximum(0.0, centre - half)),
            np.where(none, np.nan, np.minimum(1.0, centre + half)))


def cluster_wilson(hits: np.ndarray, negatives: np.ndarray, z: float = 1.96) -> tuple[float, float]:
    """Wilson 95% interval of the pooled rate ``Σ hits / Σ negatives`` whose units come in
    clusters (the negatives of one query are not independent): the count is shrunk to Kish's
    effective size ``n / deff`` with the design effect ``deff = var_cluster(p) / var_binomial(p)``
    (at least 1) of the ratio estimator. With one cluster, or no hit, ``deff = 1``."""
    lo, hi = cluster_wilson_rows(np.asarray(hits)[None], np.asarray(negatives)[None], z)
    return (float(lo[0]), float(hi[0]))


N_PERMUTATIONS = 10_000
EXACT_MAX = 16


def permutation_test(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, *,
                     n_permutations: int = N_PERMUTATIONS, seed: int = 0, exact_max: int = EXACT_MAX) -> float:
    """Two-sided p-value of a paired randomisation (sign-flip) test of ``mean(a - b) = 0``.

    Under the null hypothesis each per-query difference ``d_i = a_i - b_i`` is as likely to have
    had the other sign, so the p-value is the share of the ``2^n`` sign assignments ``s`` with
    ``|Σ s_i d_i| >= |Σ d_i|`` (the observed one included). Queries with ``d_i = 0`` do not
    change under a flip and are left out. With at most ``exact_max`` non-zero differences every
    assignment is enumerated; otherwise ``n_permutations`` random ones are drawn from a
    generator seeded with ``seed`` and ``p = (hits + 1) / (n_permutations + 1)``.

    Parameters
    ----------
    a, b
        ``float[n]`` per-query scores of two systems on the same queries, in the same order.

    Examples
    --------
    >>> permutation_test([0.5, 0.7], [0.5, 0.7])          # no difference
    1.0
    >>> permutation_test([1.0] * 12, [0.0] * 12)           # all 12 better: 2 of 2^12 as extreme
    0.00048828125
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"a and b must be 1-d and of the same length, got shapes {x.shape} and {y.shape}")
    d = x - y
    d = d[d != 0]
    n = len(d)
    if n == 0:
        return 1.0
    observed = abs(float(d.sum()))
    tol = 1e-9 * float(np.abs(d).sum())  # float noise must not turn a tie into a miss
    if n <= exact_max:
        signs = 1.0 - 2.0 * ((np.arange(2**n)[:, None] >> np.arange(n)[None, :]) & 1)
        return float(np.mean(np.abs(signs @ d) >= observed - tol))
    rng = np.random.default_rng(seed)
    hits = 0
    chunk = max(1, 2_000_000 // n)
    for start in range(0, n_permutations, chunk):
        m = min(chunk, n_permutations - start)
        signs = 1.0 - 2.0 * rng.integers(0, 2, size=(m, n))
        hits += int((np.abs(signs @ d) >= observed - tol).sum())
    return (hits + 1) / (n_permutations + 1)


def describe(values: np.ndarray) -> dict[str, float | int | None]:
    """count, mean, std, min, quantiles and max of ``values`` (finite values only)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    out: dict[str, float | int | None] = {"count": len(v)}
    if not len(v):
        out.update({k: None for k in ("mean", "std", "min", "p5", "p25", "p50", "p75", "p95", "max")})
        return out
    qs = np.quantile(v, QUANTILES)
    out.update(
        mean=float(v.mean()), std=float(v.std()), min=float(v.min()),
        p5=float(qs[0]), p25=float(qs[1]), p50=float(qs[2]), p75=float(qs[3]), p95=float(qs[4]),
        max=float(v.max()),
    )
    return out


def round_floats(obj: Any) -> Any:
    if isinstance(obj, float):
        return round(obj, 6)
    if isinstance(obj, dict):
        return {k: round_floats(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [round_floats(v) for v in obj]
    return obj
