"""Samplers: never a known positive, seeded and position-free, popularity ∝ count^alpha, DNS
keeps the hardest, robust avoids likely positives."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import negmine.rec.mining as rec_mine
from negmine.core.errors import ConfigError
from negmine.rec.data import RecData, from_arrays, split_interactions
from negmine.rec.mining import mine, sample_negatives
from negmine.rec.samplers import DNS, Context, Mixed, Popularity, Robust, Uniform
from negmine.rec.scorers import Scorer


def planted_scorer(data: RecData, values: np.ndarray | None = None) -> Scorer:
    """score(u, i) = values[i] for every user (1-d factors)."""
    v = np.arange(data.n_items, dtype=np.float32) if values is None else values.astype(np.float32)
    return Scorer(np.ones((data.n_users, 1), np.float32), v[:, None], {"name": "planted"})


SAMPLERS = [Uniform(), Popularity(0.75), Popularity(0.0), DNS(4), Robust(4, 0.5),
            Mixed([(Uniform(), 0.5), (DNS(3), 0.3), (Popularity(1.0), 0.2)])]


@st.composite
def interactions(draw: st.DrawFn) -> tuple[RecData, int]:
    n_users = draw(st.integers(1, 6))
    n_items = draw(st.integers(2, 12))
    pairs = draw(st.lists(st.tuples(st.integers(0, n_users - 1), st.integers(0, n_items - 1)), min_size=1,
                          max_size=60))
    u, i = np.array(pairs).T
    ratings = draw(st.lists(st.sampled_from([1.0, 5.0]), min_size=len(u), max_size=len(u)))
    ratings[0] = 5.0
    policy = draw(st.sampled_from(["negative", "ignore"]))
    x = from_arrays(u * 7 + 3, i * 11 + 2, ratings, np.arange(len(u)), min_rating=4, low_ratings=policy,
                    drop_users_without_positives=True)
    split = draw(st.sampled_from(["random", "time", "leave-last"]))
    return split_interactions(x, split, draw(st.sampled_from([0.0, 0.3, 0.6])), seed=1), draw(st.integers(0, 3))


@settings(max_examples=60, deadline=None)
@given(interactions(), st.integers(1, 9), st.sampled_from(range(len(SAMPLERS))))
def test_no_known_positive_is_ever_a_negative(case: tuple[RecData, int], n: int, which: int) -> None:
    data, seed = case
    sampler = SAMPLERS[which]
    neg, _ = sample_negatives(data, sampler, n, seed, scorer=planted_scorer(data))
    users = data.train.query_of_pair()
    ex = data.exclude
    for row, user in enumerate(users.tolist()):
        excluded = set(ex.indices[ex.indptr[user]:ex.indptr[user + 1]].tolist())
        allowed = data.n_items - len(excluded)
        got = neg[row]
        assert not excluded & set(got.tolist()), (row, user)
        if allowed > 0 and which not in (1, 5):  # popularity (alpha > 0) never draws an item nobody liked
            assert (got >= 0).all()  # a shortfall only where nothing is allowed
        if allowed == 0:
            assert (got == -1).all()


def test_exact_fallback_after_rejection_rounds() -> None:
    # user 1 likes 199 of 200 items: nearly every draw is rejected; the one allowed item is found
    items = np.arange(200)
    x = from_arrays(np.r_[np.ones(199, int), [2]], np.r_[items[:-1], [199]], None, np.arange(200))
    data = split_interactions(x, "time", 0)
    ctx = Context(data, 0)
    neg = ctx.draw(np.zeros(5, np.int64), np.arange(5, dtype=np.uint64), 40, 0, None)
    assert (neg == 199).all() and ctx.exact_fallback > 0


def _shuffled(data_rows: list[tuple[int, int, float, int]], seed: int) -> RecData:
    rows = list(data_rows)
    np.random.default_rng(seed).shuffle(rows)
    u, i, r, t = (np.array(c) for c in zip(*rows))
    return split_interactions(from_arrays(u, i, r, t, min_rating=4, drop_users_without_positives=True), "time", 0.25)


ROWS = [(int(u), int(i), float(r), int(t)) for u, i, r, t in zip(
    np.random.default_rng(5).integers(0, 40, 600), np.random.default_rng(6).integers(0, 90, 600),
    np.random.default_rng(7).integers(1, 6, 600), np.arange(600))]


@pytest.mark.parametrize("sampler", SAMPLERS, ids=lambda s: s.name)
def test_same_seed_same_bytes_whatever_the_order(tmp_path, sampler) -> None:
    outs = []
    for k in range(2):
        data = _shuffled(ROWS, k)
        r = mine(data, sampler, num_negatives=6, seed=3, scorer=planted_scorer(data))
        outs.append(r.save(tmp_path / str(k)) / "mined.parquet")
    assert outs[0].read_bytes() == outs[1].read_bytes()
    other = mine(_shuffled(ROWS, 0), sampler, num_negatives=6, seed=4, scorer=planted_scorer(_shuffled(ROWS, 0)))
    assert not np.array_equal(other.negatives, mine(_shuffled(ROWS, 0), sampler, num_negatives=6, seed=3,
                                                    scorer=planted_scorer(_shuffled(ROWS, 0))).negatives)


def test_chunking_and_subsets_do_not_change_a_row(monkeypatch) -> None:
    data = _shuffled(ROWS, 0)
    full, _ = sample_negatives(data, Uniform(), 7, 11)
    monkeypatch.setattr(rec_mine, "CHUNK_CELLS", 10)
    chunked, _ = sample_negatives(data, Uniform(), 7, 11)
    users, items = data.train.query_of_pair(), data.train.indices
    sub, _ = sample_negatives(data, Uniform(), 7, 11, users=users[::-3], items=items[::-3])
    assert np.array_equal(full, chunked) and np.array_equal(full[::-3], sub)


def test_popularity_matches_count_to_the_alpha() -> None:
    """Items 0..19 are liked by k + 1 filler users each; the target user likes only item 20
    (count 1, excluded for them), so their negatives must follow (k + 1)^0.75 over 0..19.
    Tolerance: every item's frequency within 5 binomial standard errors of its probability."""
    u, i = [], []
    for k in range(20):
        for f in range(k + 1):
            u.append(1000 + f)
            i.append(k)
    u.append(1)
    i.append(20)
    data = split_interactions(from_arrays(u, i, None, np.arange(len(u))), "time", 0)
    target = int(np.flatnonzero(data.interactions.user_ids == 1)[0])
    n = 200_000
    ctx = Context(data, 0)
    neg, _ = Popularity(0.75).sample(ctx, np.array([target]), np.array([123], np.uint64), n)
    freq = np.bincount(neg[0], minlength=21) / n
    p = np.r_[np.arange(1, 21) ** 0.75, 0.0]
    p /= p.sum()
    se = np.sqrt(p * (1 - p) / n)
    assert freq[20] == 0
    assert np.all(np.abs(freq - p) <= 5 * se + 1e-12), np.abs(freq - p) / np.maximum(se, 1e-12)
    uniform_freq = np.bincount(Uniform().sample(ctx, np.array([target]), np.array([123], np.uint64), n)[0][0],
                               minlength=21) / n
    assert np.abs(uniform_freq[:20] - 1 / 20).max() < 5 * np.sqrt(0.05 * 0.95 / n)


