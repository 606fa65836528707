"""Shared base of the embedding retrievers (dense exact search, FAISS)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from negmine.core.errors import DataError, examples
from negmine.text.encoders.base import Encoder
from negmine.text.encoders.cache import EmbeddingCache, encode_cached
from negmine.text.encoders.st import DEFAULT_MODEL, SentenceTransformerEncoder
from negmine.text.retrievers.base import EXTRA, pair_scores, rescore_exact, resort
from negmine.text.types import Candidates, Corpus, MiningData, Queries, RunContext


class EmbeddingRetriever:
    """Encodes queries and documents (through the cache), then delegates the search."""

    name = "embedding"
    #: whether :meth:`search` returns the exact top k itself (settled near-ties, exact scores);
    #: otherwise ``k + EXTRA`` are searched and re-scored
    exact_search = False

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
        doc_embeddings: str | None = None,
        query_embeddings: str | None = None,
    ) -> None:
        self.model = model
        self.encoder = encoder
        self.query_prompt = query_prompt
        self.document_prompt = document_prompt
        self.batch_size = batch_size
        self.max_length = max_length
        self.normalize = normalize
        self.doc_embeddings = doc_embeddings
        self.query_embeddings = query_embeddings
        self.docs_: tuple[Corpus, np.ndarray] | None = None  # held, so `is` cannot match a recycled object
        self.queries_: tuple[Queries, np.ndarray] | None = None
        self.query_table_: tuple[dict[str, int], np.ndarray] | None = None  # precomputed: id -> row

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

    def _cache(self, ctx: Any) -> EmbeddingCache | None:
        """The run's embedding cache, unless the encoder's embeddings may change under the same
        identity (a model being trained: ``cacheable = False``)."""
        if not ctx.cache_dir or not getattr(self._encoder(), "cacheable", True):
            return None
        return EmbeddingCache(ctx.cache_dir)

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
            **({"doc_embeddings": file_identity(self.doc_embeddings)} if self.doc_embeddings else {}),
            **({"query_embeddings": file_identity(self.query_embeddings)} if self.query_embeddings else {}),
        }

    @property
    def embeddings_(self) -> tuple[Any, np.ndarray, np.ndarray] | None:
        """``((corpus, queries), query_emb, doc_emb)`` of the last :meth:`embed` (audits read the
        document embeddings from here)."""
        if self.docs_ is None or self.queries_ is None:
            return None
        return (self.docs_[0], self.queries_[0]), self.queries_[1], self.docs_[1]

    @embeddings_.setter
    def embeddings_(self, value: tuple[Any, np.ndarray, np.ndarray]) -> None:
        """Hand the retriever embeddings computed elsewhere: ``((corpus, queries), q, d)``."""
        (corpus, queries), q, d = value
        self.docs_, self.queries_ = (corpus, d), (queries, q)

    def prepare(self, data: MiningData, ctx: RunContext | None = None) -> None:
        """Load or encode the corpus once, and read precomputed query embeddings against the full
        query list, before the queries are retrieved shard by shard."""
        self._documents(data, ctx if ctx is not None else RunContext())
        if self.query_embeddings and self.query_table_ is None:
            q = load_embeddings(self.query_embeddings, data.queries.ids, "queries", lambda: query_file_ids(data))
            self.query_table_ = ({qid: i for i, qid in enumerate(data.queries.ids)}, q)

    def _documents(self, data: MiningData, ctx: RunContext) -> np.ndarray:
        if self.docs_ is not None and self.docs_[0] is data.corpus:
            return self.docs_[1]
        t0 = time.perf_counter()
        if self.doc_embeddings:
            d = load_embeddings(self.doc_embeddings, data.corpus.ids, "corpus")
            ctx.encoding["document_precomputed"] = len(d)
        else:
            cache = self._cache(ctx)
            d = encode_cached(self._encoder(), data.corpus.full_texts(), "document", cache, ctx.encoding)
        ctx.timings["encode_documents_s"] = time.perf_counter() - t0
        self.docs_ = (data.corpus, d)
        return d

    def _queries(self, data: MiningData, ctx: RunContext) -> np.ndarray:
        if self.queries_ is not None and self.queries_[0] is data.queries:
            return self.queries_[1]
        t0 = time.perf_counter()
        if self.query_embeddings:
            if self.query_table_ is None:
                self.prepare(data, ctx)
            assert self.query_table_ is not None
            rows, table = self.query_table_
            missing = [q for q in data.queries.ids if q not in rows]
            if missing:
                raise DataError(f"{self.query_embeddings}: no embedding for queries {examples(missing)}; "
                                "write one row per query")
            q = np.asarray(table[[rows[x] for x in data.queries.ids]], dtype=np.float32)
            ctx.encoding["query_precomputed"] = ctx.encoding.get("query_precomputed", 0) + len(q)
        else:
            cache = self._cache(ctx)
            q = encode_cached(self._encoder(), data.queries.texts, "query", cache, ctx.encoding)
        ctx.timings["encode_queries_s"] = ctx.timings.get("encode_queries_s", 0.0) + time.perf_counter() - t0
        self.queries_ = (data.queries, q)
        return q

    def embed(self, data: MiningData, ctx: RunContext | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(query_emb, doc_emb)``: the corpus encoded (or loaded) once per corpus object, the
        queries once per query object, from the cache when possible."""
        ctx = ctx if ctx is not None else RunContext()
        d = self._documents(data, ctx)
        q = self._queries(data, ctx)
        if len(q) and len(d) and q.shape[1] != d.shape[1]:
            raise DataError(f"query embeddings have {q.shape[1]} dimensions but document embeddings {d.shape[1]}; "
                            "use the same model for both (or pass both --doc-embeddings and --query-embeddings)")
        release = getattr(self.encoder, "release", None)
        if release is not None:  # the search needs the embeddings, not the model
            release()
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
        k_search = min(k if self.exact_search else k + EXTRA, len(data.corpus))
        ids, scores = self.search(q, d, k_search)
        cand = self.candidates(q, d, ids, k, data, scores if self.exact_search else None)
        ctx.timings["search_s"] = time.perf_counter() - t0
        return cand

    def candidates(self, q: np.ndarray, d: np.ndarray, ids: np.ndarray, k: int, data: MiningData,
                   exact_scores: np.ndarray | None = None) -> Candidates:
        """The candidates from searched rows ``ids`` (``k + EXTRA`` per query, any order of equal
        scores): re-scored exactly, re-sorted and cut to ``k``, with the positives' exact scores
        (``exact_scores``: the exact scores of ``ids`` when the search already computed them).
        The one place this is composed — the local search and the ray engine's merge of
        document shards both end here, so both give the same bytes."""
        ids, scores = resort(ids, rescore_exact(q, d, ids) if exact_scores is None else exact_scores, k)
        return Candidates(ids=ids, scores=scores, sources=(ids >= 0).astype(np.uint8), source_names=[self.name],
                          positive_scores=pair_scores(q, d, data))


