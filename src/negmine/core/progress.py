"""One progress wrapper for the whole library (tqdm on stderr), and one switch for every bar.

Bars are shown only when stderr is a terminal, unless the environment variable
``NEGMINE_PROGRESS`` says otherwise: ``0``/``false``/``no``/``off`` never, ``1``/``true``/
``yes``/``on`` always (e.g. in a CI log), unset or ``auto`` when stderr is a terminal (or in a
notebook). The CLI's ``-q`` turns them off (:func:`set_enabled`). :func:`quiet_third_party`
applies the same setting to the bars and notices of the libraries negmine drives (transformers'
"Loading weights" and "Writing model shards", sentence-transformers' "Computing widget examples",
huggingface_hub and datasets bars).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_OFF = ("0", "false", "no", "off")
_ON = ("1", "true", "yes", "on")
_override: bool | None = None


def enabled() -> bool:
    """Whether progress bars are shown (see the module docstring)."""
    if _override is not None:
        return _override
    value = os.environ.get("NEGMINE_PROGRESS", "auto").strip().lower()
    if value in _OFF:
        return False
    if value in _ON:
        return True
    if "ipykernel" in sys.modules:  # a notebook: tqdm.auto draws widgets there
        return True
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):  # a replaced or closed stderr
        return False


def set_enabled(value: bool | None) -> None:
    """Force bars on or off for this process (``None``: back to ``NEGMINE_PROGRESS``/terminal)."""
    global _override
    _override = value


def quiet_third_party(*, verbose: bool = False) -> dict[str, str | None]:
    """When bars are off, silence other libraries' bars too; unless ``verbose``, keep their
    advisory notices (load reports, deprecation advice) out of stderr.

    Sets the environment variables those libraries read when they are imported, and flips their
    switches when they already are. Meant for applications (the CLI calls it once per command);
    returns the previous values of the variables it set (``None``: unset), for
    :func:`restore_environment`.
    """
    previous: dict[str, str | None] = {}

    def put(name: str, value: str, *, keep: bool = False) -> None:
        if keep and name in os.environ:
            return
        previous.setdefault(name, os.environ.get(name))
        os.environ[name] = value

    if not enabled():
        put("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        put("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
        put("TQDM_DISABLE", "1")  # plain tqdm bars (sentence-transformers' model card)
        if "huggingface_hub" in sys.modules:
            sys.modules["huggingface_hub"].utils.disable_progress_bars()
        if "transformers" in sys.modules:
            from transformers.utils import logging as tlog

            tlog.disable_progress_bar()
        if "datasets" in sys.modules:
            sys.modules["datasets"].disable_progress_bars()
    if not verbose:
        put("TRANSFORMERS_VERBOSITY", "error", keep=True)
        put("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1", keep=True)
        if "transformers" in sys.modules:
            from transformers.utils import logging as tlog

            tlog.set_verbosity_error()
    return previous


def restore_environment(previous: dict[str, str | None]) -> None:
    """Put back the variables :func:`quiet_third_party` set (the libraries' in-memory switches
    stay as they are)."""
    for name, value in previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def progress(iterable: Iterable[T], *, desc: str, total: int | None = None, unit: str = "it") -> Iterator[T]:
    """Wrap ``iterable`` in a tqdm bar on stderr when bars are enabled."""
    if not enabled():
        yield from iterable
        return
    from tqdm.auto import tqdm

    yield from tqdm(iterable, desc=desc, total=total, unit=unit, leave=False, dynamic_ncols=True)
