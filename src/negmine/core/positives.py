"""Known positives in CSR form, and the ``(row, column) -> int64`` key of a pair.

Every domain keeps its positives this way: text (query row -> document rows), recommendation
(user -> items) and knowledge graphs (the filter's known triples) test membership on the int64
key ``row * n_columns + column`` (see :mod:`negmine.core.membership`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def pair_keys(rows: np.ndarray, cols: np.ndarray, n_cols: int) -> np.ndarray:
    """``int64`` key ``row * n_cols + col`` of each pair (shapes broadcast)."""
    return np.asarray(rows).astype(np.int64) * n_cols + np.asarray(cols).astype(np.int64)


@dataclass(frozen=True)
class Qrels:
    """Known positives in CSR form: the positives of query row ``q`` are document rows
    ``indices[indptr[q]:indptr[q + 1]]`` (sorted, unique) with relevance ``grades`` aligned."""

    indptr: np.ndarray  # int64[n_queries + 1]
    indices: np.ndarray  # int64[n_pairs]
    grades: np.ndarray  # float32[n_pairs]

    @property
    def n_queries(self) -> int:
        return len(self.indptr) - 1

    def row(self, q: int) -> np.ndarray:
        return self.indices[self.indptr[q] : self.indptr[q + 1]]

    def counts(self) -> np.ndarray:
        return np.diff(self.indptr)

    def query_of_pair(self) -> np.ndarray:
        """``int64[n_pairs]``: the query row of each stored pair."""
        return np.repeat(np.arange(self.n_queries, dtype=np.int64), self.counts())

    def pair_keys(self, n_docs: int) -> np.ndarray:
        """``int64[n_pairs]``: :func:`pair_keys` of every stored pair."""
        return pair_keys(self.query_of_pair(), self.indices, n_docs)

    @classmethod
    def from_pairs(
        cls, n_queries: int, query_rows: np.ndarray, doc_rows: np.ndarray, grades: np.ndarray | None = None
    ) -> Qrels:
        """Build from parallel arrays of pairs; duplicates keep the highest grade."""
        q = np.asarray(query_rows, dtype=np.int64)
        d = np.asarray(doc_rows, dtype=np.int64)
        g = np.ones(len(q), np.float32) if grades is None else np.asarray(grades, dtype=np.float32)
        order = np.lexsort((-g, d, q))
        q, d, g = q[order], d[order], g[order]
        first = np.ones(len(q), dtype=bool)
        first[1:] = (q[1:] != q[:-1]) | (d[1:] != d[:-1])
        q, d, g = q[first], d[first], g[first]
        indptr = np.zeros(n_queries + 1, dtype=np.int64)
        np.cumsum(np.bincount(q, minlength=n_queries), out=indptr[1:])
        return cls(indptr, d, g)

    def union(self, other: Qrels) -> Qrels:
        """Pairs in either (same query rows)."""
        return Qrels.from_pairs(
            self.n_queries,
            np.concatenate([self.query_of_pair(), other.query_of_pair()]),
            np.concatenate([self.indices, other.indices]),
            np.concatenate([self.grades, other.grades]),
        )
