"""The retriever contract (DESIGN.md §1, STYLE.md habits 1 and 10), one suite run against every
backend: BM25; exact dense search and FAISS flat/HNSW with the deterministic hashing encoder; dense
and FAISS flat with the real MiniLM model on a 33-document slice.

A retriever returns ``Candidates``: ``ids int64[n_q, k]`` (document rows, ``-1`` padding) and
``scores float32[n_q, k]`` (``-inf`` padding) sorted by score descending, ties to the lower row;
``sources`` marks the retriever; ``positive_scores float32[n_pairs]`` is the score of each pair of
``data.positives``, in CSR order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import negmine
from negmine.text.types import Candidates, MiningData, Qrels, Queries, RunContext

Retrieve = Callable[[MiningData, int], Candidates]


def valid_prefix(ids: np.ndarray) -> np.ndarray:
    """Per row, how many leading cells are real candidates."""
    return (ids >= 0).sum(axis=1)


# ------------------------------------------------------------------------------------- the contract
def test_shapes_and_dtypes(retrieve: Retrieve, contract_data: MiningData, backend: Any) -> None:
    k = 10
    c = retrieve(contract_data, k)
    n_q = len(contract_data.queries)
    width = k if backend.members == 1 else c.ids.shape[1]
    assert k <= width <= backend.members * k  # several retrievers: the union of their top k
    assert c.ids.shape == c.scores.shape == c.sources.shape == (n_q, width)
    assert c.ids.dtype == np.int64 and c.scores.dtype == np.float32 and c.sources.dtype == np.uint8
    assert c.positive_scores.shape == contract_data.positives.indices.shape
    assert c.positive_scores.dtype == np.float32
    assert len(c.source_names) == backend.members
    assert c.shape == (n_q, width)


def test_rows_sorted_by_score_then_document_row(retrieve: Retrieve, contract_data: MiningData) -> None:
    n_docs = len(contract_data.corpus)
    c = retrieve(contract_data, n_docs)
    assert (c.ids >= 0).all() and (c.ids < n_docs).all()
    assert np.isfinite(c.scores).all()
    assert (np.diff(c.scores, axis=1) <= 0).all(), "scores must not increase along a row"
    ties = np.diff(c.scores, axis=1) == 0
    assert (np.diff(c.ids, axis=1)[ties] > 0).all(), "equal scores go to the lower document row first"
    for row in c.ids:
        assert len(set(row.tolist())) == len(row)


def test_k_beyond_the_corpus_is_padded(retrieve: Retrieve, contract_data: MiningData, backend: Any) -> None:
    n_docs = len(contract_data.corpus)
    k = n_docs + 4
    c = retrieve(contract_data, k)
    width = c.ids.shape[1]
    if backend.pads_to_k:
        assert c.ids.shape == (len(contract_data.queries), k)
    else:  # documented: as many columns as candidates exist, at most k
        assert n_docs <= width <= k
    np.testing.assert_array_equal(c.ids[:, n_docs:], -1)
    assert np.isneginf(c.scores[:, n_docs:]).all()
    assert (c.sources[:, n_docs:] == 0).all()
    # every document is retrieved once per query, padding only at the tail
    for row in c.ids:
        assert sorted(row[:n_docs].tolist()) == list(range(n_docs))
    full = retrieve(contract_data, n_docs)
    np.testing.assert_array_equal(c.ids[:, :n_docs], full.ids)
    np.testing.assert_array_equal(c.scores[:, :n_docs], full.scores)


def test_sources_mark_the_retrievers(retrieve: Retrieve, contract_data: MiningData, backend: Any) -> None:
    c = retrieve(contract_data, 6)
    valid = c.ids >= 0
    if backend.members == 1:
        np.testing.assert_array_equal(c.sources, valid.astype(np.uint8))
        return
    # bit b: member b found the document in its own top k, as member_ranks says
    assert c.member_ranks is not None and c.member_ranks.shape == (*c.ids.shape, backend.members)
    bits = ((c.member_ranks >= 0) << np.arange(backend.members)).sum(-1)
    np.testing.assert_array_equal(c.sources, np.where(valid, bits, 0))
    assert (c.sources[valid] > 0).all() and (c.sources < 2**backend.members).all()
    assert ((c.member_ranks < 6) & (c.member_ranks >= -1)).all()


def test_positive_scores_align_with_data_positives(retrieve: Retrieve, contract_data: MiningData) -> None:
    """``positive_scores[i]`` is the score of the i-th stored pair: equal to the score the same
    document has in its query's candidate row (all documents are candidates here)."""
    c = retrieve(contract_data, len(contract_data.corpus))
    pos = contract_data.positives
    q_of_pair = pos.query_of_pair()
    for i, (q, d) in enumerate(zip(q_of_pair, pos.indices)):
        [col] = np.flatnonzero(c.ids[q] == d)
        assert c.positive_scores[i] == pytest.approx(float(c.scores[q, col]), rel=1e-6, abs=1e-6), (q, d)
    # a query with several positives has distinct scores for them, in CSR order (not all the same)
    multi = int(np.flatnonzero(pos.counts() > 1)[0])
    scores = c.positive_scores[pos.indptr[multi] : pos.indptr[multi + 1]]
    assert len(set(scores.tolist())) > 1


