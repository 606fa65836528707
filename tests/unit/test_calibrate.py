"""Calibration as a policy search: the choice, the frontier, the note, cross-fitting, the default."""

from __future__ import annotations

import numpy as np
import pytest
from test_detector import N_Q, planted

from negmine import calibrate as C
from negmine.audit import cluster_wilson, hide_fraction, restrict, wilson
from negmine.detector import fold_of
from negmine.errors import ConfigError
from negmine.filters import ExcludePositives, FnMaxProb, RankWindow, RelativeMargin
from negmine.samplers import Top
from negmine.types import MiningData, Qrels

GRID = C.policy_grid(references=("min", "max", "pair"), margins=(None, 0.0), samplers=("top", "simans-z"),
                     thresholds=(None, 0.1, 0.05))


def test_grid_has_no_policies_that_cannot_differ():
    labels = [p.label() for p in GRID]
    assert len(labels) == len(set(labels))
    # without a margin and with top, the reference is irrelevant unless rows are pairs
    assert not any(p.reference == "max" and p.margin is None and p.sampler == "top" for p in GRID)
    assert any(p.reference == "pair" and p.margin is None and p.sampler == "top" for p in GRID)


def test_calibration_finds_a_detector_policy_when_positives_point_at_each_other():
    data, cand = planted(near=True)
    cal = C.calibrate(data, cand, [ExcludePositives(), RelativeMargin(0.3)], Top(), 5, 0, target_fnr=0.1,
                      policies=GRID)
    rec = cal.record
    assert rec["target_met"] and rec["note"].startswith("calibrated to HP-FNR <= 0.1")
    assert rec["chosen"]["fn_max_prob"] is not None  # without the detector nothing qualifies here
    assert rec["chosen"]["hp_fnr_ci95"][1] <= 0.1 and rec["chosen"]["coverage"] >= 0.9
    assert len(rec["frontier"]) == len(GRID) and any(r["pareto"] for r in rec["frontier"])
    no_det = [r for r in rec["frontier"] if r["fn_max_prob"] is None and r["coverage"] >= 0.9]
    assert all(r["hp_fnr_ci95"][1] > 0.1 for r in no_det)
    # the user's margin is replaced, the detector filter added, ExcludePositives first
    assert isinstance(cal.filters[0], ExcludePositives)
    assert not any(isinstance(f, RelativeMargin) and f.value == 0.3 for f in cal.filters)
    assert isinstance(cal.filters[-1], FnMaxProb) and cal.filters[-1].value == rec["chosen"]["fn_max_prob"]
    assert cal.reference == rec["chosen"]["positive_reference"]
    assert rec["crossfit"]["folds"] == C.CROSSFIT_FOLDS and rec["crossfit"]["queries"] == N_Q
    assert rec["detector"]["heldout_auc"] > 0.9


def test_without_a_signal_no_policy_meets_a_strict_target_and_the_interval_is_wide():
    data, cand = planted(near=False)
    cal = C.calibrate(data, cand, [ExcludePositives()], Top(), 5, 0, target_fnr=0.02, policies=GRID)
    rec = cal.record
    assert not rec["target_met"]
    assert rec["note"].startswith("no policy meets the target") and "closest is" in rec["note"]
    assert "\n" not in rec["note"]
    lo, hi = rec["crossfit"]["hp_fnr_ci95"]
    # 4 of the 46 candidates that are not visible positives are hidden ones; extrapolated to as many
    # unknown positives as known ones (8 known, 4 hidden: hits x 2)
    base = 2 * 4 / 46
    assert lo < base < hi and hi - lo > 0.05
    assert rec["detector"]["heldout_auc"] < 0.65


def test_user_filters_other_than_margins_stay_in_every_policy():
    data, cand = planted(near=True)
    window = RankWindow(0, 20)
    cal = C.calibrate(data, cand, [ExcludePositives(), window], Top(), 5, 0, target_fnr=0.1, policies=GRID[:4])
    assert window in cal.filters
    assert all(r["mean_rank"] < 20 for r in cal.record["frontier"])