def test_dns_keeps_the_hardest_of_its_candidates() -> None:
    data = _shuffled(ROWS, 0)
    values = np.random.default_rng(0).permutation(data.n_items).astype(np.float32)
    scorer = planted_scorer(data, values)
    m, n = 5, 4
    ctx = Context(data, 9, scorer)
    users, items = data.train.query_of_pair(), data.train.indices
    keys = ctx.pair_keys(users, items)
    neg, scores = DNS(m).sample(ctx, users, keys, n)
    cand = Context(data, 9, scorer).draw(users, keys, n * m, 0, None).reshape(len(users), n, m)
    hardest = np.take_along_axis(cand, np.argmax(values[cand], axis=2)[..., None], axis=2)[..., 0]
    assert np.array_equal(neg, hardest) and np.array_equal(scores, values[neg])
    uni, _ = Uniform().sample(Context(data, 9), users, keys, n)
    assert values[neg].mean() > values[uni].mean() + 0.2 * data.n_items


def test_robust_prefers_hard_but_below_the_users_positives() -> None:
    """Planted: the user's positives score 10; candidates score 0..19. DNS takes the top ones
    (>= 10: likely unlabeled positives); robust concentrates just below 10."""
    rows = [(1, i, 5.0, i) for i in range(20, 25)] + [(2, i, 5.0, i) for i in range(45)]
    u, i, r, t = (np.array(c) for c in zip(*rows))
    data = split_interactions(from_arrays(u, i, r, t), "time", 0)
    values = np.r_[np.arange(20), np.full(5, 10), np.zeros(20)].astype(np.float32)
    scorer = planted_scorer(data, values)
    users = np.zeros(200, np.int64)
    keys = np.arange(200, dtype=np.uint64)
    dns, _ = DNS(20).sample(Context(data, 0, scorer), users, keys, 1)
    rob, _ = Robust(20, 1.0).sample(Context(data, 0, scorer), users, keys, 1)
    assert (values[dns] > 10).mean() > 0.9
    assert (values[rob] > 11).mean() < 0.35 and 7 <= np.median(values[rob]) <= 11


def test_mixed_splits_slots_by_share() -> None:
    mix = Mixed([(Uniform(), 0.5), (Popularity(), 0.5)])
    assert mix.slots(5) == [3, 2] and mix.slots(1) == [1, 0]
    assert Mixed([(Uniform(), 1), (Uniform(), 3)]).slots(8) == [2, 6]
    with pytest.raises(ConfigError):
        Mixed([(Uniform(), 0.0)])
    data = _shuffled(ROWS, 0)
    with pytest.raises(ConfigError, match="needs a scorer"):
        sample_negatives(data, DNS(3), 2, 0)


def test_bloom_filter_path_is_exact_too(monkeypatch) -> None:
    """Above DENSE_MAX_BITS cells the excluded set is a Bloom filter confirmed by binary search:
    the same negatives as the exact bitmap."""
    import negmine.rec.context as context_module

    data = _shuffled(ROWS, 0)
    dense, _ = sample_negatives(data, Popularity(), 9, 2)
    monkeypatch.setattr(context_module, "DENSE_MAX_BITS", 0)
    ctx = Context(data, 2)
    assert not ctx._filter.exact
    bloom, _ = sample_negatives(data, Popularity(), 9, 2, ctx=ctx)
    assert np.array_equal(dense, bloom)
