"""On-disk embedding cache keyed by encoder identity and a fingerprint of the texts."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from negmine.encoders.base import Encoder, Kind


def texts_fingerprint(texts: Sequence[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()


class EmbeddingCache:
    """Embeddings stored as ``<dir>/<key>.npy``; the key hashes the encoder identity (model,
    weights, prompt, normalisation, max length) and the texts, so a hit is always the same
    embeddings the encoder would produce."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def key(self, encoder: Encoder, kind: Kind, texts: Sequence[str]) -> str:
        raw = f"{encoder.identity(kind)}\x00{kind}\x00{texts_fingerprint(texts)}"
        return hashlib.sha256(raw.encode()).hexdigest()[:32]

    def load(self, key: str, n: int) -> np.ndarray | None:
        path = self.directory / f"{key}.npy"
        if not path.is_file():
            return None
        try:
            arr = np.load(path, mmap_mode="r")
        except (OSError, ValueError):
            return None  # a corrupt entry is a miss; it is rewritten below
        if arr.ndim != 2 or arr.shape[0] != n or arr.dtype != np.float32:
            return None
        return np.asarray(arr)

    def save(self, key: str, emb: np.ndarray) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".npy.tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.save(fh, np.ascontiguousarray(emb, dtype=np.float32))
            os.replace(tmp, self.directory / f"{key}.npy")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


#: texts per cache entry: an interrupted encoding resumes from its last completed chunk, and a
#: corpus that grows at the end re-encodes only its last chunks
CHUNK = 4096


def encode_cached(
    encoder: Encoder, texts: Sequence[str], kind: Kind, cache: EmbeddingCache | None, stats: dict[str, int],
    *, chunk: int = CHUNK,
) -> np.ndarray:
    """Encode ``texts`` in fixed chunks of ``chunk`` texts, each loaded from ``cache`` when present
    and saved as soon as it is encoded; counts go to ``stats`` (``{kind}_cached``,
    ``{kind}_encoded``). The chunking is the same with or without a cache and however often a run
    was interrupted, so the embeddings are the same bytes either way."""
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    parts: list[np.ndarray] = []
    for start in range(0, len(texts), chunk):
        part = texts[start : start + chunk]
        key = cache.key(encoder, kind, part) if cache is not None else ""
        hit = cache.load(key, len(part)) if cache is not None else None
        if hit is not None:
            stats[f"{kind}_cached"] = stats.get(f"{kind}_cached", 0) + len(part)
            parts.append(hit)
            continue
        emb = np.ascontiguousarray(encoder.encode(part, kind), dtype=np.float32)
        stats[f"{kind}_encoded"] = stats.get(f"{kind}_encoded", 0) + len(part)
        if cache is not None:
            cache.save(key, emb)
        parts.append(emb)
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
