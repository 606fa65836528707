"""Shared base of the embedding retrievers (dense exact search, FAISS)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from negmine.encoders.base import Encoder
from negmine.encoders.cache import EmbeddingCache, encode_cached
from negmine.encoders.st import DEFAULT_MODEL, SentenceTransformerEncoder
from negmine.retrievers.base import pair_scores, rescore_exact, resort
from negmine.types import Candidates, MiningData, RunContext

#: extra candidates retrieved then re-scored exactly, so near-ties at the k-th place resolve the
#: same way whatever the block, batch or index layout.
EXTRA = 8


class EmbeddingRetriever:
    """Encodes queries and documents (through the cache), then delegates the search."""

    name = "embedding"

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        encoder: Encoder | None = None,
        query_prompt: str | None = None,
        document_prompt: str | None = None,
        batch_size: int = 32,
        max_length: int | None = None,
        normalize: bool = True,
    ) -> None:
        self.model = model
        self.encoder = encoder
        self.query_prompt = query_prompt
        self.document_prompt = document_prompt
        self.batch_size = batch_size
        self.max_length = max_length
        self.normalize = normalize
        self.embeddings_: tuple[Any, np.ndarray, np.ndarray] | None = None

    def _encoder(self) -> Encoder:
        if self.encoder is None:
            self.encoder = SentenceTransformerEncoder(
                self.model,
                query_prompt=self.query_prompt,
                document_prompt=self.document_prompt,
                batch_size=self.batch_size,
                max_length=self.max_length,
                normalize=self.normalize,
            )
        return self.encoder

    def config(self) -> dict[str, Any]:
        enc = self._encoder()
        return {
            "name": self.name,
            "model": self.model if self.encoder is None or isinstance(enc, SentenceTransformerEncoder)
            else enc.identity("document"),
            "query_prompt": self.query_prompt,
            "document_prompt": self.document_prompt,
            "max_length": self.max_length,
            "normalize": self.normalize,
        }

    def embed(self, data: MiningData, ctx: RunContext | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(query_emb, doc_emb)``, from the cache when possible."""
        key = (data.corpus, data.queries)  # held, so `is` cannot match a recycled object
        memo = self.embeddings_
        if memo is not None and memo[0][0] is data.corpus and memo[0][1] is data.queries:
            return memo[1], memo[2]
        ctx = ctx if ctx is not None else RunContext()
        cache_dir = ctx.cache_dir
        cache = EmbeddingCache(cache_dir) if cache_dir else None
        stats = ctx.encoding
        t0 = time.perf_counter()
        enc = self._encoder()
        d = encode_cached(enc, data.corpus.full_texts(), "document", cache, stats)
        q = encode_cached(enc, data.queries.texts, "query", cache, stats)
        release = getattr(enc, "release", None)
        if release is not None:  # the search needs the embeddings, not the model
            release()
        ctx.timings["encode_s"] = time.perf_counter() - t0
        self.embeddings_ = (key, q, d)
        return q, d

    def score_cells(self, data: MiningData, ids: np.ndarray, ctx: RunContext | None = None) -> np.ndarray:
        """Exact score of each ``(query row, ids[q, j])`` cell; ``-inf`` where ``ids < 0``."""
        q, d = self.embed(data, ctx)
        return rescore_exact(q, d, ids)

    def search(self, q: np.ndarray, d: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def retrieve(self, data: MiningData, k: int, ctx: RunContext | None = None) -> Candidates:
        ctx = ctx if ctx is not None else RunContext()
        q, d = self.embed(data, ctx)
        t0 = time.perf_counter()
        k_search = min(k + EXTRA, len(data.corpus))
        ids, _ = self.search(q, d, k_search)
        ids, scores = resort(ids, rescore_exact(q, d, ids), k)
        pos = pair_scores(q, d, data)
        ctx.timings["search_s"] = time.perf_counter() - t0
        return Candidates(
            ids=ids,
            scores=scores,
            sources=(ids >= 0).astype(np.uint8),
            source_names=[self.name],
            positive_scores=pos,
        )
