"""The sentence-transformers drop-in (``negmine.mine_hard_negatives``) against the real
``sentence_transformers.util.mine_hard_negatives`` on the same small input and the same model (a
tiny SentenceTransformer built in code): same columns, same rows, same scores, for every output
format, with and without scores, a rank window counted among survivors, margins and score caps,
several positives per anchor, and a cross-encoder rescoring."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from tiny_models import WORDS, build_tiny_cross_encoder, build_tiny_sentence_transformer

for _module in ("sentence_transformers", "datasets"):
    pytest.importorskip(_module)

import negmine  # noqa: E402
from negmine.core.errors import ConfigError, DataError  # noqa: E402

os.environ.setdefault("NEGMINE_PROGRESS", "0")

W = [w for w in WORDS if len(w) > 2]


def _text(i: int, n: int) -> str:
    """A deterministic sentence of ``n`` words from the tiny vocabulary."""
    return " ".join(W[(i * 7 + j * j * 3 + j) % len(W)] for j in range(n))


ANCHORS = [_text(i, 4) for i in range(12)]
pytestmark = pytest.mark.usefixtures("one_thread")

PAIRS = [(ANCHORS[i], _text(100 + i, 9)) for i in range(12)]
PAIRS += [(ANCHORS[0], _text(200, 9)), (ANCHORS[3], _text(201, 9)), (ANCHORS[3], _text(202, 9))]  # 2-3 positives
CORPUS = [_text(300 + i, 8) for i in range(30)]



@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from sentence_transformers import SentenceTransformer

    path = build_tiny_sentence_transformer(tmp_path_factory.mktemp("tiny") / "st", W)
    return SentenceTransformer(str(path), device="cpu")


@pytest.fixture(scope="module")
def cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from sentence_transformers import CrossEncoder

    return CrossEncoder(str(build_tiny_cross_encoder(tmp_path_factory.mktemp("ce") / "ce", words=W)), device="cpu")


@pytest.fixture(scope="module")
def dataset() -> Any:
    from datasets import Dataset

    return Dataset.from_dict({"question": [a for a, _ in PAIRS], "answer": [p for _, p in PAIRS]})


def both(dataset: Any, model: Any, **kw: Any) -> tuple[Any, Any]:
    from sentence_transformers.util import mine_hard_negatives as peer

    theirs = peer(dataset, model, corpus=CORPUS, verbose=False, **kw)
    ours = negmine.mine_hard_negatives(dataset, model, corpus=CORPUS, verbose=False, **kw)
    return ours, theirs


def assert_same(ours: Any, theirs: Any) -> None:
    assert ours.column_names == theirs.column_names
    assert len(ours) == len(theirs) > 0
    for col in ours.column_names:
        a, b = ours[col], theirs[col]
        if col in ("scores", "score"):
            assert a == pytest.approx(b, abs=1e-5) if col == "score" else all(
                x == pytest.approx(y, abs=1e-5) for x, y in zip(a, b)), col
        else:
            assert a == b, col


SETTINGS = [
    pytest.param({}, id="defaults"),
    pytest.param({"num_negatives": 4, "range_min": 2, "range_max": 12}, id="window"),
    pytest.param({"num_negatives": 3, "absolute_margin": 0.02, "max_score": 0.99}, id="abs-margin"),
    pytest.param({"num_negatives": 3, "relative_margin": 0.05, "range_min": 1}, id="rel-margin"),
    pytest.param({"num_negatives": 2, "min_score": 0.5, "range_max": 20}, id="min-score"),
]


FORMATS = ["triplet", "n-tuple", "labeled-pair", "labeled-list"]
#: the default run compares every format on the defaults and two formats per other setting; the
#: whole matrix (5 settings x 4 formats x with/without scores) is marked slow
CASES = [
    pytest.param(settings.values[0], fmt, scores, id=f"{settings.id}-{fmt}-{'scores' if scores else 'plain'}",
                 marks=() if (settings.id == "defaults" and scores) or (fmt, scores) in
                 (("n-tuple", True), ("labeled-pair", False)) else pytest.mark.slow)
    for settings in SETTINGS for fmt in FORMATS for scores in (False, True)
]


@pytest.mark.parametrize(("settings", "output_format", "output_scores"), CASES)
def test_same_output_as_sentence_transformers(dataset: Any, model: Any, settings: dict[str, Any],
                                              output_format: str, output_scores: bool) -> None:
    ours, theirs = both(dataset, model, output_format=output_format, output_scores=output_scores, **settings)
    assert_same(ours, theirs)


def test_n_tuple_scores_and_prompt_name(dataset: Any, model: Any) -> None:
    ours = negmine.mine_hard_negatives(dataset, model, corpus=CORPUS, output_format="n-tuple-scores", verbose=False)
    assert ours.column_names[-1] == "scores" and len(ours[0]["scores"]) == 1 + 3
    model.prompts = {"query": "what is "}
    try:
        with_prompt, theirs = both(dataset, model, query_prompt_name="query", output_format="n-tuple")
        assert_same(with_prompt, theirs)
        by_alias = negmine.mine_hard_negatives(dataset, model, corpus=CORPUS, prompt_name="query",
                                               output_format="n-tuple", verbose=False)
        assert by_alias[:] == with_prompt[:]
    finally:
        model.prompts = {}


def test_cross_encoder_rescoring(dataset: Any, model: Any, cross_encoder: Any) -> None:
    ours, theirs = both(dataset, model, cross_encoder=cross_encoder, max_score=0.99, num_negatives=2,
                        output_format="n-tuple", output_scores=True)
    assert_same(ours, theirs)


def test_random_sampling_is_seeded_and_draws_from_the_window(dataset: Any, model: Any) -> None:
    kw = {"corpus": CORPUS, "num_negatives": 2, "range_min": 1, "range_max": 8, "sampling_strategy": "random",
          "output_format": "n-tuple", "verbose": False}
    a = negmine.mine_hard_negatives(dataset, model, seed=1, **kw)
    b = negmine.mine_hard_negatives(dataset, model, seed=1, **kw)
    assert a[:] == b[:]
    top = {k: v for k, v in kw.items() if k not in ("corpus", "verbose")}
    window, _ = both(dataset, model, **{**top, "sampling_strategy": "top", "num_negatives": 7})
    allowed = {r["question"]: {r[f"negative_{i}"] for i in range(1, 8)} for r in window}
    for r in a:
        assert {r["negative_1"], r["negative_2"]} <= allowed[r["question"]]


def test_inputs_from_disk_and_any_column_names(dataset: Any, model: Any, tmp_path: Path) -> None:
    dataset.save_to_disk(str(tmp_path / "saved"))
    dataset.to_json(str(tmp_path / "pairs.jsonl"))
    ref = negmine.mine_hard_negatives(dataset, model, corpus=CORPUS, verbose=False)
    for source in (tmp_path / "saved", str(tmp_path / "pairs.jsonl")):
        assert negmine.mine_hard_negatives(source, model, corpus=CORPUS, verbose=False)[:] == ref[:]
    swapped = dataset.select_columns(["answer", "question"])
    out = negmine.mine_hard_negatives(swapped, model, anchor_column_name="question", positive_column_name="answer",
                                      corpus=CORPUS, verbose=False)
    assert out.column_names == ["question", "answer", "negative"] and out[:] == ref[:]


def test_bad_inputs_are_clear_errors(dataset: Any, model: Any, tmp_path: Path) -> None:
    from datasets import Dataset

    with pytest.raises(ConfigError, match="range_min must be smaller than range_max"):
        negmine.mine_hard_negatives(dataset, model, range_min=5, range_max=5)
    with pytest.raises(ConfigError, match="Cannot mine 4 negatives"):
        negmine.mine_hard_negatives(dataset, model, num_negatives=4, range_max=3)
    with pytest.raises(ConfigError, match="include_positives"):
        negmine.mine_hard_negatives(dataset, model, include_positives=True)
    with pytest.raises(ConfigError, match="Invalid output_format"):
        negmine.mine_hard_negatives(dataset, model, output_format="pairs")
    with pytest.raises(DataError, match="empty"):
        negmine.mine_hard_negatives(Dataset.from_dict({"a": [], "b": []}), model)
    with pytest.raises(DataError, match="cannot load it as a dataset"):
        negmine.mine_hard_negatives(str(tmp_path / "absent"), model)


def test_without_a_corpus_the_positives_are_the_corpus(dataset: Any, model: Any) -> None:
    from sentence_transformers.util import mine_hard_negatives as peer

    theirs = peer(dataset, model, num_negatives=2, output_format="labeled-list", output_scores=True, verbose=False)
    ours = negmine.mine_hard_negatives(dataset, model, num_negatives=2, output_format="labeled-list",
                                       output_scores=True, verbose=False)
    assert_same(ours, theirs)
