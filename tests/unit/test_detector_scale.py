"""The detector's probability scale and the calibration's prior shift.

The calibration fits its detector on half of what the mining run's detector knows, so its
pseudo-hidden positives are rarer and its probabilities run lower: without a shift, a threshold
cut fewer candidates in the calibration than in the run (regression: NPL, dense MiniLM,
``fn<=0.05`` reached mean raw rank 7.4 in the calibration and 14.8 in the run, so the calibration
over-estimated HP-FNR 2-3x and chose a softer policy than needed, at rank 27 > 25).
"""

from __future__ import annotations

import numpy as np
import pytest
from test_detector import N_POS, N_Q, K, planted

from negmine.text import calibrate as C
from negmine.text.audit import hide_fraction, restrict
from negmine.text.detector import (
    Detector,
    expected_base_rate,
    hidden_counts,
    known_recall,
    prior_ratio,
    pseudo_hide,
    shift_prior,
)
from negmine.text.filters import ExcludePositives, FilterInput, FnMaxProb, expand_pairs
from negmine.text.samplers import Top
from negmine.text.types import Candidates

GRID = C.policy_grid(references=("min",), margins=(None,), samplers=("top",), thresholds=(None, 0.1, 0.05))


def test_shift_prior_multiplies_the_odds():
    p = np.array([[0.2, 0.0, 1.0, np.nan, 0.5]], np.float32)
    out = shift_prior(p, 2.0)
    # odds 0.25 -> 0.5, i.e. p' = 2 * 0.2 / (2 * 0.2 + 0.8) = 1/3; 0 and 1 stay; 0.5 -> 2/3
    np.testing.assert_allclose(out[0, [0, 1, 2, 4]], [1 / 3, 0.0, 1.0, 2 / 3], rtol=1e-6)
    assert np.isnan(out[0, 3]) and out.dtype == np.float32
    np.testing.assert_allclose(shift_prior(p, 1.0), p, rtol=1e-6)


def test_hidden_counts_are_what_pseudo_hide_hides():
    np.testing.assert_array_equal(hidden_counts(np.array([0, 1, 2, 3, 4, 5, 8])), [0, 0, 1, 2, 2, 2, 4])
    data, _ = planted(near=True)
    split = hide_fraction(data, 0.5, 3)  # 4 positives per query: pseudo-hides 2
    hid = pseudo_hide(split.visible, 0)
    per_q = np.bincount(split.visible.positives.query_of_pair()[hid], minlength=N_Q)
    np.testing.assert_array_equal(per_q, hidden_counts(split.visible.positives.counts()))


def test_expected_base_rate_by_hand():
    # query 0: 4 valid cells, 4 known positives (2 pseudo-hidden); query 1: one positive (not trained)
    ids = np.array([[1, 2, 3, 4], [5, 6, 7, -1]], np.int64)
    cand = Candidates(ids, np.zeros(ids.shape, np.float32), np.ones(ids.shape, np.uint8), ["x"],
                      np.zeros(5, np.float32))
    # recall 0.5: 2 * 0.5 pseudo-hidden among 4 - (4 - 2) * 0.5 = 3 labelled cells
    assert expected_base_rate(cand, np.array([4, 1]), 0.5) == pytest.approx(1.0 / 3.0)
    assert expected_base_rate(cand, np.array([1, 1]), 0.5) == 0.0
    assert prior_ratio(cand, np.array([4, 1]), np.array([1, 1]), 0.5) == 1.0  # nothing to shift from


@pytest.mark.extra("detect")
@pytest.mark.parametrize("near", [True, False])
def test_expected_base_rate_is_the_detectors_training_base_rate(near: bool):
    data, cand = planted(near=near)
    assert known_recall(data, cand) == 1.0  # every planted positive is in its list
    for d, c in [(data, cand), _half(data, cand)]:
        assert expected_base_rate(c, d.positives.counts(), 1.0) == pytest.approx(
            Detector().fit_predict(d, c, seed=0).stats["base_rate"], rel=1e-12)
    # 8 positives: 4 pseudo-hidden in K - 4 labelled cells; 4 positives: 2 in K - 2
    assert expected_base_rate(cand, data.positives.counts(), 1.0) == pytest.approx(4 / (K - N_POS + 4))


