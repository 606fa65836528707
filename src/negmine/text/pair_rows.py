"""Pair rows for ``--positive-reference pair``: every (query, known positive) its own row, with
its own positive as the margin reference and all of the query's positives excluded. The pipeline
and the calibration expand the rows with :func:`expand_pairs` before filtering."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from negmine.text.types import Candidates, MiningData

__all__ = ["PairRows", "expand_pairs"]


@dataclass
class PairRows:
    """Rows expanded to one per (query, known positive): ``data`` and ``candidates`` for the pair
    rows, ``query_row int64[n_rows]`` (the original query of each row) and ``positive_row
    int64[n_rows]`` (its positive's document row; ``-1`` for a query without positives, which
    keeps one row)."""

    data: MiningData
    candidates: Candidates
    query_row: np.ndarray
    positive_row: np.ndarray


def expand_pairs(data: MiningData, cand: Candidates) -> PairRows:
    """One row per (query, positive) for ``--positive-reference pair``.

    Each row repeats its query's candidate list; its ``positives`` are its one positive (the
    margin reference and the ``positive_ids`` written), its ``exclude`` is all of the query's
    known positives (no positive of the query is ever a negative of any of its rows). Row ids
    are ``"{query_id}\\x1f{doc_id}"``, so each row draws its own position-free random keys.
    """
    from negmine.text.types import Qrels, Queries

    pos = data.positives
    counts = pos.counts()
    per = np.maximum(counts, 1)
    query_row = np.repeat(np.arange(pos.n_queries, dtype=np.int64), per)
    positive_row = np.full(len(query_row), -1, dtype=np.int64)
    has = np.repeat(counts > 0, per)
    positive_row[has] = pos.indices
    n = len(query_row)
    own = np.flatnonzero(has)
    positives = Qrels.from_pairs(n, own, pos.indices, pos.grades)
    ex = data.exclude
    first = np.concatenate([[0], np.cumsum(per)[:-1]])  # first expanded row of each query
    exq = ex.query_of_pair()
    rep = np.repeat(np.arange(len(exq)), per[exq])  # each excluded pair once per row of its query
    within = np.arange(len(rep)) - np.repeat(np.cumsum(per[exq]) - per[exq], per[exq])
    eq, ed, eg = first[exq][rep] + within, ex.indices[rep], ex.grades[rep]
    exclude = Qrels.from_pairs(n, eq.astype(np.int64), ed.astype(np.int64), eg).union(positives)
    qids = [data.queries.ids[q] if p < 0 else f"{data.queries.ids[q]}\x1f{data.corpus.ids[p]}"
            for q, p in zip(query_row.tolist(), positive_row.tolist())]
    queries = Queries(ids=qids, texts=[data.queries.texts[q] for q in query_row.tolist()])
    pdata = MiningData(data.corpus, queries, positives, exclude, stats=data.stats, sources=data.sources)
    # positives are stored in CSR order, which a pair row's single positive keeps
    pscores = cand.positive_scores
    mr = cand.member_ranks[query_row] if cand.member_ranks is not None else None
    ms = cand.member_scores[query_row] if cand.member_scores is not None else None
    pcand = Candidates(cand.ids[query_row], cand.scores[query_row], cand.sources[query_row], cand.source_names,
                       pscores.copy(), mr, ms)
    return PairRows(pdata, pcand, query_row, positive_row)
