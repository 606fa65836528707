"""Retrieval metrics against hand-computed values, and the published reference figures."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from negmine.text.evaluate import score_run

SCIFACT = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "scifact"

QRELS = {"q1": {"d1": 1, "d3": 2}, "q2": {"d5": 1}, "q3": {"d9": 1}}
RUN = {"q1": {"d1": 0.9, "d2": 0.8, "d3": 0.7}, "q2": {"d4": 0.5, "d5": 0.4}, "q3": {"d7": 0.3}}


@pytest.mark.extra("eval")
def test_metrics_equal_hand_computed_values() -> None:
    means, per = score_run(QRELS, RUN)
    # q1: relevant at ranks 1 (grade 1) and 3 (grade 2); linear gains as trec_eval / BEIR
    dcg = 1 / math.log2(2) + 2 / math.log2(4)
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    want = {
        "q1": {"ndcg@10": dcg / idcg, "recall@100": 1.0, "mrr@10": 1.0, "map@100": (1 / 1 + 2 / 3) / 2},
        # q2: the one relevant document at rank 2
        "q2": {"ndcg@10": (1 / math.log2(3)) / 1.0, "recall@100": 1.0, "mrr@10": 0.5, "map@100": 0.5},
        # q3: never retrieved
        "q3": {"ndcg@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0, "map@100": 0.0},
    }
    for q, metrics in want.items():
        for m, v in metrics.items():
            assert per[q][m] == pytest.approx(v, abs=1e-9), (q, m)
    for m in want["q1"]:
        assert means[m] == pytest.approx(sum(want[q][m] for q in want) / 3, abs=1e-9)


@pytest.mark.extra("eval")
def test_a_query_missing_from_the_run_scores_zero() -> None:
    means, per = score_run({"q1": {"d1": 1}, "q2": {"d2": 1}}, {"q1": {"d1": 1.0}})
    assert per["q2"]["ndcg@10"] == 0.0 and per["q1"]["ndcg@10"] == 1.0
    assert means["mrr@10"] == pytest.approx(0.5)


@pytest.mark.extra("bm25", "eval")
@pytest.mark.skipif(not SCIFACT.is_dir(), reason="shared SciFact not present")
def test_bm25_reproduces_the_scifact_reference() -> None:
    import negmine
    from negmine.text.evaluate import evaluate

    data = negmine.load_beir(SCIFACT, "test", exclude_splits=[])
    result = evaluate(data, negmine.text.retrievers.BM25())
    assert result.metrics["ndcg@10"] == pytest.approx(0.662, abs=0.01)  # MODELS.md: bm25s 0.662
    assert result.metrics["recall@100"] == pytest.approx(0.876, abs=0.01)
    assert len(result.per_query) == 300


@pytest.mark.extra("st", "model", "eval")
@pytest.mark.slow
@pytest.mark.skipif(not SCIFACT.is_dir(), reason="shared SciFact not present")
def test_minilm_reproduces_the_scifact_reference(tmp_path: Path) -> None:
    import negmine
    from negmine.text.evaluate import evaluate

    data = negmine.load_beir(SCIFACT, "test", exclude_splits=[])
    result = evaluate(data, negmine.text.retrievers.Dense("sentence-transformers/all-MiniLM-L6-v2"), cache_dir=tmp_path)
    assert result.metrics["ndcg@10"] == pytest.approx(0.6451, abs=0.005)  # MODELS.md / MTEB 64.51
    assert result.metrics["recall@100"] == pytest.approx(0.9250, abs=0.01)
