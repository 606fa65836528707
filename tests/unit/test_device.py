"""``device`` and ``precision`` of the encoder and the embedding retrievers.

On this CPU machine ``cpu`` is the only device: every other one must fail up front with a
:class:`ConfigError` naming the device and the devices that are present. ``precision`` changes
the encoder's weights and is part of the embedding cache identity, but neither option appears in
a retriever's ``config()`` (hence in run ids) at its default.
"""

from __future__ import annotations

import numpy as np
import pytest
from tiny_models import WORDS, build_tiny_sentence_transformer

from negmine.core.errors import ConfigError
from negmine.text.encoders import HashingEncoder, SentenceTransformerEncoder
from negmine.text.encoders.base import available_devices, check_device, check_precision
from negmine.text.retrievers import Dense, Faiss


def absent(device: str) -> bool:
    return device not in available_devices()


def test_cpu_is_always_available():
    assert check_device("cpu") == "cpu"
    assert "cpu" in available_devices()


@pytest.mark.parametrize("device", ["cuda", "cuda:1", "mps"])
def test_absent_device_is_a_config_error_naming_it_and_what_is_available(device):
    if not absent(device):
        pytest.skip(f"{device} is present here")
    with pytest.raises(ConfigError, match=rf"device '{device}' is not available.*available: cpu"):
        check_device(device)
    for make in (lambda: Dense(device=device), lambda: Faiss(device=device),
                 lambda: SentenceTransformerEncoder(device=device)):
        with pytest.raises(ConfigError, match=device):
            make()


@pytest.mark.parametrize("device", ["tpu", "gpu", "cuda:x", ""])
def test_unknown_device_names_the_choices(device):
    with pytest.raises(ConfigError, match="cpu, cuda, mps"):
        check_device(device)


def test_unknown_precision_names_the_choices():
    with pytest.raises(ConfigError, match="fp32, fp16, bf16"):
        check_precision("fp8")
    with pytest.raises(ConfigError, match="fp8"):
        Dense(precision="fp8")


def test_defaults_leave_config_and_identity_unchanged():
    # run ids and caches of existing runs must not move
    enc = HashingEncoder(dim=16)
    assert "device" not in Dense(encoder=enc).config() and "precision" not in Dense(encoder=enc).config()
    assert "precision" not in Faiss(encoder=enc).config()
    assert Dense(encoder=enc, precision="fp16").config()["precision"] == "fp16"
    fp32 = SentenceTransformerEncoder().identity("document")
    assert "precision" not in fp32
    assert SentenceTransformerEncoder(precision="bf16").identity("document") == fp32 + ":precision=bf16"


def test_retriever_hands_device_and_precision_to_its_encoder():
    enc = Dense(precision="bf16")._encoder()
    assert isinstance(enc, SentenceTransformerEncoder)
    assert (enc.device, enc.precision) == ("cpu", "bf16")
    assert Dense(precision="bf16").config()["precision"] == "bf16"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(build_tiny_sentence_transformer(tmp_path_factory.mktemp("tiny") / "st", WORDS))


@pytest.mark.extra("st")
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_reduced_precision_encodes_float32_close_to_fp32(tiny_model, precision):
    texts = [" ".join(WORDS[i : i + 5]) for i in range(0, 40, 3)]
    ref = SentenceTransformerEncoder(tiny_model).encode(texts, "document")
    enc = SentenceTransformerEncoder(tiny_model, precision=precision)
    got = enc.encode(texts, "document")
    assert got.dtype == np.float32 and got.shape == ref.shape
    assert not np.array_equal(got, ref)  # the weights really changed precision
    cos = (got * ref).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(ref, axis=1)
    assert cos.min() > 0.98
