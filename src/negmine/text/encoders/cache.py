"""On-disk embedding cache keyed by encoder identity and a fingerprint of the texts."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from negmine.core.errors import ConfigError, is_short_write
from negmine.text.encoders.base import Encoder, Kind


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
        """``query_embeddings_<hash>`` or ``corpus_embeddings_<hash>`` (the names
        sentence-transformers' ``cache_folder`` uses, so either reader recognises the files)."""
        raw = f"{encoder.identity(kind)}\x00{kind}\x00{texts_fingerprint(texts)}"
        prefix = "query" if kind == "query" else "corpus"
        return f"{prefix}_embeddings_{hashlib.sha256(raw.encode()).hexdigest()[:32]}"

    def load(self, key: str, n: int) -> np.ndarray | None:
        path = self.directory / f"{key}.npy"
        if not path.is_file():
            legacy = self.directory / f"{key.rsplit('_', 1)[-1]}.npy"  # entries of earlier versions: bare hash
            if "_embeddings_" not in key or not legacy.is_file():
                return None
            path = legacy
        try:
            arr = np.load(path, mmap_mode="r")
        except (OSError, ValueError):
            return None  # a corrupt entry is a miss; it is rewritten below
        if arr.ndim != 2 or arr.shape[0] != n or arr.dtype != np.float32:
            return None
        return arr  # memory-mapped: read from disk as it is used

    @contextlib.contextmanager
    def entry_lock(self, key: str) -> Iterator[None]:
        """An exclusive lock (flock) on one entry while it is being written."""
        locks = self.directory / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        fd = os.open(locks / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def save(self, key: str, emb: np.ndarray) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".npy.tmp")
        except OSError as exc:
            raise self.unwritable(exc) from exc
        try:
            with os.fdopen(fd, "wb") as fh:
                np.save(fh, np.ascontiguousarray(emb, dtype=np.float32))
            os.replace(tmp, self.directory / f"{key}.npy")
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise self.unwritable(exc) from exc
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def unwritable(self, exc: OSError) -> Exception:
        """A failed cache write as the user should see it: a full disk (ENOSPC, a quota, or a write
        cut short without errno) or a permission problem is a one-line :class:`ConfigError` naming
        the cache directory and the fix; anything else is ``exc`` itself."""
        if is_short_write(exc) or exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            return ConfigError(f"{self.directory}: no space left to cache embeddings ({exc.strerror or exc}); "
                               "free space there or choose another --cache-dir")
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR):
            return ConfigError(f"{self.directory}: cannot write the embedding cache ({exc.strerror or exc}); "
                               "choose a writable --cache-dir")
        return exc


#: texts per cache entry: an interrupted encoding resumes from its last completed chunk, and a
#: corpus that grows at the end re-encodes only its last chunks
CHUNK = 4096


def _encode_chunk(encoder: Encoder, part: Sequence[str], kind: Kind, cache: EmbeddingCache | None,
                  stats: dict[str, int]) -> np.ndarray:
    """One chunk: from the cache, or encoded (and saved) while holding the entry's lock, so two
    runs sharing a cache never encode the same chunk twice and never see half an entry."""
    if cache is None:
        stats[f"{kind}_encoded"] = stats.get(f"{kind}_encoded", 0) + len(part)
        return np.ascontiguousarray(encoder.encode(part, kind), dtype=np.float32)
    key = cache.key(encoder, kind, part)
    hit = cache.load(key, len(part))
    if hit is None:
        with cache.entry_lock(key):
            hit = cache.load(key, len(part))  # another process may have written it meanwhile
            if hit is None:
                emb = np.ascontiguousarray(encoder.encode(part, kind), dtype=np.float32)
                cache.save(key, emb)
                stats[f"{kind}_encoded"] = stats.get(f"{kind}_encoded", 0) + len(part)
                from negmine.core.rundir import fault

                fault(f"encode-{kind}-chunk")
                return emb
    stats[f"{kind}_cached"] = stats.get(f"{kind}_cached", 0) + len(part)
    return hit


def _reserve(path: Path) -> None:
    """Allocate the whole of a memory-mapped file's blocks now, so a disk too small for it fails
    here with ENOSPC instead of killing the process (SIGBUS) on the first write into a page the
    file system cannot back."""
    fd = os.open(path, os.O_RDWR)
    try:
        size = os.fstat(fd).st_size
        if size and hasattr(os, "posix_fallocate"):
            try:
                os.posix_fallocate(fd, 0, size)
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                    raise  # a file system that cannot reserve blocks writes as before
    finally:
        os.close(fd)


def encode_cached(
    encoder: Encoder, texts: Sequence[str], kind: Kind, cache: EmbeddingCache | None, stats: dict[str, int],
    *, chunk: int = CHUNK,
) -> np.ndarray:
    """Encode ``texts`` in fixed chunks of ``chunk`` texts, each loaded from ``cache`` when present
    and saved as soon as it is encoded; counts go to ``stats`` (``{kind}_cached``,
    ``{kind}_encoded``). The chunking is the same with or without a cache and however often a run
    was interrupted, so the embeddings are the same bytes either way.

    With a cache and several chunks, the chunks are assembled into one memory-mapped ``.npy``
    entry of the cache (written once, atomically, then reused whole), so the embeddings of a
    large corpus are read from disk block by block instead of held in memory."""
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    starts = range(0, len(texts), chunk)
    if cache is None or len(starts) == 1:
        parts = [_encode_chunk(encoder, texts[s : s + chunk], kind, cache, stats) for s in starts]
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
    keys = [cache.key(encoder, kind, texts[s : s + chunk]) for s in starts]
    whole_key = "whole-" + hashlib.sha256("".join(keys).encode()).hexdigest()[:32]
    hit = cache.load(whole_key, len(texts))
    if hit is not None:
        stats[f"{kind}_cached"] = stats.get(f"{kind}_cached", 0) + len(texts)
        return hit
    out: np.memmap | None = None
    tmp: Path | None = None
    try:
        for s in starts:
            emb = _encode_chunk(encoder, texts[s : s + chunk], kind, cache, stats)
            if out is None:
                try:
                    cache.directory.mkdir(parents=True, exist_ok=True)
                    fd, name = tempfile.mkstemp(dir=cache.directory, suffix=".npy.tmp")
                    os.close(fd)
                    tmp = Path(name)
                    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32,
                                                    shape=(len(texts), emb.shape[1]))
                    _reserve(tmp)
                except OSError as exc:
                    raise cache.unwritable(exc) from exc
            out[s : s + len(emb)] = emb
        assert out is not None and tmp is not None
        try:
            out.flush()
            del out
            os.replace(tmp, cache.directory / f"{whole_key}.npy")
        except OSError as exc:
            raise cache.unwritable(exc) from exc
        tmp = None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    whole = cache.load(whole_key, len(texts))
    if whole is None:
        raise OSError(f"{cache.directory}: the assembled embeddings could not be read back; check the disk")
    return whole
