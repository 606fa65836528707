"""Hand-computed specifications of the samplers, through ``samplers.select``.

Keys are hashes of string ids (``string_keys``), as the pipeline builds them, so every
"random" expectation below is deterministic.
"""

from __future__ import annotations

import numpy as np
import pytest

from negmine.core.errors import ConfigError
from negmine.text.samplers import Random, SampleInput, SimANS, Softmax, Top, query_sd, select, string_keys, uniform


def _inp(scores, keep=None, *, qids=None, dids=None, ref=None, seed=0) -> SampleInput:
    s = np.asarray(scores, dtype=np.float32)
    n_q, k = s.shape
    qids = qids if qids is not None else [f"q{i}" for i in range(n_q)]
    dids = dids if dids is not None else [[f"d{j}" for j in range(k)] for _ in range(n_q)]
    keep = np.ones((n_q, k), bool) if keep is None else np.asarray(keep, bool)
    ref = np.ones(n_q, np.float32) if ref is None else np.asarray(ref, np.float32)
    doc_keys = np.stack([string_keys(row) for row in dids])
    return SampleInput(s, keep, string_keys(qids), doc_keys, ref, seed)


def _chosen_docs(cols: np.ndarray, dids: list[list[str]]) -> list[set[str]]:
    return [{dids[q][c] for c in row if c >= 0} for q, row in enumerate(cols.tolist())]


ALL_SAMPLERS = [Top(), Random(), Softmax(0.1), SimANS(a=2.0, b=0.1)]


# ------------------------------------------------------------------------------------------- top
def test_top_takes_highest_surviving_scores_in_rank_order():
    inp = _inp([[0.9, 0.8, 0.7, 0.6, 0.5]], [[True, False, True, True, True]])
    # survivors 0.9 (c0), 0.7 (c2), 0.6 (c3), 0.5 (c4): the best 3 are columns 0, 2, 3
    assert select(Top(), inp, 3).tolist() == [[0, 2, 3]]


def test_top_breaks_ties_to_the_better_rank():
    inp = _inp([[0.5, 0.7, 0.7, 0.7, 0.7]])
    # four-way tie at 0.7 in columns 1..4: the two lowest columns win
    assert select(Top(), inp, 2).tolist() == [[1, 2]]


def test_top_does_not_assume_columns_are_sorted():
    inp = _inp([[0.1, 0.9, 0.3, 0.8]])
    # best two scores are 0.9 (c1) and 0.8 (c3); returned in column order
    assert select(Top(), inp, 2).tolist() == [[1, 3]]


# ------------------------------------------------------------------------------ shortfall & errors
@pytest.mark.parametrize("sampler", ALL_SAMPLERS, ids=lambda s: s.name)
def test_shortfall_pads_minus_one_at_the_end_and_never_picks_a_masked_cell(sampler):
    keep = [[False, True, False, False, True, False], [False] * 6, [True] * 6]
    inp = _inp([[0.9, 0.8, 0.7, 0.6, 0.5, 0.4]] * 3, keep)
    cols = select(sampler, inp, 4)
    assert cols.dtype == np.int64
    assert cols[0].tolist() == [1, 4, -1, -1]  # the only two survivors, then padding
    assert cols[1].tolist() == [-1, -1, -1, -1]  # nothing survives
    assert len(set(cols[2].tolist())) == 4 and (cols[2] >= 0).all()  # enough survivors
    assert cols[2].tolist() == sorted(cols[2].tolist())  # rank order


@pytest.mark.parametrize("sampler", ALL_SAMPLERS, ids=lambda s: s.name)
def test_more_negatives_than_columns_pads(sampler):
    cols = select(sampler, _inp([[0.5, 0.25]]), 5)
    assert cols.tolist() == [[0, 1, -1, -1, -1]]


