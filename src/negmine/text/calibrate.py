"""Calibration: choose the mining policy from the data's own known positives.

(One concern, slightly over 400 lines: the search, its record and the default policy; the policy
grid and its measurement are in :mod:`negmine.text.calibrate_policies`.)

:func:`calibrate` is what :func:`negmine.mine` calls when ``target_fnr`` is given. On the already
retrieved candidates it hides a seeded half of the known positives of every query with two or
more, mines with every *policy* of a grid — positive reference (``min | mean | max | pair``) ×
relative margin × sampler × false-negative-detector threshold — and measures each policy's
hidden-positive false-negative rate (HP-FNR, with a query-clustered 95% Wilson interval:
:func:`negmine.text.audit.cluster_wilson`), its coverage (share of rows that get all their negatives)
and its hardness (mean raw rank of the negatives, lower is harder). The whole table is the
*frontier* in ``record["frontier"]``.

Extrapolation: the calibration can hide only part of what is known (half), while the mining run
faces every unknown positive; hits grow with the number of unknown positives, so each query's hit
count is scaled by ``unknown_ratio × known / hidden`` (``unknown_ratio = 1``: as many unknown
positives as known ones, the protocol of the issue's audits). Without it, a calibration on NPL
judged naive top-5 safe (0.07) while the audit measured 0.24.

The detector's scale: the calibration's detector is fitted on the calibration's visible half,
so it knows half as many positives per query as the mining run's detector and pseudo-hides half
as many; its training base rate, and with it every probability, runs lower. Unshifted, a
threshold ``fn<=t`` cut fewer candidates in the calibration than in the run (NPL, dense MiniLM:
``fn<=0.05`` reached mean raw rank 7.4 in the calibration and 14.8 in the run), so the calibration
measured each threshold on a softer filter than the run applies, over-estimated HP-FNR 2-3x and
chose a stricter threshold than needed. The calibration's probabilities are therefore moved to the
run's scale by a prior shift (Saerens, Latinne & Decaestecker, 2002): their odds are multiplied by
the odds ratio of the two detectors' expected training base rates
(:func:`negmine.text.detector.prior_ratio`), computed from the number of known positives per query
(all known, as the run's detector will see them, against the calibration's visible ones), the
list lengths and the share of known positives retrieved — counts only, never which positives are
hidden. It corrects the prior, not the sharper features of a detector that knows more positives,
so the estimate stays somewhat conservative where the detector is strong.

Missingness. Hiding known positives at random assumes the unknown ones look like a random sample
of the known; real labels go missing where the labelling pool did not look. So each policy is
measured under two pseudo-hiding mechanisms inside the known positives (``mechanisms``):
``random`` (a seeded half of each query's positives) and ``pool`` (the half that a *second view*,
a scorer other than the miner, ranks lowest among the query's positives:
:func:`negmine.text.detector.second_view`, BM25 of the candidates for a dense miner, an LSA cosine
otherwise — rank-based, so it keys on no pool depth). Each mechanism has its own detector, fitted
on its own visible half. A policy qualifies only if it meets the target under both
(:func:`worst_of`); ``record["estimates"]`` holds both estimates with their intervals,
``record["decided_by"]`` the mechanism whose upper bound bound the choice, and the headline
interval (``crossfit["hp_fnr_ci95"]``, ``estimated_hp_fnr_ci95``) spans both mechanisms' cross-fitted
intervals: the calibration cannot tell which mechanism lost the labels.

Judged. When the known positives look pooled by a ranking like the miner's own
(:func:`negmine.text.holdout.pool_signature`, ``by == "miner"``), the labellers were shown the top
of each list and chose among it: the candidates there that are not known positives were seen and
not chosen. The run then keeps every candidate above the depth that holds 90% of the known
positives (:func:`negmine.text.holdout.judged_depth`) whatever the chosen policy says, guards the
rest with the policy (:class:`~negmine.text.filters.JudgedOr`) and takes the hardest first
(``top``); ``record["judged"]`` says so. Pseudo-hidden known positives cannot measure this (every
known positive lies inside the pool), so the estimate stays the policy's, with the interval's low
end at 0. Pooled by a lexical second view (a dense miner), the pool is located in the corpus by the
lexical system closest to it (:func:`negmine.text.detector_views.judged_by_lexical_pool`) and its
judged candidates fill each query first, the same way (:mod:`negmine.text.calibrate_pools`).

Choice: the hardest policy (lowest mean raw rank) whose **upper** 95% bound is at most the target
under every mechanism and whose coverage is at least ``min_coverage``. When none qualifies, the closest one (the least
relative violation of the two bounds) is used and ``record["note"]`` says so in one line.

Cross-fitting. Choosing on the same hidden positives that then measure the choice is optimistic
(the winner's curse). So the calibration queries are split into ``CROSSFIT_FOLDS`` folds by a
hash of ``(seed, query id)``; for each fold, a policy is chosen from the *other* folds only and
measured on this fold's hidden positives. ``record["crossfit"]`` is that honest estimate of the
selection procedure (and ``estimated_hp_fnr``): no query's hidden positives ever choose the policy
that is scored on them. The detector inside the policies is cross-fitted too
(:mod:`negmine.text.detector`), and never sees the hidden half.

:func:`default_policy` is the default of ``negmine mine`` without explicit filter or sampler
options: calibrate to ``DEFAULT_TARGET_FNR`` with ``DEFAULT_MIN_COVERAGE`` when the data has at
least ``MIN_CALIBRATION_QUERIES`` queries with two or more positives and they are at least
``MIN_CALIBRATION_SHARE`` of the queries with positives; otherwise ``PRESET_ONE_POSITIVE`` when most
queries have one positive, ``PRESET_SEVERAL_POSITIVES`` when they have several but are too few.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from negmine.core.errors import ConfigError
from negmine.core.keys import CALIBRATION_SALT
from negmine.text.calibrate_policies import (
    DETECTOR_THRESHOLDS,
    MARGINS,
    REFERENCES,
    SAMPLERS,
    Policy,
    _summary,
    crossfit_choices,
    evaluate_policies,
    make_sampler,
    policy_grid,
    summarise,
    worst_of,
)
from negmine.text.calibrate_policies import _pick as _pick  # re-exported: tests read it here
from negmine.text.calibrate_policies import summaries as summarise_all
from negmine.text.calibrate_pools import bounded_by_signature as _bounded_by_signature  # tests read it here
from negmine.text.calibrate_pools import judged_rule
from negmine.text.calibrate_pools import pooled_note as _pooled_note  # tests read it here
from negmine.text.filters import AbsoluteMargin, ExcludePositives, Filter, FnMaxProb, JudgedOr, RelativeMargin
from negmine.text.holdout import pool_signature
from negmine.text.samplers import Sampler
from negmine.text.types import Candidates, MiningData

# the policy grid and its measurement live in calibrate_policies; their names stay importable from here
__all__ = ["DEFAULT_MIN_COVERAGE", "DEFAULT_TARGET_FNR", "DETECTOR_THRESHOLDS", "MARGINS", "MECHANISMS",
           "MIN_CALIBRATION_QUERIES", "MIN_CALIBRATION_SHARE", "PRESET_ONE_POSITIVE", "PRESET_SEVERAL_POSITIVES",
           "REFERENCES", "SAMPLERS", "Calibration", "Policy", "calibrate", "calibration_splits", "crossfit_choices",
           "default_policy", "evaluate_policies", "make_sampler", "policy_grid", "summarise", "worst_of"]

DEFAULT_TARGET_FNR = 0.10
DEFAULT_MIN_COVERAGE = 0.90
#: queries with two or more positives needed to calibrate (below it: the preset)
MIN_CALIBRATION_QUERIES = 30
#: ... and the share of the queries with positives they must make up (below it: the preset). The
#: calibration measures HP-FNR only on queries with two or more positives; when they are a minority
#: (SciFact train: 77 of 809), the policy chosen on them is extrapolated to a majority annotated
#: differently (one cited abstract per claim), and on SciFact it trained worse than the preset
#: (docs/EXPERIMENTS.md). Where they are the majority (Cranfield, NPL: 76-94% under the audit
#: protocol), the calibrated policy also beats the preset on the single-positive queries
#: (docs/QUALITY.md, section 5).
MIN_CALIBRATION_SHARE = 0.5
CROSSFIT_FOLDS = 5
#: the default grid's ``pair`` policies expand every (query, positive) into a row of the query's
#: candidates; beyond this many cells (about 0.6 GB of row arrays) they are left out of the search
#: and the record says so (50 queries x 1,000 positives x 1,105 candidates are 55M cells)
MAX_PAIR_CELLS = 20_000_000
HIDE_FRACTION = 0.5

#: how the calibration hides known positives to measure each policy (module doc, "Missingness")
MECHANISMS = ("random", "pool")

#: the preset when most queries with positives have one (SciFact, MS MARCO): relative margin 0.05
#: below the query's *lowest* known positive, top — NV-Retriever's TopK-PercPos 95% rule held against
#: every known positive. The best trained SciFact row over three seeds (docs/EXPERIMENTS.md: nDCG@10
#: 0.6688); the same margin below the *highest* positive trained 0.6617 (paired p = 0.09: a trend,
#: with a reason — on the 77 queries with several positives it accepts negatives that outscore a
#: known positive). Its coverage cost (a lowest positive deep in the list leaves little below it)
#: falls on the minority with several positives.
PRESET_ONE_POSITIVE: dict[str, Any] = {"positive_reference": "min", "relative_margin": 0.05, "sampler": "top"}
#: the preset when most queries have several positives but too few to calibrate on: the margin
#: below the *highest* positive, which keeps coverage (below the lowest one, 6-50% of queries kept
#: their 5 negatives on NPL/Cranfield). Its false-negative rate is not measured by the run
#: (docs/QUALITY.md measures it on NPL/Cranfield: 0.10-0.19; the calibrated default: 0.03-0.05).
PRESET_SEVERAL_POSITIVES: dict[str, Any] = {"positive_reference": "max", "relative_margin": 0.05, "sampler": "top"}


@dataclass
class Calibration:
    """The chosen policy: ``filters`` (``ExcludePositives`` first) and ``sampler`` to mine with,
    ``reference`` (``pair``: expand rows with :func:`negmine.text.filters.expand_pairs`), and ``record``
    (target, choice, cross-fitted estimate, the frontier, the note) for the report and manifest."""

    filters: list[Filter]
    sampler: Sampler
    record: dict[str, Any] = field(default_factory=dict)
    reference: str = "min"


def calibration_splits(data: MiningData, cand: Candidates, seed: int, mechanisms: Sequence[str],
                       doc_embeddings: np.ndarray | None = None, view: Any = None) -> dict[str, Any]:
    """The calibration's hidden halves, one per mechanism (module doc, "Missingness"): ``random``
    hides a seeded half of every query's known positives, ``pool`` the half that the second view
    (:func:`negmine.text.detector.second_view`: BM25 of the candidates for a dense miner, an LSA cosine
    otherwise) ranks lowest among them. Both salted apart from the audit's own split."""
    from negmine.text.detector import pool_merit, pseudo_hide, second_view
    from negmine.text.holdout import hide_fraction, make_split

    out: dict[str, Any] = {}
    for mech in mechanisms:
        if mech == "random":
            out[mech] = hide_fraction(data, HIDE_FRACTION, seed ^ CALIBRATION_SALT)
        elif mech == "pool":
            view = view if view is not None else second_view(data, cand, None, doc_embeddings)
            merit = pool_merit(data, cand.positive_scores, view.positives, "view")
            hide = pseudo_hide(data, seed ^ CALIBRATION_SALT, HIDE_FRACTION, merit=merit)
            out[mech] = make_split(data, hide)
        else:
            raise ConfigError(f"unknown calibration mechanism {mech!r}; pick random or pool")
    return out


