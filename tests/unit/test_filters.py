"""Hand-computed specifications of every filter.

Fixture data (three queries with 2, 1 and 3 positives — different counts on purpose, the shape
that broke the peer's positive indexing):

    q0 positives d0 (s=0.875), d1 (s=0.625)           -> s⁺ = min = 0.625
    q1 positive  d2 (s=-0.5)                           -> s⁺ = -0.5   (a negative score)
    q2 positives d3 (s=0.75), d4 (s=0.25), d5 (s=0.5)  -> s⁺ = 0.25   (lowest is not first)
    other split: q0 also d9, q1 also d8 (in ``exclude`` only)

Boundary values are dyadic fractions, exact in float32 and float64, so "strict" and "inclusive"
are tested at the exact threshold.
"""

from __future__ import annotations

import numpy as np
import pytest

from negmine.core.errors import ConfigError
from negmine.text.filters import (
    AbsoluteMargin,
    ExcludePositives,
    FilterInput,
    MaxScore,
    MinScore,
    RankWindow,
    RelativeMargin,
)
from negmine.text.types import Candidates, Corpus, MiningData, Qrels, Queries

T, F = True, False

TITLES = ["", "", "", "", "", "", "ALPHA", "", "", "", ""]
TEXTS = [
    "Alpha beta",  # d0
    "gamma delta",  # d1
    "epsilon",  # d2
    "zeta eta",  # d3
    "theta",  # d4
    "iota kappa",  # d5
    "  beta ",  # d6: title "ALPHA" + text -> "alpha beta", the same normalised text as d0
    "Gamma\tDELTA",  # d7: "gamma delta" after case-folding and whitespace collapsing, as d1
    "lambda",  # d8
    "mu",  # d9
    "LAMBDA ",  # d10: "lambda", as d8
]
POSITIVES = {0: [0, 1], 1: [2], 2: [3, 4, 5]}
OTHER_SPLIT = {0: [9], 1: [8]}
# Retrieval score of each positive pair, in CSR order (query, then document row).
POS_SCORES = {(0, 0): 0.875, (0, 1): 0.625, (1, 2): -0.5, (2, 3): 0.75, (2, 4): 0.25, (2, 5): 0.5}


def _qrels(pairs: dict[int, list[int]]) -> Qrels:
    q = [qi for qi, ds in pairs.items() for _ in ds]
    d = [di for ds in pairs.values() for di in ds]
    return Qrels.from_pairs(3, np.array(q, np.int64), np.array(d, np.int64))


def _data(exclude_has_positives: bool = True) -> MiningData:
    pos = _qrels(POSITIVES)
    other = _qrels(OTHER_SPLIT)
    corpus = Corpus(ids=[f"d{i}" for i in range(len(TEXTS))], texts=TEXTS, titles=TITLES)
    queries = Queries(ids=["q0", "q1", "q2"], texts=["query zero", "query one", "query two"])
    return MiningData(corpus, queries, pos, pos.union(other) if exclude_has_positives else other)


def _input(ids: list[list[int]] | None = None, scores: list[list[float]] | None = None,
           data: MiningData | None = None, pos_scores: dict[tuple[int, int], float] | None = None) -> FilterInput:
    data = data or _data()
    if scores is None:
        scores = [[1.0 - 0.125 * j for j in range(len(ids[0]))] for _ in ids]  # type: ignore[index]
    s = np.array(scores, dtype=np.float32)
    i = np.array(ids, dtype=np.int64) if ids is not None else np.tile(np.arange(s.shape[1]) + 2, (3, 1))
    s[i < 0] = -np.inf
    pairs = zip(data.positives.query_of_pair().tolist(), data.positives.indices.tolist())
    table = {**POS_SCORES, **(pos_scores or {})}
    cand = Candidates(ids=i, scores=s, sources=np.ones(i.shape, np.uint8), source_names=["test"],
                      positive_scores=np.array([table[p] for p in pairs], dtype=np.float32))
    return FilterInput(cand, data)


def test_positive_reference_is_the_lowest_positive_score_per_query():
    # q0: min(0.875, 0.625); q1: -0.5; q2: min(0.75, 0.25, 0.5) — the lowest is the middle pair.
    inp = _input(scores=[[0.0], [0.0], [0.0]])
    np.testing.assert_array_equal(inp.positive_reference, np.array([0.625, -0.5, 0.25], np.float32))


def test_unscored_positives_are_ignored_and_margins_fail_closed_without_any():
    # A retriever that cannot score a positive reports NaN. q0 loses d0 (s⁺ = 0.625 from d1 alone);
    # q1 loses its only positive: no reference, so margin filters keep none of its candidates.
    inp = _input(scores=[[0.4375], [-10.0], [0.0]], pos_scores={(0, 0): float("nan"), (1, 2): float("nan")})
    np.testing.assert_array_equal(inp.positive_reference, np.array([0.625, np.nan, 0.25], np.float32))
    np.testing.assert_array_equal(AbsoluteMargin(0.125).keep(inp), np.array([[T], [F], [T]]))
    np.testing.assert_array_equal(RelativeMargin(0.25).keep(inp), np.array([[T], [F], [T]]))
    np.testing.assert_array_equal(MaxScore(1.0).keep(inp), np.array([[T], [T], [T]]))  # needs no s⁺


