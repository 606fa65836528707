"""The encoder protocol and a deterministic hashing encoder built in code."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Literal, Protocol

import numpy as np

Kind = Literal["query", "document"]
_TOKEN = re.compile(r"\w+")


class Encoder(Protocol):
    """Turns texts into ``float32[n, d]`` embeddings.

    ``identity(kind)`` must change whenever the embeddings of the same text could change
    (model, weights, prompt, normalisation, maximum length): it keys the embedding cache.
    """

    normalize: bool

    def identity(self, kind: Kind) -> str: ...

    def encode(self, texts: Sequence[str], kind: Kind) -> np.ndarray: ...


class HashingEncoder:
    """A deterministic bag-of-words encoder: each lower-cased word adds ±1 to a hashed dimension.

    No model weights, no randomness, each text encoded independently of the others — handy for
    tests and for trying the pipeline on machines without a model. Not a substitute for a real
    embedding model.

    Examples
    --------
    >>> HashingEncoder(dim=8).encode(["a b"], "query").shape
    (1, 8)
    """

    def __init__(self, dim: int = 256, normalize: bool = True) -> None:
        self.dim = dim
        self.normalize = normalize

    def identity(self, kind: Kind) -> str:
        return f"hashing:dim={self.dim}:normalize={self.normalize}"

    def encode(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for tok in _TOKEN.findall(text.lower()):
                h = int.from_bytes(hashlib.blake2b(tok.encode(), digest_size=8).digest(), "little")
                out[i, h % self.dim] += 1.0 if (h >> 63) else -1.0
        if self.normalize:
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            np.divide(out, norms, out=out, where=norms > 0)
        return out
