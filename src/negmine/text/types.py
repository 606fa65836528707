"""The plain containers that cross stage boundaries.

Inside negmine everything is a row index: documents are rows of :class:`Corpus`, queries rows of
:class:`Queries`; string ids exist only at the input and output edges.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from negmine.core.positives import Qrels

_WS = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    """Case-folded text with runs of whitespace collapsed: the key of the near-duplicate check."""
    return _WS.sub(" ", text.casefold()).strip()


@dataclass(frozen=True)
class Corpus:
    """Documents. ``ids[i]``, ``titles[i]`` and ``texts[i]`` describe row ``i``."""

    ids: Sequence[str]
    texts: Sequence[str]
    titles: Sequence[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not len(self.titles):
            object.__setattr__(self, "titles", [""] * len(self.ids))

    def __len__(self) -> int:
        return len(self.ids)

    def full_texts(self) -> Sequence[str]:
        """Title and text joined by a space (the text that is encoded and indexed). A corpus
        without titles returns its texts as they are (no copy); otherwise a new sequence, held in
        Arrow buffers when the corpus is (:class:`~negmine.text.textcol.TextColumn`)."""
        if not any(self.titles):
            return self.texts
        from negmine.text.textcol import TextColumn

        if isinstance(self.texts, TextColumn):
            return TextColumn.from_iter(self.iter_full_texts())
        return list(self.iter_full_texts())

    def duplicate_groups(self) -> np.ndarray:
        """``int64[n_docs]``: equal values for documents whose normalised full texts are equal.

        One streaming pass keeps a 64-bit hash per document (8 bytes each, not the texts), then
        numbers the distinct hashes; computed once per corpus. A hash collision (about 3e-6 for
        ten million documents) could only merge two groups, i.e. exclude more, never less.
        """
        return self._duplicate_groups

    @functools.cached_property
    def _duplicate_groups(self) -> np.ndarray:
        hashes = np.fromiter((text_hash(t) for t in self.iter_full_texts()), dtype=np.uint64, count=len(self))
        _, groups = np.unique(hashes, return_inverse=True)
        return groups.astype(np.int64).reshape(-1)

    def text_hashes(self, rows: np.ndarray) -> np.ndarray:
        """``uint64[len(rows)]``: :func:`text_hash` of the full text of each document row in
        ``rows`` — equal exactly where :meth:`duplicate_groups` is. Only the rows asked for are
        read (a run needs its positives and candidates, not ten million documents), each once per
        corpus object."""
        def compute(missing: list[int]) -> list[int]:
            return [text_hash(t) for t in self.full_texts_at(missing)]

        return _memo_rows(self._text_hash_memo, rows, compute)

    def full_texts_at(self, rows: Sequence[int] | np.ndarray) -> list[str]:
        """:meth:`full_texts` of the document ``rows`` only (one gather per column)."""
        from negmine.text.textcol import take_rows

        titles, texts = take_rows(self.titles, rows), take_rows(self.texts, rows)
        return [_full_text(t, x) for t, x in zip(titles, texts)]

    def id_keys(self, rows: np.ndarray) -> np.ndarray:
        """``uint64[len(rows)]``: :func:`negmine.text.samplers.string_keys` of the ids at ``rows`` (the
        samplers' per-document key), hashing only those rows, each once per corpus object."""
        def compute(missing: list[int]) -> list[int]:
            from negmine.core.keys import string_keys
            from negmine.text.textcol import take_rows

            return string_keys(take_rows(self.ids, missing)).tolist()

        return _memo_rows(self._id_key_memo, rows, compute)

    @functools.cached_property
    def _text_hash_memo(self) -> dict[int, int]:
        return {}

    @functools.cached_property
    def _id_key_memo(self) -> dict[int, int]:
        return {}

    def iter_full_texts(self) -> Iterator[str]:
        """:meth:`full_texts` one at a time (no list of every text)."""
        for t, x in zip(self.titles, self.texts):
            yield _full_text(t, x)


def _full_text(title: str, text: str) -> str:
    """Title and text joined by a space (the text alone without a title)."""
    return f"{title} {text}".strip() if title else text


def _memo_rows(memo: dict[int, int], rows: np.ndarray, compute: Any) -> np.ndarray:
    """``uint64`` values of ``rows`` from ``memo``, computing (in one call) the rows it lacks."""
    flat = np.asarray(rows, dtype=np.int64).reshape(-1)
    unique, inverse = np.unique(flat, return_inverse=True)
    wanted = unique.tolist()
    missing = [r for r in wanted if r not in memo]
    if missing:
        memo.update(zip(missing, compute(missing)))
    values = np.fromiter((memo[r] for r in wanted), dtype=np.uint64, count=len(wanted))
    return values[inverse.reshape(-1)].reshape(np.shape(rows))


def text_hash(text: str) -> int:
    """64-bit hash of a text's :func:`normalise_text` (stable across processes and platforms)."""
    digest = hashlib.blake2b(normalise_text(text).encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


@dataclass(frozen=True)
class Queries:
    """Queries to mine negatives for. ``ids[i]`` and ``texts[i]`` describe row ``i``."""

    ids: Sequence[str]
    texts: Sequence[str]

    def __len__(self) -> int:
        return len(self.ids)


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
        """A hash of the ids, texts and positives: equal data, equal fingerprint (computed once
        per data object: a run asks for it for its id, its retrieval stage and its manifest)."""
        return self._fingerprint

    @functools.cached_property
    def _fingerprint(self) -> str:
        h = hashlib.sha256()
        for part in (self.corpus.ids, self.corpus.titles, self.corpus.texts, self.queries.ids, self.queries.texts):
            for s in part:
                h.update(s.encode("utf-8", "surrogatepass"))
                h.update(b"\x00")
            h.update(b"\x01")
        for arr in (self.positives.indptr, self.positives.indices, self.exclude.indptr, self.exclude.indices):
            h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()

    def query_slice(self, start: int, stop: int) -> MiningData:
        """The queries ``start:stop`` with their positives and exclusions (the same corpus object)."""

        def rows(q: Qrels) -> Qrels:
            a, b = int(q.indptr[start]), int(q.indptr[stop])
            return Qrels(q.indptr[start : stop + 1] - a, q.indices[a:b], q.grades[a:b])

        queries = Queries(self.queries.ids[start:stop], self.queries.texts[start:stop])
        return MiningData(self.corpus, queries, rows(self.positives), rows(self.exclude), self.stats, self.sources)


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

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The named arrays a retrieval stage stores (see :meth:`from_arrays`)."""
        arrays = {"ids": self.ids, "scores": self.scores, "sources": self.sources,
                  "positive_scores": self.positive_scores,
                  "source_names": np.frombuffer(json.dumps(self.source_names).encode(), dtype=np.uint8)}
        if self.member_ranks is not None:
            arrays["member_ranks"] = self.member_ranks
        if self.member_scores is not None:
            arrays["member_scores"] = self.member_scores
        return arrays

    @classmethod
    def from_arrays(cls, z: dict[str, np.ndarray]) -> Candidates:
        return cls(ids=z["ids"], scores=z["scores"], sources=z["sources"],
                   source_names=json.loads(bytes(z["source_names"]).decode()),
                   positive_scores=z["positive_scores"], member_ranks=z.get("member_ranks"),
                   member_scores=z.get("member_scores"))


@dataclass
class RunContext:
    """What a stage may use from the run around it, and where it records what it did.

    Passed forward, never sideways: a retriever reads ``cache_dir`` and ``device`` and adds its
    ``timings`` (seconds per step), ``encoding`` counts (``document_cached``, ``query_encoded``, ...)
    and free-form ``stats`` (e.g. ``run_queries_missing``); the orchestrator copies them into the
    report.
    """

    cache_dir: str | None = None
    device: str = "cpu"
    timings: dict[str, float] = field(default_factory=dict)
    encoding: dict[str, int] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)

    def child(self) -> RunContext:
        """A fresh context for a member retriever: the same resources, its own records."""
        return RunContext(cache_dir=self.cache_dir, device=self.device)

    def absorb(self, other: RunContext, prefix: str = "") -> None:
        """Add ``other``'s records to this one (timings prefixed, encoding counts summed)."""
        for key, v in other.timings.items():
            self.timings[f"{prefix}{key}"] = v
        for key, n in other.encoding.items():
            self.encoding[key] = self.encoding.get(key, 0) + n
        self.stats.update(other.stats)


@dataclass
class ScoreMatrix:
    """A second opinion on the candidates (see :mod:`negmine.text.scorers.base`): ``scores
    float32[n_queries, k]`` cell by cell, ``positive_scores float32[n_pairs]``, optional judge
    ``verdicts int8[n_queries, k]`` and ``stats`` for the report."""

    name: str
    scores: np.ndarray
    positive_scores: np.ndarray
    verdicts: np.ndarray | None = None
    stats: dict[str, Any] = field(default_factory=dict)


def run_id(config: dict[str, Any], data: MiningData) -> str:
    """Identity of a run: the requested configuration and the data fingerprint."""
    from negmine.core.manifest import run_id as core_run_id

    return core_run_id(config, data.fingerprint())
