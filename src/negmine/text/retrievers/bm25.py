"""Lexical BM25 retrieval (extra ``bm25``, backed by bm25s)."""

from __future__ import annotations

import re
import time
from array import array
from collections.abc import Iterable
from itertools import filterfalse
from typing import Any

import numpy as np

from negmine.core.errors import ConfigError, DataError
from negmine.core.optional import available, require
from negmine.core.progress import progress
from negmine.text.retrievers.base import TopK
from negmine.text.types import Candidates, MiningData, RunContext

BACKENDS = ("auto", "numba", "numpy")


class BM25:
    """BM25 over title + text with bm25s (Lucene variant, k1 = 1.5, b = 0.75, English stopwords; no
    stemming by default, as bm25s — SciFact test nDCG@10 0.662; ``stemmer="english"`` (PyStemmer)
    gives 0.686). The classic DPR source of negatives: cheap, lexical, diverse;
    the weakest teacher in published ablations, so pair it with a dense retriever when you can.

    Scores are computed per query over the whole corpus and reduced to the top k with ties to the
    lower document row. ``backend="auto"`` (default) uses the compiled search
    (:mod:`negmine.text.retrievers.bm25_jit`, numba: one pass per query over the postings of its terms,
    queries in parallel) where it computes exactly what bm25s does, else bm25s' numpy scoring in
    blocks of queries with the same exact running top-k as dense search; both give the same bytes.

    Examples
    --------
    >>> BM25(k1=1.2).config()["k1"]
    1.2
    """

    name = "bm25"

    def __init__(self, *, k1: float = 1.5, b: float = 0.75, method: str = "lucene", stopwords: str = "en",
                 stemmer: str | None = None, query_block: int = 256, backend: str = "auto") -> None:
        if backend not in BACKENDS:
            raise ConfigError(f"unknown BM25 backend {backend!r}; known: {', '.join(BACKENDS)}")
        self.k1 = k1
        self.b = b
        self.method = method
        self.stopwords = stopwords
        self.stemmer = stemmer
        self.query_block = query_block
        self.backend = backend  # not in config(): every backend gives the same bytes
        self.state_: tuple[Any, Any] | None = None  # (corpus, index)
        self.queries_: tuple[Any, list[np.ndarray]] | None = None  # (queries, token ids)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "k1": self.k1, "b": self.b, "method": self.method,
                "stopwords": self.stopwords, "stemmer": self.stemmer if self._stemmer() else None}

    def _stemmer(self) -> Any:
        if self.stemmer is None or not available("Stemmer"):
            return None
        stemmer = require("Stemmer")
        try:
            return stemmer.Stemmer(self.stemmer)
        except KeyError:
            raise ConfigError(f"unknown BM25 stemmer {self.stemmer!r} (--bm25-stemmer); known languages: "
                              f"{', '.join(sorted(stemmer.algorithms()))}") from None

    def prepare(self, data: MiningData, ctx: RunContext | None = None) -> None:
        """Index the corpus now (once per corpus object), before queries are retrieved by shard."""
        self._index(data, ctx if ctx is not None else RunContext())

    def _index(self, data: MiningData, ctx: RunContext) -> Any:
        """The BM25 index of ``data.corpus``, built once per corpus object."""
        if self.state_ is not None and self.state_[0] is data.corpus:  # held, so `is` cannot match a recycled one
            return self.state_[1]
        bm25s = require("bm25s")
        t0 = time.perf_counter()
        tokens = _tokenize(bm25s, data.corpus.iter_full_texts(), self.stopwords, self._stemmer())
        if not tokens.vocab:
            raise DataError(
                f"BM25: all {len(data.corpus)} documents are empty or only stop-words "
                f"(stopwords={self.stopwords!r}), so there is nothing to index; check that the corpus "
                "has a non-empty 'text' (or 'title') field, or use a dense retriever"
            )
        index = bm25s.BM25(k1=self.k1, b=self.b, method=self.method)
        index.index(tokens, show_progress=False)
        del tokens
        self.state_ = (data.corpus, index)
        ctx.timings["index_s"] = time.perf_counter() - t0
        return index

    def _fit(self, data: MiningData, ctx: RunContext) -> tuple[Any, list[np.ndarray]]:
        """The index of the corpus and the queries as token ids (once per corpus / queries object:
        a run retrieved by query shards indexes the corpus once)."""
        index = self._index(data, ctx)
        if self.queries_ is not None and self.queries_[0] is data.queries:
            return index, self.queries_[1]
        bm25s = require("bm25s")
        vocab = index.vocab_dict
        query_tokens = bm25s.tokenize(data.queries.texts, stopwords=self.stopwords, stemmer=self._stemmer(),
                                      return_ids=False, show_progress=False)
        query_ids = [np.array([vocab[t] for t in toks if t in vocab], dtype=np.int64) for toks in query_tokens]
        self.queries_ = (data.queries, query_ids)
        return index, query_ids

    def _block_size(self, n_docs: int) -> int:
        """Queries scored at once: at most ``query_block``, and at most ~32 MB of scores."""
        return max(1, min(self.query_block, (1 << 23) // max(1, n_docs)))

    def _score_block(self, index: Any, query_ids: list[np.ndarray], rows: range, n_docs: int) -> np.ndarray:
        """``float32[len(rows), n_docs]``: BM25 scores of the queries ``rows`` against every document."""
        block = np.zeros((len(rows), n_docs), dtype=np.float32)
        for j, qi in enumerate(rows):
            if query_ids[qi].size:
                block[j] = index.get_scores_from_ids(query_ids[qi])
        return block

    def _compiled(self, index: Any) -> bool:
        """Whether to search with the compiled kernel: numba installed, float32 scores, and no
        non-occurrence term (BM25L/BM25+ add one the kernel does not)."""
        if self.backend == "numpy":
            return False
        ok = index.nonoccurrence_array is None and np.dtype(index.dtype) == np.float32
        if self.backend == "numba":
            require("numba")
            if not ok:
                raise ConfigError(f"the compiled BM25 search does not support method {self.method!r}; "
                                  "use backend='numpy'")
            return True
        return ok and available("numba")

    def retrieve(self, data: MiningData, k: int, ctx: RunContext | None = None) -> Candidates:
        ctx = ctx if ctx is not None else RunContext()
        index, query_ids = self._fit(data, ctx)
        t0 = time.perf_counter()
        if self._compiled(index):
            from negmine.text.retrievers import bm25_jit

            ids, scores, pos_scores = bm25_jit.search(index, query_ids, k, data.positives.indptr,
                                                      data.positives.indices)
            ctx.timings["search_s"] = time.perf_counter() - t0
            return Candidates(ids=ids, scores=scores, sources=(ids >= 0).astype(np.uint8), source_names=[self.name],
                              positive_scores=pos_scores)
        n_docs = len(data.corpus)
        kk = min(k, n_docs)
        ids = np.full((len(data.queries), k), -1, dtype=np.int64)
        scores = np.full((len(data.queries), k), -np.inf, dtype=np.float32)
        pos_q = data.positives.query_of_pair()
        pos_scores = np.zeros(len(pos_q), dtype=np.float32)
        step = self._block_size(n_docs)
        blocks = range(0, len(data.queries), step)
        for qs in progress(blocks, desc="bm25 search", total=len(blocks), unit="block"):
            rows = range(qs, min(qs + step, len(data.queries)))
            block = self._score_block(index, query_ids, rows, n_docs)
            top = TopK(len(rows), kk)
            top.push(block, 0)
            ids[qs : qs + len(rows), :kk], scores[qs : qs + len(rows), :kk] = top.result()
            sel = (pos_q >= qs) & (pos_q < qs + len(rows))
            pos_scores[sel] = block[pos_q[sel] - qs, data.positives.indices[sel]]
        ctx.timings["search_s"] = time.perf_counter() - t0
        return Candidates(ids=ids, scores=scores, sources=(ids >= 0).astype(np.uint8),
                          source_names=[self.name], positive_scores=pos_scores)

    def score_cells(self, data: MiningData, ids: np.ndarray, ctx: RunContext | None = None) -> np.ndarray:
        """BM25 score of each ``(query row, ids[q, j])`` cell; ``-inf`` where ``ids < 0``."""
        index, query_tokens = self._fit(data, ctx if ctx is not None else RunContext())
        out = np.full(ids.shape, -np.inf, dtype=np.float32)
        if self._compiled(index):
            from negmine.text.retrievers import bm25_jit

            valid = ids >= 0
            ptr = np.zeros(len(ids) + 1, dtype=np.int64)
            np.cumsum(valid.sum(axis=1), out=ptr[1:])
            _, _, got = bm25_jit.search(index, query_tokens, 1, ptr, ids[valid])
            out[valid] = got
            return out
        step = self._block_size(len(data.corpus))
        for qs in range(0, len(data.queries), step):
            rows = range(qs, min(qs + step, len(data.queries)))
            block = self._score_block(index, query_tokens, rows, len(data.corpus))
            blk = ids[qs : qs + len(rows)]
            got = np.take_along_axis(block, np.where(blk >= 0, blk, 0), axis=1)
            out[qs : qs + len(rows)] = np.where(blk >= 0, got, -np.inf)
        return out


class _Vocab(dict[str, int]):
    """token -> id, a new token taking the next id on first lookup."""

    def __missing__(self, token: str) -> int:
        self[token] = n = len(self)
        return n


def _tokenize(bm25s: Any, texts: Iterable[str], stopwords: Any, stemmer: Any) -> Any:
    """``bm25s.tokenize(texts, stopwords=..., stemmer=...)`` — the same token ids per document,
    in the same order, the same vocabulary — with the per-token work in C (``map``/``filterfalse``
    over the regex matches) instead of a Python loop, each document's ids in a compact
    ``array('i')`` (4 bytes a token, not an 8-byte pointer in a list)."""
    split = re.compile(r"(?u)\b\w\w+\b").findall  # bm25s' default token pattern
    stop = set(bm25s.tokenization.Tokenizer(stopwords=stopwords).stopwords or ())
    vocab = _Vocab()
    lookup, is_stop = vocab.__getitem__, stop.__contains__
    ids = [array("i", map(lookup, filterfalse(is_stop, split(text.lower())))) for text in texts]
    if stemmer is None:
        return bm25s.tokenization.Tokenized(ids=ids, vocab=dict(vocab))
    words = list(vocab)
    stems = stemmer.stemWords(words)
    stem_ids = {stem: i for i, stem in enumerate(dict.fromkeys(stems))}
    to_stem = [stem_ids[st] for st in stems]  # word id -> stem id
    remap = to_stem.__getitem__
    ids = [array("i", map(remap, row)) for row in ids]
    return bm25s.tokenization.Tokenized(ids=ids, vocab=stem_ids)
