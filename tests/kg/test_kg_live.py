"""Hard negatives from the live model: a real PyKEEN training loop, the sampler reads the current
weights (changing them changes the draws; the same weights and seed give the same draws), and
the guard holds (never a known triple, exactly k per triple, the margin refuses)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pykeen")


@pytest.fixture(scope="module")
def nations():
    import gc

    import pykeen.pipeline  # noqa: F401  (frozen below: PyKEEN's gc.collect() per epoch stays cheap)
    import torch

    import negmine.kg as kg
    from negmine.kg.kge import triples_factory

    gc.freeze()
    torch.set_num_threads(1)
    data = kg.load_dataset("nations")
    yield data, triples_factory(data)
    gc.unfreeze()


def _model(tf, seed: int = 0):
    from pykeen.models import TransE

    return TransE(triples_factory=tf, embedding_dim=8, random_seed=seed)


def _sampler(tf, model, **kw):
    import negmine.kg as kg

    opts = dict(sampler="hard", model=model, num_negs_per_pos=4, seed=3,
                sampler_kwargs=dict(pool=8, cache=4, temperature=0.05), guard=("cardinality", "margin"))
    opts.update(kw)
    return kg.PyKEENSampler(mapped_triples=tf.mapped_triples, **opts)


def test_live_sampler_in_a_training_loop_reads_the_current_weights(nations) -> None:
    import torch
    from pykeen.training import SLCWATrainingLoop
    from torch.optim import Adam

    import negmine.kg as kg

    data, tf = nations
    model = _model(tf)
    used: list[kg.PyKEENSampler] = []

    class Recording(kg.PyKEENSampler):  # the instance PyKEEN builds, kept to inspect
        def __init__(self, **kw):
            super().__init__(**kw)
            used.append(self)

    loop = SLCWATrainingLoop(model=model, triples_factory=tf, optimizer=Adam(model.get_grad_params(), lr=0.05),
                             negative_sampler=Recording,
                             negative_sampler_kwargs=dict(sampler="hard", model=model, num_negs_per_pos=4, seed=3,
                                                          sampler_kwargs=dict(pool=8, cache=4)))
    losses = loop.train(triples_factory=tf, num_epochs=2, batch_size=256, use_tqdm=False)
    assert len(losses) == 2 and all(np.isfinite(losses))
    s = max(used, key=lambda u: u.calls)  # the sampler PyKEEN trained with: one call per batch
    assert s.calls >= 2 * (len(data.train) // 256) and s.neg_sampler.last_["scored"] > 0
    assert (s.neg_sampler.cache_ >= 0).any()  # the NSCaching cache filled from the scored pools

    batch = tf.mapped_triples[:200]
    a, _ = _sampler(tf, model).sample(batch)
    b, _ = _sampler(tf, model).sample(batch)
    assert torch.equal(a, b)  # same weights, same seed, same (empty) cache: same draws
    loop.train(triples_factory=tf, num_epochs=1, batch_size=256, use_tqdm=False)  # the weights move
    c, _ = _sampler(tf, model).sample(batch)
    assert not torch.equal(a, c)
    other = _model(tf, seed=1)
    d, _ = _sampler(tf, other).sample(batch)
    assert not torch.equal(c, d)


def test_weights_alone_change_the_draws(nations) -> None:
    import torch

    _data, tf = nations
    model = _model(tf)
    batch = tf.mapped_triples[:200]
    a, _ = _sampler(tf, model).sample(batch)
    rep = model.entity_representations[0]
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        rep._embeddings.weight.mul_(-1.0).add_(0.3)
    b, _ = _sampler(tf, model).sample(batch)
    assert not torch.equal(a, b)
    model.load_state_dict(saved)
    c, _ = _sampler(tf, model).sample(batch)
    assert torch.equal(a, c)


def test_live_draws_exactly_k_filtered_within_the_type_guard(nations) -> None:
    import torch

    data, tf = nations
    model = _model(tf)
    known = {tuple(x) for x in data.known().tolist()}
    s = _sampler(tf, model, known_triples=torch.as_tensor(data.known()), guard=("cardinality", "type"),
                 sampler_kwargs=dict(pool=5, cache=4), num_negs_per_pos=6)
    batch = tf.mapped_triples[:300].numpy()
    neg, mask = s.sample(torch.as_tensor(batch))
    ok = np.ones(neg.shape[:2], dtype=bool) if mask is None else mask.numpy()
    neg = neg.numpy()
    kept = neg[ok].tolist()
    assert kept and not known & {tuple(x) for x in kept}
    pools = s.neg_sampler.base_.pools_
    for i, (h, r, t) in enumerate(batch):
        allowed = {(e, r, t) for e in np.flatnonzero(pools[r, 0]) if e != h}
        allowed |= {(h, r, e) for e in np.flatnonzero(pools[r, 1]) if e != t}
        allowed -= known
        row = {tuple(x) for x in neg[i][ok[i]].tolist()}
        assert row <= allowed and len(row) == ok[i].sum() == min(6, len(allowed))  # distinct, exactly k


def test_the_margin_refuses_negatives_scored_above_the_positive(nations) -> None:
    _data, tf = nations
    model = _model(tf)
    batch = tf.mapped_triples[:300]
    for margin, guard in ((None, ("cardinality",)), (0.0, ("cardinality", "margin"))):
        kw = dict(pool=64, cache=0, temperature=0.05) | ({} if margin is None else {"margin": margin})
        s = _sampler(tf, model, guard=guard, sampler_kwargs=kw)
        neg, _ = s.sample(batch)
        scorer = s.neg_sampler.scorer
        above = scorer(neg.reshape(-1, 3).numpy()).reshape(neg.shape[:2]) > scorer(batch.numpy())[:, None]
        if margin is None:
            unguarded = above.mean()
            assert s.neg_sampler.last_["refused_margin"] == 0
        else:
            assert s.neg_sampler.last_["refused_margin"] > 0
            # only the unscored fill can land above the positive (refused candidates never come back)
            assert above.mean() < unguarded


def test_refresh_every_n_epochs_uses_a_frozen_copy(nations) -> None:
    import torch

    _data, tf = nations
    model = _model(tf)
    s = _sampler(tf, model, refresh=2)
    batch = tf.mapped_triples[:100]
    s.sample(batch)
    frozen = s.neg_sampler.scorer.frozen_
    assert frozen is not None and frozen is not model
    with torch.no_grad():
        model.entity_representations[0]._embeddings.weight.add_(1.0)
    s.sample(batch)
    assert s.neg_sampler.scorer.frozen_ is frozen  # within the same epochs: not refreshed
    s.neg_sampler.scorer.tick(2.0)
    s.sample(batch)
    assert s.neg_sampler.scorer.frozen_ is not frozen


def test_bad_live_options(nations) -> None:
    from negmine.core.errors import ConfigError

    _data, tf = nations
    with pytest.raises(ConfigError, match="use sampler='hard'"):
        _sampler(tf, _model(tf), sampler="uniform")
    with pytest.raises(ConfigError, match="unknown guard 'types'"):
        _sampler(tf, _model(tf), guard=("types",))
    with pytest.raises(ConfigError, match="refresh must be"):
        _sampler(tf, _model(tf), refresh=0)
