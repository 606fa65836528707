"""FAISS retrieval (extra ``faiss``): flat (exact) or HNSW (approximate) inner-product index."""

from __future__ import annotations

from typing import Any

import numpy as np

from negmine.core.errors import ConfigError
from negmine.core.optional import require
from negmine.text.encoders.base import Encoder, check_device, check_precision
from negmine.text.retrievers.base import exact_top_k
from negmine.text.retrievers.dense import device_config, with_device
from negmine.text.retrievers.embedding import EmbeddingRetriever

INDEXES = ("flat", "hnsw")


class Faiss(EmbeddingRetriever):
    """Search with a FAISS inner-product index: ``flat`` is exact (as the peer's ``use_faiss``),
    ``hnsw`` approximate (``m`` links per node, ``ef_search`` breadth) for corpora too large for
    exact search. Candidates are re-scored exactly from the embeddings, so scores are identical
    to :class:`~negmine.text.retrievers.Dense` whichever index finds them.

    ``device`` and ``precision`` apply to encoding (as for :class:`~negmine.text.retrievers.Dense`);
    the index itself is searched on the CPU.
    """

    name = "faiss"

    def __init__(self, model: str | None = None, *, index: str = "flat", m: int = 32, ef_search: int = 256,
                 ef_construction: int = 200, device: str = "cpu", precision: str = "fp32",
                 **kwargs: Any) -> None:
        if model is not None:
            kwargs["model"] = model
        super().__init__(**kwargs)
        self.device = check_device(device)
        self.precision = check_precision(precision)
        if index not in INDEXES:
            raise ConfigError(f"unknown faiss index {index!r}; known: {', '.join(INDEXES)}")
        self.index = index
        self.m = m
        self.ef_search = ef_search
        self.ef_construction = ef_construction

    def _encoder(self) -> Encoder:
        return with_device(self, super()._encoder())

    def config(self) -> dict[str, Any]:
        cfg = super().config()
        cfg.update(index=self.index)
        if self.index == "hnsw":
            cfg.update(m=self.m, ef_search=self.ef_search, ef_construction=self.ef_construction)
        return device_config(self, cfg)

    def search(self, q: np.ndarray, d: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        faiss = require("faiss")
        dim = d.shape[1]
        if self.index == "flat":
            index = faiss.IndexFlatIP(dim)
        else:
            index = faiss.IndexHNSWFlat(dim, self.m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.ef_construction
            index.hnsw.efSearch = max(self.ef_search, k)
        index.add(np.ascontiguousarray(d, dtype=np.float32))

        def raw(qs: np.ndarray, _: np.ndarray, kk: int) -> tuple[np.ndarray, np.ndarray]:
            scores, ids = index.search(np.ascontiguousarray(qs, dtype=np.float32), kk)
            return ids.astype(np.int64), scores.astype(np.float32)

        if self.index == "flat":  # exact: near-ties settled as the dense search settles them
            return exact_top_k(q, d, k, raw)
        return raw(q, d, k)

    @property
    def exact_search(self) -> bool:  # type: ignore[override]
        return self.index == "flat"