def _split(data: MiningData, cand, seed: int = 0):
    split = hide_fraction(data, 0.5, seed)
    vis = split.visible
    return vis, restrict(cand, data.positives, vis.positives, len(data.corpus)), split.hidden


def test_crossfit_never_uses_a_querys_hidden_positives_to_choose_its_own_policy():
    data, cand = planted(near=True)
    vis, vcand, hidden = _split(data, cand)
    folds = fold_of(data, C.CROSSFIT_FOLDS, 11)
    audited = hidden.counts() > 0
    base = [ExcludePositives()]
    stats, _ = C.evaluate_policies(vis, vcand, hidden, GRID, base, 5, 0)
    before = C.crossfit_choices(stats, folds, audited, 0.1, 0.9)
    # poison fold 0: its hidden positives become its top 8 candidates, which hard policies pick
    f0 = folds == 0
    assert f0.any()
    q = hidden.query_of_pair()
    poisoned = Qrels.from_pairs(
        N_Q, np.concatenate([q[~f0[q]], np.repeat(np.flatnonzero(f0), 8)]),
        np.concatenate([hidden.indices[~f0[q]], vcand.ids[f0][:, :8].ravel()]))
    stats2, _ = C.evaluate_policies(vis, vcand, poisoned, GRID, base, 5, 0)
    assert not np.array_equal(stats[:, 0, f0], stats2[:, 0, f0])  # fold 0's hit counts did change
    np.testing.assert_array_equal(stats[:, 1:], stats2[:, 1:])  # the mining itself never reads labels
    after = C.crossfit_choices(stats2, folds, audited, 0.1, 0.9)
    assert before[0] is not None and after[0] == before[0]  # fold 0's choice comes from the other folds only
    # the poison is strong: a choice that did look at fold 0 (the whole-data one) moves
    whole = C._pick([C.summarise(s, audited) for s in stats], 0.1, 0.9)
    whole2 = C._pick([C.summarise(s, audited) for s in stats2], 0.1, 0.9)
    assert whole != whole2


def test_crossfit_choice_of_a_fold_ignores_that_folds_stats():
    # two policies: 0 is harder (rank 1) but unsafe on fold 1's queries only; 1 is safe (rank 9)
    n_q = 10
    folds = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    elig = np.ones(n_q, bool)
    stats = np.zeros((2, 5, n_q))
    stats[:, 1] = 100  # negatives
    stats[:, 2] = stats[:, 3] = 1  # full rows / rows
    stats[0, 4], stats[1, 4] = 100, 900  # rank sums -> mean ranks 1 and 9
    stats[0, 0, folds == 1] = 50  # policy 0 puts hidden positives in fold 1's negatives
    ch = C.crossfit_choices(stats, folds, elig, 0.1, 0.9)
    assert ch == [1, 0]  # fold 0 is told by fold 1 that policy 0 is unsafe; fold 1 only sees fold 0
    whole = C._pick([C.summarise(s, elig) for s in stats], 0.1, 0.9)
    assert whole == (1, True)


def test_target_and_coverage_are_checked():
    data, cand = planted(near=True)
    with pytest.raises(ConfigError, match="target FNR"):
        C.calibrate(data, cand, [], Top(), 5, 0, target_fnr=1.5, policies=GRID)
    with pytest.raises(ConfigError, match="min coverage"):
        C.calibrate(data, cand, [], Top(), 5, 0, target_fnr=0.1, min_coverage=2.0, policies=GRID)
    one = Qrels.from_pairs(N_Q, np.arange(N_Q), data.positives.indices[:: 8])
    single = MiningData(data.corpus, data.queries, one, one)
    with pytest.raises(ConfigError, match="two or more positives"):
        C.calibrate(single, restrict(cand, data.positives, one, len(data.corpus)), [], Top(), 5, 0,
                    target_fnr=0.1, policies=GRID)


