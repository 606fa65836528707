"""Hand-computed specifications of the positive references (``--positive-reference``).

Fixture: two queries with several positives of different scores, negative scores included.

    q0 positives d0 (s=0.5), d1 (s=-0.25), d2 (s=-1.0)  -> min -1.0, mean -0.25, max 0.5
    q1 positives d3 (s=0.75), d4 (s=0.25)               -> min 0.25, mean 0.5,  max 0.75
    q1 also has d9 in another split (exclude only)

All values are dyadic, so thresholds are exact in float32 and float64.
"""

from __future__ import annotations

import numpy as np
import pytest

from negmine.core.errors import ConfigError
from negmine.text.filters import (
    AbsoluteMargin,
    ExcludePositives,
    FilterInput,
    RelativeMargin,
    expand_pairs,
    positive_reference,
)
from negmine.text.types import Candidates, Corpus, MiningData, Qrels, Queries

T, F = True, False
POS = {0: [0, 1, 2], 1: [3, 4]}
POS_SCORES = [0.5, -0.25, -1.0, 0.75, 0.25]  # CSR order: q0 d0 d1 d2, q1 d3 d4
CAND_IDS = [[5, 6, 7, 8], [5, 6, 7, 9]]
CAND_SCORES = [[-0.25, -0.375, -1.5, -2.0], [0.5, 0.375, 0.125, 0.0]]


def _data() -> MiningData:
    q = np.array([0, 0, 0, 1, 1])
    d = np.array([0, 1, 2, 3, 4])
    pos = Qrels.from_pairs(2, q, d)
    excl = pos.union(Qrels.from_pairs(2, np.array([1]), np.array([9])))
    corpus = Corpus(ids=[f"d{i}" for i in range(10)], texts=[f"text {i}" for i in range(10)])
    return MiningData(corpus, Queries(ids=["q0", "q1"], texts=["zero", "one"]), pos, excl)


def _cand(scores: list[float] = POS_SCORES) -> Candidates:
    ids = np.array(CAND_IDS, np.int64)
    return Candidates(ids, np.array(CAND_SCORES, np.float32), np.ones(ids.shape, np.uint8), ["t"],
                      np.array(scores, np.float32))


@pytest.mark.parametrize("how, expected", [("min", [-1.0, 0.25]), ("mean", [-0.25, 0.5]), ("max", [0.5, 0.75])])
def test_reference_values(how, expected):
    inp = FilterInput(_cand(), _data(), reference=how)
    np.testing.assert_array_equal(inp.positive_reference, np.array(expected, np.float32))


def test_unscored_positives_are_ignored_by_every_reference():
    s = [0.5, float("nan"), -1.0, float("nan"), float("nan")]
    for how, want in (("min", [-1.0, np.nan]), ("mean", [-0.25, np.nan]), ("max", [0.5, np.nan])):
        np.testing.assert_array_equal(positive_reference(_data(), np.array(s, np.float32), how),
                                      np.array(want, np.float32))


@pytest.mark.parametrize("how, expected", [
    # relative margin 0.5: keep iff s < ref - |ref| * 0.5 (strict)
    ("min", [[F, F, F, T], [F, F, F, T]]),  # q0 < -1.5 (-1.5 itself dropped); q1 < 0.125
    ("mean", [[F, F, T, T], [F, F, T, T]]),  # q0 < -0.375 (-0.375 itself dropped); q1 < 0.25
    ("max", [[T, T, T, T], [F, F, T, T]]),  # q0 < 0.25; q1 < 0.375 (0.375 itself dropped)
])
def test_relative_margin_against_each_reference(how, expected):
    inp = FilterInput(_cand(), _data(), reference=how)
    np.testing.assert_array_equal(RelativeMargin(0.5).keep(inp), np.array(expected))


