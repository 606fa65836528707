"""A committed mining directory as a :class:`~negmine.MiningResult` again: :func:`load_run`.

The mined file keeps the chosen negatives, not the candidates the filters removed nor the
retrieval lists; the batch sampler needs both (likely false negatives, the neighbour graph). So
the run is mined again from its manifest's options through the one orchestration path
(:func:`negmine.text.options.mine_from_options`: same data, retriever, filters, sampler, calibration and
seed; the run's embedding cache makes it a retrieval pass), and the result is checked against the
directory: the same negatives for every query, or a :class:`~negmine.core.errors.DataError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from negmine.core.errors import DataError
from negmine.text.result import MiningResult

__all__ = ["load_run", "rows_by_query"]


def rows_by_query(rows: list[dict[str, Any]]) -> dict[str, list[str]]:
    """``query_id -> negative ids`` of mined rows."""
    return {str(r["query_id"]): [str(x) for x in r["negative_ids"]] for r in rows}


def load_run(mined_dir: str | Path) -> MiningResult:
    """The :class:`~negmine.MiningResult` of the mining output in ``mined_dir``, mined again
    from its recorded options and verified to give the same negatives (see the module docstring).

    Raises
    ------
    DataError
        ``mined_dir`` is not a mining output, records no options, its input data moved or changed,
        or mining it again gives other negatives.
    """
    from negmine.text.options import mine_from_options
    from negmine.text.train.remining import Remining
    from negmine.text.writers.mined import load_mined

    rows, _texts, manifest = load_mined(mined_dir)
    again = Remining(manifest, encoder=None, num_negatives=int(manifest.get("num_negatives") or 0))
    again.prepare()
    result: MiningResult = mine_from_options(again.options, data=again.data)
    want, got = rows_by_query(rows), rows_by_query(result.to_rows())
    differ = [q for q in want if want[q] != got.get(q)]
    if differ:
        raise DataError(f"{Path(mined_dir)}: mining its options again gives other negatives for {len(differ)} of "
                        f"{len(want)} queries (e.g. {', '.join(map(repr, differ[:3]))}); the inputs or the model "
                        "changed since it was mined: mine it again with 'negmine mine'")
    return result
