"""The on-disk cache of (query, document) pair scores that the cross-encoder scorer reads and
fills (:class:`PairScoreCache`), and the pair keys it is indexed by (:func:`pair_keys`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["KEY_BYTES", "PairScoreCache", "pair_keys"]

KEY_BYTES = 16  # a pair key is the first 16 bytes of a sha256


class PairScoreCache:
    """Scores of (query, document) pairs on disk, for one scorer identity.

    Layout: ``<root>/<sha256(identity)[:32]>/identity.json`` (the identity, for humans) and
    append-only segments ``seg-*.npz``, each holding ``keys`` (``S16``: the first 16 bytes of the
    sha256 of a pair's texts) and ``scores`` (``float32``). Segments are written atomically (temp
    file + rename) and never modified, so concurrent runs cannot corrupt each other; an unreadable
    segment is a cache miss. When more than ``max_segments`` accumulate they are merged into one.
    """

    def __init__(self, root: str | Path, identity: str, *, max_segments: int = 64) -> None:
        self.identity = identity
        self.directory = Path(root) / hashlib.sha256(identity.encode()).hexdigest()[:32]
        self.max_segments = max_segments

    def segments(self) -> list[Path]:
        return sorted(self.directory.glob("seg-*.npz")) if self.directory.is_dir() else []

    def _read(self) -> tuple[np.ndarray, np.ndarray, list[Path]]:
        keys, scores, read = [], [], []
        for seg in self.segments():
            try:
                with np.load(seg, allow_pickle=False) as z:
                    k, s = z["keys"], z["scores"]
            except (OSError, ValueError, KeyError):
                continue  # vanished (merged by another run) or corrupt: a miss
            if k.dtype != np.dtype(f"S{KEY_BYTES}") or s.dtype != np.float32 or k.shape != s.shape or k.ndim != 1:
                continue
            keys.append(k)
            scores.append(s)
            read.append(seg)
        if not keys:
            return np.empty(0, f"S{KEY_BYTES}"), np.empty(0, np.float32), read
        return np.concatenate(keys), np.concatenate(scores), read

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(scores float32[n], found bool[n])`` for ``keys S16[n]``."""
        stored_keys, stored_scores, read = self._read()
        if len(read) > self.max_segments:
            self._merge(stored_keys, stored_scores, read)
        scores = np.full(len(keys), np.nan, np.float32)
        if len(stored_keys) == 0 or len(keys) == 0:
            return scores, np.zeros(len(keys), bool)
        order = np.argsort(stored_keys, kind="stable")
        stored_keys, stored_scores = stored_keys[order], stored_scores[order]
        pos = np.minimum(np.searchsorted(stored_keys, keys), len(stored_keys) - 1)
        found = stored_keys[pos] == keys
        scores[found] = stored_scores[pos[found]]
        return scores, found

    def add(self, keys: np.ndarray, scores: np.ndarray) -> Path | None:
        """Store ``scores float32[n]`` of ``keys S16[n]`` as a new segment (atomically); its path."""
        if len(keys) == 0:
            return None
        keys = np.ascontiguousarray(keys, dtype=f"S{KEY_BYTES}")
        scores = np.ascontiguousarray(scores, dtype=np.float32)
        self.directory.mkdir(parents=True, exist_ok=True)
        ident = self.directory / "identity.json"
        if not ident.exists():
            self._write(ident, (json.dumps({"identity": self.identity}, indent=2) + "\n").encode())
        name = hashlib.sha256(keys.tobytes() + scores.tobytes()).hexdigest()[:24]

        def save(fh: Any) -> None:
            np.savez(fh, keys=keys, scores=scores)

        path = self.directory / f"seg-{name}.npz"
        self._write(path, save)
        return path

    def _merge(self, keys: np.ndarray, scores: np.ndarray, read: list[Path]) -> None:
        uniq, first = np.unique(keys, return_index=True)
        merged = self.add(uniq, scores[first])
        for seg in read:
            if seg != merged:
                seg.unlink(missing_ok=True)

    def _write(self, path: Path, content: bytes | Any) -> None:
        from negmine.core.atomic import write_atomic

        if isinstance(content, bytes):
            data = content

            def content(fh: Any) -> None:
                fh.write(data)

        write_atomic(path, content)


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def pair_keys(queries: Sequence[str], documents: Sequence[str]) -> np.ndarray:
    """``S16[n]``: the cache key of each ``(queries[i], documents[i])`` pair (exact texts)."""
    q_memo: dict[str, bytes] = {}
    d_memo: dict[str, bytes] = {}
    out = np.empty(len(queries), f"S{KEY_BYTES}")
    for i, (q, d) in enumerate(zip(queries, documents)):
        qd = q_memo.get(q)
        if qd is None:
            qd = q_memo[q] = _digest(q)
        dd = d_memo.get(d)
        if dd is None:
            dd = d_memo[d] = _digest(d)
        out[i] = hashlib.sha256(qd + dd).digest()[:KEY_BYTES]
    return out
