"""The exact running top-k shared by the retrievers (``retrievers/base.py``).

Specification: for each query row, the first ``k`` document rows in the order (score descending,
row ascending), padded with ``-1`` / ``-inf`` when ``k`` exceeds the number of documents — the
same answer however the score matrix is split into column blocks and in whatever order the
blocks arrive.
"""

from __future__ import annotations

import importlib.util
import itertools

import numpy as np
import pytest

from negmine.text.retrievers.base import MAX_ROWS, TopK, pack, rescore_exact, resort, top_k, unpack

POOL = np.array([-np.inf, -2.5, -1.0, 0.0, 0.25, 1.0, 3.5], dtype=np.float32)  # drawn often: ties


def reference(scores: np.ndarray, k: int, first_row: int = 0) -> tuple[np.ndarray, np.ndarray]:
    n_q, n = scores.shape
    ids = np.full((n_q, k), -1, np.int64)
    out = np.full((n_q, k), -np.inf, np.float32)
    for q in range(n_q):
        # a document scored -inf (or NaN) is never a candidate
        order = [j for j in sorted(range(n), key=lambda j: (-float(scores[q, j]), j)) if scores[q, j] > -np.inf][:k]
        ids[q, : len(order)] = np.array(order, np.int64) + first_row
        out[q, : len(order)] = scores[q, order]
    return ids, out


def random_scores(rng: np.random.Generator, n_q: int, n: int) -> np.ndarray:
    s = rng.normal(size=(n_q, n)).astype(np.float32)
    tied = rng.random((n_q, n)) < 0.5
    s[tied] = rng.choice(POOL, size=int(tied.sum()))
    return s


@pytest.mark.parametrize("seed", range(40))
def test_top_k_equals_stable_sort_reference(seed):
    rng = np.random.default_rng(seed)
    n_q, n = int(rng.integers(1, 6)), int(rng.integers(1, 40))
    k = int(rng.integers(1, n + 6))  # sometimes k > n_docs
    s = random_scores(rng, n_q, n)
    ids, scores = top_k(s, k)
    want_ids, want_scores = reference(s, k)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_array_equal(scores, want_scores)
    assert ids.dtype == np.int64 and scores.dtype == np.float32 and ids.shape == (n_q, k)


@pytest.mark.parametrize("seed", range(40))
def test_top_k_is_the_same_for_any_column_block_split_and_order(seed):
    rng = np.random.default_rng(1000 + seed)
    n_q, n = int(rng.integers(1, 5)), int(rng.integers(2, 60))
    k = int(rng.integers(1, n + 4))
    s = random_scores(rng, n_q, n)
    cuts = sorted({0, n, *rng.integers(1, n, size=int(rng.integers(0, 6))).tolist()})
    blocks = list(itertools.pairwise(cuts))
    rng.shuffle(blocks)  # blocks may arrive in any order
    t = TopK(n_q, k)
    for lo, hi in blocks:
        t.push(s[:, lo:hi], first_row=lo)
    ids, scores = t.result()
    want_ids, want_scores = reference(s, k)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_array_equal(scores, want_scores)


def test_docstring_tie_example():
    # 0.9 at row 1 and row 2: the lower row first
    t = TopK(n_queries=1, k=2)
    t.push(np.array([[0.1, 0.9]], np.float32), first_row=0)
    t.push(np.array([[0.9, 0.2]], np.float32), first_row=2)
    assert t.result()[0].tolist() == [[1, 2]]


def test_padding_when_k_exceeds_documents():
    ids, scores = top_k(np.array([[0.5, 2.0]], np.float32), 4)
    assert ids.tolist() == [[1, 0, -1, -1]]
    np.testing.assert_array_equal(scores, np.array([[2.0, 0.5, -np.inf, -np.inf]], np.float32))


def test_first_row_offsets_document_rows():
    ids, _ = top_k(np.array([[0.1, 0.3, 0.2]], np.float32), 2, first_row=100)
    assert ids.tolist() == [[101, 102]]


def test_minus_inf_scored_documents_are_never_candidates():
    # a document the retriever scores -inf (e.g. filtered out by it) is padding, not a candidate
    ids, scores = top_k(np.array([[-np.inf, 1.0, -np.inf]], np.float32), 4)
    assert ids.tolist() == [[1, -1, -1, -1]]
    np.testing.assert_array_equal(scores, np.array([[1.0, -np.inf, -np.inf, -np.inf]], np.float32))