# ------------------------------------------------------------------------------ exclude-positives
EXCLUDE_IDS = [
    [6, 2, 0, 8, 9, -1],  # q0: near-dup of own d0 | q1's positive | own | q1's other-split | own other-split | pad
    [0, 8, 2, 7, 3, 10],  # q1: q0's | own other-split | own | near-dup of q0's d1 | q2's | near-dup of own d8
    [7, 1, 5, 4, 3, 9],  # q2: near-dup of q0's d1 | q0's | own | own | own | q0's other-split
]


def test_exclude_positives_drops_own_positives_all_splits_and_near_duplicates():
    keep = ExcludePositives().keep(_input(EXCLUDE_IDS))
    expected = np.array([
        [F, T, F, T, F, F],
        [T, F, F, T, T, F],
        [T, T, F, F, F, T],
    ])
    np.testing.assert_array_equal(keep, expected)


def test_exclude_positives_without_near_duplicates_keeps_lookalikes_only():
    keep = ExcludePositives(near_duplicates=False).keep(_input(EXCLUDE_IDS))
    expected = np.array([
        [T, T, F, T, F, F],  # d6 (looks like d0) now kept
        [T, F, F, T, T, T],  # d10 (looks like d8) now kept
        [T, T, F, F, F, T],
    ])
    np.testing.assert_array_equal(keep, expected)


def test_exclude_positives_never_keeps_padding():
    keep = ExcludePositives().keep(_input([[-1, -1], [-1, 4], [-1, -1]]))
    np.testing.assert_array_equal(keep, np.array([[F, F], [F, T], [F, F]]))


def test_exclude_positives_drops_split_positives_even_if_exclude_omits_them():
    # Invariant 1 ("no known positive is ever a negative"): a MiningData built by hand whose
    # ``exclude`` holds only the other split must still never let the split's positives through.
    data = _data(exclude_has_positives=False)
    keep = ExcludePositives(near_duplicates=False).keep(_input([[0, 1, 9], [2, 8, 3], [3, 4, 5]], data=data))
    expected = np.array([
        [F, F, F],  # d0, d1 positives; d9 other split
        [F, F, T],  # d2 positive; d8 other split; d3 is q2's
        [F, F, F],  # all positives of q2
    ])
    np.testing.assert_array_equal(keep, expected)


# ------------------------------------------------------------------------------------ rank-window
def test_rank_window_on_raw_ranks_half_open():
    # keep iff 2 <= rank < 5, whatever the ids (columns are raw retrieval ranks, 0-based)
    keep = RankWindow(2, 5).keep(_input(scores=[[1.0, 0.9, 0.8, 0.7, 0.6, 0.5]] * 3))
    np.testing.assert_array_equal(keep, np.array([[F, F, T, T, T, F]] * 3))


def test_rank_window_counts_ranks_before_positives_are_removed():
    # q0's rank 0 is its positive d0. A window [1, 3) keeps raw ranks 1 and 2 — not the 2nd and
    # 3rd *surviving* candidates (ranks 2 and 3), as the peer does.
    inp = _input([[0, 6, 2, 3], [3, 4, 5, 6], [0, 1, 2, 6]])
    keep = ExcludePositives().keep(inp) & RankWindow(1, 3).keep(inp)
    expected = np.array([
        [F, F, T, F],  # rank 1 is d6 (near-dup of d0): dropped; rank 2 kept; rank 3 outside
        [F, T, T, F],
        [F, T, T, F],
    ])
    np.testing.assert_array_equal(keep, expected)


def test_rank_window_open_ended_and_default():
    inp = _input(scores=[[1.0, 0.5, 0.25]] * 3)
    np.testing.assert_array_equal(RankWindow(1).keep(inp), np.array([[F, T, T]] * 3))
    np.testing.assert_array_equal(RankWindow().keep(inp), np.array([[T, T, T]] * 3))


@pytest.mark.parametrize(("lo", "hi"), [(-1, None), (3, 3), (4, 2), (0, 0)])
def test_rank_window_rejects_empty_or_negative_windows(lo, hi):
    with pytest.raises(ConfigError):
        RankWindow(lo, hi)


# ------------------------------------------------------------------------------ score thresholds
def test_max_score_is_inclusive():
    # keep iff s <= 0.5
    keep = MaxScore(0.5).keep(_input(scores=[[0.75, 0.5, 0.25], [0.5, -0.5, -1.0], [2.0, 0.625, 0.5]]))
    np.testing.assert_array_equal(keep, np.array([[F, T, T], [T, T, T], [F, F, T]]))


def test_min_score_is_inclusive():
    # keep iff s >= -0.5
    keep = MinScore(-0.5).keep(_input(scores=[[0.75, -0.5, -0.625], [0.0, -0.25, -0.5], [-0.5, -1.0, -2.0]]))
    np.testing.assert_array_equal(keep, np.array([[T, T, F], [T, T, T], [T, F, F]]))


