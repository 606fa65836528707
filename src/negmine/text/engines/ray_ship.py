"""What the ray engine sends to its workers, and how a worker takes it back.

Workers retrieve; they never need the corpus texts. :func:`for_workers` turns the prepared
retriever into a copy for the workers:

- the corpus becomes a :class:`ShippedCorpus`: its size, plus its ids when a retriever maps
  document ids itself (a precomputed run);
- every array that is a whole ``.npy`` file memory-mapped on the driver — the embedding cache's
  whole-corpus entry, a ``--doc-embeddings`` / ``--query-embeddings`` ``.npy`` — becomes a
  :class:`MappedNpy` (its path and the file's identity), and each worker memory-maps the same
  file from shared storage (:func:`on_worker`); the embeddings never enter the object store;
- other arrays (the BM25 index, embeddings held in memory) travel through the object store,
  read zero-copy from each node's shared memory by every worker there.

A retriever the engine does not know (a user's own class) is shipped as it is, with the whole
corpus: it may read the texts.
"""

from __future__ import annotations

import copy
import os
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from negmine.core.errors import ConfigError

__all__ = ["MappedNpy", "ShippedCorpus", "for_workers", "on_worker", "walk"]


def walk(retriever: Any) -> Iterator[Any]:
    """The retriever and, for union/hybrid, its members (depth first)."""
    yield retriever
    for m in getattr(retriever, "members", ()) or ():
        yield from walk(m)


class ShippedCorpus:
    """The corpus as the workers know it: its number of documents, and its ids only when a
    retriever needs them. Its texts stay on the driver."""

    def __init__(self, n_docs: int, ids: Sequence[str] | None = None) -> None:
        self.n_docs = n_docs
        self._ids = ids

    def __len__(self) -> int:
        return self.n_docs

    @property
    def ids(self) -> Sequence[str]:
        if self._ids is None:
            raise AttributeError("the ray engine ships no corpus ids to its workers for this retriever")
        return self._ids

    def __getattr__(self, name: str) -> Any:  # texts, titles, full_texts, ...
        raise AttributeError(f"the ray engine keeps the corpus {name} on the driver; a retriever that reads them "
                             "on a worker must be shipped whole (see negmine.text.engines.ray_ship)")


