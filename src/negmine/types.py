"""The plain containers that cross stage boundaries.

Inside negmine everything is a row index: documents are rows of :class:`Corpus`, queries rows of
:class:`Queries`; string ids exist only at the input and output edges.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

_WS = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    """Case-folded text with runs of whitespace collapsed: the key of the near-duplicate check."""
    return _WS.sub(" ", text.casefold()).strip()


@dataclass(frozen=True)
class Corpus:
    """Documents. ``ids[i]``, ``titles[i]`` and ``texts[i]`` describe row ``i``."""

    ids: list[str]
    texts: list[str]
    titles: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.titles:
            object.__setattr__(self, "titles", [""] * len(self.ids))

    def __len__(self) -> int:
        return len(self.ids)

    def full_texts(self) -> list[str]:
        """Title and text joined by a space (the text that is encoded and indexed)."""
        return [f"{t} {x}".strip() if t else x for t, x in zip(self.titles, self.texts)]

    def duplicate_groups(self) -> np.ndarray:
        """``int64[n_docs]``: equal values for documents whose normalised full texts are equal."""
        seen: dict[str, int] = {}
        return np.fromiter(
            (seen.setdefault(normalise_text(t), len(seen)) for t in self.full_texts()),
            dtype=np.int64,
            count=len(self),
        )


@dataclass(frozen=True)
class Queries:
    """Queries to mine negatives for. ``ids[i]`` and ``texts[i]`` describe row ``i``."""

    ids: list[str]
    texts: list[str]

    def __len__(self) -> int:
        return len(self.ids)


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


@dataclass(frozen=True)
class MiningData:
    """Everything the miner needs.

    ``positives`` are the query's positives in the split being mined (reported as ``positive_ids``
    and used as the margin reference); ``exclude`` holds every known positive of each query across
    all qrels the user supplied (a superset of ``positives``) — none of them is ever a negative.
    """

    corpus: Corpus
    queries: Queries
    positives: Qrels
    exclude: Qrels
    stats: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # role -> file path (for fingerprints)

    def __post_init__(self) -> None:
        n = len(self.queries)
        for name, qrels in (("positives", self.positives), ("exclude", self.exclude)):
            if qrels.n_queries != n:
                raise ValueError(f"{name} has {qrels.n_queries} query rows but there are {n} queries")

    def fingerprint(self) -> str:
        """A hash of the ids, texts and positives: equal data, equal fingerprint."""
        h = hashlib.sha256()
        for part in (self.corpus.ids, self.corpus.titles, self.corpus.texts, self.queries.ids, self.queries.texts):
            for s in part:
                h.update(s.encode("utf-8", "surrogatepass"))
                h.update(b"\x00")
            h.update(b"\x01")
        for arr in (self.positives.indptr, self.positives.indices, self.exclude.indptr, self.exclude.indices):
            h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()


@dataclass
class Candidates:
    """Per-query retrieval results, sorted by score descending (ties: lower document row first).

    ``ids``: ``int64[n_queries, k]`` document rows, ``-1`` = padding.
    ``scores``: ``float32[n_queries, k]``, ``-inf`` = padding.
    ``sources``: ``uint8[n_queries, k]`` bit mask over ``source_names`` (which retriever found it).
    ``positive_scores``: ``float32[n_pairs]`` retrieval score of each positive in ``MiningData.positives``
    (``NaN`` when the retriever cannot score it, e.g. a precomputed run that does not list it).
    With several retrievers (``union``/``hybrid``): ``member_ranks int32[n_queries, k, R]`` (0-based
    rank in each retriever's raw list, ``-1`` = not found by it) and ``member_scores
    float32[n_queries, k, R]`` (each retriever's score of every cell).
    """

    ids: np.ndarray
    scores: np.ndarray
    sources: np.ndarray
    source_names: list[str]
    positive_scores: np.ndarray
    member_ranks: np.ndarray | None = None
    member_scores: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.ids.shape

    def valid(self) -> np.ndarray:
        return self.ids >= 0
