"""The drop-in with models the sentence-transformers peer also takes (issue 22): any object with
``encode`` (and optionally ``similarity``) and no ``state_dict()``, models configured for
euclidean or manhattan similarity (ranked and scored as the peer does, through
``model.similarity``), the peer's shortfall hint (logged at WARNING) and its ``num_negatives``
message. Tiny models built in code; the peer runs on the same input for reference."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tiny_models import WORDS, build_tiny_sentence_transformer

for _module in ("sentence_transformers", "datasets"):
    pytest.importorskip(_module)

import negmine  # noqa: E402
from negmine.core.errors import ConfigError  # noqa: E402

os.environ.setdefault("NEGMINE_PROGRESS", "0")

W = [w for w in WORDS if len(w) > 2]


def _text(i: int, n: int) -> str:
    return " ".join(W[(i * 7 + j * j * 3 + j) % len(W)] for j in range(n))


pytestmark = pytest.mark.usefixtures("one_thread")

PAIRS = [(_text(i, 4), _text(100 + i, 9)) for i in range(10)] + [(_text(0, 4), _text(200, 9))]
CORPUS = [_text(300 + i, 8) for i in range(25)]



@pytest.fixture(scope="module")
def path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_sentence_transformer(tmp_path_factory.mktemp("tiny") / "st", W)


def load(path: Path, similarity: str | None = None) -> Any:
    from sentence_transformers import SentenceTransformer

    m = SentenceTransformer(str(path), device="cpu")
    if similarity is not None:
        m.similarity_fn_name = similarity
    return m


@pytest.fixture(scope="module")
def dataset() -> Any:
    from datasets import Dataset

    return Dataset.from_dict({"q": [a for a, _ in PAIRS], "p": [p for _, p in PAIRS]})


class EncodeOnly:
    """A wrapper around an embedding service: ``encode`` only (no weights, no ``state_dict``)."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self.calls = 0

    def encode(self, texts: list[str], **kwargs: Any) -> np.ndarray:
        self.calls += 1
        return self._model.encode(texts, **kwargs)


class EncodeAndSimilarity(EncodeOnly):
    def similarity(self, a: Any, b: Any) -> Any:
        return self._model.similarity(a, b)


def rows(ds: Any) -> list[tuple[Any, ...]]:
    return [tuple(r[c] for c in ds.column_names if c != "scores") for r in ds]


@pytest.mark.parametrize("similarity", ["euclidean", "manhattan"])
@pytest.mark.parametrize("settings", [{}, {"range_min": 1, "range_max": 12, "absolute_margin": 0.05},
                                      {"relative_margin": 0.1, "num_negatives": 2}], ids=["defaults", "window-margin",
                                                                                          "relative-margin"])
def test_model_similarity_ranks_and_scores_as_the_peer(dataset: Any, path: Path, similarity: str,
                                                       settings: dict[str, Any]) -> None:
    """The peer scores with ``model.similarity``: negative distances, not cosine; under
    manhattan the order differs from the inner product's, and margins apply to distances."""
    from sentence_transformers.util import mine_hard_negatives as peer

    model = load(path, similarity)
    kw = {"corpus": CORPUS, "output_format": "n-tuple", "output_scores": True, "verbose": False, **settings}
    theirs = peer(dataset, model, **kw)
    ours = negmine.mine_hard_negatives(dataset, model, **kw)
    assert ours.column_names == theirs.column_names and len(ours) == len(theirs) > 0
    assert rows(ours) == rows(theirs)
    for a, b in zip(ours["scores"], theirs["scores"]):
        assert a == pytest.approx(b, abs=1e-4)
    assert all(s <= 0 for r in ours["scores"] for s in r)  # distances, negated


