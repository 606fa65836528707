"""Exact dense retrieval by blocks with a running top-k, on the CPU (BLAS) or a torch device."""

from __future__ import annotations

import sys
import warnings
from typing import Any

import numpy as np

from negmine.core.errors import ConfigError
from negmine.core.optional import available, require
from negmine.core.progress import progress
from negmine.text.encoders.base import Encoder, check_device, check_precision
from negmine.text.encoders.st import SentenceTransformerEncoder
from negmine.text.retrievers.base import _LOW, MAX_ROWS, BoundBroken, TopK, exact_top_k, keys_to_result, row_norms
from negmine.text.retrievers.embedding import EmbeddingRetriever

SCREENS = ("auto", "numba", "numpy")
SCREEN_DTYPES = ("auto", "float32", "bfloat16")
#: set when a bfloat16 kernel broke its bound once in this process: ``auto`` stays in float32
_BF16_BROKEN: list[str] = []


class Dense(EmbeddingRetriever):
    """Exact inner-product (cosine, with normalised embeddings) search of every query against
    every document, computed block by block with a running top-k, so memory is bounded by
    ``query_block × doc_block`` scores, not by the corpus size. The sentence-transformers peer
    scores whole chunks with ``torch.topk``; the results are the same up to ties, which negmine
    breaks by document row.

    On the CPU each block is one sgemm followed by a float32 screen against every query's running
    k-th score, so only the few documents that can still enter are packed and merged (the search
    runs at the speed of the matrix product); on a CPU with bfloat16 instructions a large search
    screens bfloat16 products instead, about twice as fast, and re-scores its candidates exactly
    (``screen_dtype``). On ``cuda``/``mps`` the blocks are multiplied and
    reduced on the device with ``torch.topk`` over the same packed (score, row) keys.

    Parameters
    ----------
    screen
        ``auto`` (default: compiled where numba is installed), ``numba`` or ``numpy``: how each
        block of products is screened for the running top-k; never changes the result.
    screen_dtype
        ``auto`` (default), ``float32`` or ``bfloat16``: the products the CPU search screens
        with. ``bfloat16`` (:mod:`~negmine.text.retrievers.dense_bf16`, needs torch and numba)
        runs about twice as fast on CPUs with bfloat16 instructions and gives the same bytes:
        its candidates are re-scored exactly under a rigorous bound. ``auto`` takes it on such a
        CPU when the search is large enough to pay for it (and for importing torch, where it is
        not yet imported). Never changes the result.
    model
        A sentence-transformers model name or path (see :func:`negmine.text.encoders.resolve_model`).
    encoder
        Any :class:`~negmine.text.encoders.Encoder` instead of ``model`` (e.g. ``HashingEncoder``).
    query_block, doc_block
        Block sizes of the search; they change memory and speed, never the result.
    device
        ``cpu`` (default), ``cuda`` (``cuda:N``) or ``mps``: where the model encodes and the
        search runs. An absent device is a :class:`~negmine.core.errors.ConfigError`.
    precision
        ``fp32`` (default), ``fp16`` or ``bf16``: the encoder's precision (the search's products
        are ``screen_dtype``, its scores exact).

    Examples
    --------
    >>> from negmine.text.encoders import HashingEncoder
    >>> Dense(encoder=HashingEncoder(dim=32)).name
    'dense'
    """

    name = "dense"
    exact_search = True

    def __init__(self, model: str | None = None, *, query_block: int = 1024, doc_block: int = 8192,
                 device: str = "cpu", precision: str = "fp32", screen: str = "auto", screen_dtype: str = "auto",
                 **kwargs: Any) -> None:
        if model is not None:
            kwargs["model"] = model
        super().__init__(**kwargs)
        self.query_block = query_block
        self.doc_block = doc_block
        self.device = check_device(device)
        self.precision = check_precision(precision)
        if screen not in SCREENS:
            raise ConfigError(f"unknown dense screen {screen!r}; known: {', '.join(SCREENS)}")
        self.screen = screen  # not in config(): every screen gives the same bytes
        if screen_dtype not in SCREEN_DTYPES:
            raise ConfigError(f"unknown dense screen_dtype {screen_dtype!r}; known: {', '.join(SCREEN_DTYPES)}")
        if screen_dtype == "bfloat16" and not (available("torch") and available("numba")):
            raise ConfigError("screen_dtype bfloat16 needs torch and numba: pip install 'negmine[st,bm25]', "
                              "or use screen_dtype auto or float32")
        self.screen_dtype = screen_dtype  # not in config() either

    def _encoder(self) -> Encoder:
        return with_device(self, super()._encoder())

    def config(self) -> dict[str, Any]:
        return device_config(self, super().config())

    def search(self, q: np.ndarray, d: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(ids int64[n_q, k], scores float32[n_q, k])``: the exact top ``k`` by inner product,
        ties to the lower row, with exact scores — the same bytes for any block size, BLAS kernel,
        thread count or device (:func:`~negmine.text.retrievers.base.exact_top_k` settles the float32
        near-ties). ``q`` and ``d`` may be memory-mapped; ``d`` is read one block at a time."""
        if len(d) >= MAX_ROWS:
            raise ValueError(f"at most {MAX_ROWS - 1} documents are supported")
        if self.device != "cpu":
            return search_torch(q, d, k, self.device, self.query_block, self.doc_block)
        d_norm_max = None
        if self._bfloat16(q, d):
            from negmine.text.retrievers import dense_bf16

            d_norms, q_norm = row_norms(d), row_norms(q)
            d_norm_max = float(d_norms.max())
            if dense_bf16.in_range(q_norm, d_norm_max) and (
                    self.screen_dtype == "bfloat16" or dense_bf16.even(d_norms)):
                try:
                    return exact_top_k(q, d, k, self._search_bf16, d_norm_max, error=dense_bf16.error_bound(q.shape[1]),
                                       relative=dense_bf16.RELATIVE, first=dense_bf16.first(k), verify=True,
                                       then=self._search_raw, q_norm=q_norm)
                except BoundBroken as exc:
                    _BF16_BROKEN.append(str(exc))
                    warnings.warn(f"the bfloat16 screen broke its bound ({exc}): searching in float32, and "
                                  "screen_dtype auto stays in float32 in this process", RuntimeWarning, stacklevel=2)
        return exact_top_k(q, d, k, self._search_raw, d_norm_max)

    def _bfloat16(self, q: np.ndarray, d: np.ndarray) -> bool:
        """Whether to screen with bfloat16 products: ``screen_dtype``; for ``auto``, the compiled
        screen, a CPU and a torch with bfloat16 instructions, the kernel never found broken in
        this process, and enough work to pay for it (and for importing torch, where it is not)."""
        if self.screen_dtype == "float32" or not len(q) or not len(d):
            return False
        if self.screen_dtype == "bfloat16":
            return True
        from negmine.text.retrievers import dense_bf16

        work = len(q) * len(d) * (q.shape[1] if q.ndim == 2 else 1)
        loaded = "torch" in sys.modules
        if (_BF16_BROKEN or self.screen == "numpy" or not dense_bf16.usable()
                or work < (dense_bf16.WORK_LOADED if loaded else dense_bf16.WORK_COLD)):
            return False
        return dense_bf16.torch_native()

    def _search_bf16(self, q: np.ndarray, d: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The raw search on bfloat16 products (:func:`negmine.text.retrievers.dense_bf16.search`)."""
        from negmine.text.retrievers import dense_bf16

        return dense_bf16.search(q, d, k, self.query_block, self.doc_block,
                                 self._progress(len(q), "dense search (bfloat16)"))

    def _progress(self, n_q: int, desc: str) -> Any:
        """A progress bar over the query blocks of a search of ``n_q`` queries."""
        n_blocks = -(-n_q // max(1, min(self.query_block, n_q))) if n_q else 0
        return lambda it: progress(it, desc=desc, total=n_blocks, unit="block")

    def _search_raw(self, q: np.ndarray, d: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The blocked float32 search: one sgemm per block, screened against a running top-k —
        by the compiled screen (:mod:`negmine.text.retrievers.dense_jit`, every core) where numba is
        installed, else by :class:`~negmine.text.retrievers.base.TopK`."""
        if self.screen == "numba" or (self.screen == "auto" and available("numba")):
            from negmine.text.retrievers import dense_jit

            return dense_jit.search(q, d, k, self.query_block, self.doc_block, self._progress(len(q), "dense search"))
        ids = np.empty((len(q), k), dtype=np.int64)
        scores = np.empty((len(q), k), dtype=np.float32)
        qbs, dbs = max(1, min(self.query_block, len(q))), max(1, min(self.doc_block, len(d)))
        buf = np.empty(qbs * dbs, dtype=np.float32)  # reused: no page faults per block
        blocks = range(0, len(q), qbs)
        for qs in progress(blocks, desc="dense search", total=len(blocks), unit="block"):
            qb = np.ascontiguousarray(q[qs : qs + qbs], dtype=np.float32)
            top = TopK(len(qb), k)
            for ds in range(0, len(d), dbs):
                db = np.asarray(d[ds : ds + dbs], dtype=np.float32)
                out = buf[: len(qb) * len(db)].reshape(len(qb), len(db))
                np.matmul(qb, db.T, out=out)
                top.push(out, ds)
            ids[qs : qs + len(qb)], scores[qs : qs + len(qb)] = top.result()
        return ids, scores


def with_device(retriever: Any, enc: Encoder) -> Encoder:
    """Hand the retriever's ``device`` and ``precision`` to a sentence-transformers encoder it
    created itself, before the model loads."""
    if retriever.encoder is enc and isinstance(enc, SentenceTransformerEncoder) and enc.model_ is None:
        enc.device, enc.precision = retriever.device, retriever.precision
    return enc


def device_config(retriever: Any, cfg: dict[str, Any]) -> dict[str, Any]:
    """``cfg`` plus ``device``/``precision`` when they are not the defaults (so run ids of
    default runs do not change)."""
    if retriever.device != "cpu":
        cfg["device"] = retriever.device
    if retriever.precision != "fp32":
        cfg["precision"] = retriever.precision
    return cfg


def search_torch(q: np.ndarray, d: np.ndarray, k: int, device: str, query_block: int,
                 doc_block: int) -> tuple[np.ndarray, np.ndarray]:
    """The exact search on a torch ``device``: :func:`search_torch_raw` settled by
    :func:`~negmine.text.retrievers.base.exact_top_k` — the same bytes as the CPU search."""
    return exact_top_k(q, d, k, lambda qs, dd, kk: search_torch_raw(qs, dd, kk, device, query_block, doc_block))


def search_torch_raw(q: np.ndarray, d: np.ndarray, k: int, device: str, query_block: int,
                     doc_block: int) -> tuple[np.ndarray, np.ndarray]:
    """The blocked float32 search on a torch ``device`` (no TF32): each score packed with its row
    into one int64 key ordered as :func:`~negmine.text.retrievers.base.pack`, reduced with
    ``torch.topk``."""
    torch = require("torch")
    dev = torch.device(device)
    keys_out = np.zeros((len(q), k), dtype=np.uint64)
    qbs, dbs = max(1, min(query_block, len(q))), max(1, min(doc_block, len(d)))
    top_bit = np.uint64(1 << 63)
    with torch.inference_mode():
        blocks = range(0, len(q), qbs)
        for qs in progress(blocks, desc="dense search", total=len(blocks), unit="block"):
            qb = torch.from_numpy(np.ascontiguousarray(q[qs : qs + qbs], dtype=np.float32)).to(dev)
            best = None
            for ds in range(0, len(d), dbs):
                db = torch.from_numpy(np.ascontiguousarray(d[ds : ds + dbs], dtype=np.float32)).to(dev)
                keys = _torch_keys(torch, qb @ db.T, ds)
                if best is not None:
                    keys = torch.cat([best, keys], dim=1)
                best = torch.topk(keys, min(k, keys.shape[1]), dim=1, sorted=False).values
            if best is not None:
                signed = best.cpu().numpy()
                keys_out[qs : qs + len(signed), : signed.shape[1]] = signed.view(np.uint64) ^ top_bit
    return keys_to_result(keys_out, k)


def _torch_keys(torch: Any, s: Any, first_row: int) -> Any:
    """int64 keys of a float32 score block: the order-preserving score bits (NaN as -inf, -0.0 as
    +0.0) in the high word, the inverted row in the low word, minus 2**63 (the signed view of
    the uint64 keys of :func:`~negmine.text.retrievers.base.pack`)."""
    s = torch.nan_to_num(s + 0.0, nan=-float("inf"), posinf=float("inf"), neginf=-float("inf"))
    bits = s.view(torch.int32).to(torch.int64) & 0xFFFFFFFF
    sortable = torch.where(bits >= 0x80000000, (~bits) & 0xFFFFFFFF, bits | 0x80000000)
    rows = torch.arange(first_row, first_row + s.shape[1], device=s.device, dtype=torch.int64)
    return ((sortable - 0x80000000) * (1 << 32)) | (int(_LOW) - rows)[None, :]
