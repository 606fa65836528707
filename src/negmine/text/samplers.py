"""Samplers choose ``num_negatives`` of the surviving candidates of each query.

Every sampler is a pure function of (candidates, keep-mask, num_negatives, seed): it gives each
surviving candidate a priority and takes the highest. Randomness comes from a hash of
``(seed, query_id, doc_id)`` — never from global state — so a query's negatives do not depend
on batch size, sharding, query order or worker count. Chosen columns are returned in rank order,
``-1`` where too few candidates survive (a shortfall, reported, never padded).

Score scales. ``softmax`` and ``simans`` take ``scale="raw"`` (the default; parameters on the
retriever's own scale, as in the papers: reproduces NV-Retriever's and SimANS' settings) or
``scale="query"``: scores are first standardised per query,

    z(q, n) = (s(q, n) − s⁺(q)) / sd_q,

where ``sd_q`` is the standard deviation of the scores of *all* the query's retrieved candidates
(padding excluded; before any filter, so a filter never changes the scale; ``1`` when the list has
fewer than two distinct scores) and ``s⁺`` the positive reference. On this scale one default
behaves alike on BM25 scores (tens) and cosine scores (±1): ``softmax`` with ``T = 1`` weighs a
candidate one list-sd higher ``e`` times more; ``simans`` with ``a = 0.5, b = 1`` is a Gaussian of
one list-sd around ``s⁺ − 1·sd_q``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from negmine.core.errors import ConfigError
from negmine.core.keys import gumbel, string_keys, uniform
from negmine.core.select import top_k_kept

__all__ = ["SCALES", "Random", "SampleInput", "Sampler", "SimANS", "Softmax", "Top", "query_sd", "string_keys",
           "uniform"]

SCALES = ("raw", "query")

def query_sd(scores: np.ndarray) -> np.ndarray:
    """``float64[n_q]``: the standard deviation of each row's finite scores (``1`` where a row has
    fewer than two distinct finite scores), the unit of the ``query`` scale."""
    s = np.where(np.isfinite(scores), scores.astype(np.float64), np.nan)
    n = np.isfinite(s).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nansum(s, axis=1) / np.maximum(n, 1)
        var = np.nansum((s - mean[:, None]) ** 2, axis=1) / np.maximum(n, 1)
    sd = np.sqrt(var)
    return np.where((n >= 2) & (sd > 0) & np.isfinite(sd), sd, 1.0)


def _check_scale(scale: str) -> str:
    if scale not in SCALES:
        raise ConfigError(f"unknown score scale {scale!r}; pick one of {', '.join(SCALES)}")
    return scale


@dataclass
class SampleInput:
    """``scores float32[n_q, k]`` (columns in rank order), ``keep bool[n_q, k]``,
    ``query_keys uint64[n_q]`` and ``doc_keys uint64[n_q, k]`` (hashes of the string ids),
    ``positive_reference float32[n_q]`` (lowest positive score), and the seed."""

    scores: np.ndarray
    keep: np.ndarray
    query_keys: np.ndarray
    doc_keys: np.ndarray
    positive_reference: np.ndarray
    seed: int

    def gumbel(self) -> np.ndarray:
        return gumbel(uniform(self.seed, self.query_keys, self.doc_keys))


class Sampler(Protocol):
    name: str

    def config(self) -> dict[str, Any]: ...

    def priority(self, inp: SampleInput) -> np.ndarray: ...


def select(sampler: Sampler, inp: SampleInput, num_negatives: int) -> np.ndarray:
    """Column positions ``int64[n_q, num_negatives]`` of the chosen candidates in rank order,
    ``-1`` for a shortfall."""
    if num_negatives < 1:
        raise ConfigError(f"num_negatives must be >= 1, got {num_negatives}; pass --num-negatives 1 or more")
    # NaN priorities (e.g. SimANS without a positive score) are the least preferred
    return top_k_kept(sampler.priority(inp).astype(np.float64), inp.keep, num_negatives)


class Top:
    """The highest-scoring surviving candidates (the peer's ``sampling_strategy="top"``;
    NV-Retriever finds 4 negatives from the top 10 best). Deterministic; ties to the better rank.

    Examples
    --------
    >>> import numpy as np
    >>> inp = SampleInput(np.array([[.9, .8, .7]], np.float32), np.array([[True, False, True]]),
    ...                   np.zeros(1, np.uint64), np.zeros((1, 3), np.uint64), np.ones(1, np.float32), 0)
    >>> select(Top(), inp, 2).tolist()
    [[0, 2]]
    """

    name = "top"

    def config(self) -> dict[str, Any]:
        return {"name": self.name}

    def priority(self, inp: SampleInput) -> np.ndarray:
        return inp.scores.astype(np.float64)


class Random:
    """Uniform among surviving candidates, without replacement (STAR mixes random with hard
    negatives; easier than ``top``, and rarely false negatives)."""

    name = "random"

    def config(self) -> dict[str, Any]:
        return {"name": self.name}

    def priority(self, inp: SampleInput) -> np.ndarray:
        return uniform(inp.seed, inp.query_keys, inp.doc_keys)


class Softmax:
    """Without replacement, with probability ∝ ``exp(s / temperature)`` (NV-Retriever's "sampled
    top-k"), as Gumbel-top-k: priority ``s / T + Gumbel``. ``T → 0`` tends to ``top``; large ``T``
    to ``random``. With ``scale="raw"`` ``T`` is on the score's scale (cosine: 0.01–0.1); with
    ``scale="query"`` the scores are divided by the query's list sd first (module doc), so
    ``T = 1`` means the same on every retriever."""

    name = "softmax"

    def __init__(self, temperature: float = 0.05, scale: str = "raw") -> None:
        if not temperature > 0 or not np.isfinite(temperature):
            raise ConfigError(f"temperature must be a finite number > 0, got {temperature}")
        self.temperature = float(temperature)
        self.scale = _check_scale(scale)

    def config(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "temperature": self.temperature}
        if self.scale != "raw":
            out["scale"] = self.scale
        return out

    def priority(self, inp: SampleInput) -> np.ndarray:
        s = inp.scores.astype(np.float64)
        if self.scale == "query":  # z up to a per-query shift, which softmax ignores
            s = s / query_sd(inp.scores)[:, None]
        return s / self.temperature + inp.gumbel()


class SimANS:
    """Ambiguous negatives (SimANS, Zhou et al. 2022): weight ``w = exp(−a·(s − s⁺ + b)²)``
    peaks at candidates scored *near the positive* (``s ≈ s⁺ − b``), sampled without
    replacement (Gumbel-top-k on ``log w``). Defaults ``a = 0.5, b = 0`` follow the authors'
    code (their README writes ``b`` with the other sign). With ``scale="raw"`` ``a`` is on the
    squared score scale: with cosine scores in [−1, 1] use a large ``a`` (e.g. 50–500) for a sharp
    peak; with BM25 scores (tens) a small one; ``a = 0.5`` on cosine scores is nearly uniform.
    With ``scale="query"`` the weight is ``exp(−a·(z + b)²)`` on the standardised score
    ``z = (s − s⁺) / sd_q`` (module doc): the peak lies ``b`` list-sds below ``s⁺`` whatever the
    retriever.
    """

    name = "simans"

    def __init__(self, a: float = 0.5, b: float = 0.0, scale: str = "raw") -> None:
        if not a >= 0 or not np.isfinite(a):
            raise ConfigError(f"simans a must be a finite number >= 0, got {a}")
        if not np.isfinite(b):
            raise ConfigError(f"simans b must be a finite number, got {b}")
        self.a = float(a)
        self.b = float(b)
        self.scale = _check_scale(scale)

    def config(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "a": self.a, "b": self.b}
        if self.scale != "raw":
            out["scale"] = self.scale
        return out

    def priority(self, inp: SampleInput) -> np.ndarray:
        d = inp.scores.astype(np.float64) - inp.positive_reference.astype(np.float64)[:, None]
        if self.scale == "query":
            d = d / query_sd(inp.scores)[:, None]
        d = d + self.b
        return -self.a * d * d + inp.gumbel()