def test_manhattan_differs_from_the_inner_product(dataset: Any, path: Path) -> None:
    """The check above can fail: on this input manhattan picks other negatives than cosine."""
    kw = {"corpus": CORPUS, "output_format": "n-tuple", "num_negatives": 3, "verbose": False}
    cosine = negmine.mine_hard_negatives(dataset, load(path), **kw)
    manhattan = negmine.mine_hard_negatives(dataset, load(path, "manhattan"), **kw)
    assert rows(cosine) != rows(manhattan)


@pytest.mark.parametrize("wrapper", [EncodeOnly, EncodeAndSimilarity])
@pytest.mark.parametrize("cache", [False, True])
def test_any_object_with_encode(dataset: Any, path: Path, tmp_path: Path, wrapper: type, cache: bool) -> None:
    """No ``state_dict()``: fingerprinted by its class and the embedding of a probe text, so the
    cache works; without ``similarity`` the inner product of the normalised embeddings (cosine)."""
    model = load(path)
    kw: dict[str, Any] = {"corpus": CORPUS, "output_format": "n-tuple", "output_scores": True, "verbose": False}
    reference = negmine.mine_hard_negatives(dataset, model, **kw)
    duck = wrapper(model)
    assert not hasattr(duck, "state_dict")
    cache_kw = {"cache_folder": str(tmp_path / "c")} if cache else {}
    ours = negmine.mine_hard_negatives(dataset, duck, **kw, **cache_kw)
    assert rows(ours) == rows(reference)
    for a, b in zip(ours["scores"], reference["scores"]):
        assert a == pytest.approx(b, abs=1e-5)
    if cache:
        calls = duck.calls
        again = negmine.mine_hard_negatives(dataset, duck, **kw, **cache_kw)
        assert again[:] == ours[:]
        assert duck.calls == calls + 1  # only the fingerprint probe: the embeddings came from the cache
        names = os.listdir(tmp_path / "c")
        assert any("query_embeddings" in n for n in names) and any("corpus_embeddings" in n for n in names)


def test_shortfall_hint_is_the_peers_logged_at_warning(dataset: Any, path: Path, capsys: pytest.CaptureFixture[str],
                                                       caplog: pytest.LogCaptureFixture) -> None:
    from sentence_transformers.util import mine_hard_negatives as peer

    model = load(path)
    hint = re.compile(r"Could not find enough negatives for .*? valid negatives\.")
    for fmt in ("triplet", "labeled-pair", "n-tuple", "labeled-list"):
        kw = {"corpus": CORPUS, "output_format": fmt, "num_negatives": 3, "range_min": 2, "range_max": 6,
              "relative_margin": 0.3}
        capsys.readouterr()
        peer(dataset, model, verbose=True, **kw)
        expected = hint.findall(capsys.readouterr().out)
        assert len(expected) == 1, fmt
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="negmine.text.compat"):
            negmine.mine_hard_negatives(dataset, model, verbose=False, **kw)  # logged even when not verbose
        assert [r.levelno for r in caplog.records if hint.search(r.getMessage())] == [logging.WARNING], fmt
        assert hint.findall(caplog.text) == expected, fmt
        assert capsys.readouterr().out == ""  # a library never prints


def test_no_hint_without_a_shortfall(dataset: Any, path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="negmine.text.compat"):
        negmine.mine_hard_negatives(dataset, load(path), corpus=CORPUS, num_negatives=2, verbose=False)
    assert "Could not find enough negatives" not in caplog.text


@pytest.mark.parametrize("n", [0, -2])
def test_num_negatives_below_one_has_the_peers_words(dataset: Any, path: Path, n: int) -> None:
    from sentence_transformers.util import mine_hard_negatives as peer

    model = load(path)
    with pytest.raises(ValueError) as theirs:
        peer(dataset, model, num_negatives=n, verbose=False)
    with pytest.raises(ConfigError) as ours:
        negmine.mine_hard_negatives(dataset, model, num_negatives=n, verbose=False)
    assert str(ours.value) == str(theirs.value) == f"num_negatives must be at least 1, got num_negatives={n}."