def test_absolute_margin_against_each_reference():
    # absolute margin 0.25: keep iff s < ref - 0.25
    for how, want in (("min", [[F, F, T, T], [F, F, F, F]]),  # q0 < -1.25; q1 < 0.0 (0.0 dropped)
                      ("mean", [[F, F, T, T], [F, F, T, T]]),  # q0 < -0.5; q1 < 0.25
                      ("max", [[T, T, T, T], [F, T, T, T]])):  # q0 < 0.25; q1 < 0.5
        inp = FilterInput(_cand(), _data(), reference=how)
        np.testing.assert_array_equal(AbsoluteMargin(0.25).keep(inp), np.array(want), err_msg=how)


def test_a_filter_may_name_its_own_reference():
    inp = FilterInput(_cand(), _data(), reference="min")
    np.testing.assert_array_equal(RelativeMargin(0.5, reference="max").keep(inp),
                                  np.array([[T, T, T, T], [F, F, T, T]]))
    assert RelativeMargin(0.5, reference="max").config() == {"name": "relative-margin", "relative_margin": 0.5,
                                                            "reference": "max"}
    assert RelativeMargin(0.5).config() == {"name": "relative-margin", "relative_margin": 0.5}  # unchanged


def test_unknown_reference_is_a_config_error():
    with pytest.raises(ConfigError, match="positive reference"):
        _ = FilterInput(_cand(), _data(), reference="median").positive_reference
    with pytest.raises(ConfigError, match="positive reference"):
        RelativeMargin(0.1, reference="median")


def test_pair_needs_expanded_rows():
    with pytest.raises(ConfigError, match="expand_pairs"):
        _ = FilterInput(_cand(), _data(), reference="pair").positive_reference


def test_expand_pairs_one_row_per_positive_with_its_own_margin():
    pr = expand_pairs(_data(), _cand())
    assert pr.query_row.tolist() == [0, 0, 0, 1, 1]
    assert pr.positive_row.tolist() == [0, 1, 2, 3, 4]
    assert pr.data.queries.ids == ["q0\x1fd0", "q0\x1fd1", "q0\x1fd2", "q1\x1fd3", "q1\x1fd4"]
    assert pr.data.queries.texts == ["zero"] * 3 + ["one"] * 2
    assert [pr.data.positives.row(r).tolist() for r in range(5)] == [[0], [1], [2], [3], [4]]
    # every row excludes all of its query's known positives (other split included)
    assert [pr.data.exclude.row(r).tolist() for r in range(5)] == [[0, 1, 2]] * 3 + [[3, 4, 9]] * 2
    np.testing.assert_array_equal(pr.candidates.ids, np.array(CAND_IDS)[[0, 0, 0, 1, 1]])
    inp = FilterInput(pr.candidates, pr.data, reference="pair")
    np.testing.assert_array_equal(inp.positive_reference, np.array(POS_SCORES, np.float32))
    # relative margin 0.5 per pair: thresholds 0.25, -0.375, -1.5 (q0) and 0.375, 0.125 (q1), strict
    want = [[T, T, T, T], [F, F, T, T], [F, F, F, T], [F, F, T, T], [F, F, F, T]]
    np.testing.assert_array_equal(RelativeMargin(0.5).keep(inp), np.array(want))
    keep = ExcludePositives().keep(inp)
    assert not keep[3:, 3].any()  # d9, q1's other-split positive, is never a negative of its pair rows


def test_expand_pairs_keeps_a_query_without_positives_as_one_row():
    data = _data()
    pos = Qrels.from_pairs(3, np.array([0, 2]), np.array([0, 3]))
    data3 = MiningData(data.corpus, Queries(["q0", "q1", "q2"], ["a", "b", "c"]), pos, pos)
    ids = np.array([[5, 6], [5, 6], [5, 6]], np.int64)
    cand = Candidates(ids, np.zeros((3, 2), np.float32), np.ones((3, 2), np.uint8), ["t"],
                      np.array([0.5, 0.25], np.float32))
    pr = expand_pairs(data3, cand)
    assert pr.query_row.tolist() == [0, 1, 2]
    assert pr.positive_row.tolist() == [0, -1, 3]
    assert pr.data.queries.ids == ["q0\x1fd0", "q1", "q2\x1fd3"]
    np.testing.assert_array_equal(FilterInput(pr.candidates, pr.data, reference="pair").positive_reference,
                                  np.array([0.5, np.nan, 0.25], np.float32))
