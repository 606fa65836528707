"""negmine inside a user's own SentenceTransformerTrainer (:mod:`negmine.text.st`).

The planted data: 8 topics x 4 queries. Each query has its own positive in the mined split, and
the other three positives of its topic are its positives too in another split (``exclude``, as
``load_beir`` builds it from every qrels file) — so every two rows of a topic collide: one's
positive is a known positive of the other's query, yet no string repeats, so sentence-transformers'
``NO_DUPLICATES`` cannot see it. 32 rows in batches of 8: a random batch of 8 holds two rows of a
topic with probability ``1 - (28/31)(24/30)(20/29)(16/28)(12/27)(8/26)(4/25) = 0.991``; a
conflict-free epoch must hold exactly one row of every topic in every batch.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

for _module in ("sentence_transformers", "accelerate", "datasets", "bm25s"):
    pytest.importorskip(_module)

import torch  # noqa: E402

from negmine.core.errors import ConfigError  # noqa: E402
from tests.conftest import build_mining_data, write_beir  # noqa: E402

os.environ.setdefault("NEGMINE_PROGRESS", "0")

TOPICS, PER_TOPIC, BATCH = 8, 4, 8
WORDS = ([f"topic{t}" for t in range(TOPICS)] + [f"query{j}" for j in range(PER_TOPIC)]
         + [f"doc{j}" for j in range(PER_TOPIC)] + [f"other{j}" for j in range(PER_TOPIC)]
         + "what about the answer is a text on".split())


def planted() -> dict[str, Any]:
    """Texts, ids and qrels of the planted data (see the module docstring)."""
    docs, doc_ids, queries, query_ids = [], [], [], []
    train: dict[str, list[str]] = {}
    other: dict[str, list[str]] = {}
    for t in range(TOPICS):
        for j in range(PER_TOPIC):
            doc_ids.append(f"p{t}-{j}")
            docs.append(f"the answer doc{j} on topic{t}")
        for j in range(PER_TOPIC):
            doc_ids.append(f"x{t}-{j}")
            docs.append(f"a text about topic{t} query{j} other{j}")
        for j in range(PER_TOPIC):
            q = f"q{t}-{j}"
            query_ids.append(q)
            queries.append(f"what about topic{t} query{j}")
            train[q] = [f"p{t}-{j}"]
            other[q] = [f"p{t}-{k}" for k in range(PER_TOPIC) if k != j]
    return {"docs": docs, "doc_ids": doc_ids, "queries": queries, "query_ids": query_ids, "train": train,
            "other": other}


@pytest.fixture(scope="module")
def data() -> Any:
    p = planted()
    return build_mining_data(p["docs"], p["queries"], p["train"], p["other"], doc_ids=p["doc_ids"],
                             query_ids=p["query_ids"])


@pytest.fixture(scope="module")
def result(data: Any) -> Any:
    import negmine

    return negmine.mine(data, negmine.text.retrievers.BM25(), num_negatives=1, seed=0)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.unit.tiny_models import build_tiny_sentence_transformer

    return build_tiny_sentence_transformer(tmp_path_factory.mktemp("tiny") / "st", WORDS)


def topic_of(anchor: str) -> str:
    return anchor.split()[2]


def st_batches(kind: str, dataset: Any, seed: int, epoch: int = 0) -> list[list[int]]:
    """The batches sentence-transformers' own sampler ``kind`` draws, built the way its trainer does."""
    from sentence_transformers.base.sampler import DefaultBatchSampler, NoDuplicatesBatchSampler
    from torch.utils.data import RandomSampler

    g = torch.Generator()
    g.manual_seed(seed)
    if kind == "no_duplicates":
        s: Any = NoDuplicatesBatchSampler(dataset, BATCH, False, generator=g, seed=seed)
    else:
        s = DefaultBatchSampler(RandomSampler(dataset, generator=g), BATCH, False, generator=g, seed=seed)
    s.set_epoch(epoch)
    return [list(b) for b in s]


