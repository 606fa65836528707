"""What a pool changes in the calibration (:mod:`negmine.text.calibrate`): when the known
positives look pooled (:func:`negmine.text.holdout.pool_signature`), the candidates the labellers
saw and did not choose are taken as judged negatives first (:func:`judged_rule`), the headline
interval's low end is 0 where the known positives cannot measure what the run takes
(:func:`bounded_by_signature`), and the note says which way the estimate may be wrong
(:func:`pooled_note`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from negmine.text.holdout import JUDGED_QUANTILE, judged_depth
from negmine.text.types import Candidates, MiningData


@dataclass
class Judged:
    """The judged candidates of a pool: ``depth``; ``cells`` (``bool[rows, k]``, aligned with the
    rows the run filters) when a lexical stand-in located them, ``None`` for the miner's own top
    ``depth`` ranks; the lexical ``stand_in``; and the ``record`` for ``report.json``."""

    depth: int
    cells: np.ndarray | None
    stand_in: str | None
    record: dict[str, Any]


def judged_rule(data: MiningData, cand: Candidates, signature: dict[str, Any], view: Any,
                reference: str) -> Judged | None:
    """The candidates taken as judged, if the labels look pooled: pooled by a ranking like the
    miner's, its top ranks down to :func:`~negmine.text.holdout.judged_depth`; pooled by a lexical
    system unlike a dense miner (the second view is ``lexical``), the cells of
    :func:`~negmine.text.detector_views.judged_by_lexical_pool`, repeated per row under ``pair``
    rows. ``None`` otherwise, or where no depth holds."""
    from negmine.text.detector_views import judged_by_lexical_pool
    from negmine.text.pair_rows import expand_pairs

    if not signature["pooled"]:
        return None
    record: dict[str, Any] = {"quantile": JUDGED_QUANTILE, "sampler": "top"}
    if signature["by"] == "miner":
        depth = judged_depth(data, cand)
        return None if depth is None else Judged(depth, None, None, {"depth": depth, **record})
    if view is None or view.name != "lexical":
        return None
    lexical = judged_by_lexical_pool(data, cand, JUDGED_QUANTILE)
    if lexical is None:
        return None
    cells = lexical.judged
    if reference == "pair":  # the run filters one row per (query, known positive)
        cells = cells[expand_pairs(data, cand).query_row]
    record.update(by="lexical-pool", stand_in=lexical.stand_in, depths=lexical.depths,
                  cells=int(lexical.judged.sum()), fill="best-ranked guarded")
    return Judged(lexical.depth, cells, lexical.stand_in, {"depth": lexical.depth, **record})


def bounded_by_signature(crossfit: dict[str, Any], signature: dict[str, Any],
                         lexical_pool: bool = False) -> dict[str, Any]:
    """The headline interval, honest about what a pool hides. When the known positives crowd the top
    of the miner's own ranking (:func:`negmine.text.holdout.pool_signature`, ``by == "miner"``), the
    labels were pooled by a ranking like the miner's: the unknown positives are ranked low by the
    miner too, mostly beyond its candidates, where no pseudo-hidden known positive can stand for
    them. The known positives then measure the high end only, and the interval's low end is 0
    (``crossfit["low_end"]`` says why). Pooled by the second view with the judged cells of a
    lexical pool taken first (``lexical_pool``), most negatives are ones the labellers saw and
    rejected, which no pseudo-hidden known positive can measure either (every known positive is in
    the pool): the policy's estimate bounds the guarded rest, and the low end is 0 too. Pooled by the
    second view otherwise, nothing bounds how many unknown positives the miner surfaces, and the
    note says the estimate may be low."""
    if signature["pooled"] and signature["by"] == "miner":
        why = "the known positives look pooled by a ranking like this retriever's, whose unknown positives it ranks " \
              "low, mostly beyond its candidates"
    elif signature["pooled"] and lexical_pool:
        why = "most negatives are candidates a lexical pool showed its labellers, judged and not chosen, which the " \
              "known positives (all inside the pool) cannot measure"
    else:
        return crossfit
    return {**crossfit, "hp_fnr_ci95": [0.0, crossfit["hp_fnr_ci95"][1]], "low_end": f"0: {why}"}


def pooled_note(signature: dict[str, Any], unknown_ratio: float, depth: int | None = None,
                stand_in: str | None = None) -> str:
    """The note's warning when the known positives look pooled (:func:`negmine.text.holdout.pool_signature`):
    by a ranking like the miner's, the unknown positives sit low in the miner's list too and the
    estimate may be high, and the top ``depth`` ranks are taken as judged; by the second view, the
    miner surfaces what the pool missed and the estimate may be low."""
    if not signature["pooled"]:
        return ""
    ratio = f"{signature['ratio']:.3g}x denser in the top third of each list than below it"
    if signature["by"] == "miner":
        judged = "" if depth is None else (
            f"; ranks 1-{depth} (where {JUDGED_QUANTILE:.0%} of the known positives lie) are taken as judged by "
            f"the labellers: their candidates that are not known positives are kept as negatives first, the "
            f"policy above guards the rest")
        return (f"; the known positives look pooled by a ranking like this retriever's ({ratio}): the unknown "
                f"positives are likely ranked low by it too, and this estimate may be high (the interval's low "
                f"end is 0){judged}")
    judged = "" if stand_in is None or depth is None else (
        f"; a corpus-wide {stand_in} ranking, of the lexical systems tried the one that ranks the known positives "
        f"highest, stands in for the labelling system: candidates in its top {depth} (where {JUDGED_QUANTILE:.0%} of "
        f"the known positives lie) are taken as judged by the labellers and kept as negatives first, the policy "
        f"above guards the rest")
    return (f"; the known positives look pooled by a ranking unlike this retriever's (by the second view, {ratio}): "
            f"unknown positives may outnumber the known ones among the candidates, and this estimate, which "
            f"assumes {unknown_ratio:g} unknown per known positive, may be low{judged}")
