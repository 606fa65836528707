"""The models of training (:mod:`negmine.text.train.trainer`): loading a sentence-transformers model
offline, the encoder over the model being trained, and the model a mining run retrieved with."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from negmine.core.errors import ConfigError
from negmine.core.optional import require
from negmine.core.progress import enabled as progress_enabled
from negmine.text.encoders.base import Kind
from negmine.text.encoders.st import resolve_model


class LiveEncoder:
    """An :class:`~negmine.text.encoders.Encoder` over a ``SentenceTransformer`` held in memory — the
    model being trained — so re-mining and evaluation see its current weights.

    ``step`` is part of the identity, but two training runs (two seeds) reach the same step with
    different weights: the embeddings of a live model are never cached (``cacheable = False``,
    honoured by :class:`~negmine.text.retrievers.embedding.EmbeddingRetriever`), even when the
    re-mining run's options name a cache directory. Encoding switches the model to eval mode (no
    dropout) and restores its mode afterwards.
    """

    #: the weights change under the same identity: never read or write an embedding cache
    cacheable = False

    def __init__(self, model: Any, *, query_prompt: str | None = None, document_prompt: str | None = None,
                 batch_size: int = 32, normalize: bool = True) -> None:
        self.model = model
        self.query_prompt = query_prompt
        self.document_prompt = document_prompt
        self.batch_size = batch_size
        self.normalize = normalize
        self.step = 0

    def identity(self, kind: Kind) -> str:
        prompt = self.query_prompt if kind == "query" else self.document_prompt
        return f"live-model:step={self.step}:prompt={prompt!r}:normalize={self.normalize}"

    def encode(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        fn = getattr(self.model, "encode_query" if kind == "query" else "encode_document", self.model.encode)
        prompt = self.query_prompt if kind == "query" else self.document_prompt
        kwargs: dict[str, Any] = {
            "batch_size": self.batch_size, "normalize_embeddings": self.normalize, "convert_to_numpy": True,
            "show_progress_bar": progress_enabled() and len(texts) > self.batch_size,
        }
        if prompt is not None:
            kwargs["prompt"] = prompt
        was_training = self.model.training
        try:
            out = fn(list(texts), **kwargs)
        finally:
            self.model.train(was_training)
        return np.asarray(out, dtype=np.float32)


def load_model(name: str, *, max_seq_length: int | None, role: str = "model") -> tuple[Any, str]:
    """``(SentenceTransformer on cpu, resolved path or name)``; :class:`ConfigError` when it
    cannot be loaded offline."""
    st = require("sentence_transformers")
    path = resolve_model(name)
    try:
        model = st.SentenceTransformer(path, device="cpu")
    except OSError as exc:
        flag = "--guide" if role == "guide" else "--model"
        raise ConfigError(
            f"cannot load {role} {name!r} ({exc.__class__.__name__}); it is not a local directory and cannot be "
            f"downloaded here: pass a local model directory with {flag}"
        ) from None
    if max_seq_length is not None:
        model.max_seq_length = max_seq_length
    return model, path


def mining_model(manifest: dict[str, Any]) -> str | None:
    """The sentence-transformers model a mining run retrieved with (a dense or faiss retriever,
    or such a member of union / hybrid); ``None`` when it used none (BM25, a run file, an
    encoder built in code)."""

    def walk(c: Any) -> str | None:
        if not isinstance(c, dict):
            return None
        m = c.get("model")
        if c.get("name") in ("dense", "faiss") and isinstance(m, str) and m:
            if ":" not in m or Path(m).exists():  # encoders built in code have identities such as "hashing:..."
                return m
        for sub in c.get("members") or []:
            found = walk(sub)
            if found:
                return found
        return None

    return walk((manifest.get("config") or {}).get("retriever"))
