"""Lexical BM25 retrieval (extra ``bm25``, backed by bm25s)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from negmine._optional import available, require
from negmine._progress import progress
from negmine.retrievers.base import TopK
from negmine.types import Candidates, MiningData


class BM25:
    """BM25 over title + text with bm25s (Lucene variant; English stopwords and Snowball stemming
    when PyStemmer is installed). The classic DPR source of negatives: cheap, lexical, diverse;
    the weakest teacher in published ablations, so pair it with a dense retriever when you can.

    Scores are computed per query over the whole corpus in blocks of queries and reduced with the
    same exact running top-k as dense search, so ties break by document row.

    Examples
    --------
    >>> BM25(k1=1.2).config()["k1"]
    1.2
    """

    name = "bm25"

    def __init__(self, *, k1: float = 1.5, b: float = 0.75, method: str = "lucene", stopwords: str = "en",
                 stemmer: str | None = "english", query_block: int = 256) -> None:
        self.k1 = k1
        self.b = b
        self.method = method
        self.stopwords = stopwords
        self.stemmer = stemmer
        self.query_block = query_block

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "k1": self.k1, "b": self.b, "method": self.method,
                "stopwords": self.stopwords, "stemmer": self.stemmer if self._stemmer() else None}

    def _stemmer(self) -> Any:
        if self.stemmer is None or not available("Stemmer"):
            return None
        return require("Stemmer").Stemmer(self.stemmer)

    def retrieve(self, data: MiningData, k: int, context: dict[str, Any]) -> Candidates:
        bm25s = require("bm25s")
        t0 = time.perf_counter()
        stemmer = self._stemmer()
        show = False
        corpus_tokens = bm25s.tokenize(data.corpus.full_texts(), stopwords=self.stopwords, stemmer=stemmer,
                                       return_ids=False, show_progress=show)
        index = bm25s.BM25(k1=self.k1, b=self.b, method=self.method)
        index.index(corpus_tokens, show_progress=show)
        query_tokens = bm25s.tokenize(data.queries.texts, stopwords=self.stopwords, stemmer=stemmer,
                                      return_ids=False, show_progress=show)
        context.setdefault("timings", {})["index_s"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        n_docs = len(data.corpus)
        kk = min(k, n_docs)
        ids = np.full((len(data.queries), k), -1, dtype=np.int64)
        scores = np.full((len(data.queries), k), -np.inf, dtype=np.float32)
        pos_q = data.positives.query_of_pair()
        pos_scores = np.zeros(len(pos_q), dtype=np.float32)
        blocks = range(0, len(data.queries), self.query_block)
        for qs in progress(blocks, desc="bm25 search", total=len(blocks), unit="block"):
            rows = range(qs, min(qs + self.query_block, len(data.queries)))
            block = np.zeros((len(rows), n_docs), dtype=np.float32)
            for j, qi in enumerate(rows):
                tokens = [t for t in query_tokens[qi] if t in index.vocab_dict]
                if tokens:
                    block[j] = index.get_scores(tokens)
            top = TopK(len(rows), kk)
            top.push(block, 0)
            bi, bs = top.result()
            ids[qs : qs + len(rows), :kk] = bi
            scores[qs : qs + len(rows), :kk] = bs
            sel = (pos_q >= qs) & (pos_q < qs + len(rows))
            pos_scores[sel] = block[pos_q[sel] - qs, data.positives.indices[sel]]
        context["timings"]["search_s"] = time.perf_counter() - t0
        return Candidates(ids=ids, scores=scores, sources=(ids >= 0).astype(np.uint8),
                          source_names=[self.name], positive_scores=pos_scores)
