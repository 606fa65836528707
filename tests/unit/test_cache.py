"""The embedding cache: chunked, so an interrupted encoding resumes and gives the same bytes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from negmine.text.encoders import EmbeddingCache, HashingEncoder, encode_cached
from negmine.text.encoders.base import Kind

TEXTS = [f"document number {i} about topic {i % 7}" for i in range(23)]


class Crashing(HashingEncoder):
    """Encodes ``budget`` calls, then fails like a killed process would."""

    def __init__(self, budget: int) -> None:
        super().__init__(dim=16)
        self.budget = budget
        self.calls: list[int] = []

    def encode(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        if len(self.calls) >= self.budget:
            raise KeyboardInterrupt
        self.calls.append(len(texts))
        return super().encode(texts, kind)


def test_an_interrupted_encoding_resumes_from_its_last_chunk(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        encode_cached(Crashing(budget=2), TEXTS, "document", cache, {}, chunk=5)
    resumed = Crashing(budget=99)
    stats: dict[str, int] = {}
    got = encode_cached(resumed, TEXTS, "document", cache, stats, chunk=5)
    assert resumed.calls == [5, 5, 3]  # chunks 3, 4 and 5 only: the first two came from the cache
    assert stats == {"document_cached": 10, "document_encoded": 13}
    clean = encode_cached(HashingEncoder(dim=16), TEXTS, "document", None, {}, chunk=5)
    assert got.tobytes() == clean.tobytes()


def test_a_second_run_encodes_nothing_and_other_texts_miss(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    enc = Crashing(budget=99)
    encode_cached(enc, TEXTS, "document", cache, {}, chunk=10)
    stats: dict[str, int] = {}
    encode_cached(enc, TEXTS, "document", cache, stats, chunk=10)
    assert stats == {"document_cached": 23}
    stats = {}
    encode_cached(enc, [*TEXTS[:20], "a new document", *TEXTS[21:]], "document", cache, stats, chunk=10)
    assert stats == {"document_cached": 20, "document_encoded": 3}  # only the chunk that changed (texts 20-22)
    stats = {}
    encode_cached(enc, TEXTS, "query", cache, stats, chunk=10)  # same texts, other kind: a miss
    assert stats == {"query_encoded": 23}


def test_several_chunks_are_assembled_into_one_memory_mapped_entry(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    enc = HashingEncoder(dim=16)
    first = encode_cached(enc, TEXTS, "document", cache, {}, chunk=5)
    assert isinstance(first, np.memmap)  # on disk, read block by block
    np.testing.assert_array_equal(first, encode_cached(enc, TEXTS, "document", None, {}, chunk=5))
    stats: dict[str, int] = {}
    again = encode_cached(enc, TEXTS, "document", cache, stats, chunk=5)
    assert stats == {"document_cached": len(TEXTS)}
    np.testing.assert_array_equal(again, first)


def test_two_runs_sharing_a_cache_encode_each_chunk_once(tmp_path: Path) -> None:
    import threading

    class Slow(HashingEncoder):
        def __init__(self) -> None:
            super().__init__(dim=16)
            self.encoded = 0

        def encode(self, texts, kind):  # type: ignore[no-untyped-def]
            self.encoded += len(texts)
            threading.Event().wait(0.02)
            return super().encode(texts, kind)

    encoders = [Slow(), Slow()]
    results: list[np.ndarray] = []
    threads = [threading.Thread(target=lambda e=e: results.append(
        np.array(encode_cached(e, TEXTS, "document", EmbeddingCache(tmp_path), {}, chunk=5)))) for e in encoders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(e.encoded for e in encoders) == len(TEXTS)  # every chunk encoded by one of them only
    np.testing.assert_array_equal(results[0], results[1])