def _half(data, cand, seed: int = 3):
    split = hide_fraction(data, 0.5, seed)
    vis = split.visible
    return vis, restrict(cand, data.positives, vis.positives, len(data.corpus))


@pytest.mark.extra("detect")
def test_without_a_signal_the_shift_puts_the_calibrations_probabilities_on_the_runs_scale():
    # nothing relates hidden to visible positives: a probability is the prior, and the calibration's
    # detector (4 known positives per query) has half the prior of the run's (8 known)
    data, cand = planted(near=False)
    run = Detector().fit_predict(data, cand, seed=0).probability
    vis, vcand = _half(data, cand)
    cal = Detector().fit_predict(vis, vcand, seed=0).probability
    ratio = prior_ratio(vcand, data.positives.counts(), vis.positives.counts(), known_recall(vis, vcand))
    assert ratio == pytest.approx((4 / 46 / (42 / 46)) / (2 / 48 / (46 / 48)))
    n_docs = len(data.corpus)
    cells = np.arange(N_Q)[:, None] * n_docs + cand.ids
    other = ~np.isin(cells, data.positives.query_of_pair() * n_docs + data.positives.indices)
    m_run, m_cal = float(np.mean(run[other])), float(np.mean(cal[other]))
    m_shift = float(np.mean(shift_prior(cal, ratio)[other]))
    assert m_cal < 0.6 * m_run  # unshifted: about half the run's scale
    assert m_shift == pytest.approx(m_run, rel=0.1)


@pytest.mark.extra("detect")
def test_the_calibration_shifts_its_detector_to_the_runs_scale_and_records_it():
    data, cand = planted(near=True)
    cal = C.calibrate(data, cand, [ExcludePositives()], Top(), 5, 0, target_fnr=0.1, policies=GRID)
    rec = cal.record
    # 8 known positives per query, 4 visible to the calibration's own detector (2 pseudo-hidden)
    assert rec["detector"]["prior_shift"] == pytest.approx((4 / 46 / (42 / 46)) / (2 / 48 / (46 / 48)))
    assert rec["target_met"] and rec["chosen"]["fn_max_prob"] is not None


@pytest.mark.extra("detect")
def test_the_grid_offers_no_detector_threshold_on_pair_rows():
    # regression (SciFact, seed 1): the calibration chose "ref pair, no margin, top, fn<=0.04" from
    # query-level probabilities, but mining expands pair rows first; on them every row has one
    # positive, the detector fits nothing and keeps every cell, so the run mined naive top
    data, cand = planted(near=True)
    pr = expand_pairs(data, cand)
    inp = FilterInput(pr.candidates, pr.data, seed=0)
    assert FnMaxProb(0.05).keep(inp)[pr.candidates.ids >= 0].all()
    assert inp.matrices["fn-detector"].stats["fitted_folds"] == 0
    grid = C.policy_grid()
    assert not any(p.reference == "pair" and p.fn_max_prob is not None for p in grid)
    assert any(p.reference == "pair" for p in grid) and any(p.fn_max_prob is not None for p in grid)
    # the grid is the full product less the pair x threshold cells and the reference duplicates
    # that cannot differ (no margin, not simans-z, not pair): count them by the formula
    refs, margins, samplers, ts = C.REFERENCES, C.MARGINS, C.SAMPLERS, C.DETECTOR_THRESHOLDS
    free = sum(1 for m in margins for s in samplers if m is None and s != "simans-z")
    non_pair = [r for r in refs if r != "pair"]
    want = (len(non_pair) * len(margins) * len(samplers) - (len(non_pair) - 1) * free) * len(ts)
    want += len(margins) * len(samplers) * ("pair" in refs)
    assert len(grid) == want
