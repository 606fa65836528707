"""Exact dense retrieval by blocks with a running top-k."""

from __future__ import annotations

from typing import Any

import numpy as np

from negmine._progress import progress
from negmine.retrievers.base import TopK
from negmine.retrievers.embedding import EmbeddingRetriever


class Dense(EmbeddingRetriever):
    """Exact inner-product (cosine, with normalised embeddings) search of every query against
    every document, computed block by block with a running top-k, so memory is bounded by
    ``query_block × doc_block`` scores, not by the corpus size. The sentence-transformers peer
    scores whole chunks with ``torch.topk``; the results are the same up to ties, which negmine
    breaks by document row.

    Parameters
    ----------
    model
        A sentence-transformers model name or path (see :func:`negmine.encoders.resolve_model`).
    encoder
        Any :class:`~negmine.encoders.Encoder` instead of ``model`` (e.g. ``HashingEncoder``).
    query_block, doc_block
        Block sizes of the search; they change memory and speed, never the result.

    Examples
    --------
    >>> from negmine.encoders import HashingEncoder
    >>> Dense(encoder=HashingEncoder(dim=32)).name
    'dense'
    """

    name = "dense"

    def __init__(self, model: str | None = None, *, query_block: int = 256, doc_block: int = 8192,
                 **kwargs: Any) -> None:
        if model is not None:
            kwargs["model"] = model
        super().__init__(**kwargs)
        self.query_block = query_block
        self.doc_block = doc_block

    def search(self, q: np.ndarray, d: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        ids = np.empty((len(q), k), dtype=np.int64)
        scores = np.empty((len(q), k), dtype=np.float32)
        blocks = range(0, len(q), self.query_block)
        for qs in progress(blocks, desc="dense search", total=len(blocks), unit="block"):
            qb = q[qs : qs + self.query_block]
            top = TopK(len(qb), k)
            for ds in range(0, len(d), self.doc_block):
                top.push(qb @ d[ds : ds + self.doc_block].T, ds)
            ids[qs : qs + len(qb)], scores[qs : qs + len(qb)] = top.result()
        return ids, scores
