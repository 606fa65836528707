"""The hidden-interaction audit, full-ranking metrics and training, on planted data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from negmine.rec.audit import audit, hidden_split, render
from negmine.rec.data import from_arrays, split_interactions
from negmine.rec.samplers import DNS, Uniform
from negmine.rec.scorers import Scorer
from negmine.rec.train import TrainConfig, evaluate, train


def test_audit_counts_hidden_positives_exactly() -> None:
    # user 1 liked items 10 (early, train) and 11 (late, hidden); items 12, 13 are unseen by user 1
    x = from_arrays([1, 1, 2, 2], [10, 11, 12, 13], None, [1, 2, 1, 2])
    data = split_interactions(x, "time", 0.5)
    visible = hidden_split(data)
    assert visible.exclude.row(0).tolist() == [0] and data.exclude.row(0).tolist() == [0, 1]
    rows = audit(data, {"uniform": Uniform()}, num_negatives=400, seed=0)
    r = rows[0]
    # user 1's negatives come from {11, 12, 13}: 1 of 3 is hidden; user 2 (train 12, hidden 13): 1 of 3
    assert r["negatives"] == 800 and abs(r["fnr"] - 1 / 3) < 0.06
    assert r["ci_low"] < r["fnr"] < r["ci_high"] and math.isclose(r["base_rate"], 1 / 3)
    assert "| uniform |" in render(rows)


def test_dns_under_a_planted_model_finds_the_hidden_positive() -> None:
    x = from_arrays([1, 1, 2, 2], [10, 11, 12, 13], None, [1, 2, 1, 2])
    data = split_interactions(x, "time", 0.5)
    # the model scores each user's hidden item highest
    scorer = Scorer(np.eye(2, dtype=np.float32), np.array([[0, 0], [1, 0], [0, 0], [0, 1]], np.float32))
    rows = audit(data, {"uniform": Uniform(), "dns": DNS(8)}, num_negatives=50, seed=1, scorer=scorer)
    assert rows[1]["fnr"] > 0.9 > rows[0]["fnr"] and rows[1]["mean_rank"] < rows[0]["mean_rank"]


def test_full_ranking_metrics_by_hand() -> None:
    # user 1: train item 0 (earliest), test items 2 and 4; user 2 brings items 1 and 3 into the catalogue.
    x = from_arrays([1, 1, 1, 2, 2], [0, 2, 4, 1, 3], None, [1, 3, 4, 1, 2])
    data = split_interactions(x, "time", 0.67)
    assert data.test.row(0).tolist() == [2, 4] and data.test.row(1).tolist() == [3]
    # scores of items 0..4 for every user: ranking without the train item 0 is 2, 1, 4, 3
    scorer = Scorer(np.ones((2, 1), np.float32), np.array([[10.0], [8.0], [9.0], [1.0], [7.0]], np.float32))
    ev = evaluate(scorer, data, k=3)
    idcg = 1 + 1 / math.log2(3)
    u1 = (1 + 1 / math.log2(4)) / idcg  # hits at ranks 1 and 3
    # user 2 (train item 1 excluded): ranking 0, 2, 4, 3 -> its test item 3 is 4th: no hit in the top 3
    assert math.isclose(ev["ndcg@3"], (u1 + 0) / 2) and math.isclose(ev["recall@3"], (1 + 0) / 2)
    ev2 = evaluate(scorer, data, k=2)
    assert math.isclose(ev2["recall@2"], (0.5 + 0) / 2) and math.isclose(ev2["ndcg@2"], (1 / idcg) / 2)


@pytest.mark.extra("st")
def test_training_learns_planted_blocks() -> None:
    """Two communities: users 0-19 like items 0-9, users 20-39 like items 10-19. A trained
    model must rank a user's held-out in-community items far above chance."""
    u, i, t = [], [], []
    for user in range(40):
        for item in range(10):
            u.append(user)
            i.append(item + (10 if user >= 20 else 0))
            t.append((user * 7 + item * 3) % 10)
    data = split_interactions(from_arrays(u, i, None, t), "time", 0.3)
    for model in ("mf-bpr", "simplex"):
        res = train(data, Uniform(), TrainConfig(model=model, dim=8, epochs=30, batch_size=64, lr=0.05,
                                                 num_negatives=4, seed=0))
        ev = evaluate(res.scorer, data, k=3)
        assert ev["recall@3"] > 0.8, (model, ev["recall@3"])  # chance: 3 of 13 candidates ≈ 0.23
        assert res.history[-1]["loss"] < res.history[0]["loss"]
    again = train(data, Uniform(), TrainConfig(model="mf-bpr", dim=8, epochs=2, batch_size=64, num_negatives=2))
    same = train(data, Uniform(), TrainConfig(model="mf-bpr", dim=8, epochs=2, batch_size=64, num_negatives=2))
    assert np.array_equal(again.scorer.item_factors, same.scorer.item_factors)  # seeded


def test_markdown_of_audit_and_compare_byte_for_byte() -> None:
    """The tables as the hand-built renderers wrote them (now through negmine.core.tables)."""
    from negmine.rec.sweep import render as render_compare

    row = {"sampler": "dns", "fnr": 0.0125, "ci_low": 0.01, "ci_high": 0.02, "hidden_hits": 5, "negatives": 400,
           "mean_score": 0.51234, "mean_rank": 12.34, "base_rate": 0.003,
           "popularity": {"ratio_to_catalogue": 1.234, "share_top10pct": 0.5}}
    empty = {**row, "sampler": "uniform", "fnr": None, "ci_low": None, "mean_score": None, "mean_rank": None,
             "popularity": {"ratio_to_catalogue": None, "share_top10pct": None}}
    assert render([row, empty]) == (
        "| sampler | hidden FNR | 95% CI | hits / negatives | mean score | mean rank | pop. ratio | top-10% share |\n"
        "|---|---|---|---|---|---|---|---|\n"
        "| dns | 0.0125 | [0.0100, 0.0200] | 5 / 400 | 0.512 | 12.3 | 1.23 | 0.500 |\n"
        "| uniform | – | – | 5 / 400 | – | – | – | – |\n"
        "\nuniform over allowed items would give FNR ≈ 0.0030")
    summary = {"k": 20, "rows": [{"model": "mf-bpr", "num_negatives": 1, "sampler": "uniform", "recall@20": 0.1,
                                  "recall@20_std": 0.01, "ndcg@20": 0.05, "ndcg@20_std": 0.002, "p_recall@20": None,
                                  "p_ndcg@20": 0.04321}]}
    assert render_compare(summary) == (
        "| model | negatives | sampler | Recall@20 | NDCG@20 | p (Recall) | p (NDCG) |\n"
        "|---|---|---|---|---|---|---|\n"
        "| mf-bpr | 1 | uniform | 0.1000 ± 0.0100 | 0.0500 ± 0.0020 | – | 0.0432 |")
