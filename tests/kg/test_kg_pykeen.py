"""The PyKEEN drop-in: a real ``pipeline(dataset="Nations", model="TransE", ...)`` trains with
negmine's negatives; the sampler's draws are never known triples; our filtered ranks equal
PyKEEN's evaluator."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pykeen")


@pytest.fixture
def frozen_gc():
    """PyKEEN calls gc.collect() after every epoch; freeze what is alive now so it stays cheap."""
    import gc

    import pykeen.pipeline  # noqa: F401  (import first: its modules are what gets frozen)

    gc.freeze()
    yield
    gc.unfreeze()


def test_pipeline_trains_with_negmine_sampler(frozen_gc) -> None:
    import torch
    from pykeen.pipeline import pipeline

    import negmine.kg as kg
    from negmine.kg.evaluation import all_scores, filtered_ranks, rank_metrics
    from negmine.kg.samplers import known_keys

    torch.set_num_threads(1)
    data = kg.load_dataset("nations")
    emb = np.random.default_rng(0).normal(size=(data.num_entities, 8))
    result = pipeline(
        dataset="Nations", model="TransE", model_kwargs=dict(embedding_dim=16),
        negative_sampler=kg.PyKEENSampler,
        negative_sampler_kwargs=dict(sampler="hasa", sampler_kwargs=dict(embeddings=emb), num_negs_per_pos=3, seed=0),
        training_kwargs=dict(num_epochs=3, batch_size=512, use_tqdm=False), random_seed=0,
        evaluation_kwargs=dict(use_tqdm=False, batch_size=256), optimizer_kwargs=dict(lr=0.01),
    )
    assert len(result.losses) == 3 and all(np.isfinite(result.losses))
    pykeen_mrr = result.metric_results.get_metric("both.realistic.inverse_harmonic_mean_rank")
    test = data.splits["test"]
    ranks = filtered_ranks(all_scores(result.model, test), test, np.sort(known_keys(data)), data.num_entities,
                           data.num_relations)
    assert rank_metrics(ranks)["mrr"] == pytest.approx(pykeen_mrr, rel=1e-5)


def test_sampler_batches_never_hold_known_triples_and_mask_shortfalls() -> None:
    import torch

    import negmine.kg as kg
    from negmine.kg.kge import triples_factory

    data = kg.load_dataset("nations")
    tf = triples_factory(data)
    s = kg.PyKEENSampler(mapped_triples=tf.mapped_triples, num_negs_per_pos=12, sampler="typed", seed=1,
                         entity_labels=data.entities, relation_labels=data.relations)
    known = {tuple(x) for x in data.train.tolist()}
    batch = tf.mapped_triples[:300]
    neg, mask = s.sample(batch)
    assert neg.shape == (300, 12, 3) and mask is not None and not bool(mask.all())
    kept = neg[mask].tolist()
    assert kept and not known & {tuple(x) for x in kept}
    neg2, _ = s.sample(batch)
    assert not torch.equal(neg, neg2)  # each call draws anew
    again = kg.PyKEENSampler(mapped_triples=tf.mapped_triples, num_negs_per_pos=12, sampler="typed", seed=1,
                             entity_labels=data.entities, relation_labels=data.relations)
    assert torch.equal(again.sample(batch)[0], neg)  # same seed, same draws