def test_default_policy_threshold():
    data, _ = planted(near=True)  # 40 queries with 8 positives
    d = C.default_policy(data)
    assert d["calibrate"] and d["target_fnr"] == C.DEFAULT_TARGET_FNR and d["fnr_measured"]
    keep = np.isin(data.positives.query_of_pair(), np.arange(C.MIN_CALIBRATION_QUERIES - 1))
    q = data.positives.query_of_pair()
    first = np.r_[True, q[1:] != q[:-1]]
    few = Qrels.from_pairs(N_Q, q[keep | first], data.positives.indices[keep | first])
    d = C.default_policy(MiningData(data.corpus, data.queries, few, few))
    # most queries still have several positives, too few to calibrate on: the margin below the highest
    assert not d["calibrate"] and not d["fnr_measured"] and d["options"] == C.PRESET_SEVERAL_POSITIVES
    assert d["options"]["positive_reference"] == "max" and d["preset"] == "several positives"
    assert "not measured" in d["reason"] and d["calibration_queries"] == C.MIN_CALIBRATION_QUERIES - 1


def _with_single_positive_queries(data: MiningData, extra: int) -> MiningData:
    """``data`` plus ``extra`` queries with one positive each (the first ``extra`` documents)."""
    from negmine.types import Queries

    n_q = len(data.queries)
    ids = [*data.queries.ids, *(f"single{i}" for i in range(extra))]
    texts = [*data.queries.texts, *(f"single query {i}" for i in range(extra))]
    q = np.r_[data.positives.query_of_pair(), np.arange(n_q, n_q + extra)]
    d = np.r_[data.positives.indices, np.arange(extra)]
    pos = Qrels.from_pairs(n_q + extra, q, d)
    return MiningData(data.corpus, Queries(ids, texts), pos, pos)


def test_default_policy_needs_multi_positive_queries_to_be_the_majority():
    data, _ = planted(near=True)  # 40 queries with 8 positives: >= 30, and all of them
    n = len(data.queries)
    # as many single-positive queries again: exactly half have several positives -> calibrate
    d = C.default_policy(_with_single_positive_queries(data, n))
    assert d["calibrate"] and (d["calibration_queries"], d["queries_with_positives"]) == (n, 2 * n)
    # one more single-positive query: a minority -> the preset, and the reason says why
    d = C.default_policy(_with_single_positive_queries(data, n + 1))
    assert not d["calibrate"] and d["options"] == C.PRESET_ONE_POSITIVE and not d["fnr_measured"]
    assert d["options"]["positive_reference"] == "min" and d["preset"] == "one positive"
    assert f"only {n} of {2 * n + 1} queries" in d["reason"] and f"the {n + 1} with one" in d["reason"]
    assert "not measured" in d["reason"]


def test_cluster_wilson_widens_with_clustered_hits():
    # 10 queries x 10 negatives, 10 hits: spread one per query (binomial-like) vs all in one query
    spread = cluster_wilson(np.ones(10), np.full(10, 10))
    clustered = cluster_wilson(np.r_[10, np.zeros(9)], np.full(10, 10))
    np.testing.assert_allclose(spread, wilson(10, 100))  # deff < 1 is clipped to 1
    assert clustered[0] < spread[0] and clustered[1] > spread[1]
    assert cluster_wilson(np.zeros(3), np.full(3, 5)) == wilson(0, 15)


def test_pair_policies_are_left_out_beyond_the_cell_budget(monkeypatch: pytest.MonkeyPatch):
    """The default grid's pair rows cost (visible positives) x (candidates) cells; beyond
    ``MAX_PAIR_CELLS`` the search leaves them out and says so, and the other policies are scored
    exactly as with them."""
    data, cand = planted(near=True)
    full = C.calibrate(data, cand, [], Top(), 5, 0, target_fnr=0.1)
    assert full.record["pair_policies"] is None
    assert any(r["positive_reference"] == "pair" for r in full.record["frontier"])
    monkeypatch.setattr(C, "MAX_PAIR_CELLS", 10)
    capped = C.calibrate(data, cand, [], Top(), 5, 0, target_fnr=0.1)
    assert "pair policies left out" in capped.record["pair_policies"] and "exceed 10" in capped.record["pair_policies"]
    assert not any(r["positive_reference"] == "pair" for r in capped.record["frontier"])
    others = {r["policy"]: r for r in full.record["frontier"] if r["positive_reference"] != "pair"}
    assert {r["policy"]: r["hp_fnr"] for r in capped.record["frontier"]} == {k: r["hp_fnr"] for k, r in others.items()}
