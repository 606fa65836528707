"""The containers that cross stage boundaries (``negmine.text.types``)."""

from __future__ import annotations

import numpy as np
import pytest

from negmine.text.types import Candidates, Corpus, MiningData, Qrels, Queries, normalise_text


@pytest.mark.parametrize(("text", "want"), [
    ("Hello   World", "hello world"),
    ("  tabs\tand\nnewlines \r\n", "tabs and newlines"),
    ("STRASSE", "strasse"),
    ("Straße", "strasse"),  # case-folding, not lower-casing
    ("a\u00a0b", "a b"),  # unicode whitespace collapses too
    ("", ""),
])
def test_normalise_text(text, want):
    assert normalise_text(text) == want


def test_corpus_full_texts_join_title_and_text():
    c = Corpus(ids=["a", "b", "c"], texts=["body", "only text", "x"], titles=["Title", "", "  "])
    assert c.full_texts() == ["Title body", "only text", "x"]
    assert Corpus(ids=["a"], texts=["t"]).titles == [""]  # titles default to empty
    assert len(c) == 3


def test_duplicate_groups_match_on_normalised_title_plus_text():
    c = Corpus(
        ids=["0", "1", "2", "3", "4", "5"],
        texts=["Alpha beta", "alpha  BETA", "beta", "alpha beta gamma", "alpha\tbeta", "gamma"],
        titles=["", "", "ALPHA", "", "", ""],
    )
    g = c.duplicate_groups()
    assert g.dtype == np.int64 and g.shape == (6,)
    # "alpha beta" for rows 0, 1, 2 (title + text) and 4; rows 3 and 5 are unique
    assert g[0] == g[1] == g[2] == g[4]
    assert len({g[0], g[3], g[5]}) == 3


def test_qrels_from_pairs_sorts_dedups_and_keeps_highest_grade():
    q = Qrels.from_pairs(
        4,
        np.array([2, 0, 2, 0, 2]),
        np.array([5, 3, 1, 3, 5]),
        np.array([1, 1, 2, 3, 2], np.float32),
    )
    np.testing.assert_array_equal(q.indptr, [0, 1, 1, 3, 3])  # query 1 and 3 have none
    np.testing.assert_array_equal(q.indices, [3, 1, 5])  # sorted, unique within a row
    np.testing.assert_array_equal(q.grades, [3, 2, 2])  # (0,3) seen with grades 1 and 3 -> 3
    np.testing.assert_array_equal(q.row(2), [1, 5])
    np.testing.assert_array_equal(q.counts(), [1, 0, 2, 0])
    np.testing.assert_array_equal(q.query_of_pair(), [0, 2, 2])
    assert q.n_queries == 4
    assert q.indptr.dtype == np.int64 and q.indices.dtype == np.int64 and q.grades.dtype == np.float32


def test_qrels_from_pairs_default_grade_is_one_and_empty_is_fine():
    q = Qrels.from_pairs(2, np.array([1]), np.array([4]))
    np.testing.assert_array_equal(q.grades, [1.0])
    e = Qrels.from_pairs(3, np.array([], np.int64), np.array([], np.int64))
    np.testing.assert_array_equal(e.indptr, [0, 0, 0, 0])
    assert len(e.indices) == 0


def test_qrels_union():
    a = Qrels.from_pairs(3, np.array([0, 2]), np.array([1, 4]), np.array([1, 1], np.float32))
    b = Qrels.from_pairs(3, np.array([0, 1, 2]), np.array([1, 0, 2]), np.array([2, 1, 1], np.float32))
    u = a.union(b)
    np.testing.assert_array_equal(u.indptr, [0, 1, 2, 4])
    np.testing.assert_array_equal(u.indices, [1, 0, 2, 4])
    np.testing.assert_array_equal(u.grades, [2, 1, 1, 1])


def _data(query_texts=("q a", "q b")) -> MiningData:
    corpus = Corpus(ids=["d0", "d1", "d2"], texts=["x", "y", "z"])
    pos = Qrels.from_pairs(2, np.array([0, 1]), np.array([0, 2]))
    return MiningData(corpus, Queries(ids=["qa", "qb"], texts=list(query_texts)), pos, pos)


def test_mining_data_checks_qrels_rows_match_queries():
    corpus = Corpus(ids=["d0"], texts=["x"])
    pos = Qrels.from_pairs(3, np.array([0]), np.array([0]))
    with pytest.raises(ValueError, match="3 query rows but there are 2 queries"):
        MiningData(corpus, Queries(ids=["a", "b"], texts=["a", "b"]), pos, pos)


def test_fingerprint_is_stable_and_sensitive():
    assert _data().fingerprint() == _data().fingerprint()
    assert _data().fingerprint() != _data(("q a", "q B")).fingerprint()
    # separators matter: ("ab", "") and ("a", "b") must not collide
    assert _data(("ab", "")).fingerprint() != _data(("a", "b")).fingerprint()


def test_candidates_valid_and_shape():
    ids = np.array([[3, -1], [0, 1]], np.int64)
    c = Candidates(ids=ids, scores=np.array([[1.0, -np.inf], [0.5, 0.25]], np.float32),
                   sources=np.ones((2, 2), np.uint8), source_names=["x"], positive_scores=np.zeros(0, np.float32))
    assert c.shape == (2, 2)
    np.testing.assert_array_equal(c.valid(), [[True, False], [True, True]])