def mined_sampler(result: Any, dataset: Any, seed: int = 0, hardness: float = 0.5) -> Any:
    from negmine.text.st import MinedBatchSampler

    return MinedBatchSampler.factory(result, hardness=hardness)(dataset, batch_size=BATCH, drop_last=False,
                                                                 valid_label_columns=None, generator=None, seed=seed)


# ------------------------------------------------------------------------------------- sampler
def test_planted_collisions_certain_with_st_samplers_and_absent_with_the_mined_one(result: Any) -> None:
    from negmine.text.st import RunIndex, count_collisions, row_keys

    dataset = result.to_dataset("n-tuple")
    assert len(dataset) == TOPICS * PER_TOPIC
    index = RunIndex.from_result(result)
    keys = row_keys(dataset)
    for seed in (0, 1, 2):
        for kind in ("batch_sampler", "no_duplicates"):
            c = count_collisions(st_batches(kind, dataset, seed), keys, index)
            assert c["known"] > 0, (kind, seed)
        sampler = mined_sampler(result, dataset, seed)
        for epoch in (0, 1):
            sampler.set_epoch(epoch)
            batches = list(sampler)
            assert count_collisions(batches, keys, index)["known"] == 0
            # the only conflict-free layout: one row of every topic in every batch
            anchors = dataset["anchor"]
            assert all(sorted(topic_of(anchors[r]) for r in b) == sorted(f"topic{t}" for t in range(TOPICS))
                       for b in batches)
        assert sampler.stats["forced_rows"] == 0


def test_collision_count_by_hand() -> None:
    from negmine.text.st import RunIndex, count_collisions
    from negmine.text.st.index import RowKeys

    # rows 0, 1, 2; row 1's positive (key 11) is a known positive of row 0's anchor (key 100),
    # row 2's negative (key 22) a suspect of row 0's anchor
    keys = RowKeys(anchor=np.array([100, 101, 102], dtype=np.uint64), docs=[(10, 20), (11, 21), (12, 22)],
                   texts=[frozenset()] * 3, columns=["anchor", "positive", "negative_1"])
    index = RunIndex(known={100: frozenset({10, 11})}, suspect={100: frozenset({22})})
    c = count_collisions([[0, 1, 2]], keys, index)
    # 3 anchors x 2 other rows x 2 documents = 12 cells; row 0 sees 11 (known) and 22 (suspect)
    assert c == {"cells": 12, "known": 1, "suspect": 1, "batches": 1}
    assert count_collisions([[0], [1, 2]], keys, index)["known"] == 0


def test_sampler_is_deterministic_per_seed_and_epoch_and_covers_every_row_once(result: Any) -> None:
    dataset = result.to_dataset("n-tuple")
    n = len(dataset)
    seen = {}
    for seed, epoch in itertools.product((0, 1), (0, 1, 2)):
        a, b = mined_sampler(result, dataset, seed), mined_sampler(result, dataset, seed)
        a.set_epoch(epoch)
        b.set_epoch(epoch)
        first, second = list(a), list(b)
        assert first == second
        assert sorted(r for batch in first for r in batch) == list(range(n))  # every row exactly once
        assert len(first) == len(a) == math.ceil(n / BATCH)
        seen[(seed, epoch)] = first
    assert seen[(0, 0)] != seen[(0, 1)]  # set_epoch re-draws
    assert seen[(0, 0)] != seen[(1, 0)]


def test_batches_do_not_depend_on_the_dataset_row_order(result: Any) -> None:
    dataset = result.to_dataset("n-tuple")
    perm = np.random.default_rng(7).permutation(len(dataset))
    shuffled = dataset.select(perm.tolist())

    def as_texts(ds: Any, batches: list[list[int]]) -> list[list[str]]:
        return [sorted(ds["anchor"][r] for r in b) for b in batches]

    assert as_texts(dataset, list(mined_sampler(result, dataset))) == as_texts(
        shuffled, list(mined_sampler(result, shuffled)))


