"""Cross-encoder scorer (extra ``st``): RocketQA-style denoising of mined candidates.

A cross-encoder reads the query and the document *together* and is much more accurate than the
bi-encoder or BM25 that retrieved the candidates — and much slower, so it only rescores the
``n_queries × k`` candidate cells (plus the known positives), never the corpus. RocketQA (Qu et
al., NAACL 2021) keeps a candidate as a negative only when the cross-encoder's *probability* that
it is relevant is below 0.1 (and treats it as a pseudo-positive above 0.9); the logit-margin
variant drops a candidate when ``ce(n) > min ce(p) − 3.0``. Filters read the matrix this scorer
returns by its name (``"cross-encoder"``); the retrieval scores are kept next to it, never replaced.

Pair scores are cached on disk (see :class:`PairScoreCache`), keyed by the model's identity, the
activation, ``max_length`` and the exact pair texts, so re-mining with other filters or samplers
predicts nothing twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from negmine.core.errors import ConfigError, DataError
from negmine.core.optional import require
from negmine.core.progress import progress
from negmine.text.encoders.st import model_fingerprint, resolve_path
from negmine.text.scorers.base import ScoreMatrix
from negmine.text.scorers.pair_cache import KEY_BYTES as KEY_BYTES  # re-exported (the cache lives in pair_cache)
from negmine.text.scorers.pair_cache import PairScoreCache, pair_keys
from negmine.text.types import Candidates, MiningData

log = logging.getLogger(__name__)

#: activation name -> meaning of the scores (see :class:`CrossEncoderScorer`)
ACTIVATIONS = ("sigmoid", "none")
EXAMPLE_MODEL = "cross-encoder/ms-marco-MiniLM-L6-v2"
FLUSH_PAIRS = 16384  # predicted scores are written to the cache in segments of about this size


def resolve_model_path(name: str) -> str:
    """A local path for ``name`` when it is an existing directory, otherwise the hub name as is
    (see :func:`negmine.text.encoders.st.resolve_path`)."""
    return resolve_path(name, what="cross-encoder model", example=EXAMPLE_MODEL)




class CrossEncoderScorer:
    """Rescore candidates with a sentence-transformers ``CrossEncoder`` (RocketQA denoising).

    Every valid candidate cell (``ids >= 0``; only the cells of ``mask`` when
    the pipeline passes one) and every (query, positive) pair of ``data.positives`` is scored,
    identical (query text, document text) pairs once, in batches, with a progress bar; scores come
    from the disk cache when the same model, activation, ``max_length`` and texts were scored
    before. Documents are ``title + " " + text``, as retrieval sees them.

    Unlike the ``llm-judge`` scorer it returns a continuous score, not a verdict; unlike the
    ``bi-encoder`` scorer it reads query and document jointly (slower, more accurate).

    Parameters
    ----------
    model
        Hub name (e.g. ``"cross-encoder/ms-marco-MiniLM-L6-v2"``, which must already be in the
        local Hugging Face cache when offline) or a local model directory. A path that does not
        exist raises :class:`~negmine.core.errors.ConfigError`. The model must output one relevance
        logit per pair (``num_labels == 1``).
    batch_size
        Pairs per forward pass.
    max_length
        Truncate ``[query; document]`` to this many tokens; ``None`` keeps the model's limit.
    activation
        ``"sigmoid"`` (default): scores are probabilities ``σ(logit)`` in ``[0, 1]`` whatever the
        model's own configured activation, so thresholds read as in RocketQA (negative iff
        ``p < 0.1``, pseudo-positive iff ``p > 0.9``). ``"none"``: raw logits, for logit margins
        such as ``ce(n) > min ce(p) − 3.0``.
    cache_dir
        Directory of the pair-score cache; ``None`` uses ``<the run's cache_dir>/cross-encoder``
        when the pipeline has a cache directory, and no cache otherwise.
    device
        Torch device, e.g. ``"cpu"`` or ``"cuda"``.

    Examples
    --------
    >>> scorer = CrossEncoderScorer("cross-encoder/ms-marco-MiniLM-L6-v2")  # doctest: +SKIP
    >>> m = scorer.score(data, candidates)  # doctest: +SKIP
    >>> keep = ~(m.scores >= 0.1)  # RocketQA: keep as a negative iff p < 0.1  # doctest: +SKIP
    """

    name = "cross-encoder"

    def __init__(
        self,
        model: str,
        *,
        batch_size: int = 32,
        max_length: int | None = None,
        activation: str = "sigmoid",
        cache_dir: str | Path | None = None,
        device: str = "cpu",
    ) -> None:
        self.model = model
        self.batch_size = batch_size
        self.max_length = max_length
        self.activation = activation
        self.cache_dir = cache_dir
        self.device = device
        self.model_: Any = None
        self.path_: str | None = None

    def config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": self.model,
            "activation": self.activation,
            "max_length": self.max_length,
            "batch_size": self.batch_size,
        }

    # -- model ---------------------------------------------------------------------------------

    def _check(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ConfigError(
                f"unknown cross-encoder activation {self.activation!r}; use one of: {', '.join(ACTIVATIONS)}"
            )
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ConfigError(f"cross-encoder batch_size must be a positive integer, got {self.batch_size!r}")
        if self.max_length is not None and (not isinstance(self.max_length, int) or self.max_length < 1):
            raise ConfigError(f"cross-encoder max_length must be a positive integer or None, got {self.max_length!r}")

    def _path(self) -> str:
        if self.path_ is None:
            self.path_ = resolve_model_path(self.model)
        return self.path_

    def _load(self) -> Any:
        if self.model_ is None:
            path = self._path()
            st = require("sentence_transformers")
            kwargs: dict[str, Any] = {"device": self.device}
            if self.max_length is not None:
                kwargs["max_length"] = self.max_length
            try:
                model = st.CrossEncoder(path, **kwargs)
            except OSError as exc:
                raise ConfigError(
                    f"cannot load cross-encoder {self.model!r} ({exc.__class__.__name__}); it is not a local "
                    "directory and cannot be downloaded here: pass a local path"
                ) from None
            if model.num_labels != 1:
                raise ConfigError(
                    f"cross-encoder {self.model!r} has {model.num_labels} output labels; negmine needs one "
                    f"relevance score per pair (num_labels=1), as rerankers such as {EXAMPLE_MODEL!r} have"
                )
            self.model_ = model
        return self.model_

    def identity(self) -> str:
        """What the cached scores depend on: model files, activation and ``max_length``."""
        path = self._path()
        if not Path(path).is_dir():  # a hub name: fingerprint the cached snapshot
            self._load()
            hub = require("huggingface_hub")
            found = hub.try_to_load_from_cache(path, "config.json")
            if isinstance(found, str):
                path = str(Path(found).parent)
        files = model_fingerprint(path) if Path(path).is_dir() else "hub"
        return f"cross-encoder:{path}:{files}:activation={self.activation}:max_length={self.max_length}"

    def _cache(self, shared: str | None) -> PairScoreCache | None:
        if self.cache_dir is not None:
            root = Path(self.cache_dir)
        elif shared:
            root = Path(shared) / "cross-encoder"
        else:
            return None
        return PairScoreCache(root, self.identity())

    def _batches(self, queries: Sequence[str], documents: Sequence[str]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(positions, scores)`` batch by batch, longest pairs first (batches pad little)."""
        model = self._load()
        torch = require("torch")
        act = torch.nn.Sigmoid() if self.activation == "sigmoid" else torch.nn.Identity()
        n = len(queries)
        order = np.argsort([-(len(q) + len(d)) for q, d in zip(queries, documents)], kind="stable")
        bs = self.batch_size
        for start in progress(range(0, n, bs), desc="cross-encoder", total=-(-n // bs), unit="batch"):
            idx = order[start : start + bs]
            pred = model.predict(
                [(queries[i], documents[i]) for i in idx],
                batch_size=bs,
                activation_fn=act,
                show_progress_bar=False,
                convert_to_numpy=True,
            )
            yield idx, np.asarray(pred, dtype=np.float32).reshape(-1)

    def predict(self, queries: Sequence[str], documents: Sequence[str]) -> np.ndarray:
        """``float32[n]``: the score of each ``(queries[i], documents[i])`` pair (no cache, no
        de-duplication)."""
        self._check()
        out = np.full(len(queries), np.nan, np.float32)
        for idx, pred in self._batches(queries, documents):
            out[idx] = pred
        return out

    # -- scoring -------------------------------------------------------------------------------

    def score(self, data: MiningData, candidates: Candidates, *, mask: np.ndarray | None = None,
              cache_dir: str | None = None) -> ScoreMatrix:
        """Score the candidate cells and the positives of ``data``.

        Parameters
        ----------
        data
            Queries (``data.queries.texts``), corpus (``data.corpus.full_texts()``) and positives.
        candidates
            ``ids int64[n_queries, k]``, ``-1`` = padding.
        mask
            ``bool[n_queries, k]``: score only these cells (default: every valid cell).
        cache_dir
            The run's cache directory; the pair-score cache goes under ``cache_dir/cross-encoder``
            unless the scorer has its own ``cache_dir``.

        Returns
        -------
        ScoreMatrix
            ``scores float32[n_queries, k]`` (``NaN`` for padding and unscored cells),
            ``positive_scores float32[n_pairs]`` aligned with ``data.positives.indices``, and
            ``stats``: ``pairs_requested`` (cells + positive pairs), ``pairs_unique`` (distinct
            texts), ``pairs_scored`` (predicted by the model in this call), ``cache_hits``
            (``pairs_unique - pairs_scored``) and ``seconds``.
        """
        t0 = time.perf_counter()
        self._check()
        self._path()  # a missing model path fails before any work
        ids = np.asarray(candidates.ids)
        cq, cj, all_q, all_d = _requested(data, ids, mask)
        n_docs = len(data.corpus)

        # distinct (query row, doc row) pairs, then distinct (query text, doc text) pairs
        row_codes, row_inv = np.unique(all_q * max(n_docs, 1) + all_d, return_inverse=True)
        uq, ud = row_codes // max(n_docs, 1), row_codes % max(n_docs, 1)
        doc_texts = data.corpus.full_texts() if len(ud) else []
        q_texts = [data.queries.texts[i] for i in uq]
        d_texts = [doc_texts[i] for i in ud]
        keys = pair_keys(q_texts, d_texts)
        ukeys, first, key_inv = np.unique(keys, return_index=True, return_inverse=True)

        cache = self._cache(cache_dir) if len(ukeys) else None
        if cache is not None:
            values, found = cache.lookup(ukeys)
        else:
            values, found = np.full(len(ukeys), np.nan, np.float32), np.zeros(len(ukeys), bool)
        todo = np.flatnonzero(~found)
        log.info(
            "cross-encoder %s: %d pairs, %d distinct, %d cached, %d to predict",
            self.model, len(all_q), len(ukeys), len(ukeys) - len(todo), len(todo),
        )
        if len(todo):
            rows = first[todo]
            self._predict_into(values, todo, [q_texts[i] for i in rows], [d_texts[i] for i in rows], ukeys, cache)

        per_pair = values[key_inv.reshape(-1)][row_inv.reshape(-1)]
        scores = np.full(ids.shape, np.nan, np.float32)
        scores[cq, cj] = per_pair[: len(cq)]
        positive_scores = np.ascontiguousarray(per_pair[len(cq) :], dtype=np.float32)
        stats = {
            "pairs_requested": len(all_q),
            "pairs_unique": len(ukeys),
            "pairs_scored": len(todo),
            "cache_hits": len(ukeys) - len(todo),
            "seconds": time.perf_counter() - t0,
        }
        return ScoreMatrix(name=self.name, scores=scores, positive_scores=positive_scores, stats=stats)

    def _predict_into(self, values: np.ndarray, todo: np.ndarray, queries: list[str], documents: list[str],
                      ukeys: np.ndarray, cache: PairScoreCache | None) -> None:
        """Predict the pairs ``todo`` (their texts ``queries``/``documents``) into ``values``,
        adding them to the ``cache`` in segments of about ``FLUSH_PAIRS`` as they arrive."""
        done: list[np.ndarray] = []
        for idx, pred in self._batches(queries, documents):
            values[todo[idx]] = pred
            done.append(todo[idx])
            if cache is not None and sum(map(len, done)) >= FLUSH_PAIRS:
                flushed = np.concatenate(done)
                cache.add(ukeys[flushed], values[flushed])
                done = []
        if cache is not None and done:
            flushed = np.concatenate(done)
            cache.add(ukeys[flushed], values[flushed])


def _requested(data: MiningData, ids: np.ndarray,
               mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(cell rows, cell columns, query row, document row)`` of every pair to score: the valid
    (and ``mask``-ed) candidate cells, then every positive pair; the shapes and rows checked."""
    n_q = len(data.queries)
    if ids.ndim != 2 or ids.shape[0] != n_q:
        raise DataError(
            f"candidates have shape {ids.shape} but there are {n_q} queries; pass the candidates of this data"
        )
    cells = ids >= 0
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != ids.shape or mask.dtype != bool:
            raise ConfigError(
                f"mask must be bool{list(ids.shape)} like the candidate ids, "
                f"got {mask.dtype}{list(mask.shape)}"
            )
        cells &= mask
    cq, cj = np.nonzero(cells)
    all_q = np.concatenate([cq.astype(np.int64), data.positives.query_of_pair()])
    all_d = np.concatenate([ids[cq, cj].astype(np.int64), np.asarray(data.positives.indices, np.int64)])
    n_docs = len(data.corpus)
    if len(all_d) and (all_d.min() < 0 or all_d.max() >= n_docs):
        raise DataError(f"candidate or positive document rows fall outside the corpus of {n_docs} documents")
    return cq, cj, all_q, all_d