def test_planted_document_is_retrieved_first(retrieve: Retrieve, contract_data: MiningData,
                                             planted: dict[int, int]) -> None:
    """A document whose text is the query's own text is that query's best match, and no other
    query's."""
    c = retrieve(contract_data, 5)
    for q, d in planted.items():
        assert c.ids[q, 0] == d, (q, c.ids[q])
        assert c.scores[q, 0] > c.scores[q, 1]
    others = [q for q in range(len(contract_data.queries)) if q not in planted]
    assert not set(c.ids[others, 0].tolist()) & set(planted.values())


def test_deterministic(retrieve: Retrieve, contract_data: MiningData) -> None:
    a = retrieve(contract_data, 12)
    b = retrieve(contract_data, 12)
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_array_equal(a.positive_scores, b.positive_scores)


def test_smaller_k_is_a_prefix(retrieve: Retrieve, contract_data: MiningData, backend: Any) -> None:
    if not backend.exact:
        pytest.skip("approximate search may find a different set for another k")
    big = retrieve(contract_data, 20)
    for k in (1, 3, 7):
        small = retrieve(contract_data, k)
        np.testing.assert_array_equal(small.ids, big.ids[:, :k])
        np.testing.assert_array_equal(small.scores, big.scores[:, :k])


def test_query_order_does_not_change_a_query_s_candidates(retrieve: Retrieve, contract_data: MiningData) -> None:
    """Each query's candidates depend on that query only (invariant 3), not on its batch."""
    d = contract_data
    perm = np.random.default_rng(0).permutation(len(d.queries))

    def permuted(qrels: Qrels) -> Qrels:
        inv = np.argsort(perm)
        return Qrels.from_pairs(len(perm), inv[qrels.query_of_pair()], qrels.indices, qrels.grades)

    shuffled = MiningData(d.corpus, Queries([d.queries.ids[i] for i in perm], [d.queries.texts[i] for i in perm]),
                          permuted(d.positives), permuted(d.exclude))
    a = retrieve(d, 10)
    b = retrieve(shuffled, 10)
    np.testing.assert_array_equal(b.ids, a.ids[perm])
    np.testing.assert_allclose(b.scores, a.scores[perm], rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------------------- FAISS against exact search
@pytest.fixture(scope="module")
def exact_sample(sample_data: MiningData) -> dict[int, Candidates]:
    dense = negmine.text.retrievers.Dense(encoder=negmine.text.encoders.HashingEncoder(dim=256))
    return {k: dense.retrieve(sample_data, k) for k in (5, 10, 50)}


@pytest.mark.extra("faiss")
@pytest.mark.parametrize("k", [5, 50])
def test_faiss_flat_equals_dense_exactly(sample_data: MiningData, exact_sample: dict[int, Candidates],
                                         k: int) -> None:
    flat = negmine.text.retrievers.Faiss(encoder=negmine.text.encoders.HashingEncoder(dim=256), index="flat")
    c = flat.retrieve(sample_data, k)
    np.testing.assert_array_equal(c.ids, exact_sample[k].ids)
    np.testing.assert_array_equal(c.scores, exact_sample[k].scores)
    np.testing.assert_array_equal(c.positive_scores, exact_sample[k].positive_scores)


@pytest.mark.extra("faiss", "st", "model")
def test_faiss_flat_equals_dense_with_minilm(contract_data: MiningData, embedding_cache: str) -> None:
    cache = str(embedding_cache)
    dense = negmine.text.retrievers.Dense("sentence-transformers/all-MiniLM-L6-v2").retrieve(contract_data, 10,
                                                                                       RunContext(cache_dir=cache))
    flat = negmine.text.retrievers.Faiss("sentence-transformers/all-MiniLM-L6-v2").retrieve(contract_data, 10,
                                                                                       RunContext(cache_dir=cache))
    np.testing.assert_array_equal(flat.ids, dense.ids)
    np.testing.assert_array_equal(flat.scores, dense.scores)


@pytest.mark.extra("faiss")
def test_hnsw_recall_against_exact_search(sample_data: MiningData, exact_sample: dict[int, Candidates]) -> None:
    k = 10
    hnsw = negmine.text.retrievers.Faiss(encoder=negmine.text.encoders.HashingEncoder(dim=256), index="hnsw")
    c = hnsw.retrieve(sample_data, k)
    exact = exact_sample[k]
    hits = sum(len(set(a.tolist()) & set(b.tolist())) for a, b in zip(c.ids, exact.ids))
    recall = hits / exact.ids.size
    assert recall >= 0.9, recall
    # whatever HNSW finds is scored exactly as dense search scores it
    for q in range(len(sample_data.queries)):
        common = np.intersect1d(c.ids[q], exact.ids[q])
        ours = {d: s for d, s in zip(c.ids[q], c.scores[q])}
        theirs = {d: s for d, s in zip(exact.ids[q], exact.scores[q])}
        assert all(ours[d] == theirs[d] for d in common)
    np.testing.assert_array_equal(c.positive_scores, exact.positive_scores)


def test_dense_blocks_do_not_change_the_result(sample_data: MiningData, exact_sample: dict[int, Candidates]) -> None:
    small = negmine.text.retrievers.Dense(encoder=negmine.text.encoders.HashingEncoder(dim=256), query_block=7,
                                          doc_block=13)
    c = small.retrieve(sample_data, 10)
    np.testing.assert_array_equal(c.ids, exact_sample[10].ids)
    np.testing.assert_array_equal(c.scores, exact_sample[10].scores)
