"""The objects ``mine_hard_negatives`` receives, as negmine components: a loaded model as an
encoder (:class:`ModelEncoder`) or, for a similarity other than cosine/dot, a retriever
(:class:`ModelSimilarity`); a ``CrossEncoder`` as a scorer; and the peer's candidate selection as
one filter (:class:`PeerSelection`)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from negmine.text.retrievers.embedding import EmbeddingRetriever
from negmine.text.types import Candidates, MiningData, ScoreMatrix

__all__ = ["FINGERPRINT_PROBE", "CrossEncoderObject", "ModelEncoder", "ModelSimilarity", "PeerSelection",
           "similarity_name"]


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
