"""BM25 at scale: the score block is bounded in bytes, not in queries, and the result does not
depend on it; a corpus with nothing to index is a data error, not a crash inside bm25s."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import negmine
from negmine.core.errors import DataError
from negmine.text.retrievers import BM25

pytest.importorskip("bm25s")

SAMPLE = Path(negmine.__file__).parent / "sample"  # the bundled sample: 80 queries, 288 documents


@pytest.fixture(scope="module")
def sample_data() -> negmine.MiningData:
    return negmine.load_beir(SAMPLE, "train")


def test_score_block_is_bounded_in_bytes():
    bm = BM25(query_block=256)
    assert bm._block_size(1_000) == 256
    assert bm._block_size(1_000_000) * 1_000_000 * 4 <= 32 * 2**20  # at most ~32 MB of scores
    assert bm._block_size(10**9) == 1


def test_query_block_does_not_change_the_result(sample_data):
    want = BM25().retrieve(sample_data, 7)
    for qb in (1, 3, 1000):
        got = BM25(query_block=qb).retrieve(sample_data, 7)
        np.testing.assert_array_equal(got.ids, want.ids)
        np.testing.assert_array_equal(got.scores, want.scores)
        np.testing.assert_array_equal(got.positive_scores, want.positive_scores)
        np.testing.assert_array_equal(BM25(query_block=qb).score_cells(sample_data, want.ids), want.scores)


@pytest.mark.parametrize("docs", [["", "", ""], ["the of and", "a an", "it is"], ["the", "", "!!"]])
def test_corpus_of_empty_or_stopword_documents_is_a_data_error(docs):
    data = negmine.from_pairs(["what is a cat", "where"], docs[:2], docs[2:])
    with pytest.raises(DataError, match="empty or only stop-words"):
        BM25().retrieve(data, 3)


def test_some_empty_documents_are_fine():
    data = negmine.from_pairs(["cat food", "dog toys"], ["cat food bowl", ""], ["dog toys", "the"])
    c = BM25().retrieve(data, 4)
    assert c.ids.shape == (2, 4)
    assert np.isfinite(c.scores[:, 0]).all()


@pytest.mark.parametrize("stemmer", [None, "english"])
def test_tokenizer_matches_bm25s_tokenize(stemmer):
    # negmine's tokenizer (per-token work in C) must give bm25s.tokenize's ids and vocabulary
    import bm25s

    from negmine.text.retrievers.bm25 import _tokenize

    texts = ["The Cats are RUNNING, running: ran!", "", "a an the", "naïve café Ünïcode 42 x 3.14",
             "the cat", "C++ e-mail o'neil", "running cats ran again and AGAIN"]
    st = BM25(stemmer=stemmer)._stemmer()
    if stemmer and st is None:
        pytest.skip("PyStemmer is not installed")
    ours = _tokenize(bm25s, texts, "en", st)
    theirs = bm25s.tokenize(texts, stopwords="en", stemmer=st, show_progress=False)
    inv_ours = {i: t for t, i in ours.vocab.items()}
    inv_theirs = {i: t for t, i in theirs.vocab.items()}
    assert [[inv_ours[i] for i in row] for row in ours.ids] == [[inv_theirs[i] for i in row] for row in theirs.ids]
    assert set(ours.vocab) == set(theirs.vocab)
