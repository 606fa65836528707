"""Text encoders (text -> ``float32[n, d]``) and the on-disk embedding cache."""

from __future__ import annotations

from negmine.text.encoders.base import Encoder, HashingEncoder
from negmine.text.encoders.cache import EmbeddingCache, encode_cached
from negmine.text.encoders.st import SentenceTransformerEncoder, resolve_model

__all__ = [
    "EmbeddingCache",
    "Encoder",
    "HashingEncoder",
    "SentenceTransformerEncoder",
    "encode_cached",
    "resolve_model",
]