def test_signed_zeros_are_a_tie_broken_by_row():
    # -0.0 == 0.0 in IEEE arithmetic (and in the stable-sort reference): the lower row goes first.
    s = np.array([[-0.0, 0.0, 0.0]], np.float32)
    assert top_k(s, 3)[0].tolist() == reference(s, 3)[0].tolist() == [[0, 1, 2]]


def test_nan_scored_document_is_never_a_candidate():
    # base._sortable: "NaN sorts below -inf: it is never a candidate".
    ids, _ = top_k(np.array([[np.nan, -np.inf, 1.0]], np.float32), 3)
    assert 0 not in ids[0].tolist()


def test_push_rejects_rows_beyond_the_packable_range():
    t = TopK(1, 1)
    with pytest.raises(ValueError, match="documents"):
        t.push(np.zeros((1, 2), np.float32), first_row=MAX_ROWS - 1)


# ---------------------------------------------------------------------------------------- pack
def test_pack_unpack_round_trip():
    rng = np.random.default_rng(5)
    specials = np.array([-np.inf, np.inf, 0.0, -0.0, 1e-45, -1e-45, 3.4e38, -3.4e38, 1.0, -1.0], np.float32)
    scores = np.concatenate([specials, rng.normal(scale=100, size=990).astype(np.float32)])
    rows = rng.integers(0, MAX_ROWS - 1, size=scores.size, dtype=np.int64)
    rows[:3] = [0, 1, MAX_ROWS - 2]
    got_rows, got_scores = unpack(pack(scores, rows))
    np.testing.assert_array_equal(got_rows, rows)
    assert got_scores.dtype == np.float32
    # bit-exact except that -0.0 is packed as +0.0 (they are the same score)
    np.testing.assert_array_equal(got_scores.view(np.uint32), (scores + np.float32(0.0)).view(np.uint32))


def test_pack_orders_by_score_then_lower_row():
    rng = np.random.default_rng(6)
    s = rng.choice(np.array([-np.inf, -1.5, -0.25, 0.0, 0.5, 2.0, np.inf], np.float32), size=400)
    r = rng.integers(0, 50, size=400)
    keys = pack(s, r)
    for i in range(0, 400, 2):
        a, b = i, i + 1
        want = (s[a] > s[b]) or (s[a] == s[b] and r[a] < r[b])
        assert (keys[a] > keys[b]) == want, (s[a], r[a], s[b], r[b])


# ---------------------------------------------------------------------------------- re-scoring
def test_resort_sorts_rows_by_score_then_row_and_pads():
    ids = np.array([[4, -1, 2, 7], [3, 1, -1, -1]], np.int64)
    scores = np.array([[0.5, -np.inf, 0.9, 0.5], [0.1, 0.1, -np.inf, -np.inf]], np.float32)
    new_ids, new_scores = resort(ids, scores, 3)
    assert new_ids.tolist() == [[2, 4, 7], [1, 3, -1]]
    np.testing.assert_array_equal(new_scores, np.array([[0.9, 0.5, 0.5], [0.1, 0.1, -np.inf]], np.float32))


def test_rescore_exact_is_elementwise_float64_dot_products():
    rng = np.random.default_rng(8)
    q = rng.normal(size=(3, 5)).astype(np.float32)
    d = rng.normal(size=(7, 5)).astype(np.float32)
    ids = np.array([[0, 6, -1], [3, 3, 1], [-1, -1, -1]], np.int64)
    out = rescore_exact(q, d, ids)
    for i in range(3):
        for j in range(3):
            if ids[i, j] < 0:
                assert out[i, j] == -np.inf
            else:
                want = sum(float(a) * float(b) for a, b in zip(q[i], d[ids[i, j]]))
                assert out[i, j] == pytest.approx(want, rel=1e-6)
    assert out.dtype == np.float32


# ------------------------------------------------------------------- screened running top-k
# The running top-k screens each block on float32 scores against each row's k-th best so far
# and packs only the survivors; these properties pin it to the brute-force reference.
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from negmine.text.retrievers.dense import Dense, search_torch  # noqa: E402

VALUES = st.sampled_from([-np.inf, np.nan, -1.0, -0.0, 0.0, 0.5, 1.0, 2.0, np.inf])


@st.composite
def matrices(draw: st.DrawFn) -> np.ndarray:
    n_q = draw(st.integers(1, 6))
    n = draw(st.integers(1, 80))
    tied = draw(st.booleans())  # few distinct values: ties everywhere
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if tied:
        pool = np.array(draw(st.lists(VALUES, min_size=1, max_size=4)), np.float32)
        return rng.choice(pool, size=(n_q, n)).astype(np.float32)
    s = rng.normal(size=(n_q, n)).astype(np.float32)
    s[rng.random((n_q, n)) < 0.2] = np.float32(0.5)
    return s