@pytest.mark.parametrize("sampler", [Random(), Softmax(1.0), SimANS(a=0.5)], ids=lambda s: s.name)
def test_random_samplers_never_pick_masked_cells_over_many_seeds(sampler):
    rng = np.random.default_rng(1)
    keep = rng.random((20, 12)) < 0.4
    scores = -np.sort(-rng.random((20, 12)), axis=1)
    for seed in range(30):
        cols = select(sampler, _inp(scores, keep, seed=seed), 3)
        for q in range(20):
            chosen = cols[q][cols[q] >= 0]
            assert keep[q, chosen].all()
            assert len(chosen) == min(3, int(keep[q].sum()))  # never a shortfall while survivors remain
            assert len(set(chosen.tolist())) == len(chosen)


@pytest.mark.parametrize("n", [0, -1])
def test_num_negatives_below_one_is_a_config_error(n):
    with pytest.raises(ConfigError):
        select(Top(), _inp([[0.5]]), n)


@pytest.mark.parametrize("make", [lambda: Softmax(0.0), lambda: Softmax(-1.0), lambda: Softmax(float("nan")),
                                  lambda: SimANS(a=-0.1), lambda: SimANS(a=float("nan"))])
def test_invalid_sampler_parameters_are_config_errors(make):
    with pytest.raises(ConfigError):
        make()


# ---------------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("sampler", ALL_SAMPLERS, ids=lambda s: s.name)
def test_picks_depend_on_seed_query_and_doc_not_on_row_order_or_batch(sampler):
    rng = np.random.default_rng(7)
    n_q, k = 9, 10
    scores = -np.sort(-rng.random((n_q, k)), axis=1).astype(np.float32)
    keep = rng.random((n_q, k)) < 0.7
    qids = [f"query-{i}" for i in range(n_q)]
    dids = [[f"doc-{rng.integers(1000)}-{j}" for j in range(k)] for _ in range(n_q)]
    ref = rng.random(n_q).astype(np.float32)
    full = _inp(scores, keep, qids=qids, dids=dids, ref=ref, seed=42)
    want = _chosen_docs(select(sampler, full, 3), dids)

    # rows permuted
    perm = rng.permutation(n_q)
    p_inp = _inp(scores[perm], keep[perm], qids=[qids[i] for i in perm], dids=[dids[i] for i in perm],
                 ref=ref[perm], seed=42)
    got = _chosen_docs(select(sampler, p_inp, 3), [dids[i] for i in perm])
    assert [got[int(np.flatnonzero(perm == q)[0])] for q in range(n_q)] == want

    # batches of 2, 3 and 4 queries
    got = []
    for lo, hi in [(0, 2), (2, 5), (5, 9)]:
        b = _inp(scores[lo:hi], keep[lo:hi], qids=qids[lo:hi], dids=dids[lo:hi], ref=ref[lo:hi], seed=42)
        got += _chosen_docs(select(sampler, b, 3), dids[lo:hi])
    assert got == want


@pytest.mark.parametrize("sampler", [Random(), Softmax(1.0), SimANS(a=0.5)], ids=lambda s: s.name)
def test_candidate_order_within_a_row_does_not_change_the_pick(sampler):
    # The same (doc, score) pairs presented in another column order give the same documents.
    rng = np.random.default_rng(3)
    scores = rng.random((1, 12)).astype(np.float32)
    dids = [[f"x{j}" for j in range(12)]]
    perm = rng.permutation(12)
    a = _inp(scores, qids=["q"], dids=dids, seed=5)
    b = _inp(scores[:, perm], qids=["q"], dids=[[dids[0][j] for j in perm]], seed=5)
    assert _chosen_docs(select(sampler, a, 4), dids) == _chosen_docs(
        select(sampler, b, 4), [[dids[0][j] for j in perm]])


