"""``live-dns`` against a tiny recommender in a real training loop (issue 21 item 3): the sampler
reads the current weights, draws are keyed and position-free, exactly ``k`` negatives per
interaction, none a known positive of any split; and SimpleX's user tower."""

from __future__ import annotations

import numpy as np
import pytest

from negmine.core.errors import ConfigError
from negmine.rec import mining
from negmine.rec.data import from_arrays, from_splits, split_interactions
from negmine.rec.live import LiveScorer
from negmine.rec.mining import sample_negatives
from negmine.rec.samplers import Context, LiveDNS, Uniform
from negmine.rec.train import TrainConfig, Trainer, evaluate

pytest.importorskip("torch")
pytest.importorskip("scipy")


def _blocks(n_users: int = 40, per: int = 10) -> object:
    """Two communities: users 0..n/2-1 like items 0..per-1, the others items per..2per-1; a time
    split holds 30% of each user's items out (known positives of the test split)."""
    u, i, t = [], [], []
    for user in range(n_users):
        for item in range(per):
            u.append(user)
            i.append(item + (per if user >= n_users // 2 else 0))
            t.append((user * 7 + item * 3) % per)
    # a few extra items nobody in a community likes much, so the catalogue is larger than a block
    for user in range(0, n_users, 5):
        u.append(user)
        i.append(2 * per + user // 5)
        t.append(99)
    return split_interactions(from_arrays(u, i, None, t), "time", 0.3)


def _cfg(model: str, **kw: object) -> TrainConfig:
    base: dict[str, object] = {"model": model, "dim": 8, "epochs": 2, "batch_size": 16, "lr": 0.05,
                               "num_negatives": 3, "seed": 0}
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("model", ["mf-bpr", "simplex"])
def test_live_sampler_reads_the_current_weights(model: str) -> None:
    data = _blocks()
    rows = np.arange(len(data.train.indices))
    tr = Trainer(data, LiveDNS(8), _cfg(model))
    before, _ = tr.negatives(rows, 0)
    assert np.array_equal(before, tr.negatives(rows, 0)[0])  # same weights, same seed: same draws
    twin = Trainer(data, LiveDNS(8), _cfg(model))  # same seed: the same initial weights
    assert np.array_equal(before, twin.negatives(rows, 0)[0])
    tr.run_epoch(0)  # real optimiser steps on the live negatives
    after, _ = tr.negatives(rows, 0)
    assert (after != before).mean() > 0.1  # the model moved: its picks moved
    with np.errstate(all="ignore"):
        twin.user.weight.data.copy_(tr.user.weight.data)
        twin.item.weight.data.copy_(tr.item.weight.data)
        if tr.transform is not None:
            twin.transform.data.copy_(tr.transform.data)  # type: ignore[union-attr]
    assert np.array_equal(after, twin.negatives(rows, 0)[0])  # the weights alone decide
    with np.errstate(all="ignore"):
        tr.user.weight.data.mul_(-1.0)  # flip the user tower, so every score's sign: the hardest become the easiest
        if tr.transform is not None:
            tr.transform.data.mul_(-1.0)
    flipped, _ = tr.negatives(rows, 0)
    assert (flipped != after).mean() > 0.3
    # uniform draws ignore the weights entirely
    uni = Trainer(data, Uniform(), _cfg(model))
    u0 = uni.negatives(rows, 0)[0]
    uni.run_epoch(0)
    assert np.array_equal(u0, uni.negatives(rows, 0)[0])


def test_live_dns_picks_the_highest_scored_candidate() -> None:
    data = _blocks()
    tr = Trainer(data, LiveDNS(6), _cfg("mf-bpr"))
    tr.run_epoch(0)
    rows = np.arange(len(data.train.indices))
    users, keys = tr.users[rows], tr.keys[rows]
    tr.ctx.seed = 12345
    cand = tr.ctx.draw(users, keys, 3 * 6, 0, None).reshape(len(rows), 3, 6)
    scores = tr.live.score(users, cand.reshape(len(rows), -1)).reshape(len(rows), 3, 6)
    items, picked = LiveDNS(6).sample(tr.ctx, users, keys, 3)
    want = np.take_along_axis(cand, np.argmax(scores, axis=2)[..., None], axis=2)[..., 0]
    assert np.array_equal(items, want) and np.allclose(picked, scores.max(axis=2))
    # one candidate per negative is exactly the uniform sampler's draw
    assert np.array_equal(LiveDNS(1).sample(tr.ctx, users, keys, 3)[0], Uniform().sample(tr.ctx, users, keys, 3)[0])
    # harder than uniform under the model that picked them
    uni = Uniform().sample(tr.ctx, users, keys, 3)[0]
    assert picked.mean() > tr.live.score(users, uni).mean()


@pytest.mark.parametrize("guard", [{}, {"guard_margin": 0.0}, {"guard_similarity": 0.5}])
@pytest.mark.parametrize("seed", [0, 1, 7])
def test_exactly_k_none_known_same_bytes_for_any_batch(guard: dict[str, float], seed: int, monkeypatch) -> None:
    data = _blocks()
    tr = Trainer(data, LiveDNS(5, **guard), _cfg("simplex", seed=seed))
    tr.run_epoch(0)
    k = 4
    ref, ref_scores = sample_negatives(data, LiveDNS(5, **guard), k, seed, scorer=tr.live)
    assert ref.shape == (len(data.train.indices), k) and (ref >= 0).all()  # exactly k for every interaction
    users = data.train.query_of_pair()
    for r, u in enumerate(users.tolist()):
        assert not np.isin(ref[r], data.exclude.row(u)).any()  # never a positive of train or test
    for cells in (1, 7, 64, 1 << 20):  # rows per chunk: 1, 1, 3, all
        monkeypatch.setattr(mining, "CHUNK_CELLS", cells)
        neg, sc = sample_negatives(data, LiveDNS(5, **guard), k, seed, scorer=tr.live)
        assert neg.tobytes() == ref.tobytes() and sc.tobytes() == ref_scores.tobytes()
    # any order and any subset of rows: each row's negatives are its own
    perm = np.random.default_rng(seed).permutation(len(users))
    items = data.train.indices
    neg, _ = sample_negatives(data, LiveDNS(5, **guard), k, seed, scorer=tr.live, users=users[perm], items=items[perm])
    assert neg.tobytes() == ref[perm].tobytes()


def test_guard_refuses_candidates_too_close_to_the_positive() -> None:
    data = _blocks()
    tr = Trainer(data, LiveDNS(8), _cfg("simplex"))
    tr.run_epoch(0)
    tr.run_epoch(1)
    users, items = tr.users, tr.items
    keys = tr.keys
    pos = tr.live.score(users, items[:, None])
    for m in (0.4, 0.5):
        ctx = Context(data, 3, tr.live)
        neg, sc = LiveDNS(8, guard_margin=m).sample(ctx, users, keys, 3, positives=items)
        over = sc > pos - m
        assert over.sum() <= ctx.guard_fallback  # only where every candidate of the slot was refused
        assert ctx.guard_refused > 0
        plain = LiveDNS(8).sample(Context(data, 3, tr.live), users, keys, 3)[1]
        assert (plain > pos - m).sum() > over.sum()  # the unguarded picks cross the line more often
    ctx = Context(data, 3, tr.live)
    neg, _ = LiveDNS(8, guard_similarity=0.3).sample(ctx, users, keys, 3, positives=items)
    sim = tr.live.item_similarity(items, neg)
    assert (sim >= 0.3).sum() <= ctx.guard_fallback
    with pytest.raises(ConfigError):
        LiveDNS(8, guard_margin=0.1).sample(ctx, users, keys, 3)  # the guard needs the positives


def test_simplex_user_tower_by_hand() -> None:
    data = _blocks()
    tr = Trainer(data, Uniform(), _cfg("simplex", gamma=0.3))
    tr.run_epoch(0)
    e = tr.user.weight.detach().numpy()
    v = tr.item.weight.detach().numpy()
    w = tr.transform.detach().numpy()  # type: ignore[union-attr]
    for u in (0, 5, 39):
        hist = data.train.row(u)
        want = 0.3 * e[u] + 0.7 * (w @ v[hist].mean(axis=0))
        assert np.allclose(tr.live.user_vectors(np.array([u]))[0], want, atol=1e-5)
    import torch

    users = torch.arange(data.n_users)
    with torch.no_grad():
        assert np.allclose(tr._user_vectors(users).numpy(), tr.live.user_vectors(np.arange(data.n_users)), atol=1e-5)
    uf, _ = tr.live.snapshot()
    assert np.allclose(np.linalg.norm(uf, axis=1), 1, atol=1e-5)  # cosine model: saved normalised
    # gamma = 1: no tower, the plain embedding
    plain = Trainer(data, Uniform(), _cfg("simplex", gamma=1.0))
    assert plain.transform is None
    assert np.array_equal(plain.live.user_vectors(np.array([3])), plain.user.weight.detach().numpy()[[3]])


@pytest.mark.parametrize("model", ["mf-bpr", "simplex"])
def test_live_dns_training_learns_planted_blocks(model: str) -> None:
    data = _blocks()
    res = Trainer(data, LiveDNS(4), _cfg(model, epochs=20, num_negatives=4, margin=0.5)).fit()
    ev = evaluate(res.scorer, data, k=3)
    assert ev["recall@3"] > 0.8, ev["recall@3"]  # chance: 3 of ~17 candidates
    assert res.history[-1]["loss"] < res.history[0]["loss"]


def test_live_scorer_refusals_and_fixed_scorer_path() -> None:
    data = _blocks()
    with pytest.raises(ConfigError, match="model being trained"):
        sample_negatives(data, LiveDNS(4), 2, 0)
    with pytest.raises(ConfigError):
        LiveDNS(0)
    with pytest.raises(ConfigError):
        LiveDNS(4, guard_similarity=1.5)
    with pytest.raises(ConfigError, match="drop --scorer"):
        from negmine.rec.scorers import Scorer

        Trainer(data, LiveDNS(4), _cfg("mf-bpr"), scorer=Scorer(np.ones((data.n_users, 2), np.float32),
                                                                   np.ones((data.n_items, 2), np.float32)))
    # LiveScorer over plain arrays: editing the arrays in place changes the next scores
    e = np.ones((data.n_users, 2), np.float32)
    v = np.arange(data.n_items * 2, dtype=np.float32).reshape(-1, 2)
    live = LiveScorer(e, v)
    first, _ = sample_negatives(data, LiveDNS(6), 2, 0, scorer=live)
    v *= -1
    second, _ = sample_negatives(data, LiveDNS(6), 2, 0, scorer=live)
    assert (first != second).any()


def test_from_splits_keeps_the_given_split() -> None:
    data = from_splits(np.array([5, 5, 6]), np.array([1, 2, 2]), np.array([5, 6, 6]), np.array([3, 1, 2]))
    assert data.n_users == 2 and data.n_items == 3
    assert data.train.row(0).tolist() == [0, 1] and data.test.row(0).tolist() == [2]
    # (6, 2) is in both files: it stays a training positive only
    assert data.train.row(1).tolist() == [1] and data.test.row(1).tolist() == [0]
    assert data.exclude.row(1).tolist() == [0, 1] and data.split["test_also_in_train"] == 1


def test_cli_train_and_compare_with_live_dns(tmp_path, capsys) -> None:
    from negmine.cli.main import main

    rows = [(u, i, 5, u * 100 + i) for u in range(1, 16) for i in range(1, 25) if (u * i) % 3 != 1]
    f = tmp_path / "d.csv"
    f.write_text("user_id,item_id,rating,timestamp\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    out = tmp_path / "m.npz"
    assert main(["rec", "train", "--interactions", str(f), "--sampler", "live-dns", "--candidates", "4",
                 "--guard-margin", "0.5", "--model", "simplex", "--gamma", "0.4", "--num-negatives", "3",
                 "--epochs", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "trained simplex (live-dns, 3 negatives" in printed and "guard refused" in printed and out.is_file()
    assert main(["rec", "compare", "--interactions", str(f), "--samplers", "uniform,live-dns", "--seeds", "0",
                 "--negatives", "2", "--models", "mf-bpr", "--epochs", "2"]) == 0
    assert "| mf-bpr | 2 | live-dns |" in capsys.readouterr().out


@pytest.mark.parametrize("margin", [-0.5, 0.0, 0.3, 0.9])
def test_the_simplex_loss_through_active_negatives_equals_the_dense_hinge(margin: float) -> None:
    """The CCL loss differentiates only through negatives past the margin; its value and every
    gradient equal the textbook form over all ``B x N`` negatives (normalise, hinge, mask the
    ``-1`` slots), at margins where none, some and all negatives are active."""
    import torch

    from negmine.rec.train import _loss

    F = torch.nn.functional
    g = torch.Generator().manual_seed(3)
    u = torch.randn(60, 5, generator=g, dtype=torch.float64, requires_grad=True)
    table = torch.randn(31, 5, generator=g, dtype=torch.float64, requires_grad=True)
    pos_rows = torch.randint(0, 31, (60,), generator=g)
    j = torch.randint(0, 31, (60, 12), generator=g)
    j[2, :] = -1
    j[4, 3:] = -1
    c = TrainConfig(model="simplex", margin=margin, negative_weight=3.0)

    def dense() -> torch.Tensor:
        valid = (j >= 0).double()
        un = F.normalize(u, dim=-1)
        pos = (un * F.normalize(table[pos_rows], dim=-1)).sum(-1)
        neg = torch.einsum("bd,bnd->bn", un, F.normalize(table[j.clamp(min=0)], dim=-1))
        hinge = torch.relu(neg - margin) * valid
        return ((1 - pos) + 3.0 * hinge.sum(1) / valid.sum(1).clamp(min=1)).mean()

    grads = []
    for f in (dense, lambda: _loss(torch, c, u, table[pos_rows], table, j)):
        u.grad = table.grad = None
        loss = f()
        loss.backward()
        grads.append((loss.detach(), u.grad.clone(), table.grad.clone()))
    for a, b in zip(grads[0], grads[1]):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-12, atol=1e-14)
    assert float(grads[0][2].abs().sum()) > 0