def calibrate(data: MiningData, cand: Candidates, filters: Sequence[Filter], sampler: Sampler,
              num_negatives: int, seed: int, *, target_fnr: float, min_coverage: float | None = None,
              samplers: Sequence[str] | None = None, policies: Sequence[Policy] | None = None,
              doc_embeddings: np.ndarray | None = None, detector: Any = None,
              unknown_ratio: float = 1.0, mechanisms: Sequence[str] = MECHANISMS) -> Calibration:
    """Search the policy grid for the hardest policy meeting ``target_fnr`` (module doc).

    ``filters`` are the user's (``ExcludePositives`` first); their margin filters are replaced by
    the search's, the others (rank window, max score, ...) stay in every policy. The samplers
    searched are ``samplers`` (labels of :func:`make_sampler`; default all), not ``sampler``: to
    keep a user's explicit sampler, pass ``policies`` built with it. ``doc_embeddings`` (dense
    retrievers) add the detector's dense document-document features. ``unknown_ratio``: the
    unknown positives assumed per known positive in the mining run (1: as many as are known, the
    protocol of the issue's audits); the calibration's hit counts are scaled by ``unknown_ratio ×
    known / hidden`` per query, because it can only hide part of what it knows. ``mechanisms``:
    how the calibration hides known positives (``random``, ``pool``); a policy qualifies only if
    it meets the target under every one of them.
    """
    from negmine.text.detector import Detector, _tfidf, second_view

    min_cov, mechanisms = _checked(data, target_fnr, min_coverage, unknown_ratio, mechanisms)
    base = [f for f in filters if not isinstance(f, (RelativeMargin, AbsoluteMargin, FnMaxProb))]
    if not base or not isinstance(base[0], ExcludePositives):
        base = [ExcludePositives(), *base]
    grid = list(policies) if policies is not None else policy_grid(samplers=samplers or SAMPLERS)
    needs_detector = any(p.fn_max_prob is not None for p in grid)
    # the run's spaces, computed once: the pool-like split, every calibration detector and the
    # run's own detector read the same TF-IDF and second view
    tfidf = _tfidf(data, cand) if needs_detector or "pool" in mechanisms else None
    view = second_view(data, cand, tfidf, doc_embeddings) if tfidf is not None else None
    splits = calibration_splits(data, cand, seed, mechanisms, doc_embeddings, view)
    signature = pool_signature(data, cand, None if view is None else view.cells,
                               None if view is None else view.positives)
    first = splits[mechanisms[0]]
    pair_note = None
    pair_cells = int(first.visible.positives.counts().sum()) * int(cand.ids.shape[1])
    if policies is None and pair_cells > MAX_PAIR_CELLS:
        grid = [p for p in grid if p.reference != "pair"]
        pair_note = (f"pair policies left out: {pair_cells:,} cells (one row per query and visible positive) "
                     f"exceed {MAX_PAIR_CELLS:,}")
    det = detector if detector is not None else Detector()
    per_stats, det_stats, audited = _measure(data, cand, splits, mechanisms, grid, base, num_negatives, seed,
                                             det if needs_detector else None, doc_embeddings, tfidf, view,
                                             unknown_ratio)
    per_summaries = [summarise_all(st, audited) for st in per_stats]
    summaries = worst_of(per_summaries)
    idx, met = _pick(summaries, target_fnr, min_cov)
    crossfits, crossfit = _crossfit(data, seed, per_stats, audited, grid, mechanisms, target_fnr, min_cov)
    frontier = _frontier(grid, summaries, per_summaries, mechanisms, target_fnr, min_cov)
    chosen = grid[idx]
    ch = {k: v for k, v in summaries[idx].items() if k != "decided_by"}
    decided = mechanisms[summaries[idx]["decided_by"]]
    estimates = {m: {"chosen": {k: ps[idx][k] for k in ("hp_fnr", "hp_fnr_ci95", "coverage", "mean_rank")},
                     "crossfit": {k: c[k] for k in ("hp_fnr", "hp_fnr_ci95", "coverage", "mean_rank")}}
                 for m, ps, c in zip(mechanisms, per_summaries, crossfits)}
    # pooled: the candidates the labellers saw and did not choose come first (module doc, "Judged")
    judged = judged_rule(data, cand, signature, view, chosen.reference)
    crossfit = _bounded_by_signature(crossfit, signature, judged is not None and judged.cells is not None)
    depth, stand_in = (judged.depth, judged.stand_in) if judged is not None else (None, None)
    record = {
        "method": "policy-search", "target_fnr": target_fnr, "min_coverage": min_cov, "target_met": met,
        "note": (_note(chosen, ch, decided, mechanisms, crossfits, target_fnr, min_cov, met)
                 + _pooled_note(signature, unknown_ratio, depth, stand_in)),
        "judged": None if judged is None else judged.record,
        "pool_signature": signature,
        "chosen": {"policy": chosen.label(), **chosen.as_dict(), **ch},
        "mechanisms": list(mechanisms), "decided_by": decided, "estimates": estimates,
        "crossfit": crossfit, "calibration_queries": int(audited.sum()),
        "hidden_positives": int(first.hidden.counts().sum()), "hide_fraction": HIDE_FRACTION,
        "unknown_ratio": unknown_ratio,
        "policies": len(grid), "frontier": frontier, "detector": det_stats, "pair_policies": pair_note,
        # the keys of the margin-only calibration, for readers of older reports
        "chosen_relative_margin": chosen.margin, "estimated_hp_fnr": crossfit["hp_fnr"],
        "estimated_hp_fnr_ci95": crossfit["hp_fnr_ci95"],
        "curve": [{"relative_margin": r["relative_margin"], "hp_fnr": r["hp_fnr"], "hp_fnr_ci95": r["hp_fnr_ci95"],
                   "coverage": r["coverage"], "mean_rank": r["mean_rank"]} for r in frontier
                  if r["relative_margin"] is not None and r["positive_reference"] == chosen.reference
                  and r["sampler"] == chosen.sampler and r["fn_max_prob"] == chosen.fn_max_prob],
    }
    final: list[Filter] = list(base)
    if chosen.margin is not None:
        final.append(RelativeMargin(chosen.margin, reference=None if chosen.reference == "pair" else chosen.reference))
    if chosen.fn_max_prob is not None:
        final.append(FnMaxProb(chosen.fn_max_prob, detector=det))
    if judged is not None:  # a lexical pool's cells fill each query up to its negatives first
        judged_or = JudgedOr(judged.depth, final[len(base):], judged=judged.cells,
                             enough=None if judged.cells is None else num_negatives)
        return Calibration([*base, judged_or], make_sampler("top"), record, reference=chosen.reference)
    return Calibration(final, make_sampler(chosen.sampler), record, reference=chosen.reference)