def test_hardness_fills_batches_from_neighbours(data: Any) -> None:
    """Without the cross-topic positives, rows of a topic are free to share a batch; the neighbour
    graph (shared BM25 candidates) puts them together as hardness grows."""
    import negmine

    p = planted()
    free = build_mining_data(p["docs"], p["queries"], p["train"], doc_ids=p["doc_ids"], query_ids=p["query_ids"])
    res = negmine.mine(free, negmine.text.retrievers.BM25(), num_negatives=1, seed=0)
    dataset = res.to_dataset("n-tuple")

    def same_topic_share(h: float) -> float:
        pairs = same = 0
        for seed in range(3):
            for b in mined_sampler(res, dataset, seed, hardness=h):
                ts = [topic_of(dataset["anchor"][r]) for r in b]
                pairs += len(ts) * (len(ts) - 1)
                same += sum(x == y for x, y in itertools.permutations(ts, 2))
        return same / pairs

    low, high = same_topic_share(0.0), same_topic_share(1.0)
    assert high > 0.3 > low  # random batches of 8 from 8 topics of 4: 3/31 = 0.097


def test_suspects_are_the_candidates_the_filters_skipped(data: Any) -> None:
    import negmine
    from negmine.text.st import RunIndex
    from negmine.text.types import text_hash

    res = negmine.mine(data, negmine.text.retrievers.BM25(), filters=[negmine.text.filters.RankWindow(range_min=5)],
                       num_negatives=1, seed=0)
    index = RunIndex.from_result(res)
    cand, corpus = res.candidates, data.corpus
    for q in range(len(data.queries)):
        a = text_hash(data.queries.texts[q])
        known = {text_hash(t) for t in corpus.full_texts_at(data.exclude.row(q))}
        skipped = {text_hash(corpus.full_texts_at([int(d)])[0]) for d in cand.ids[q, :5] if d >= 0} - known
        assert index.suspect.get(a, frozenset()) == skipped
        assert index.known[a] == known


def test_bad_hardness_is_a_config_error(result: Any) -> None:
    from negmine.text.st import MinedBatchSampler

    with pytest.raises(ConfigError, match="hardness"):
        MinedBatchSampler.factory(result, hardness=1.5)


# ------------------------------------------------------------------------------------- masking
def test_calibrated_bound_by_hand() -> None:
    from negmine.core.stats import wilson
    from negmine.text.st import calibrated_bound

    scores = np.linspace(0.0, 0.99, 100)  # 0.00, 0.01, ..., 0.99
    # the largest k with Wilson upper(k, 100) <= 0.1: k = 4 (0.0984; 0.1118 at k = 5), so 4 of
    # the 100 positives score below the bound: the 5th smallest score, 0.04
    assert wilson(4, 100)[1] <= 0.1 < wilson(5, 100)[1]
    assert calibrated_bound(scores, 0.1) == pytest.approx(0.04)
    assert calibrated_bound(scores[:10], 0.1) == pytest.approx(0.0)  # too few to certify: the lowest


