"""The encoder protocol and a deterministic hashing encoder built in code."""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import importlib.util
import re
from collections.abc import Iterator, Sequence
from typing import Literal, Protocol

import numpy as np

from negmine.core.errors import ConfigError

Kind = Literal["query", "document"]
_TOKEN = re.compile(r"\w+")

#: ``--device`` choices (``cuda:N`` selects one GPU)
DEVICES = ("cpu", "cuda", "mps")
#: ``--precision`` choices for encoding; fp32 is the default and the reference
PRECISIONS = ("fp32", "fp16", "bf16")


def available_devices() -> list[str]:
    """The devices torch can use here (``cpu`` always; imports torch only if it is installed)."""
    out = ["cpu"]
    if importlib.util.find_spec("torch") is None:
        return out
    import torch

    if torch.cuda.is_available():
        out += ["cuda", *(f"cuda:{i}" for i in range(torch.cuda.device_count()))]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append("mps")
    return out


_ELSEWHERE = contextvars.ContextVar("negmine_device_checked_elsewhere", default=False)


@contextlib.contextmanager
def device_checked_elsewhere() -> Iterator[None]:
    """Within this block :func:`check_device` checks a device's name only; its presence is
    checked where the work runs (the ray engine asks its workers)."""
    token = _ELSEWHERE.set(True)
    try:
        yield
    finally:
        _ELSEWHERE.reset(token)


def check_device(device: str) -> str:
    """``device`` if it is present on this machine, else :class:`ConfigError` naming it and the
    devices that are. ``cpu`` is accepted without importing torch.

    Examples
    --------
    >>> check_device("cpu")
    'cpu'
    """
    if device == "cpu":
        return device
    kind = device.split(":", 1)[0]
    if kind not in DEVICES or (device != kind and (kind != "cuda" or not device[5:].isdigit())):
        raise ConfigError(f"unknown device {device!r}; choose one of: {', '.join(DEVICES)} (or cuda:N)")
    if _ELSEWHERE.get():
        return device
    present = available_devices()
    if device not in present:
        raise ConfigError(
            f"device {device!r} is not available on this machine (available: {', '.join(present)}); "
            "pass --device cpu or run where that device is present"
        )
    return device


def check_precision(precision: str) -> str:
    """``precision`` if it is one of :data:`PRECISIONS`, else :class:`ConfigError`."""
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
    return precision


class Encoder(Protocol):
    """Turns texts into ``float32[n, d]`` embeddings.

    ``identity(kind)`` must change whenever the embeddings of the same text could change
    (model, weights, prompt, normalisation, maximum length): it keys the embedding cache. An
    encoder whose weights change under one identity (a model being trained) sets a class
    attribute ``cacheable = False``, and no cache is read or written for it.
    """

    normalize: bool

    def identity(self, kind: Kind) -> str: ...

    def encode(self, texts: Sequence[str], kind: Kind) -> np.ndarray: ...


class HashingEncoder:
    """A deterministic bag-of-words encoder: each lower-cased word adds ±1 to a hashed dimension.

    No model weights, no randomness, each text encoded independently of the others — handy for
    tests and for trying the pipeline on machines without a model. Not a substitute for a real
    embedding model.

    Examples
    --------
    >>> HashingEncoder(dim=8).encode(["a b"], "query").shape
    (1, 8)
    """

    def __init__(self, dim: int = 256, normalize: bool = True) -> None:
        self.dim = dim
        self.normalize = normalize

    def identity(self, kind: Kind) -> str:
        return f"hashing:dim={self.dim}:normalize={self.normalize}"

    def encode(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for tok in _TOKEN.findall(text.lower()):
                h = int.from_bytes(hashlib.blake2b(tok.encode(), digest_size=8).digest(), "little")
                out[i, h % self.dim] += 1.0 if (h >> 63) else -1.0
        if self.normalize:
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            np.divide(out, norms, out=out, where=norms > 0)
        return out
