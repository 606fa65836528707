"""The ``cross-encoder`` scorer against a tiny real CrossEncoder built in code (no downloads).

Expected scores are computed with ``CrossEncoder.predict`` on the same (query, title + text)
pairs, as raw logits, with the sigmoid applied here: the scorer's ``activation="sigmoid"`` must
equal ``1 / (1 + exp(-logit))`` (RocketQA probabilities), ``activation="none"`` the logits.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tiny_models import build_tiny_cross_encoder

from negmine.core.errors import ConfigError
from negmine.text.scorers.base import ScoreMatrix
from negmine.text.scorers.cross_encoder import CrossEncoderScorer, PairScoreCache, pair_keys
from negmine.text.types import Candidates, Corpus, MiningData, Qrels, Queries

pytest.importorskip("sentence_transformers")

DOCS = [
    "the cat sat on the mat",  # d0
    "a dog runs in the river",  # d1
    "birds fly in the blue sky",  # d2
    "fish swim in the cold sea",  # d3
    "the sun is warm",  # d4
    "fish swim in the cold sea",  # d5: same text as d3
    "trees are green",  # d6 (titled below)
]
TITLES = ["", "", "", "", "", "", "big tree"]
QUERIES = ["what does the cat do", "where do dogs run", "which fish swims"]
# q0 has one positive, q1 three, q2 none: positive_scores must follow data.positives' CSR order
POSITIVES = {0: [0], 1: [1, 2, 6], 2: []}
IDS = np.array(
    [
        [3, 4, 5, -1],  # d3 and d5 share a text: one prediction
        [0, 2, 3, 6],  # d2, d6 are also positives of q1: predicted once
        [3, 5, -1, -1],
    ],
    dtype=np.int64,
)


def make_data() -> MiningData:
    q = np.array([q for q, ds in POSITIVES.items() for _ in ds], np.int64)
    d = np.array([d for ds in POSITIVES.values() for d in ds], np.int64)
    pos = Qrels.from_pairs(len(QUERIES), q, d)
    corpus = Corpus(ids=[f"d{i}" for i in range(len(DOCS))], texts=list(DOCS), titles=list(TITLES))
    return MiningData(corpus, Queries(ids=[f"q{i}" for i in range(len(QUERIES))], texts=list(QUERIES)), pos, pos)


def make_candidates(ids: np.ndarray = IDS) -> Candidates:
    k = ids.shape[1]
    scores = np.where(ids >= 0, np.linspace(1.0, 0.5, k, dtype=np.float32), np.float32(-np.inf)).astype(np.float32)
    n_pairs = 4
    return Candidates(ids, scores, (ids >= 0).astype(np.uint8), ["test"], np.ones(n_pairs, np.float32))


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_cross_encoder(tmp_path_factory.mktemp("tiny-ce") / "model", seed=0)


@pytest.fixture(scope="module")
def reference(model_path: Path) -> Any:
    """``logit(query_row, doc_row)`` computed by a separately loaded CrossEncoder, one call."""
    import torch
    from sentence_transformers import CrossEncoder

    ce = CrossEncoder(str(model_path), device="cpu")
    full = make_data().corpus.full_texts()
    pairs = [(q, d) for q in QUERIES for d in full]
    logits = ce.predict(pairs, activation_fn=torch.nn.Identity(), show_progress_bar=False, convert_to_numpy=True)
    table = np.asarray(logits, np.float32).reshape(len(QUERIES), len(full))
    return lambda q, d: table[q, d]


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


class CountingPredict:
    """Wraps the real ``CrossEncoder.predict`` (it still runs) and records the pairs it was given."""

    def __init__(self, scorer: CrossEncoderScorer) -> None:
        self.pairs: list[tuple[str, str]] = []
        model = scorer._load()
        real = model.predict

        def predict(inputs: list[tuple[str, str]], **kwargs: Any) -> Any:
            self.pairs.extend(tuple(p) for p in inputs)
            return real(inputs, **kwargs)

        model.predict = predict


def test_scores_equal_sigmoid_of_crossencoder_logits(model_path: Path, reference: Any) -> None:
    data = make_data()
    m = CrossEncoderScorer(str(model_path), batch_size=3).score(data, make_candidates())
    assert isinstance(m, ScoreMatrix) and m.name == "cross-encoder"
    assert m.scores.dtype == np.float32 and m.scores.shape == IDS.shape
    for q, j in zip(*np.nonzero(IDS >= 0)):
        assert m.scores[q, j] == pytest.approx(sigmoid(reference(q, IDS[q, j])), rel=1e-5, abs=1e-6)
    assert np.all((m.scores[IDS >= 0] > 0) & (m.scores[IDS >= 0] < 1))
    # the tiny model separates pairs: the test would notice misaligned cells
    assert len(np.unique(np.round(m.scores[IDS >= 0], 5))) >= 4


def test_activation_none_returns_logits(model_path: Path, reference: Any) -> None:
    m = CrossEncoderScorer(str(model_path), activation="none").score(make_data(), make_candidates())
    expected = np.array([[reference(q, d) if d >= 0 else np.nan for d in row] for q, row in enumerate(IDS)])
    np.testing.assert_allclose(m.scores, expected, rtol=1e-5, atol=1e-6)


def test_padding_is_nan_and_positive_scores_follow_positives(model_path: Path, reference: Any) -> None:
    data = make_data()
    m = CrossEncoderScorer(str(model_path)).score(data, make_candidates())
    assert np.isnan(m.scores[IDS < 0]).all() and not np.isnan(m.scores[IDS >= 0]).any()
    assert m.positive_scores.dtype == np.float32
    assert m.positive_scores.shape == data.positives.indices.shape == (4,)
    expected = [sigmoid(reference(q, d)) for q, d in zip(data.positives.query_of_pair(), data.positives.indices)]
    np.testing.assert_allclose(m.positive_scores, expected, rtol=1e-5, atol=1e-6)
    # q1's positive d2 is also its candidate at column 1: the same score in both places
    assert m.positive_scores[2] == m.scores[1, 1]


def test_score_mask_limits_the_cells_scored(model_path: Path, reference: Any) -> None:
    mask = np.zeros(IDS.shape, bool)
    mask[0, 0] = mask[1, 2] = mask[2, 3] = True  # (2, 3) is padding: stays NaN
    scorer = CrossEncoderScorer(str(model_path))
    m = scorer.score(make_data(), make_candidates(), mask=mask)
    scored = ~np.isnan(m.scores)
    assert scored.tolist() == (mask & (IDS >= 0)).tolist()
    assert m.scores[0, 0] == pytest.approx(sigmoid(reference(0, 3)), rel=1e-5)
    assert m.stats["pairs_requested"] == 2 + 4
    assert not np.isnan(m.positive_scores).any()  # positives are always scored


def test_bad_score_mask_is_a_config_error(model_path: Path) -> None:
    with pytest.raises(ConfigError, match="mask must be"):
        CrossEncoderScorer(str(model_path)).score(make_data(), make_candidates(), mask=np.ones((3, 2), bool))


def test_identical_pairs_are_predicted_once(model_path: Path) -> None:
    data = make_data()
    scorer = CrossEncoderScorer(str(model_path), batch_size=2)
    spy = CountingPredict(scorer)
    m = scorer.score(data, make_candidates())
    full = data.corpus.full_texts()
    requested = {(QUERIES[q], full[IDS[q, j]]) for q, j in zip(*np.nonzero(IDS >= 0))}
    requested |= {(QUERIES[q], full[d]) for q, ds in POSITIVES.items() for d in ds}
    assert len(spy.pairs) == len(set(spy.pairs)) == len(requested)  # 9 cells + 4 positives -> 9 distinct texts
    assert set(spy.pairs) == requested
    assert m.stats["pairs_requested"] == 9 + 4
    assert m.stats["pairs_unique"] == m.stats["pairs_scored"] == len(requested)
    assert m.stats["cache_hits"] == 0
    assert m.scores[0, 0] == m.scores[0, 2] and m.scores[2, 0] == m.scores[2, 1]  # d3 == d5


def test_cache_makes_the_second_run_predict_nothing(model_path: Path, tmp_path: Path) -> None:
    data, cand = make_data(), make_candidates()
    first = CrossEncoderScorer(str(model_path), cache_dir=tmp_path).score(data, cand)
    assert first.stats["pairs_scored"] == first.stats["pairs_unique"] > 0
    assert first.stats["cache_hits"] == 0

    again = CrossEncoderScorer(str(model_path), cache_dir=tmp_path)
    second = again.score(data, cand)
    assert second.stats["pairs_scored"] == 0
    assert second.stats["cache_hits"] == first.stats["pairs_unique"]
    assert again.model_ is None  # a local model is not even loaded on a full hit
    np.testing.assert_array_equal(second.scores, first.scores)
    np.testing.assert_array_equal(second.positive_scores, first.positive_scores)
    assert second.scores.tobytes() == first.scores.tobytes()


def test_cache_is_keyed_by_activation_max_length_and_texts(model_path: Path, tmp_path: Path) -> None:
    data, cand = make_data(), make_candidates()
    n = CrossEncoderScorer(str(model_path), cache_dir=tmp_path).score(data, cand).stats["pairs_unique"]
    for kwargs in ({"activation": "none"}, {"max_length": 8}):
        m = CrossEncoderScorer(str(model_path), cache_dir=tmp_path, **kwargs).score(data, cand)
        assert (m.stats["pairs_scored"], m.stats["cache_hits"]) == (n, 0), kwargs

    # one edited document: only the pairs with its text are predicted again (d4 is in row 0 only)
    docs = list(DOCS)
    docs[4] = "the sun is cold"
    edited = MiningData(Corpus(data.corpus.ids, docs, list(TITLES)), data.queries, data.positives, data.exclude)
    m = CrossEncoderScorer(str(model_path), cache_dir=tmp_path).score(edited, cand)
    assert (m.stats["pairs_scored"], m.stats["cache_hits"]) == (1, n - 1)


def test_weights_saved_in_place_invalidate_the_cache(tmp_path: Path) -> None:
    path = build_tiny_cross_encoder(tmp_path / "model", seed=0)
    data, cand = make_data(), make_candidates()
    first = CrossEncoderScorer(str(path), cache_dir=tmp_path / "cache").score(data, cand)
    build_tiny_cross_encoder(path, seed=1)  # "retrained": same files, same sizes, new weights
    m = CrossEncoderScorer(str(path), cache_dir=tmp_path / "cache").score(data, cand)
    assert (m.stats["pairs_scored"], m.stats["cache_hits"]) == (first.stats["pairs_unique"], 0)
    assert not np.allclose(m.scores[IDS >= 0], first.scores[IDS >= 0])


def test_pipeline_cache_dir_is_used(model_path: Path, tmp_path: Path) -> None:
    data, cand = make_data(), make_candidates()
    CrossEncoderScorer(str(model_path)).score(data, cand, cache_dir=str(tmp_path))
    assert list((tmp_path / "cross-encoder").glob("*/seg-*.npz"))
    m = CrossEncoderScorer(str(model_path)).score(data, cand, cache_dir=str(tmp_path))
    assert m.stats["pairs_scored"] == 0


def test_corrupt_cache_segment_is_a_miss(model_path: Path, tmp_path: Path) -> None:
    data, cand = make_data(), make_candidates()
    first = CrossEncoderScorer(str(model_path), cache_dir=tmp_path).score(data, cand)
    for seg in tmp_path.glob("*/seg-*.npz"):
        seg.write_bytes(b"not an npz")
    m = CrossEncoderScorer(str(model_path), cache_dir=tmp_path).score(data, cand)
    assert m.stats["pairs_scored"] == first.stats["pairs_unique"]
    np.testing.assert_array_equal(m.scores, first.scores)


def test_pair_cache_merges_segments(tmp_path: Path) -> None:
    cache = PairScoreCache(tmp_path, "identity", max_segments=2)
    keys = pair_keys(["q"] * 6, [f"doc {i}" for i in range(6)])
    for part in np.array_split(np.arange(6), 3):
        cache.add(keys[part], part.astype(np.float32))
    assert len(cache.segments()) == 3
    scores, found = cache.lookup(np.concatenate([keys, pair_keys(["q"], ["unseen"])]))
    assert found.tolist() == [True] * 6 + [False]
    assert scores[:6].tolist() == list(range(6)) and np.isnan(scores[6])
    assert len(cache.segments()) == 1  # merged
    assert cache.lookup(keys)[1].all()


def test_nothing_to_score_loads_nothing(model_path: Path) -> None:
    data = make_data()
    empty = MiningData(data.corpus, data.queries, Qrels.from_pairs(3, np.array([], np.int64), np.array([], np.int64)),
                       data.exclude)
    scorer = CrossEncoderScorer(str(model_path))
    m = scorer.score(empty, make_candidates(np.full((3, 2), -1, np.int64)))
    assert np.isnan(m.scores).all() and m.scores.shape == (3, 2) and m.positive_scores.shape == (0,)
    assert m.stats["pairs_scored"] == 0 and scorer.model_ is None


def test_missing_model_path_is_a_one_line_config_error(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-model")
    scorer = CrossEncoderScorer(missing)  # constructing stores only
    with pytest.raises(ConfigError) as err:
        scorer.score(make_data(), make_candidates())
    assert missing in str(err.value) and "\n" not in str(err.value)
    assert scorer.model_ is None


@pytest.mark.skipif(os.environ.get("HF_HUB_OFFLINE") != "1", reason="would try the network; run with HF_HUB_OFFLINE=1")
def test_uncached_hub_name_is_a_one_line_config_error() -> None:
    with pytest.raises(ConfigError) as err:
        CrossEncoderScorer("nobody-here/no-such-cross-encoder").score(make_data(), make_candidates())
    assert "no-such-cross-encoder" in str(err.value) and "\n" not in str(err.value)


def test_unknown_activation_is_a_config_error(model_path: Path) -> None:
    with pytest.raises(ConfigError, match="sigmoid"):
        CrossEncoderScorer(str(model_path), activation="softmax").score(make_data(), make_candidates())


def test_config_names_the_options() -> None:
    scorer = CrossEncoderScorer("some/model", max_length=128, activation="none")
    assert scorer.config() == {
        "name": "cross-encoder", "model": "some/model", "activation": "none", "max_length": 128, "batch_size": 32,
    }
