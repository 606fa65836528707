"""A drop-in for ``sentence_transformers.util.mine_hard_negatives``.

Moving over is changing one import::

    from negmine import mine_hard_negatives          # was: from sentence_transformers.util import ...

    triplets = mine_hard_negatives(pairs, model, num_negatives=5, range_min=10, range_max=50,
                                   relative_margin=0.05, sampling_strategy="random",
                                   output_format="n-tuple", output_scores=True)

The call runs negmine's one mining path (:func:`negmine.text.pipeline.mine`) with a peer-flavoured
selection filter, so the result follows the peer's semantics (see :func:`mine_hard_negatives`).
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from negmine.core.errors import ConfigError, DataError
from negmine.core.optional import require
from negmine.text.retrievers.embedding import EmbeddingRetriever
from negmine.text.types import Candidates, MiningData, ScoreMatrix

__all__ = ["OUTPUT_FORMATS", "mine_hard_negatives"]

log = logging.getLogger(__name__)

OUTPUT_FORMATS = ("triplet", "n-tuple", "n-tuple-scores", "labeled-pair", "labeled-list")


# -- inputs ---------------------------------------------------------------------------------------
def _as_dataset(dataset: Any) -> Any:
    """A ``datasets.Dataset`` from a Dataset, a one-split DatasetDict, a ``save_to_disk``
    directory, a jsonl/json/parquet/csv file, or any ``datasets.load_dataset`` path."""
    ds = require("datasets")
    if isinstance(dataset, (str, Path)):
        path = Path(dataset)
        try:
            if path.is_dir() and ((path / "state.json").is_file() or (path / "dataset_dict.json").is_file()):
                dataset = ds.load_from_disk(str(path))
            elif path.is_file():
                kind = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}.get(path.suffix)
                if kind is None:
                    raise DataError(f"{path}: unknown file type {path.suffix!r}; pass .jsonl, .json, .parquet or .csv")
                dataset = ds.load_dataset(kind, data_files=str(path), split="train")
            else:
                dataset = ds.load_dataset(str(dataset))
        except (OSError, ValueError, ds.exceptions.DatasetNotFoundError) as exc:
            if isinstance(exc, DataError):
                raise
            first = str(exc).splitlines()[0] if str(exc) else ""
            raise DataError(f"{dataset}: cannot load it as a dataset ({exc.__class__.__name__}: {first}); "
                            "pass a Dataset or a local path") from None
    if isinstance(dataset, ds.DatasetDict):
        if len(dataset) != 1:
            raise DataError(f"the dataset has splits {', '.join(dataset)}; pass one of them, e.g. dataset['train']")
        dataset = next(iter(dataset.values()))
    if not isinstance(dataset, ds.Dataset):
        raise DataError(f"expected a datasets.Dataset (or a path to one), got {type(dataset).__name__}")
    if len(dataset) == 0:
        raise DataError("The dataset is empty. Please provide a non-empty dataset.")
    return dataset


def _columns(dataset: Any, anchor: str | None, positive: str | None) -> tuple[str, str]:
    """The peer's choice: the named columns when present, else the first and second column."""
    cols = list(dataset.column_names)
    if not anchor or anchor not in cols:
        anchor = cols[0]
    if not positive or positive not in cols:
        rest = [c for c in cols if c != anchor]
        if not rest:
            raise DataError(f"the dataset has only the column {anchor!r}; it needs an anchor and a positive column")
        positive = rest[0]
    return anchor, positive


#: a fixed text whose embedding fingerprints a model that has no weights to hash (``state_dict``)
FINGERPRINT_PROBE = "negmine fingerprint probe: the quick brown fox jumps over the lazy dog"