def _checked(data: MiningData, target_fnr: float, min_coverage: float | None, unknown_ratio: float,
             mechanisms: Sequence[str]) -> tuple[float, tuple[str, ...]]:
    """``(min coverage, mechanisms)`` of :func:`calibrate`'s arguments, refused when out of range
    or when no query has two or more positives to calibrate on."""
    if not 0 <= target_fnr < 1:
        raise ConfigError(f"target FNR must be in [0, 1), got {target_fnr}; e.g. --target-fnr 0.1")
    min_cov = DEFAULT_MIN_COVERAGE if min_coverage is None else float(min_coverage)
    if not unknown_ratio > 0 or not np.isfinite(unknown_ratio):
        raise ConfigError(f"unknown_ratio must be a finite number > 0, got {unknown_ratio}")
    if not 0 <= min_cov <= 1:
        raise ConfigError(f"min coverage must be in [0, 1], got {min_coverage}; e.g. --min-coverage 0.9")
    mechanisms = tuple(mechanisms)
    if not mechanisms or any(m not in MECHANISMS for m in mechanisms):
        raise ConfigError(f"calibration mechanisms must be among {', '.join(MECHANISMS)}, got {mechanisms!r}")
    eligible = data.positives.counts() >= 2
    if not eligible.any():
        raise ConfigError("--target-fnr needs queries with two or more positives to calibrate on; none found "
                          "(mine without --target-fnr, or add qrels with several positives per query)")
    return min_cov, mechanisms