@pytest.mark.parametrize("sampler", [Random(), Softmax(1.0), SimANS(a=0.5)], ids=lambda s: s.name)
def test_different_seeds_generally_pick_differently(sampler):
    scores = np.tile(np.linspace(0.9, 0.0, 10, dtype=np.float32), (50, 1))
    a = select(sampler, _inp(scores, seed=0), 3)
    b = select(sampler, _inp(scores, seed=1), 3)
    same = (a == b).all(axis=1).mean()
    assert same < 0.5  # C(10,3)=120 subsets; identical picks for most queries would mean no seeding


@pytest.mark.parametrize("sampler", [Random(), Softmax(1.0)], ids=lambda s: s.name)
def test_different_query_ids_generally_pick_differently(sampler):
    # the same candidate list under 50 query ids: the query id is part of the random key
    scores = np.tile(np.linspace(0.9, 0.0, 10, dtype=np.float32), (50, 1))
    cols = select(sampler, _inp(scores), 3)
    assert len({tuple(r) for r in cols.tolist()}) > 20


def test_top_ignores_the_seed():
    scores = np.tile(np.linspace(0.9, 0.0, 10, dtype=np.float32), (5, 1))
    assert (select(Top(), _inp(scores, seed=0), 3) == select(Top(), _inp(scores, seed=99), 3)).all()


def test_uniform_is_a_pure_function_of_seed_query_doc():
    q = string_keys(["a", "b"])
    d = string_keys(["x", "y", "z"])
    u = uniform(3, q, np.stack([d, d]))
    assert u.shape == (2, 3)
    assert ((u > 0) & (u < 1)).all()
    np.testing.assert_array_equal(u[1], uniform(3, q[1:], d[None, :])[0])
    assert not np.array_equal(u, uniform(4, q, np.stack([d, d])))


