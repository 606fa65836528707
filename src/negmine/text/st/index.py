"""What a negmine run knows about in-batch negatives, keyed by text: :class:`RunIndex`.

A sentence-transformers training dataset holds texts (``anchor``, ``positive``, ``negative_1``..),
not ids, so everything here is keyed by :func:`negmine.text.types.text_hash` — the 64-bit hash of the
*normalised* text (case-folded, whitespace collapsed), the key of negmine's near-duplicate check.
Two documents with the same normalised text are one key; two queries with the same normalised
text are one anchor key, so the positives of near-duplicate queries are pooled.

For each anchor key the index holds

- ``known``: the text keys of every known positive of its queries (all qrels the run was given,
  not just the mined split: :attr:`MiningData.exclude`), near-duplicates included by construction;
- ``suspect``: candidates the run judged likely false negatives — the cells its filters removed
  (margins, max-score, the detector, a judge, the start of a rank window) that rank above the
  query's lowest chosen negative (the candidates the run had to skip to reach its negatives);
- ``neighbours``: other anchor keys whose retrieval lists overlap most (NGAME's neighbour graph:
  shared top candidates, weighted by ``1 / log(1 + document frequency)``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from negmine.text.result import MiningResult
from negmine.text.types import text_hash

__all__ = ["RowKeys", "RunIndex", "row_keys"]

#: columns of a sentence-transformers dataset that are not texts
NON_TEXT_COLUMNS = frozenset({"dataset_name", "label", "labels", "score", "scores"})


@dataclass
class RunIndex:
    """Known positives, likely false negatives and neighbours of each anchor text of a run.

    Build it with :meth:`from_result` (a :class:`~negmine.MiningResult`) or :func:`negmine.text.st.load_run`
    (a mined directory). ``known``, ``suspect`` and ``neighbours`` are keyed by anchor key
    (:func:`negmine.text.types.text_hash` of the query text); values are text keys (``int``).
    """

    known: dict[int, frozenset[int]] = field(default_factory=dict)
    suspect: dict[int, frozenset[int]] = field(default_factory=dict)
    neighbours: dict[int, list[int]] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)

    def forbidden(self, anchor: int) -> frozenset[int]:
        """Text keys that must not be an in-batch negative of ``anchor``: known ∪ suspect."""
        return self.known.get(anchor, frozenset()) | self.suspect.get(anchor, frozenset())

    @classmethod
    def from_result(cls, result: MiningResult, *, suspects: bool = True, neighbour_depth: int = 20,
                    max_neighbours: int = 16, max_document_frequency: int = 200) -> RunIndex:
        """The index of a mining result.

        Parameters
        ----------
        result
            What :func:`negmine.mine` returned.
        suspects
            Also forbid the run's likely false negatives (see the module docstring).
        neighbour_depth
            Top candidates of each query that define its neighbourhood.
        max_neighbours
            Neighbours kept per anchor.
        max_document_frequency
            Documents in more candidate lists than this are hubs and ignored for neighbourhood.
        """
        data, cand = result.data, result.candidates
        corpus = data.corpus
        n_q = len(data.queries)
        anchors = [text_hash(t) for t in data.queries.texts]
        excl = data.exclude.union(data.positives)
        # one hash per document row involved (positives, candidates), each computed once
        valid = cand.ids >= 0
        rows = np.unique(np.concatenate([excl.indices, cand.ids[valid]])).astype(np.int64)
        keys = corpus.text_hashes(rows) if len(rows) else np.zeros(0, dtype=np.uint64)
        key_of = dict(zip(rows.tolist(), (int(k) for k in keys)))

        known: dict[int, set[int]] = {}
        for q in range(n_q):
            known.setdefault(anchors[q], set()).update(key_of[int(d)] for d in excl.row(q))
        suspect: dict[int, set[int]] = {}
        n_suspect = 0
        if suspects:
            k = cand.ids.shape[1]
            pos = np.arange(k)[None, :]
            chosen = np.where(result.columns >= 0, result.columns, -1).max(axis=1, initial=-1)
            kept = result.keep & valid
            first_kept = np.where(kept.any(axis=1), kept.argmax(axis=1), k)
            cut = np.where(chosen >= 0, chosen, first_kept)
            removed = valid & ~result.keep & (pos < cut[:, None])
            for q, c in zip(*np.nonzero(removed)):
                key = key_of[int(cand.ids[q, c])]
                if key not in known.get(anchors[q], ()):
                    suspect.setdefault(anchors[q], set()).add(key)
                    n_suspect += 1
        neighbours = _neighbours(cand.ids[:, :neighbour_depth], anchors, max_neighbours, max_document_frequency)
        return cls(known={a: frozenset(s) for a, s in known.items()},
                   suspect={a: frozenset(s) for a, s in suspect.items()}, neighbours=neighbours,
                   stats={"queries": n_q, "anchors": len(set(anchors)), "known_pairs": len(excl.indices),
                          "suspect_cells": n_suspect})


def _neighbours(ids: np.ndarray, anchors: Sequence[int], top: int, max_df: int) -> dict[int, list[int]]:
    """``anchor -> [anchor, ...]``, most shared weighted candidates first (ties: lower query row)."""
    n_q = ids.shape[0]
    if n_q < 2 or top < 1:
        return {}
    q_of = np.repeat(np.arange(n_q, dtype=np.int64), ids.shape[1])
    d_of = ids.reshape(-1).astype(np.int64)
    ok = d_of >= 0
    q_of, d_of = q_of[ok], d_of[ok]
    order = np.lexsort((q_of, d_of))
    q_of, d_of = q_of[order], d_of[order]
    docs, start, df = np.unique(d_of, return_index=True, return_counts=True)
    weight = {int(d): 1.0 / math.log(1.0 + c) for d, c in zip(docs, df) if 1 < c <= max_df}
    postings = {int(d): q_of[s:s + c] for d, s, c in zip(docs, start, df) if int(d) in weight}
    out: dict[int, list[int]] = {}
    for q in range(n_q):
        lists = [(postings[int(d)], weight[int(d)]) for d in ids[q] if int(d) in postings]
        if not lists:
            continue
        qs = np.concatenate([p for p, _ in lists])
        ws = np.concatenate([np.full(len(p), w) for p, w in lists])
        uq, inv = np.unique(qs, return_inverse=True)
        score = np.bincount(inv.reshape(-1), weights=ws)
        mine = uq == q
        uq, score = uq[~mine], score[~mine]
        best = np.lexsort((uq, -score))[:top]
        found = out.setdefault(anchors[q], [])
        for other in uq[best].tolist():
            a = anchors[other]
            if a != anchors[q] and a not in found:
                found.append(a)
    return out


@dataclass
class RowKeys:
    """The text keys of every row of a training dataset: ``anchor uint64[n]``, ``docs`` (the
    positive and negative columns, one tuple per row) and ``texts`` (the anchor and the positive:
    the texts no two rows of a batch may share; mined negatives may repeat across rows)."""

    anchor: np.ndarray
    docs: list[tuple[int, ...]]
    texts: list[frozenset[int]]
    columns: list[str]


def row_keys(dataset: Any, valid_label_columns: Sequence[str] | None = None) -> RowKeys:
    """:class:`RowKeys` of a ``datasets.Dataset`` in sentence-transformers layout: the first text
    column is the anchor, the others are its documents (positive, then negatives)."""
    skip = NON_TEXT_COLUMNS | set(valid_label_columns or ())
    columns = [c for c in dataset.column_names if c not in skip]
    if len(columns) < 2:
        from negmine.core.errors import DataError

        raise DataError(f"the training dataset has text columns {columns}; the mined batch sampler needs "
                        "(anchor, positive, negative_1, ...) rows: build it with result.to_dataset('n-tuple')")
    values = [[text_hash(str(t)) for t in dataset[c]] for c in columns]
    anchor = np.asarray(values[0], dtype=np.uint64)
    docs = list(zip(*values[1:]))
    texts = [frozenset(t) for t in zip(values[0], values[1])]
    return RowKeys(anchor=anchor, docs=docs, texts=texts, columns=columns)