def _measure(data: MiningData, cand: Candidates, splits: dict[str, Any], mechanisms: Sequence[str],
             grid: Sequence[Policy], base: Sequence[Filter], num_negatives: int, seed: int, det: Any,
             doc_embeddings: np.ndarray | None, tfidf: Any, view: Any,
             unknown_ratio: float) -> tuple[list[np.ndarray], dict[str, Any], np.ndarray]:
    """Every policy of ``grid`` under every mechanism's split: ``(per mechanism float64[n_policies,
    5, n_queries] counts with the hits extrapolated to the mining run, the detector's stats, the
    queries audited under every mechanism)``. ``det``: the detector (``None``: no threshold in the
    grid), fitted per mechanism on its visible half, its probabilities shifted to the run's scale."""
    from negmine.text.detector import known_recall, prior_ratio, shift_prior
    from negmine.text.holdout import restrict

    audited = splits[mechanisms[0]].hidden.counts() > 0
    per_stats: list[np.ndarray] = []
    det_stats: dict[str, Any] = {}
    for mech in mechanisms:
        split = splits[mech]
        vis = split.visible
        vcand = restrict(cand, data.positives, vis.positives, len(data.corpus))
        fn_prob = None
        if det is not None:
            # the mining run's detector will know more positives per query than this one, so its
            # probabilities run higher: shift these to its scale, or a threshold means less here than
            # there (module doc, "The detector's scale")
            found = det.fit_predict(vis, vcand, seed=seed, doc_embeddings=doc_embeddings, tfidf=tfidf,
                                    view=None if view is None else view.restrict(data.positives, vis.positives,
                                                                                len(data.corpus)))
            ratio = prior_ratio(vcand, data.positives.counts(), vis.positives.counts(), known_recall(vis, vcand))
            fn_prob = shift_prior(found.probability, ratio)
            if not det_stats:
                det_stats = {**found.stats, "prior_shift": ratio}
            det_stats.setdefault("by_mechanism", {})[mech] = {
                "heldout_auc": found.stats.get("heldout_auc"), "prior_shift": ratio,
                "heldout_auc_by_mechanism": found.stats.get("heldout_auc_by_mechanism")}
        stats, _ = evaluate_policies(vis, vcand, split.hidden, grid, base, num_negatives, seed,
                                     doc_embeddings=doc_embeddings, fn_probability=fn_prob)
        audited_m = split.hidden.counts() > 0
        # extrapolate to the mining run: ``unknown_ratio`` unknown positives per known one, where the
        # calibration only hid half of what it knows (hits scale with the number of unknown positives)
        weight = np.where(audited_m, unknown_ratio * data.positives.counts() / np.maximum(split.hidden.counts(), 1),
                          0.0)
        stats[:, 0, :] = np.minimum(stats[:, 0, :] * weight[None, :], stats[:, 1, :])
        per_stats.append(stats)
        audited &= audited_m
    return per_stats, det_stats, audited