class ModelEncoder:
    """A loaded model as a negmine :class:`~negmine.text.encoders.base.Encoder`: a
    ``SentenceTransformer`` (``encode_query``/``encode_document`` with the peer's prompts, always
    normalised) or any object with ``encode`` (a wrapper around an embedding API, a duck-typed
    model), called with the peer's arguments."""

    normalize = True

    def __init__(self, model: Any, *, query_prompt_name: str | None = None, query_prompt: str | None = None,
                 corpus_prompt_name: str | None = None, corpus_prompt: str | None = None,
                 batch_size: int = 32) -> None:
        self.model = model
        self.prompts = {"query": (query_prompt_name, query_prompt), "document": (corpus_prompt_name, corpus_prompt)}
        self.batch_size = batch_size
        self._fingerprint: str | None = None

    def fingerprint(self) -> str:
        """What identifies the model's embeddings: the names, shapes and first bytes of every
        weight when it has a ``state_dict()`` (cheap, stable); otherwise its class and the
        embedding of :data:`FINGERPRINT_PROBE` (one call: a model that embeds the probe alike
        embeds alike as far as a cache can tell)."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            state = getattr(self.model, "state_dict", None)
            if callable(state):
                for name, p in state().items():
                    arr = p.detach().cpu().reshape(-1)[:1024].float().numpy()
                    h.update(f"{name}{tuple(p.shape)}".encode())
                    h.update(arr.tobytes())
            else:
                cls = type(self.model)
                h.update(f"{cls.__module__}.{cls.__qualname__}".encode())
                h.update(np.ascontiguousarray(self._encode([FINGERPRINT_PROBE], "document", None, None)).tobytes())
            self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint

    def identity(self, kind: str) -> str:
        base = getattr(getattr(self.model, "model_card_data", None), "base_model", None) or "model"
        name, prompt = self.prompts[kind]
        return f"st-object:{base}:{self.fingerprint()}:prompt_name={name!r}:prompt={prompt!r}:normalize=True"

    def encode(self, texts: Sequence[str], kind: str) -> np.ndarray:
        name, prompt = self.prompts[kind]
        return self._encode(texts, kind, name, prompt)

    def _encode(self, texts: Sequence[str], kind: str, name: str | None, prompt: str | None) -> np.ndarray:
        fn = getattr(self.model, "encode_query" if kind == "query" else "encode_document", None)
        if not callable(fn):
            fn = self.model.encode
        from negmine.core.progress import enabled

        out = fn(list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True,
                 show_progress_bar=enabled() and len(texts) > self.batch_size, prompt_name=name, prompt=prompt)
        if hasattr(out, "detach"):  # a model that returns a tensor despite convert_to_numpy
            out = out.detach().cpu().numpy()
        return np.asarray(out, dtype=np.float32)


def similarity_name(model: Any) -> str | None:
    """How the peer would score ``model``'s embeddings: its ``similarity_fn_name`` (a
    SentenceTransformer: ``cosine``, ``dot``, ``euclidean``, ``manhattan``), ``"model.similarity"``
    for another object with a ``similarity`` method, ``None`` for one without (the peer cannot run
    it; negmine uses the inner product of the normalised embeddings)."""
    name = getattr(model, "similarity_fn_name", None)
    if isinstance(name, str):
        return name
    value = getattr(name, "value", None)  # a SimilarityFunction
    if value is not None:
        return str(value)
    return "model.similarity" if callable(getattr(model, "similarity", None)) else None


class ModelSimilarity(EmbeddingRetriever):
    """Exact search with the model's own ``similarity`` (e.g. ``euclidean``: ``-||q - d||``,
    ``manhattan``: ``-||q - d||₁`` on the normalised embeddings), as the peer scores: every query
    block against the whole corpus, the top ``k`` kept with ties to the lower corpus row; cells
    and positives scored by the same function. Used only for a similarity the inner-product
    search cannot reproduce (``cosine``/``dot`` on normalised embeddings go through
    :class:`~negmine.text.retrievers.dense.Dense`)."""

    name = "dense"
    exact_search = True
    #: scores per similarity call (query block × corpus)
    BLOCK_CELLS = 1 << 22

    def __init__(self, encoder: ModelEncoder, similarity: Any, label: str) -> None:
        super().__init__(encoder=encoder)
        self.similarity = similarity
        self.label = label

    def config(self) -> dict[str, Any]:
        return {**super().config(), "similarity": self.label}

    def _sim(self, q: np.ndarray, d: np.ndarray) -> np.ndarray:
        out = self.similarity(np.ascontiguousarray(q, dtype=np.float32), np.ascontiguousarray(d, dtype=np.float32))
        if hasattr(out, "detach"):
            out = out.detach().cpu().numpy()
        out = np.asarray(out, dtype=np.float32).reshape(len(q), len(d))
        return np.where(np.isnan(out), np.float32(-np.inf), out)

    def search(self, q: np.ndarray, d: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        from negmine.text.retrievers.base import resort

        rows = max(1, self.BLOCK_CELLS // max(1, len(d)))
        ids_out, scores_out = [], []
        for s in range(0, len(q), rows):
            sims = self._sim(q[s : s + rows], d)
            ids = np.broadcast_to(np.arange(len(d), dtype=np.int64), sims.shape)
            i, sc = resort(ids, sims, k)
            ids_out.append(i)
            scores_out.append(sc)
        if not ids_out:
            return np.zeros((0, k), np.int64), np.zeros((0, k), np.float32)
        return np.concatenate(ids_out), np.concatenate(scores_out)

    def _cells(self, q: np.ndarray, d: np.ndarray, ids: np.ndarray) -> np.ndarray:
        out = np.full(ids.shape, -np.inf, dtype=np.float32)
        for i in range(ids.shape[0]):
            ok = ids[i] >= 0
            if ok.any():
                out[i, ok] = self._sim(q[i : i + 1], d[ids[i, ok]])[0]
        return out

    def score_cells(self, data: MiningData, ids: np.ndarray, ctx: Any = None) -> np.ndarray:
        q, d = self.embed(data, ctx)
        return self._cells(q, d, ids)

    def candidates(self, q: np.ndarray, d: np.ndarray, ids: np.ndarray, k: int, data: MiningData,
                   exact_scores: np.ndarray | None = None) -> Candidates:
        from negmine.text.retrievers.base import resort

        ids, scores = resort(ids, self._cells(q, d, ids) if exact_scores is None else exact_scores, k)
        pos = data.positives
        positive_scores = np.empty(len(pos.indices), dtype=np.float32)
        for qi in range(len(pos.indptr) - 1):
            a, b = int(pos.indptr[qi]), int(pos.indptr[qi + 1])
            if b > a:
                positive_scores[a:b] = self._sim(q[qi : qi + 1], d[pos.indices[a:b]])[0]
        return Candidates(ids=ids, scores=scores, sources=(ids >= 0).astype(np.uint8), source_names=[self.name],
                          positive_scores=positive_scores)


class CrossEncoderObject:
    """A loaded ``CrossEncoder`` as a negmine scorer named ``cross-encoder``: ``predict`` on the
    kept cells and on every positive pair (the peer's rescoring)."""

    name = "cross-encoder"

    def __init__(self, model: Any, batch_size: int = 32) -> None:
        self.model = model
        self.batch_size = batch_size

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "model": str(getattr(self.model, "model_name_or_path", None) or "object")}

    def score(self, data: MiningData, candidates: Candidates, *, mask: np.ndarray | None = None,
              cache_dir: str | None = None) -> ScoreMatrix:
        ids = candidates.ids
        todo = (ids >= 0) if mask is None else (mask & (ids >= 0))
        docs = data.corpus.full_texts()
        qs, cs = np.nonzero(todo)
        pairs = [(data.queries.texts[q], docs[ids[q, c]]) for q, c in zip(qs.tolist(), cs.tolist())]
        pos = data.positives
        q_of_pair = np.repeat(np.arange(len(data.queries)), np.diff(pos.indptr))
        pos_pairs = [(data.queries.texts[q], docs[d]) for q, d in zip(q_of_pair.tolist(), pos.indices.tolist())]
        predicted = self._predict(pairs + pos_pairs)
        scores = np.full(ids.shape, np.nan, np.float32)
        scores[qs, cs] = predicted[: len(pairs)]
        return ScoreMatrix(self.name, scores, predicted[len(pairs):].astype(np.float32),
                           stats={"pairs_scored": len(pairs) + len(pos_pairs)})

    def _predict(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        if not pairs:
            return np.zeros(0, np.float32)
        out = self.model.predict(pairs, batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(out, dtype=np.float32).reshape(-1)


# -- the peer's selection as one filter -----------------------------------------------------------
class PeerSelection:
    """The peer's candidate selection on the cells that survived ``ExcludePositives``: drop by
    margin (reference: the query's *lowest* positive score; a tie with the threshold is kept) and
    by ``max_score``/``min_score``, then order the survivors by score and keep those ranked
    ``range_min <= rank < range_max`` *among the survivors*; with ``top`` only the first
    ``num_negatives`` of them. Scores are the retrieval's, or the cross-encoder's when
    ``source="cross-encoder"``."""

    name = "peer-selection"

    def __init__(self, *, range_min: int, range_max: int, absolute_margin: float | None,
                 relative_margin: float | None, max_score: float | None, min_score: float | None,
                 top: int | None, source: str = "retrieval") -> None:
        self.range_min, self.range_max, self.top = range_min, range_max, top
        self.absolute_margin, self.relative_margin = absolute_margin, relative_margin
        self.max_score, self.min_score = max_score, min_score
        self.source = source
        self.needs = "cross-encoder" if source == "cross-encoder" else None

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "range_min": self.range_min, "range_max": self.range_max,
                "absolute_margin": self.absolute_margin, "relative_margin": self.relative_margin,
                "max_score": self.max_score, "min_score": self.min_score, "top": self.top, "source": self.source}

    def scores(self, inp: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(scores float32[n_q, k], positive_scores float32[n_pairs])`` of the source."""
        if self.source == "cross-encoder":
            m = inp.matrix("cross-encoder")
            return m.scores.astype(np.float32), m.positive_scores.astype(np.float32)
        return inp.candidates.scores.astype(np.float32), inp.candidates.positive_scores.astype(np.float32)

    def keep(self, inp: Any) -> np.ndarray:
        cur = inp.current if inp.current is not None else inp.candidates.ids >= 0
        s, ps = self.scores(inp)
        s = np.where(cur & np.isfinite(s), s, np.float32(-np.inf))
        ok = np.isfinite(s)
        if self.absolute_margin is not None or self.relative_margin is not None:
            indptr = inp.data.positives.indptr
            ref = np.minimum.reduceat(ps, indptr[:-1]).astype(np.float32)  # every query has a positive
            if self.absolute_margin is not None:
                ok &= ~(s + np.float32(self.absolute_margin) > ref[:, None])
            if self.relative_margin is not None:
                ok &= ~(s > (ref - np.abs(ref) * np.float32(self.relative_margin))[:, None])
        if self.max_score is not None:
            ok &= ~(s > np.float32(self.max_score))
        if self.min_score is not None:
            ok &= ~(s < np.float32(self.min_score))
        k = s.shape[1]
        order = np.lexsort((np.broadcast_to(np.arange(k), s.shape), -np.where(ok, s, -np.inf)), axis=1)
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.broadcast_to(np.arange(k), s.shape), axis=1)
        hi = self.range_max if self.top is None else min(self.range_max, self.range_min + self.top)
        return ok & (rank >= self.range_min) & (rank < hi)


# -- the drop-in ----------------------------------------------------------------------------------
def mine_hard_negatives(
    dataset: Any,
    model: Any,
    anchor_column_name: str | None = None,
    positive_column_name: str | None = None,
    corpus: list[str] | None = None,
    cross_encoder: Any = None,
    range_min: int = 0,
    range_max: int | None = None,
    max_score: float | None = None,
    min_score: float | None = None,
    absolute_margin: float | None = None,
    relative_margin: float | None = None,
    num_negatives: int = 3,
    sampling_strategy: str = "top",
    query_prompt_name: str | None = None,
    query_prompt: str | None = None,
    corpus_prompt_name: str | None = None,
    corpus_prompt: str | None = None,
    include_positives: bool = False,
    output_format: str = "triplet",
    output_scores: bool = False,
    batch_size: int = 32,
    faiss_batch_size: int = 16384,
    use_faiss: bool = False,
    use_multi_process: list[str] | bool = False,
    verbose: bool = True,
    cache_folder: str | None = None,
    as_triplets: bool | None = None,
    margin: float | None = None,
    *,
    prompt_name: str | None = None,
    seed: int = 0,
) -> Any:
    """Mine hard negatives with sentence-transformers' signature and output, through negmine.

    Accepts every argument of ``sentence_transformers.util.mine_hard_negatives`` (6.x) and returns
    the same ``datasets.Dataset`` columns: ``triplet`` (anchor, positive, negative[, scores]),
    ``n-tuple`` (anchor, positive, negative_1..n[, scores]; ``n-tuple-scores`` is ``n-tuple``
    with scores), ``labeled-pair`` (anchor, document, label | score), ``labeled-list`` (anchor,
    [documents], [labels] | [scores]). Column names are the input's anchor and positive columns.

    ``dataset`` may also be a ``save_to_disk`` directory, a jsonl/json/parquet/csv file, or a
    ``load_dataset`` path; ``model`` a loaded ``SentenceTransformer``, a model name/path, or any
    object with ``encode`` (and optionally ``similarity``; without ``state_dict()`` it is
    fingerprinted by its class and the embedding of :data:`FINGERPRINT_PROBE`).
    ``prompt_name`` sets ``query_prompt_name`` when that is not given.

    Semantics follow the peer, not negmine's own defaults:

    - the rank window ``range_min``/``range_max`` is counted among the candidates that survive
      the positives' removal and the margin/score filters (negmine's ``RankWindow`` counts raw
      retrieval ranks); the default ``range_max`` is the peer's (``range_min + num_negatives +
      max positives``, times 10 negatives when a margin or score filter is set);
    - margins are inclusive (a candidate exactly at ``s⁺ − margin`` is kept) and refer to the
      query's lowest positive; near-duplicates of a positive are *not* removed (only identical
      texts, which the peer de-duplicates);
    - with a ``cross_encoder`` and a margin/score filter, candidates are rescored, filtered,
      ordered and reported with the cross-encoder's scores, as the peer does;
    - scores are the model's similarity: ``cosine``/``dot`` by the exact inner-product search
      (the embeddings are normalised), ``euclidean``/``manhattan`` or an object's own
      ``similarity`` through ``model.similarity`` (:class:`ModelSimilarity`);
    - a shortfall logs the peer's hint at WARNING ("Could not find enough negatives for N
      samples ..."), whatever ``verbose`` says.

    Where the peer cannot be followed: ``sampling_strategy="random"`` is seeded by ``seed``
    (position-free, reproducible) where the peer uses the global ``random`` state;
    ``include_positives=True`` is refused (negmine never makes a positive a negative);
    ``use_faiss``/``faiss_batch_size``/``use_multi_process`` are accepted and ignored (the exact
    search returns the neighbours a flat FAISS index would); ``verbose`` logs instead of printing;
    an object without ``similarity`` is scored by the inner product of its normalised embeddings.
    """
    from negmine.text.data import from_pairs
    from negmine.text.pipeline import mine
    from negmine.text.retrievers.dense import Dense
    from negmine.text.samplers import Random, Top

    if as_triplets is not None:
        log.warning("as_triplets is deprecated; use output_format")
        output_format = "triplet" if as_triplets else "n-tuple"
    if margin is not None:
        log.warning("margin is deprecated; use absolute_margin or relative_margin")
        absolute_margin = margin
    if output_format == "n-tuple-scores":
        output_format, output_scores = "n-tuple", True
    if output_format not in OUTPUT_FORMATS:
        raise ConfigError(f"Invalid output_format: {output_format!r}; use one of {', '.join(OUTPUT_FORMATS)}")
    if sampling_strategy not in ("top", "random"):
        raise ConfigError(f"sampling_strategy must be 'top' or 'random', got {sampling_strategy!r}")
    if include_positives:
        raise ConfigError("include_positives=True is not supported: negmine never makes a positive a negative")
    if faiss_batch_size <= 0:
        raise ConfigError(f"faiss_batch_size must be a positive integer, got {faiss_batch_size}")
    if isinstance(num_negatives, bool) or not isinstance(num_negatives, int):
        raise ConfigError(f"num_negatives must be an integer, got num_negatives={num_negatives!r}.")
    if num_negatives < 1:  # the peer's words
        raise ConfigError(f"num_negatives must be at least 1, got num_negatives={num_negatives}.")
    query_prompt_name = query_prompt_name if query_prompt_name is not None else prompt_name

    ds = _as_dataset(dataset)
    anchor_col, positive_col = _columns(ds, anchor_column_name, positive_column_name)
    anchors, positives = list(ds[anchor_col]), list(ds[positive_col])
    by_anchor: dict[str, list[str]] = {}
    for a, p in zip(anchors, positives):
        by_anchor.setdefault(a, [])
        if p not in by_anchor[a]:
            by_anchor[a].append(p)
    # the peer counts rows per anchor, a repeated (anchor, positive) row included: its default
    # range_max and its candidate count (range_max + max_positives + 1) follow that count
    max_positives = max(Counter(anchors).values())

    filtering = any(x is not None for x in (absolute_margin, relative_margin, max_score)) or (
        cross_encoder is not None and min_score is not None)
    if range_max is None:
        range_max = range_min + num_negatives * (10 if filtering else 1) + max_positives
    if range_min < 0:
        raise ConfigError(f"range_min must be non-negative, got range_min={range_min}")
    if range_min >= range_max:
        raise ConfigError(f"range_min must be smaller than range_max, got range_min={range_min} and "
                          f"range_max={range_max}")
    if num_negatives > range_max - range_min:
        raise ConfigError(f"Cannot mine {num_negatives} negatives per query: only {range_max - range_min} "
                          f"candidates remain after skipping the first range_min={range_min} of range_max={range_max}")

    data = from_pairs(anchors, positives, corpus, where="dataset")
    if isinstance(model, (str, Path)):
        from negmine.text.encoders.st import resolve_model

        model = require("sentence_transformers").SentenceTransformer(resolve_model(str(model)))
    encoder = ModelEncoder(model, query_prompt_name=query_prompt_name, query_prompt=query_prompt,
                           corpus_prompt_name=corpus_prompt_name, corpus_prompt=corpus_prompt, batch_size=batch_size)
    source = "cross-encoder" if cross_encoder is not None and filtering else "retrieval"
    top = num_negatives if sampling_strategy == "top" else None
    selection = PeerSelection(range_min=range_min, range_max=range_max, absolute_margin=absolute_margin,
                              relative_margin=relative_margin, max_score=max_score, min_score=min_score, top=top,
                              source=source)
    scorers = [CrossEncoderObject(cross_encoder, batch_size)] if source == "cross-encoder" else []
    sampler: Top | Random = Top() if top else Random()
    sim = similarity_name(model)
    retriever: Any = Dense(encoder=encoder) if sim in (None, "cosine", "dot") else ModelSimilarity(
        encoder, model.similarity, sim)
    result = mine(data, retriever, [selection], sampler, num_negatives, seed,
                  depth=range_max + max_positives + 1, near_duplicates=False, cache_dir=cache_folder, scorers=scorers)

    neg_rows, neg_scores = _chosen(result, source)
    pos_scores = _positive_scores(result, source)
    text_row = {t: i for i, t in enumerate(data.corpus.texts)}
    q_row = {t: i for i, t in enumerate(data.queries.texts)}
    columns = _output(output_format, output_scores, anchor_col, positive_col, by_anchor, q_row, text_row,
                      data.corpus.texts, neg_rows, neg_scores, pos_scores, num_negatives)
    if verbose:
        log.info("mine_hard_negatives: %d rows (%s) for %d anchors", len(columns[anchor_col]), output_format,
                 len(by_anchor))
    rows = len(columns[anchor_col])
    n_pairs = sum(len(v) for v in by_anchor.values())
    possible = {"triplet": n_pairs * num_negatives, "labeled-pair": len(by_anchor) * num_negatives + len(ds)}.get(
        output_format, n_pairs)
    _warn_shortfall(possible - rows, possible, range_min=range_min, absolute_margin=absolute_margin,
                    relative_margin=relative_margin, max_score=max_score)
    return require("datasets").Dataset.from_dict(columns)


def _warn_shortfall(missing: int, possible: int, *, range_min: int, absolute_margin: float | None,
                    relative_margin: float | None, max_score: float | None) -> None:
    """The peer's hint when rows are missing (counted as the peer counts the rows a format could
    have had), logged at WARNING whatever ``verbose`` says: a shortfall is always reported."""
    if missing <= 0 or possible <= 0:
        return
    solutions = ["range_max"]
    if range_min > 0:
        solutions.append("range_min")
    for name, value in (("absolute_margin", absolute_margin), ("relative_margin", relative_margin),
                        ("max_score", max_score)):
        if value is not None:
            solutions.append(name)
    considerations = ", ".join(solutions[:-1]) + " and " + solutions[-1] if len(solutions) > 1 else solutions[0]
    log.warning("Could not find enough negatives for %d samples (%.2f%%). Consider adjusting the %s parameter%s if "
                "you'd like to find more valid negatives.", missing, 100 * missing / possible, considerations,
                "s" if len(solutions) > 1 else "")


def _chosen(result: Any, source: str) -> tuple[list[list[int]], list[list[float]]]:
    """Per query, the chosen document rows and their scores, best first (the peer's order)."""
    cols = result.columns
    scores = result.matrices["cross-encoder"].scores if source == "cross-encoder" else result.candidates.scores
    rows_out: list[list[int]] = []
    scores_out: list[list[float]] = []
    for q in range(cols.shape[0]):
        c = cols[q][cols[q] >= 0]
        pairs = sorted(zip((-scores[q, c]).tolist(), c.tolist()))
        rows_out.append([int(result.candidates.ids[q, j]) for _, j in pairs])
        scores_out.append([float(scores[q, j]) for _, j in pairs])
    return rows_out, scores_out


def _positive_scores(result: Any, source: str) -> dict[tuple[int, int], float]:
    pos = result.data.positives
    ps = result.matrices["cross-encoder"].positive_scores if source == "cross-encoder" \
        else result.candidates.positive_scores
    q_of = np.repeat(np.arange(len(pos.indptr) - 1), np.diff(pos.indptr))
    return {(int(q), int(d)): float(s) for q, d, s in zip(q_of, pos.indices, ps)}


def _output(fmt: str, with_scores: bool, a_col: str, p_col: str, by_anchor: dict[str, list[str]],
            q_row: dict[str, int], text_row: dict[str, int], texts: Sequence[str], neg_rows: list[list[int]],
            neg_scores: list[list[float]], pos_scores: dict[tuple[int, int], float],
            n: int) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {a_col: [], p_col: []}
    if fmt == "triplet":
        out["negative"] = []
    elif fmt == "n-tuple":
        out.update({f"negative_{i}": [] for i in range(1, n + 1)})
    score_col = {"labeled-pair": "score" if with_scores else "label",
                 "labeled-list": "scores" if with_scores else "labels"}.get(fmt, "scores")
    if with_scores or fmt in ("labeled-pair", "labeled-list"):
        out[score_col] = []
    for anchor, pos_texts in by_anchor.items():
        q = q_row[anchor]
        negs, ns = neg_rows[q], neg_scores[q]
        if fmt == "labeled-pair":
            for p in pos_texts:
                out[a_col].append(anchor)
                out[p_col].append(p)
                out[score_col].append(pos_scores[(q, text_row[p])] if with_scores else 1)
            for d, s in zip(negs, ns):
                out[a_col].append(anchor)
                out[p_col].append(texts[d])
                out[score_col].append(s if with_scores else 0)
            continue
        for p in pos_texts:
            ps = pos_scores[(q, text_row[p])]
            if fmt == "triplet":
                for d, s in zip(negs, ns):
                    out[a_col].append(anchor)
                    out[p_col].append(p)
                    out["negative"].append(texts[d])
                    if with_scores:
                        out["scores"].append([ps, s])
            elif fmt == "n-tuple":
                if len(negs) < n:
                    continue
                out[a_col].append(anchor)
                out[p_col].append(p)
                for i, d in enumerate(negs, start=1):
                    out[f"negative_{i}"].append(texts[d])
                if with_scores:
                    out["scores"].append([ps, *ns])
            elif negs:  # labeled-list
                out[a_col].append(anchor)
                out[p_col].append([p] + [texts[d] for d in negs])
                out[score_col].append([ps, *ns] if with_scores else [1] + [0] * len(negs))
    return out