def _unmix(t: int) -> int:
    """Inverse of the splitmix64 finaliser used by ``negmine.core.keys.mix`` (64-bit Python ints)."""
    m = (1 << 64) - 1

    def unxorshift(y: int, s: int) -> int:
        x = y
        for _ in range(64 // s + 1):
            x = y ^ (x >> s)
        return x & m

    z = unxorshift(t, 31)
    z = (z * pow(0x94D049BB133111EB, -1, 1 << 64)) & m
    z = unxorshift(z, 27)
    z = (z * pow(0xBF58476D1CE4E5B9, -1, 1 << 64)) & m
    z = unxorshift(z, 30)
    return (z - 0x9E3779B97F4A7C15) & m


def test_uniform_stays_strictly_below_one_for_the_largest_hash():
    # ``uniform`` promises values in (0, 1): a value of 1.0 makes the Gumbel noise
    # -log(-log(1)) = +inf, so that candidate would win whatever its score. Plant the doc key
    # whose final hash is all ones (the largest 53-bit draw) by inverting the splitmix64 mixer.
    from negmine.core.keys import mix as _mix

    def mix(x: int) -> int:
        return int(_mix(np.array([x], np.uint64))[0])

    seed, qk = 0, 12345
    assert _unmix(mix(987654321)) == 987654321  # the inverse is right
    dk = _unmix((1 << 64) - 1) ^ mix(mix(seed) ^ qk)
    u = uniform(seed, np.array([qk], np.uint64), np.array([[dk]], np.uint64))
    assert 0.0 < u[0, 0] < 1.0


# ------------------------------------------------------------------------------------ softmax
def test_softmax_with_tiny_temperature_equals_top():
    rng = np.random.default_rng(0)
    scores = np.sort(rng.permutation(1000)[:300].reshape(30, 10) / 1000.0, axis=1)[:, ::-1].astype(np.float32)
    keep = rng.random((30, 10)) < 0.7
    # distinct scores differ by >= 0.001, so s/T differs by >= 1000 while Gumbel noise spans < 50
    for seed in range(5):
        inp = _inp(scores, keep, seed=seed)
        np.testing.assert_array_equal(select(Softmax(1e-6), inp, 3), select(Top(), inp, 3))


def test_softmax_one_of_three_follows_exp_s_over_t():
    # P(pick i) = exp(s_i/T) / Σ_j exp(s_j/T), s = (1.0, 0.5, 0.0), T = 0.5:
    #   weights e², e¹, e⁰ -> (0.665, 0.245, 0.090)
    n = 20000
    scores = np.tile(np.array([1.0, 0.5, 0.0], np.float32), (n, 1))
    inp = _inp(scores, qids=[f"q{i}" for i in range(n)], seed=11)
    cols = select(Softmax(0.5), inp, 1)[:, 0]
    freq = np.bincount(cols, minlength=3) / n
    w = np.exp(np.array([1.0, 0.5, 0.0]) / 0.5)
    np.testing.assert_allclose(freq, w / w.sum(), atol=0.015)  # 3σ ≈ 0.01 at n = 20000


def test_softmax_two_of_three_is_without_replacement():
    # Plackett–Luce: P(i left out) = Σ_{j≠i} p_j · w_l / (w_l + w_i), l the third item.
    n = 20000
    s = np.array([1.0, 0.5, 0.0])
    scores = np.tile(s.astype(np.float32), (n, 1))
    cols = select(Softmax(0.5), _inp(scores, qids=[f"q{i}" for i in range(n)], seed=3), 2)
    assert (cols >= 0).all() and (cols[:, 0] < cols[:, 1]).all()
    left_out = 3 - cols.sum(axis=1)  # columns are {0,1,2} minus one
    freq = np.bincount(left_out, minlength=3) / n
    w = np.exp(s / 0.5)
    p = w / w.sum()
    want = [sum(p[j] * w[3 - i - j] / (w[3 - i - j] + w[i]) for j in range(3) if j != i) for i in range(3)]
    np.testing.assert_allclose(freq, want, atol=0.015)


def test_random_is_uniform_whatever_the_scores():
    n = 20000
    scores = np.tile(np.array([10.0, 0.0, -10.0], np.float32), (n, 1))
    cols = select(Random(), _inp(scores, qids=[f"q{i}" for i in range(n)], seed=2), 1)[:, 0]
    np.testing.assert_allclose(np.bincount(cols, minlength=3) / n, [1 / 3] * 3, atol=0.015)


# ------------------------------------------------------------------------------------- simans
def test_simans_with_huge_a_picks_the_candidates_closest_to_s_plus_minus_b():
    # peak at s⁺ − b = 0.8 − 0.25 = 0.55; distances |s − 0.55| = .35 .15 .05 .25 .45
    # the two closest: 0.5 (c2) and 0.7 (c1); a = 1e6 makes a·d² gaps (≥ 2e4) dwarf the noise
    scores = [[0.9, 0.7, 0.5, 0.3, 0.1]]
    for seed in range(5):
        inp = _inp(scores, ref=[0.8], seed=seed)
        assert select(SimANS(a=1e6, b=0.25), inp, 2).tolist() == [[1, 2]]
        assert select(SimANS(a=1e6, b=0.25), inp, 1).tolist() == [[2]]


def test_simans_b_sign_follows_the_authors_code():
    # w = exp(−a·(s − s⁺ + b)²): b = −0.25 moves the peak ABOVE the positive, to 0.8 + 0.25 = 1.05
    inp = _inp([[0.9, 0.7, 0.5, 0.3, 0.1]], ref=[0.8])
    assert select(SimANS(a=1e6, b=-0.25), inp, 2).tolist() == [[0, 1]]
    # b = 0: peak at s⁺ = 0.8, nearest are 0.9 and 0.7 (both 0.1 away) — tie broken by noise, but
    # nothing else can win
    assert select(SimANS(a=1e6, b=0.0), inp, 2).tolist() == [[0, 1]]


def test_simans_uses_each_querys_own_reference():
    # same scores, different s⁺: q0 peaks at 0.9, q1 at 0.3, q2 (negative s⁺) at −0.5
    scores = [[0.9, 0.6, 0.3, 0.0, -0.5]] * 3
    inp = _inp(scores, ref=[0.9, 0.3, -0.5])
    assert select(SimANS(a=1e6), inp, 1).tolist() == [[0], [2], [4]]


def test_simans_with_a_zero_is_random():
    n = 12000
    scores = np.tile(np.array([0.9, 0.0, -0.9], np.float32), (n, 1))
    inp = _inp(scores, qids=[f"q{i}" for i in range(n)], ref=np.full(n, 0.9), seed=4)
    cols = select(SimANS(a=0.0), inp, 1)[:, 0]
    np.testing.assert_allclose(np.bincount(cols, minlength=3) / n, [1 / 3] * 3, atol=0.02)


def test_simans_without_a_positive_reference_is_not_starved_by_masked_cells():
    # A query whose positives the retriever could not score has s⁺ = NaN (filters.lowest_positive,
    # e.g. a precomputed run that does not list them). Whatever SimANS does then, masked cells
    # elsewhere in the row must not decide whether it picks 2 of its (six or four) survivors.
    docs = [["w", "x", "y", "z", "u", "v"], ["m1", "m2", "w", "x", "y", "z"]]
    keep = [[True] * 6, [False, False, True, True, True, True]]
    scores = [[0.9, 0.8, 0.7, 0.6, 0.5, 0.4], [0.95, 0.92, 0.9, 0.8, 0.7, 0.6]]
    inp = _inp(scores, keep, qids=["a", "b"], dids=docs, ref=[np.nan, np.nan])
    cols = select(SimANS(), inp, 2)
    assert (cols[0] >= 0).sum() == (cols[1] >= 0).sum(), cols.tolist()


# ------------------------------------------------------------------- the standardised ("query") scale
def test_query_sd_is_the_population_sd_of_the_finite_scores():
    s = np.array([[30, 30, 10, 10, -np.inf], [0.75, 0.75, 0.25, 0.25, -np.inf],
                  [5, -np.inf, -np.inf, -np.inf, -np.inf], [2, 2, 2, 2, 2]], np.float32)
    # rows: mean 20, sd 10; mean .5, sd .25; one score -> 1; constant -> 1
    np.testing.assert_array_equal(query_sd(s), [10.0, 0.25, 1.0, 1.0])


def test_simans_query_scale_is_a_gaussian_in_list_sds_below_the_reference():
    # s = (30, 30, 10, 10), s⁺ = 40, sd = 10: z = (−1, −1, −3, −3); a = 0.5, b = 1:
    #   log w = −0.5·(z + 1)² = (0, 0, −2, −2)
    inp = _inp([[30, 30, 10, 10]], ref=[40.0], seed=3)
    prio = SimANS(a=0.5, b=1.0, scale="query").priority(inp) - inp.gumbel()
    np.testing.assert_allclose(prio, [[0.0, 0.0, -2.0, -2.0]], atol=1e-12)
    raw = SimANS(a=0.5, b=1.0).priority(inp) - inp.gumbel()  # raw: −0.5·(s − 40 + 1)²
    np.testing.assert_allclose(raw, [[-40.5, -40.5, -420.5, -420.5]], atol=1e-9)


def test_softmax_query_scale_divides_by_the_list_sd():
    # s / sd / T with sd = 10, T = 0.5: (6, 6, 2, 2)
    inp = _inp([[30, 30, 10, 10]], seed=5)
    prio = Softmax(0.5, scale="query").priority(inp) - inp.gumbel()
    np.testing.assert_allclose(prio, [[6.0, 6.0, 2.0, 2.0]], atol=1e-12)


@pytest.mark.parametrize("make", [lambda: SimANS(a=0.5, b=1.0, scale="query"),
                                  lambda: Softmax(1.0, scale="query")])
def test_query_scale_picks_the_same_on_bm25_and_cosine_scales(make):
    # the same ranking on a BM25-like scale (tens) and a cosine-like one (±1), s' = α·s + β with
    # the reference moved alike: identical picks, query by query
    rng = np.random.default_rng(1)
    n, k = 200, 50
    cos = np.sort(rng.uniform(0.1, 0.9, (n, k)), axis=1)[:, ::-1]
    ref = cos[:, 0] + 0.05
    bm = 40.0 * cos + 3.0
    qids = [f"q{i}" for i in range(n)]
    a = select(make(), _inp(cos, qids=qids, ref=ref, seed=9), 5)
    b = select(make(), _inp(bm, qids=qids, ref=40.0 * ref + 3.0, seed=9), 5)
    assert (a == b).mean() > 0.99  # float32 rounding of the two scales may flip a rare near-tie


def test_query_scale_simans_differs_from_random_on_cosine_scores_where_raw_does_not():
    # cosine scores 0.8 .. 0.2 over 100 candidates, s⁺ = 0.85: raw a = 0.5 is uniform in all but
    # name (log-weights differ by < 0.2), the standardised default concentrates near s⁺ − sd
    n, k = 400, 100
    scores = np.tile(np.linspace(0.8, 0.2, k, dtype=np.float32), (n, 1))
    inp = _inp(scores, qids=[f"q{i}" for i in range(n)], ref=np.full(n, 0.85), seed=7)
    rank = {name: float(select(s, inp, 5).mean()) for name, s in
            [("random", Random()), ("raw", SimANS(a=0.5)), ("query", SimANS(a=0.5, b=1.0, scale="query"))]}
    assert abs(rank["raw"] - rank["random"]) < 3  # both ~ 49.5
    assert rank["query"] < 35 and rank["random"] - rank["query"] > 15  # peak 1 sd below s⁺: rank ~20


def test_scale_must_be_known_and_raw_configs_are_unchanged():
    with pytest.raises(ConfigError, match="score scale"):
        SimANS(scale="log")
    with pytest.raises(ConfigError, match="score scale"):
        Softmax(scale="z")
    assert SimANS().config() == {"name": "simans", "a": 0.5, "b": 0.0}  # run ids of raw runs unchanged
    assert Softmax(0.1, scale="query").config() == {"name": "softmax", "temperature": 0.1, "scale": "query"}


def _top_k_kept_by_sorting(prio: np.ndarray, keep: np.ndarray, k: int) -> np.ndarray:
    """The definition of :func:`negmine.core.select.top_k_kept`, written as one full sort."""
    n_rows, m = prio.shape
    out = np.full((n_rows, k), -1, np.int64)
    for r in range(n_rows):
        p = np.where(np.isnan(prio[r]), -np.inf, prio[r])
        kept = [c for c in sorted(range(m), key=lambda c: (-p[c], c)) if keep[r, c]][:k]
        out[r, :len(kept)] = sorted(kept)
    return out


@pytest.mark.parametrize("sorted_rows", [True, False])
def test_top_k_kept_equals_the_definition_with_ties_nans_and_shortfalls(sorted_rows: bool):
    """Rows already in priority order (the retrieval order a ``top`` sampler keeps: a path that
    takes the first kept cells) and rows in any order give what one full sort by (priority,
    column) among the kept cells gives: ties to the lower column, NaN last, -1 for a shortfall."""
    from negmine.core.select import top_k_kept

    rng = np.random.default_rng(3)
    for _ in range(400):
        n, m, k = int(rng.integers(1, 5)), int(rng.integers(0, 12)), int(rng.integers(1, 14))
        prio = rng.integers(0, 4, (n, m)).astype(np.float64)  # many ties
        if sorted_rows:
            prio = -np.sort(-prio, axis=1)
        if m and rng.random() < 0.3:
            prio[:, -1] = np.nan
        keep = rng.random((n, m)) < 0.6
        got = top_k_kept(prio, keep, k)
        np.testing.assert_array_equal(got, _top_k_kept_by_sorting(prio, keep, k))