def file_identity(path: str) -> dict[str, Any]:
    """What identifies a precomputed embedding file in a run's configuration: its path, size and
    modification time (hashing a file of many gigabytes on every run would cost more than the
    search)."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        return {"path": str(p)}
    return {"path": str(p), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


ID_COLUMNS = ("_id", "id", "corpus-id", "query-id")
VECTOR_COLUMNS = ("embedding", "vector", "emb")


def _flag(what: str) -> str:
    return f"--{'doc' if what == 'corpus' else 'query'}-embeddings"


def read_vectors(path: str, what: str) -> tuple[list[str] | None, np.ndarray]:
    """``(ids or None, vectors[n, d])`` of a precomputed embeddings file, validated.

    ``.npy``: memory-mapped in its own float dtype (a float16 file stays float16 on disk and is
    converted one block at a time by whoever reads it; never a float32 copy of the whole array);
    no ids (rows are aligned by position). ``.parquet``: an id column (``_id``, ``id``,
    ``corpus-id`` or ``query-id``) and a fixed-length vector column (``embedding``, ``vector`` or
    ``emb``), read one record batch at a time into one float32 array; ids must be unique.
    Dimensions, dtype and finiteness are checked; problems raise one-line :class:`DataError` errors.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: embeddings file not found; check {_flag(what)}")
    ids: list[str] | None = None
    if p.suffix == ".npy":
        try:
            arr = np.load(p, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            objects = "object" in str(exc).lower() or "pickle" in str(exc)
            reason = "an array of Python objects (never unpickled)" if objects else "not a readable .npy array"
            raise DataError(f"{p}: {reason}; save a float array with numpy.save") from None
        if arr.dtype.kind != "f" or arr.dtype.itemsize not in (2, 4, 8):
            raise DataError(f"{p}: embeddings of dtype {arr.dtype}; save float16, float32 or float64 vectors")
    elif p.suffix == ".parquet":
        ids, arr = _read_parquet_vectors(p)
    else:
        raise DataError(f"{p}: unknown embeddings format; use .npy (aligned rows) or .parquet (id + vector)")
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise DataError(f"{p}: shape {tuple(arr.shape)}; embeddings need one vector of at least one dimension "
                        "per row")
    block = 1 << 16
    for start in range(0, len(arr), block):  # streamed: a memory-mapped file stays on disk
        ok = np.isfinite(arr[start : start + block]).all(axis=1)
        if not ok.all():
            bad = start + int(np.argmin(ok))
            raise DataError(f"{p}: row {bad} holds NaN or infinite values; fix the embeddings")
    return ids, arr


def _read_parquet_vectors(p: Path) -> tuple[list[str], np.ndarray]:
    from negmine.core.optional import require

    pq = require("pyarrow.parquet")
    pa = require("pyarrow")
    try:
        f = pq.ParquetFile(p)
        names = f.schema_arrow.names
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise DataError(f"{p}: not a readable parquet file ({str(exc).splitlines()[0]})") from None
    id_col = next((c for c in ID_COLUMNS if c in names), None)
    vec_col = next((c for c in VECTOR_COLUMNS if c in names), None)
    if id_col is None or vec_col is None:
        raise DataError(f"{p}: needs an id column (_id, id) and a vector column (embedding, vector); "
                        f"found {', '.join(names)}")
    n = f.metadata.num_rows
    ids: list[str] = []
    out: np.ndarray | None = None
    try:
        for batch in f.iter_batches(columns=[id_col, vec_col], batch_size=1 << 14):
            col = batch.column(1)
            if not pa.types.is_list(col.type) and not pa.types.is_fixed_size_list(col.type) \
                    and not pa.types.is_large_list(col.type):
                raise DataError(f"{p}: the {vec_col} column holds {col.type}, not vectors; write lists of floats")
            lengths = np.asarray(col.value_lengths()) if not pa.types.is_fixed_size_list(col.type) \
                else np.full(len(col), col.type.list_size)
            if col.null_count or (len(lengths) and (lengths != lengths[0]).any()):
                raise DataError(f"{p}: the {vec_col} vectors differ in length (or are null); write fixed-length "
                                "vectors")
            dim = int(lengths[0]) if len(lengths) else (out.shape[1] if out is not None else 0)
            if out is None:
                out = np.empty((n, dim), dtype=np.float32)
            elif len(col) and dim != out.shape[1]:
                raise DataError(f"{p}: the {vec_col} vectors differ in length; write fixed-length vectors")
            values = col.flatten()
            if not (pa.types.is_floating(values.type) or pa.types.is_integer(values.type)):
                raise DataError(f"{p}: the {vec_col} vectors hold {values.type}; write floats")
            lo = len(ids)
            out[lo : lo + len(col)] = np.asarray(values.to_numpy(zero_copy_only=False),
                                                 dtype=np.float32).reshape(len(col), dim)
            ids.extend(str(x) for x in batch.column(0).to_pylist())
    except pa.ArrowException as exc:
        raise DataError(f"{p}: not a readable parquet file ({str(exc).splitlines()[0]})") from None
    if out is None:
        out = np.empty((0, 0), dtype=np.float32)
    seen: dict[str, int] = {}
    dup = [x for x in ids if x in seen or seen.setdefault(x, 0)]
    if dup:
        raise DataError(f"{p}: {len(dup)} duplicate ids in column {id_col}, e.g. {examples(dup)}; write one "
                        "vector per id")
    return ids, out


def _align(p: str, file_ids: list[str], arr: np.ndarray, ids: Sequence[str], what: str) -> np.ndarray:
    """Rows of ``arr`` (one per ``file_ids``) in the order of ``ids``."""
    if list(ids) == file_ids:
        return arr
    rows = {x: i for i, x in enumerate(file_ids)}
    missing = [x for x in ids if x not in rows]
    if missing:
        raise DataError(f"{p}: no embedding for {len(missing)} ids of the {what}, e.g. {examples(missing)}")
    return arr[[rows[x] for x in ids]]


def load_embeddings(path: str, ids: Sequence[str], what: str,
                    file_ids: Callable[[], Sequence[str] | None] | None = None) -> np.ndarray:
    """``vectors[len(ids), d]`` precomputed embeddings aligned with ``ids``, validated (see
    :func:`read_vectors`). A ``.npy`` is aligned by position: one row per item of ``ids`` — or
    one row per item of the *file* the items came from (``file_ids()``, e.g. every query of
    ``queries.jsonl`` when a split mines only some of them); a ``.parquet`` by id."""
    got, arr = read_vectors(path, what)
    if got is None:
        if len(arr) == len(ids):
            return arr
        whole = file_ids() if file_ids is not None else None
        if whole is not None and len(arr) == len(whole):
            return _align(path, list(whole), arr, ids, what)
        rows = f"{len(ids)} rows" + (f" (its file {len(whole)})" if whole is not None else "")
        raise DataError(f"{path}: shape {tuple(arr.shape)} but the {what} has {rows}; write one row per item of the "
                        f"{what}, in its file's order")
    return _align(path, got, arr, ids, what)


def query_file_ids(data: MiningData) -> list[str] | None:
    """Every query id of the queries file ``data`` was read from, in file order (``None`` when
    the queries did not come from a file)."""
    src = data.sources.get("queries") if data.sources else None
    if not src or not Path(src).is_file():
        return None
    from negmine.text.readers import read_queries

    return list(read_queries(src))