def test_masking_masks_only_other_rows_cells_above_the_bound() -> None:
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from negmine.text.st import FalseNegativeMasking

    class Fixed(torch.nn.Module):  # embeddings given by hand, as the "model"
        def forward(self, f: dict[str, Any]) -> dict[str, Any]:
            return {"sentence_embedding": f["emb"]}

    loss = FalseNegativeMasking(MultipleNegativesRankingLoss(Fixed(), scale=1.0), target=0.5)
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    p = torch.tensor([[1.0, 0.0], [0.6, 0.8]])  # cos(a0, p0) = 1, cos(a1, p1) = 0.8
    n = torch.tensor([[0.0, 1.0], [1.0, 0.0]])  # cos(a0, n1) = 1: a false negative for row 0
    loss([{"emb": a}, {"emb": p}, {"emb": n}], None)
    # step 1: no positive seen yet, nothing masked; then the bound from 2 positives (1.0, 0.8): too
    # few to certify 0.5 -> the lowest, 0.8. Step 2's other rows' cells:
    # row 0: p1 0.6, n1 1.0 (masked); row 1: p0 0.0, n0 1.0 (masked: cos(a1, n0) = 1)
    assert loss.history == [{"step": 1, "masked": 0, "cells": 4, "bound": math.inf}]
    assert loss.bound == pytest.approx(0.8)
    # the loss equals InfoNCE with those cells removed
    logits = [[1.0, 0.6, 0.0], [0.8, 0.0, 0.0]]  # row 0: p0, p1, n0 ; row 1: p1, p0, n1
    expected = np.mean([math.log(sum(math.exp(x) for x in r)) - r[0] for r in logits])
    value = loss([{"emb": a}, {"emb": p}, {"emb": n}], None)
    assert float(value) == pytest.approx(expected, rel=1e-6)
    assert loss.history[1] == {"step": 2, "masked": 2, "cells": 4, "bound": 0.8} and loss.total_masked == 2


def test_masking_rejects_other_losses(tiny_model: Path) -> None:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from negmine.text.st import FalseNegativeMasking

    model = SentenceTransformer(str(tiny_model), device="cpu")
    with pytest.raises(ConfigError, match="directions"):
        FalseNegativeMasking(MultipleNegativesRankingLoss(model, directions=("query_to_doc", "doc_to_query")))
    with pytest.raises(ConfigError, match="target"):
        FalseNegativeMasking(MultipleNegativesRankingLoss(model), target=0.0)


# --------------------------------------------------------------- a real SentenceTransformerTrainer
def trainer_for(model: Any, dataset: Any, loss: Any, out: Path, *, batch_sampler: Any = "no_duplicates",
                callbacks: list[Any] | None = None, max_steps: int = -1, epochs: float = 1) -> Any:
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

    args = SentenceTransformerTrainingArguments(
        output_dir=str(out), per_device_train_batch_size=BATCH, num_train_epochs=epochs, max_steps=max_steps,
        learning_rate=1e-3, batch_sampler=batch_sampler, seed=0, report_to="none", save_strategy="no",
        use_cpu=True, disable_tqdm=True, logging_steps=1, dataloader_num_workers=0)
    return SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss,
                                      callbacks=callbacks or [])


def recording_mnrl(model: Any, seen: list[list[str]]) -> Any:
    """``MultipleNegativesRankingLoss`` that records the anchor texts of every batch it trains on."""
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    class Recording(MultipleNegativesRankingLoss):
        def forward(self, features: Any, labels: Any) -> Any:
            features = list(features)
            seen.append(model.tokenizer.batch_decode(features[0]["input_ids"], skip_special_tokens=True))
            return super().forward(features, labels)

    return Recording(model)