def _crossfit(data: MiningData, seed: int, per_stats: list[np.ndarray], audited: np.ndarray,
              grid: Sequence[Policy], mechanisms: Sequence[str], target_fnr: float,
              min_cov: float) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The cross-fitted estimate of the selection (module doc, "Cross-fitting"): per mechanism, and
    the headline one (the worst mechanism's figures, the interval spanning both)."""
    from negmine.text.detector import fold_of

    n_q = len(data.queries)
    folds = fold_of(data, CROSSFIT_FOLDS, seed ^ 0xCF)
    choices = crossfit_choices(per_stats, folds, audited, target_fnr, min_cov)
    crossfits = []
    for st in per_stats:
        cf = np.zeros((5, n_q))
        for f, c in enumerate(choices):
            if c is not None:
                m = audited & (folds == f)
                cf[:, m] = st[c][:, m]
        crossfits.append(_summary(cf, audited))
    cf_worst = max(range(len(mechanisms)), key=lambda i: np.nan_to_num(crossfits[i]["hp_fnr"], nan=1.0))
    crossfit = dict(crossfits[cf_worst])
    # the interval spans both assumptions: the calibration cannot tell which mechanism lost the labels
    crossfit["hp_fnr_ci95"] = [min(c["hp_fnr_ci95"][0] for c in crossfits), max(c["hp_fnr_ci95"][1] for c in crossfits)]
    crossfit.update(folds=CROSSFIT_FOLDS, fold_choices=[None if c is None else grid[c].label() for c in choices],
                    decided_by=mechanisms[cf_worst],
                    by_mechanism={m: c for m, c in zip(mechanisms, crossfits)})
    return crossfits, crossfit


def _frontier(grid: Sequence[Policy], summaries: list[dict[str, Any]], per_summaries: list[list[dict[str, Any]]],
              mechanisms: Sequence[str], target_fnr: float, min_cov: float) -> list[dict[str, Any]]:
    """One row per policy: its worst-of-mechanisms summary, each mechanism's, whether it is on the
    Pareto front (upper bound, coverage, mean rank) and whether it meets the target."""
    frontier = []
    for i, (p, s) in enumerate(zip(grid, summaries)):
        dominated = any(o["hp_fnr_ci95"][1] <= s["hp_fnr_ci95"][1] and o["coverage"] >= s["coverage"]
                        and o["mean_rank"] <= s["mean_rank"] and o is not s and
                        (o["hp_fnr_ci95"][1], -o["coverage"], o["mean_rank"]) !=
                        (s["hp_fnr_ci95"][1], -s["coverage"], s["mean_rank"]) for o in summaries)
        by_mech = {m: {k: ps[i][k] for k in ("hp_fnr", "hp_fnr_ci95", "coverage", "mean_rank")}
                   for m, ps in zip(mechanisms, per_summaries)}
        frontier.append({"policy": p.label(), **p.as_dict(), **{k: v for k, v in s.items() if k != "decided_by"},
                         "decided_by": mechanisms[s["decided_by"]], "by_mechanism": by_mech, "pareto": not dominated,
                         "meets": bool(s["hp_fnr_ci95"][1] <= target_fnr and s["coverage"] >= min_cov)})
    return frontier


def _note(chosen: Policy, ch: dict[str, Any], decided: str, mechanisms: Sequence[str],
          crossfits: list[dict[str, Any]], target_fnr: float, min_cov: float, met: bool) -> str:
    """The calibration's one-line account for the report: the choice, and its cross-fitted estimate."""
    desc = (f"{chosen.label()} (HP-FNR {ch['hp_fnr']:.3f}, 95% CI {ch['hp_fnr_ci95'][0]:.3f}-"
            f"{ch['hp_fnr_ci95'][1]:.3f} under {decided} hiding, coverage {ch['coverage']:.2f}, mean rank "
            f"{ch['mean_rank']:.1f})")
    under = " and ".join(mechanisms)
    each = "; ".join(f"{m} hiding {c['hp_fnr']:.3f} (95% CI {c['hp_fnr_ci95'][0]:.3f}-{c['hp_fnr_ci95'][1]:.3f})"
                     for m, c in zip(mechanisms, crossfits))
    note = (f"calibrated to HP-FNR <= {target_fnr:g} with coverage >= {min_cov:g} under {under} hiding: {desc}"
            if met else
            f"no policy meets the target (upper 95% bound of HP-FNR <= {target_fnr:g} with coverage >= "
            f"{min_cov:g} under {under} hiding); closest is {desc}, used")
    return note + f"; cross-fitted estimate under {each}; decided by {decided} hiding"


def default_policy(data: MiningData) -> dict[str, Any]:
    """What ``negmine mine`` does without explicit filter or sampler options.

    Returns ``{"calibrate": bool, "target_fnr", "min_coverage", "options": {...}, "preset": str |
    None, "reason": str, "fnr_measured": bool, "calibration_queries": int,
    "queries_with_positives": int}``: when at least ``MIN_CALIBRATION_QUERIES`` queries have two or
    more positives *and* they are at least ``MIN_CALIBRATION_SHARE`` of the queries with positives,
    calibrate to ``DEFAULT_TARGET_FNR`` / ``DEFAULT_MIN_COVERAGE``; otherwise mine with a preset
    (``PRESET_ONE_POSITIVE`` when most queries have one positive, else
    ``PRESET_SEVERAL_POSITIVES``), and the report must say the false-negative rate was not measured.
    """
    counts = data.positives.counts()
    n, total = int((counts >= 2).sum()), int((counts >= 1).sum())
    share = n / total if total else 0.0
    base = {"calibration_queries": n, "queries_with_positives": total}
    if n >= MIN_CALIBRATION_QUERIES and share >= MIN_CALIBRATION_SHARE:
        return {"calibrate": True, "target_fnr": DEFAULT_TARGET_FNR, "min_coverage": DEFAULT_MIN_COVERAGE,
                "options": {}, "preset": None, "fnr_measured": True, **base,
                "reason": f"{n} of {total} queries ({share:.0%}) have two or more positives: calibrated to "
                          f"HP-FNR <= {DEFAULT_TARGET_FNR:g} with coverage >= {DEFAULT_MIN_COVERAGE:g}"}
    if share < MIN_CALIBRATION_SHARE:
        name, preset = "one positive", PRESET_ONE_POSITIVE
        why = (f"only {n} of {total} queries ({share:.0%}) have two or more positives (calibrating needs at least "
               f"{MIN_CALIBRATION_SHARE:.0%}: a policy measured on them would be extrapolated to the "
               f"{total - n} with one)")
    else:
        name, preset = "several positives", PRESET_SEVERAL_POSITIVES
        why = f"only {n} queries have two or more positives (calibrating needs {MIN_CALIBRATION_QUERIES})"
    what = (f"relative margin {preset['relative_margin']:g} below the "
            f"{'lowest' if preset['positive_reference'] == 'min' else 'highest'} positive, {preset['sampler']}")
    return {"calibrate": False, "target_fnr": None, "min_coverage": None, "options": dict(preset), "preset": name,
            "fnr_measured": False, **base,
            "reason": f"{why}: preset policy ({what}) used; the false-negative rate was not measured"}