@dataclass(frozen=True)
class MappedNpy:
    """A whole ``.npy`` file, by path and identity (size, modification time), for a worker to
    memory-map instead of receiving the array."""

    path: str
    size: int
    mtime_ns: int
    shape: tuple[int, ...]
    dtype: str

    @classmethod
    def of(cls, a: Any) -> MappedNpy | None:
        """The file behind ``a`` when ``a`` is a whole ``.npy`` file memory-mapped by
        :func:`numpy.load` (not a slice or another view of one), else ``None``."""
        path = getattr(a, "filename", None)
        if not isinstance(a, np.memmap) or not path or not a.flags.c_contiguous:
            return None
        try:
            whole = np.load(path, mmap_mode="r", allow_pickle=False)
            st = os.stat(path)
        except (OSError, ValueError):
            return None
        # same file, offset, shape and dtype, contiguous: the view spans the whole array
        if not isinstance(whole, np.memmap) or (whole.shape, whole.dtype, whole.offset) != (a.shape, a.dtype, a.offset):
            return None
        return cls(str(path), st.st_size, st.st_mtime_ns, tuple(a.shape), a.dtype.str)

    def open(self) -> np.ndarray:
        """Memory-map the file here; a one-line :class:`ConfigError` when this node does not see
        the same file."""
        try:
            st = os.stat(self.path)
            same = (st.st_size, st.st_mtime_ns) == (self.size, self.mtime_ns)
            a = np.load(self.path, mmap_mode="r", allow_pickle=False) if same else None
        except (OSError, ValueError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ConfigError(f"{self.path}: a Ray worker on {socket.gethostname()} cannot read these embeddings "
                              f"({why}); put --cache-dir and --doc-embeddings on storage every node sees, at the same "
                              "path") from None
        if a is None or a.shape != self.shape or a.dtype.str != self.dtype:
            raise ConfigError(f"{self.path}: a Ray worker on {socket.gethostname()} sees a different file than the "
                              "driver (size or modification time differ); put --cache-dir and --doc-embeddings on "
                              "storage every node sees, at the same path")
        return a


def _known(r: Any) -> bool:
    from negmine.text.retrievers.bm25 import BM25
    from negmine.text.retrievers.embedding import EmbeddingRetriever
    from negmine.text.retrievers.multi import Union
    from negmine.text.retrievers.precomputed import Precomputed

    return isinstance(r, (BM25, EmbeddingRetriever, Union, Precomputed))


def _mapped(a: Any) -> Any:
    return MappedNpy.of(a) or a


def _light(r: Any, corpus: Any, shipped: ShippedCorpus) -> Any:
    """A shallow copy of ``r`` for the workers: its corpus state points at ``shipped``, its
    file-backed arrays are :class:`MappedNpy`; the driver's retriever is left as it is."""
    from negmine.text.retrievers.bm25 import BM25
    from negmine.text.retrievers.embedding import EmbeddingRetriever

    c = copy.copy(r)
    if getattr(r, "members", None):
        c.members = [_light(m, corpus, shipped) for m in r.members]
    if isinstance(r, BM25):
        c.state_ = (shipped, r.state_[1]) if r.state_ is not None and r.state_[0] is corpus else None
        c.queries_ = None
    if isinstance(r, EmbeddingRetriever):
        c.docs_ = (shipped, _mapped(r.docs_[1])) if r.docs_ is not None and r.docs_[0] is corpus else None
        c.queries_ = None
        if r.query_table_ is not None:
            c.query_table_ = (r.query_table_[0], _mapped(r.query_table_[1]))
    return c


def for_workers(corpus: Any, retriever: Any) -> tuple[tuple[Any, Any], dict[str, Any]]:
    """``((corpus, retriever) for the workers, what was shipped)``: put the pair in the object
    store as one object, so the retriever's corpus stays the corpus the tasks are given."""
    from negmine.text.retrievers.precomputed import Precomputed

    if not all(_known(r) for r in walk(retriever)):
        return (corpus, retriever), {"ray_corpus_texts_shipped": True, "ray_mapped_files": 0}
    needs_ids = any(isinstance(r, Precomputed) for r in walk(retriever))
    shipped = ShippedCorpus(len(corpus), corpus.ids if needs_ids else None)
    light = _light(retriever, corpus, shipped)
    files = {h.path for r in walk(light) for h in _handles(r)}
    return (shipped, light), {"ray_corpus_texts_shipped": False, "ray_mapped_files": len(files)}


def _handles(r: Any) -> list[MappedNpy]:
    held = [getattr(r, "docs_", None), getattr(r, "query_table_", None)]
    return [h[1] for h in held if h is not None and isinstance(h[1], MappedNpy)]


def on_worker(payload: tuple[Any, Any]) -> tuple[Any, Any]:
    """The ``(corpus, retriever)`` taken from the object store, made ready on this worker: each
    :class:`MappedNpy` memory-mapped, the BM25 index given canonical dtypes."""
    corpus, retriever = payload
    for r in walk(retriever):
        docs, table = getattr(r, "docs_", None), getattr(r, "query_table_", None)
        if docs is not None and isinstance(docs[1], MappedNpy):
            r.docs_ = (docs[0], docs[1].open())
        if table is not None and isinstance(table[1], MappedNpy):
            r.query_table_ = (table[0], table[1].open())
    _canonical_dtypes(retriever)
    return corpus, retriever


def _canonical_dtypes(retriever: Any) -> None:
    """Give the BM25 index arrays taken from the object store numpy's canonical dtype objects
    (a view, no copy): an unpickled array's dtype is an equal but distinct instance, and with it
    numpy 2.4's ``np.add.at`` — bm25s' scoring — leaves its fast path (~15x slower)."""
    from negmine.text.retrievers.bm25 import BM25

    for r in walk(retriever):
        index = r.state_[1] if isinstance(r, BM25) and r.state_ is not None else None
        arrays = getattr(index, "scores", None)
        if isinstance(arrays, dict):
            for key, a in arrays.items():
                if isinstance(a, np.ndarray):
                    arrays[key] = a.view(np.dtype(a.dtype.str))