def test_trainer_runs_with_the_mined_sampler_and_its_batches_have_no_collisions(
        result: Any, tiny_model: Path, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    from negmine.text.st import MinedBatchSampler, RunIndex, count_collisions, row_keys

    dataset = result.to_dataset("n-tuple")
    index = RunIndex.from_result(result)
    keys = row_keys(dataset)
    by_anchor = {a: i for i, a in enumerate(dataset["anchor"])}
    collisions = {}
    for name, sampler in (("st-default", "batch_sampler"), ("no-duplicates", "no_duplicates"),
                          ("mined", MinedBatchSampler.factory(result))):
        model = SentenceTransformer(str(tiny_model), device="cpu")
        seen: list[list[str]] = []
        trainer = trainer_for(model, dataset, recording_mnrl(model, seen), tmp_path / name, batch_sampler=sampler,
                              epochs=2)
        out = trainer.train()
        assert math.isfinite(out.training_loss) and trainer.state.global_step == 2 * len(dataset) // BATCH
        batches = [[by_anchor[t] for t in b] for b in seen]
        assert sorted(r for b in batches for r in b) == sorted(2 * list(range(len(dataset))))  # each row once an epoch
        collisions[name] = count_collisions(batches, keys, index)["known"]
    assert collisions["st-default"] > 0 and collisions["no-duplicates"] > 0
    assert collisions["mined"] == 0


def test_trainer_runs_with_masking_and_counts_masked_cells(result: Any, tiny_model: Path, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import (
        CachedMultipleNegativesRankingLoss,
        MultipleNegativesRankingLoss,
    )

    from negmine.text.st import FalseNegativeMasking

    dataset = result.to_dataset("n-tuple")
    totals: dict[str, list[int]] = {}
    for name in ("mnrl", "cached"):
        model = SentenceTransformer(str(tiny_model), device="cpu")
        base = (MultipleNegativesRankingLoss(model) if name == "mnrl"
                else CachedMultipleNegativesRankingLoss(model, mini_batch_size=3))
        loss = FalseNegativeMasking(base, target=0.2)
        trainer = trainer_for(model, dataset, loss, tmp_path / name, batch_sampler="batch_sampler", max_steps=4,
                              callbacks=[loss.callback()])
        trainer.train()
        assert [h["step"] for h in loss.history] == [1, 2, 3, 4]
        assert all(h["cells"] == BATCH * (BATCH - 1) * 2 for h in loss.history)  # 8 anchors x 7 rows x 2 docs
        assert loss.total_masked > 0 and all(0 <= h["masked"] <= h["cells"] for h in loss.history)
        logged = [e for e in trainer.state.log_history if "loss" in e]
        assert [e["masked_cells"] for e in logged] == [h["masked"] for h in loss.history]  # logging_steps=1
        totals[name] = [h["masked"] for h in loss.history]
    assert all(t[0] == 0 for t in totals.values())  # the first step has no calibration yet


def test_cached_masking_masks_what_mnrl_masks(result: Any, tiny_model: Path) -> None:
    """GradCache changes memory, not the result: the same cells are masked, mini-batch by mini-batch,
    and the loss values agree (model in eval mode: no dropout)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import (
        CachedMultipleNegativesRankingLoss,
        MultipleNegativesRankingLoss,
    )

    from negmine.text.st import FalseNegativeMasking

    model = SentenceTransformer(str(tiny_model), device="cpu").eval()
    dataset = result.to_dataset("n-tuple")
    batches = [dataset[i:i + BATCH] for i in range(0, len(dataset), BATCH)]
    tokenize = getattr(model, "preprocess", None) or model.tokenize
    runs = {}
    for name, base in (("mnrl", MultipleNegativesRankingLoss(model)),
                       ("cached", CachedMultipleNegativesRankingLoss(model, mini_batch_size=3))):
        loss = FalseNegativeMasking(base, target=0.2)
        values = []
        for b in batches:
            features = [dict(tokenize(b[c])) for c in ("anchor", "positive", "negative_1")]
            with torch.no_grad():
                values.append(float(loss(features, None)))
        runs[name] = (values, loss.history)
    assert runs["mnrl"][1] == runs["cached"][1]
    assert sum(h["masked"] for h in runs["mnrl"][1]) > 0
    assert runs["mnrl"][0] == pytest.approx(runs["cached"][0], rel=1e-5)


def test_remine_callback_negatives_equal_negmine_mine_with_the_same_weights(
        data: Any, tiny_model: Path, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    import negmine
    from negmine.text.st import MinedBatchSampler, RemineCallback
    from negmine.text.train.models import LiveEncoder

    model = SentenceTransformer(str(tiny_model), device="cpu")
    start = negmine.mine(data, negmine.text.retrievers.Dense(encoder=LiveEncoder(model)), num_negatives=1, seed=0,
                         filters=[negmine.text.filters.RankWindow(range_min=1)])
    dataset = start.to_dataset("n-tuple")
    before = list(dataset["negative_1"])
    callback = RemineCallback(start, model, every_steps=2, filters=[negmine.text.filters.RankWindow(range_min=1)])
    trainer = trainer_for(model, dataset, MultipleNegativesRankingLoss(model), tmp_path / "m",
                          batch_sampler=MinedBatchSampler.factory(start), max_steps=3, callbacks=[callback])
    trainer.train()
    assert [h["step"] for h in callback.history] == [2]
    # the weights at step 2 are gone; mine again at step 3's weights and compare with a second refresh
    again = negmine.mine(data, negmine.text.retrievers.Dense(encoder=LiveEncoder(model)), num_negatives=1, seed=0,
                         filters=[negmine.text.filters.RankWindow(range_min=1)])
    record = callback.refresh(3, dataset)
    assert callback.result is not None and callback.result.to_rows() == again.to_rows()
    texts = {a: n for a, n in zip(again.to_dataset("n-tuple")["anchor"], again.to_dataset("n-tuple")["negative_1"])}
    assert list(dataset["negative_1"]) == [texts[a] for a in dataset["anchor"]]
    assert record["rows_kept_previous"] == 0 and 0.0 <= record["changed_share"] <= 1.0
    assert list(dataset["negative_1"]) != before or record["changed_share"] == 0.0
    assert any("remine_s" in e for e in trainer.state.log_history)


def test_remine_callback_from_a_mining_directory_equals_the_cli(tiny_model: Path, tmp_path: Path) -> None:
    """The directory source re-mines through the manifest's options; the negatives equal what
    ``negmine mine`` writes with the same model weights."""
    from sentence_transformers import SentenceTransformer

    from negmine.cli.main import main
    from negmine.text.st import RemineCallback
    from negmine.text.writers.mined import load_mined

    p = planted()
    root = write_beir(tmp_path / "beir", [{"_id": i, "title": "", "text": t} for i, t in zip(p["doc_ids"], p["docs"])],
                      [{"_id": i, "text": t} for i, t in zip(p["query_ids"], p["queries"])],
                      {"train": [(q, d, 1) for q, ds in p["train"].items() for d in ds],
                       "dev": [(q, d, 1) for q, ds in p["other"].items() for d in ds]})
    mined = tmp_path / "mined"
    argv = ["mine", "--dataset", str(root), "--split", "train", "--retriever", "dense", "--model", str(tiny_model),
            "--num-negatives", "1", "--sampler", "top", "--range-min", "1"]
    assert main([*argv, "--out", str(mined)]) == 0
    model = SentenceTransformer(str(tiny_model), device="cpu")
    with torch.no_grad():  # move the weights, as training would
        for prm in model.parameters():
            prm.add_(0.05 * torch.randn(prm.shape, generator=torch.Generator().manual_seed(1)))
    from negmine.text.writers.export import export_rows, rows_to_columns

    rows, texts, _ = load_mined(mined)
    import datasets

    dataset = datasets.Dataset.from_dict(rows_to_columns(export_rows("n-tuple", rows, texts, num_negatives=1)))
    callback = RemineCallback(mined, model, every_steps=1)
    callback.refresh(1, dataset)
    model.save(str(tmp_path / "moved"))
    assert main([*argv[:8], str(tmp_path / "moved"), *argv[9:], "--out", str(tmp_path / "cli")]) == 0
    cli_rows, cli_texts, _ = load_mined(tmp_path / "cli")
    assert callback.result is not None
    assert [r["negative_ids"] for r in callback.result.to_rows()] == [r["negative_ids"] for r in cli_rows]
    want = export_rows("n-tuple", cli_rows, cli_texts, num_negatives=1)
    assert list(dataset["negative_1"]) == [r["negative_1"] for r in want]
    assert json.dumps(callback.history[0]["step"]) == "1"


def test_import_negmine_st_is_light() -> None:
    import subprocess
    import sys

    code = ("import sys, negmine, negmine.text.st; "
            "print(sorted(m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
