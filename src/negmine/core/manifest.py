"""What a run's manifest records about its identity and its environment, the same in every domain.

A run id is a hash of what the user asked for (``identity``: options, seed, ...) and of the data
(``fingerprint``): the same request on the same data is the same run, so a re-run finds it done.
``versions`` records the interpreter and the installed versions of negmine and of the libraries
a domain depends on.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
from typing import Any


def run_id(identity: dict[str, Any], fingerprint: str = "", *, length: int = 24) -> str:
    """``length`` hex digits of SHA-256 over the canonical JSON of ``identity`` and ``fingerprint``."""
    blob = json.dumps(identity, sort_keys=True, default=str) + fingerprint
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


def versions(dependencies: tuple[str, ...]) -> dict[str, str]:
    """Python's and the installed versions of negmine and ``dependencies`` (missing ones left out)."""
    out = {"python": platform.python_version()}
    for dist in ("negmine", *dependencies):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def environment(dependencies: tuple[str, ...]) -> dict[str, Any]:
    """The manifest's ``negmine`` and ``versions`` entries."""
    v = versions(dependencies)
    return {"negmine": v.get("negmine", "unknown"), "versions": v}
