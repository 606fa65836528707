"""Candidate retrievers: each returns :class:`~negmine.text.types.Candidates` for every query."""

from __future__ import annotations

from negmine.text.retrievers.base import Retriever, TopK

__all__ = ["BM25", "Dense", "Faiss", "Hybrid", "Precomputed", "Retriever", "TopK", "Union"]


def __getattr__(name: str) -> object:  # lazy: the backends import heavy packages on use only
    if name == "BM25":
        from negmine.text.retrievers.bm25 import BM25

        return BM25
    if name == "Dense":
        from negmine.text.retrievers.dense import Dense

        return Dense
    if name == "Faiss":
        from negmine.text.retrievers.faiss import Faiss

        return Faiss
    if name in ("Union", "Hybrid"):
        from negmine.text.retrievers import multi

        return getattr(multi, name)
    if name == "Precomputed":
        from negmine.text.retrievers.precomputed import Precomputed

        return Precomputed
    raise AttributeError(name)