def ref_with_nan(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    clean = np.where(np.isnan(scores), np.float32(-np.inf), scores) + np.float32(0.0)
    return reference(clean, k)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(s=matrices(), k=st.integers(0, 90), data=st.data())
def test_screened_top_k_equals_reference_for_any_blocks_and_order(s, k, data):
    n = s.shape[1]
    cuts = sorted({0, n, *data.draw(st.lists(st.integers(1, max(1, n - 1)), max_size=8))})
    cuts = [c for c in cuts if c <= n]
    blocks = list(itertools.pairwise(cuts))
    if data.draw(st.booleans()):  # out of order: ties at the threshold must stay in
        blocks = data.draw(st.permutations(blocks))
    t = TopK(s.shape[0], k)
    for lo, hi in blocks:
        t.push(s[:, lo:hi], first_row=lo)
    ids, scores = t.result()
    want_ids, want_scores = ref_with_nan(s, k)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_array_equal(scores, want_scores)


def test_rising_scores_and_massive_ties_stay_exact():
    # the worst cases for screening: every block beats the last (each row re-partitioned),
    # and whole blocks tied at the threshold (kept only while they can still win)
    rising = np.tile(np.arange(3000, dtype=np.float32), (3, 1))
    rising[1] = rising[1][::-1]
    flat = np.zeros((2, 3000), np.float32)
    for s in (rising, flat):
        for k in (1, 7, 250):
            t = TopK(s.shape[0], k)
            for lo in range(0, s.shape[1], 256):
                t.push(s[:, lo : lo + 256], lo)
            got = t.result()
            want = reference(s, k)
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_array_equal(got[1], want[1])


def test_one_row_with_many_survivors_between_merges():
    # row 0 rises along the corpus while the others are flat: its survivors exceed the padded
    # merge width and take the per-row path
    s = np.zeros((40, 6000), np.float32)
    s[0] = np.arange(6000, dtype=np.float32)
    s[1:] = np.random.default_rng(3).normal(size=(39, 6000)).astype(np.float32)
    t = TopK(40, 5)
    for lo in range(0, 6000, 100):
        t.push(s[:, lo : lo + 100], lo)
    got = t.result()
    want = reference(s, 5)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


def embeddings(seed: int, n: int, dim: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


#: the screens of the blocked dense search (the compiled one where numba is installed)
SCREENS = ("numpy", "numba") if importlib.util.find_spec("numba") else ("numpy",)
#: every way the CPU search can run: each screen on float32 products, and the bfloat16 screen
#: where torch and numba are installed (emulated by torch on a CPU without bfloat16 instructions)
CONFIGS = [{"screen": s, "screen_dtype": "float32"} for s in SCREENS] + (
    [{"screen_dtype": "bfloat16"}] if importlib.util.find_spec("numba") and importlib.util.find_spec("torch") else [])


def exact_reference(q: np.ndarray, d: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The brute-force answer with no BLAS involved: every product summed elementwise in float64,
    rounded to float32, sorted by (score desc, row asc)."""
    every = np.tile(np.arange(len(d)), (len(q), 1))
    return resort(every, rescore_exact(q, d, every), k)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), k=st.integers(1, 40), qb=st.integers(3, 64), db=st.integers(16, 700),
       dup=st.integers(0, 30))
def test_dense_search_equals_brute_force_for_any_block_sizes(seed, k, qb, db, dup):
    # exact ties from duplicated documents and zero vectors. Regression: under
    # OPENBLAS_CORETYPE=Haswell a duplicate in another block (row 101 = row 7) won the tie by an
    # ulp of its float32 product; the reference is BLAS-free, so no kernel can move it
    d = embeddings(seed, 600, 16)
    d[100 : 100 + dup] = d[7]
    d[300 : 300 + dup // 2] = 0.0
    q = embeddings(seed + 1, 50, 16)
    q[0] = d[7]
    want = exact_reference(q, d, k)
    for cfg in CONFIGS:
        got = Dense(query_block=qb, doc_block=db, **cfg).search(q, d, k)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), runs=st.lists(st.integers(1, 40), min_size=1, max_size=3),
       k=st.integers(1, 50), qb=st.integers(1, 40), db=st.integers(1, 400), dim=st.sampled_from([3, 16, 64]))
def test_runs_of_exact_duplicates_across_blocks_keep_ties_to_the_lower_row(seed, runs, k, qb, db, dim):
    # runs of 1-40 copies of a document spread over the corpus (so over different blocks), the
    # queries equal to or near the copied documents: the k-th place falls inside a run
    rng = np.random.default_rng(seed)
    d = embeddings(seed, 700, dim)
    q = embeddings(seed + 1, 40, dim)
    for i, n in enumerate(runs):
        src = int(rng.integers(0, 700))
        d[rng.choice(700, size=n, replace=False)] = d[src]
        q[i] = d[src]
        q[i + 10] = d[src] + np.float32(1e-4) * q[i + 10]
    q[30] = 0.0  # every product exactly zero: the first k rows
    want = exact_reference(q, d, k)
    for cfg in CONFIGS:
        got = Dense(query_block=qb, doc_block=db, **cfg).search(q, d, k)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


def test_dense_search_is_identical_for_any_block_sizes_on_the_same_products():
    d = embeddings(11, 1500, 8)
    d[1000:1020] = d[4]
    q = embeddings(12, 37, 8)
    base = Dense(query_block=37, doc_block=1500).search(q, d, 25)
    for qb, db in [(1, 7), (5, 333), (37, 64), (100, 1499)]:
        got = Dense(query_block=qb, doc_block=db).search(q, d, 25)
        np.testing.assert_array_equal(got[0], base[0])
        np.testing.assert_array_equal(got[1], base[1])
    want = exact_reference(q, d, 25)
    np.testing.assert_array_equal(base[0], want[0])
    np.testing.assert_array_equal(base[1], want[1])


def test_torch_search_path_equals_the_cpu_search():
    # the device path (int64 keys reduced with torch.topk), run here on the CPU: its float32
    # products round differently from the BLAS ones, the settled output is the same bytes
    pytest.importorskip("torch")
    d = embeddings(21, 900, 12)
    d[40:60] = d[3]
    d[600:610] = 0.0
    q = embeddings(22, 30, 12)
    q[5] = d[3]
    for k in (1, 30, 950):
        want = Dense(query_block=30, doc_block=900).search(q, d, k)
        got = search_torch(q, d, k, "cpu", query_block=7, doc_block=128)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


def test_exact_top_k_widens_only_where_the_cut_is_unsettled():
    # a raw search that perturbs every score by the largest error the bound allows still
    # yields the exact answer; the unsettled query (40 copies at its cut) searches again
    from negmine.text.retrievers.base import exact_top_k, float32_error_bound

    d = embeddings(5, 300, 16)
    d[200:240] = d[9]
    q = embeddings(6, 4, 16)
    q[0] = d[9]
    calls: list[tuple[int, int]] = []
    noise = np.random.default_rng(0).uniform(-1, 1, size=(4, 300)) * float32_error_bound(16) * 0.49

    def raw(qs: np.ndarray, dd: np.ndarray, kk: int) -> tuple[np.ndarray, np.ndarray]:
        calls.append((len(qs), kk))
        rows = [int(np.flatnonzero((q == x).all(axis=1))[0]) for x in qs]
        s = (qs @ dd.T + noise[rows]).astype(np.float32)
        return reference(s, kk)

    got = exact_top_k(q, d, 5, raw)
    want = exact_reference(q, d, 5)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    assert calls[0] == (4, 13) and all(n == 1 for n, _ in calls[1:]) and len(calls) >= 3


def test_torch_keys_order_nan_and_signed_zero():
    torch = pytest.importorskip("torch")
    from negmine.text.retrievers.dense import _torch_keys

    s = np.array([[np.nan, -np.inf, -0.0, 0.0, 1.5, -1.5, np.inf, 3.0e38]], np.float32)
    keys = _torch_keys(torch, torch.from_numpy(s), 10).numpy().view(np.uint64) ^ np.uint64(1 << 63)
    clean = np.where(np.isnan(s), np.float32(-np.inf), s)
    np.testing.assert_array_equal(keys, pack(clean, np.arange(10, 18)[None, :]))


def test_a_zero_query_gets_the_first_rows_whichever_tied_rows_the_raw_search_kept():
    # every product of a zero query is exactly 0: the answer is rows 0..k-1 by the tie rule, even
    # when the raw search (threads, tiles) kept other tied rows, here the last ones
    from negmine.text.retrievers.base import exact_top_k

    d = embeddings(31, 200, 8)
    q = np.zeros((2, 8), dtype=np.float32)
    q[1] = d[50]

    def raw(qs: np.ndarray, dd: np.ndarray, kk: int) -> tuple[np.ndarray, np.ndarray]:
        s = np.zeros((len(qs), len(dd)), dtype=np.float32) if not qs.any() else (qs @ dd.T).astype(np.float32)
        ids, sc = reference(s[:, ::-1], kk)  # ties resolved to the *highest* rows
        return np.where(ids >= 0, len(dd) - 1 - ids, -1), sc

    got = exact_top_k(q, d, 7, raw)
    want = exact_reference(q, d, 7)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(got[0][0], np.arange(7))


@pytest.mark.skipif(not importlib.util.find_spec("numba"), reason="the compiled screen needs numba")
@pytest.mark.parametrize("with_threads", [True, False])
def test_the_compiled_raw_search_keeps_each_querys_best_products_with_threads_or_without(monkeypatch, with_threads):
    # the tiled search (threads, one BLAS thread each, per-thread heaps merged) and the one-thread
    # block search keep the same best float32 products; tiles of 64 documents make many tiles
    from negmine.text.retrievers import dense_jit

    d = embeddings(41, 3000, 24)
    q = embeddings(42, 70, 24)
    monkeypatch.setattr(dense_jit, "tile_docs", lambda query_block: 64)
    if not with_threads:
        monkeypatch.setattr(dense_jit, "blas_limits", lambda: None)
    ids, scores = dense_jit.search(q, d, 30, 32, 500)
    prods = (q.astype(np.float64) @ d.T.astype(np.float64))
    best = -np.sort(-prods, axis=1)[:, :30]
    np.testing.assert_allclose(scores, best, atol=1e-5)  # float32 products, any kernel
    np.testing.assert_allclose(np.take_along_axis(prods, ids, axis=1), scores, atol=1e-5)
    assert (np.diff(scores, axis=1) <= 0).all()
    assert all(len(set(row)) == 30 for row in ids.tolist())
    np.testing.assert_array_equal(Dense(query_block=32, doc_block=500).search(q, d, 30)[0],
                                  exact_reference(q, d, 30)[0])


def test_tiny_vectors_are_not_taken_for_zero_vectors():
    # entries near 1e-23 square to 0 in float32: the bound must not become 0 for such a query
    # (it would take the first rows as ties) nor for such a corpus
    rng = np.random.default_rng(8)
    d = rng.standard_normal((50, 8)).astype(np.float32)
    q = (rng.standard_normal((2, 8)) * 1e-23).astype(np.float32)
    for qq, dd in ((q, d), (d[:2] * np.float32(1e-23), (d * np.float32(1e-23)).astype(np.float32))):
        want = exact_reference(qq, dd, 3)
        for cfg in CONFIGS:  # out of the bfloat16 bound's range: its screen hands over to float32
            got = Dense(query_block=2, doc_block=16, **cfg).search(qq, dd, 3)
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_array_equal(got[1], want[1])
    from negmine.text.retrievers.base import row_norms

    assert (row_norms(q) > 0).all() and row_norms(np.zeros((1, 8), np.float32))[0] == 0.0


@pytest.mark.skipif(not importlib.util.find_spec("numba") or not importlib.util.find_spec("threadpoolctl"),
                    reason="the tiled search needs numba and threadpoolctl")
def test_concurrent_tiled_searches_leave_blas_threads_as_they_were():
    # BLAS's thread count is process-wide: two searches at once must not leave it at one
    import threading

    from threadpoolctl import threadpool_info

    from negmine.text.retrievers import dense_jit

    def blas_threads() -> list[int]:
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    d = embeddings(51, 4000, 32)
    q = embeddings(52, 200, 32)
    want = dense_jit.search(q, d, 10, 64, 512)  # loads whatever the search loads first
    before = blas_threads()
    def run(gate: threading.Barrier, out: list) -> None:
        gate.wait()
        out.append(dense_jit.search(q, d, 10, 64, 512))

    for _ in range(5):
        gate = threading.Barrier(2)
        out: list = []
        workers = [threading.Thread(target=run, args=(gate, out)) for _ in range(2)]
        [w.start() for w in workers]
        [w.join() for w in workers]
        assert blas_threads() == before
        for _ids, sc in out:
            # raw float32 products: the block path's BLAS threads may round them otherwise
            np.testing.assert_allclose(np.sort(sc, axis=1), np.sort(want[1], axis=1), atol=1e-5)