def test_score_thresholds_compare_at_the_scores_float32_precision():
    # float32(0.7) = 0.699999988..., a score shown as 0.7 sits exactly on a threshold of 0.7:
    # inclusive on both sides, so kept by max_score=0.7 and by min_score=0.7.
    inp = _input(scores=[[0.7, 0.7]] * 3)
    assert MaxScore(0.7).keep(inp).all()
    assert MinScore(0.7).keep(inp).all()


@pytest.mark.parametrize("cls", [MaxScore, MinScore, AbsoluteMargin, RelativeMargin])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_thresholds_reject_non_finite_values(cls, value):
    with pytest.raises(ConfigError):
        cls(value)


def test_absolute_margin_is_strict_and_uses_lowest_positive():
    # keep iff s < s⁺ − m, m = 0.125; thresholds: q0 0.625−0.125 = 0.5, q1 −0.5−0.125 = −0.625,
    # q2 0.25−0.125 = 0.125 (with the HIGHEST positive, q0/q2 would get 0.75/0.625 instead).
    scores = [
        [0.75, 0.5625, 0.5, 0.4375, 0.0],
        [-0.25, -0.5, -0.5625, -0.625, -0.75],
        [0.6, 0.2, 0.125, 0.1, -0.3],
    ]
    keep = AbsoluteMargin(0.125).keep(_input(scores=scores))
    expected = np.array([
        [F, F, F, T, T],  # 0.5 == threshold: dropped (strict)
        [F, F, F, F, T],  # -0.625 == threshold: dropped
        [F, F, F, T, T],  # 0.125 == threshold: dropped; 0.2 < mean-of-positives rule would keep it
    ])
    np.testing.assert_array_equal(keep, expected)


def test_absolute_margin_zero_drops_anything_scored_at_or_above_the_hardest_positive():
    # keep iff s < s⁺: thresholds 0.625, -0.5, 0.25
    scores = [[0.625, 0.624, 0.0], [-0.5, -0.51, -0.9], [0.3, 0.25, 0.2]]
    keep = AbsoluteMargin(0.0).keep(_input(scores=scores))
    np.testing.assert_array_equal(keep, np.array([[F, T, T], [F, T, T], [F, F, T]]))


def test_relative_margin_is_sign_safe_for_negative_positive_scores():
    # keep iff s < s⁺ − |s⁺|·m, m = 0.1:
    #   q0: 0.625 − 0.0625 = 0.5625   q1: −0.5 − 0.05 = −0.55   q2: 0.25 − 0.025 = 0.225
    # The peer's s⁺·(1−m) gives −0.45 for q1 — ABOVE the positive — and would keep −0.5, −0.54.
    scores = [
        [0.7, 0.6, 0.57, 0.55, 0.3],
        [-0.4, -0.5, -0.54, -0.56, -0.7],
        [0.3, 0.25, 0.23, 0.22, 0.1],
    ]
    keep = RelativeMargin(0.1).keep(_input(scores=scores))
    expected = np.array([
        [F, F, F, T, T],
        [F, F, F, T, T],
        [F, F, F, T, T],
    ])
    np.testing.assert_array_equal(keep, expected)


def test_relative_margin_is_strict_at_the_exact_threshold():
    # m = 0.25: q0 0.625 − 0.15625 = 0.46875, q1 −0.5 − 0.125 = −0.625, q2 0.25 − 0.0625 = 0.1875
    scores = [
        [0.5, 0.46875, 0.46875 - 2**-20],
        [-0.5, -0.625, -0.625 - 2**-20],
        [0.25, 0.1875, 0.1875 - 2**-20],
    ]
    keep = RelativeMargin(0.25).keep(_input(scores=scores))
    np.testing.assert_array_equal(keep, np.array([[F, F, T]] * 3))


def test_filters_are_ands_of_independent_masks():
    # Masks are functions of the candidates only: evaluating in another order gives the same AND.
    scores = [[0.75, 0.5, 0.25, 0.0], [-0.25, -0.5, -0.75, -1.0], [0.5, 0.25, 0.125, 0.0]]
    inp = _input([[2, 6, 3, 4], [0, 1, 8, 3], [0, 1, 2, 3]], scores)
    fs = [ExcludePositives(), RankWindow(1, 4), MaxScore(0.5), AbsoluteMargin(0.125)]
    a = np.logical_and.reduce([f.keep(inp) for f in fs])
    b = np.logical_and.reduce([f.keep(inp) for f in reversed(fs)])
    np.testing.assert_array_equal(a, b)
    # q0 (margin thr 0.5): rank 0 outside the window; d6 near-dup of d0; d3 0.25 and d4 0.0 kept
    # q1 (thr −0.625): d1 −0.5 too close; d8 is q1's other-split positive; d3 −1.0 kept
    # q2 (thr 0.125): d1 0.25 too close; d2 0.125 == thr (strict); d3 is q2's own positive
    np.testing.assert_array_equal(a, np.array([[F, F, T, T], [F, F, F, T], [F, F, F, F]]))
