"""Known-triple filters: which corrupted triples are (possibly) true facts, so never emitted.

Both filters answer ``contains(keys)`` for ``int64`` triple keys (:func:`negmine.kg.data.triple_keys`):

- :class:`ExactFilter` — every known triple's key; exact (:class:`negmine.core.membership.ExactSet`:
  a dense table for small key spaces, else an open-addressing hash table: one or two vectorised
  probes per lookup, so filtering millions of candidates costs tens of milliseconds).
- :class:`BloomFilter` — a Bloom filter (:class:`negmine.core.membership.Bloom`) over the same
  keys, for graphs whose key set does not fit in memory: ``m`` bits and ``k`` hash functions
  chosen for a target false-positive rate ``p`` (``m = ⌈−n ln p / ln² 2⌉``,
  ``k = round(m/n · ln 2)``). A known triple always answers ``True`` (no false negatives), so a
  true triple is never emitted; a valid corruption answers ``True`` with probability
  ``(1 − e^{−kn/m})^k`` ≈ ``p`` (the stated rate), so the filter errs only towards dropping a
  valid corruption.

PyKEEN's ``filtered=True`` offers the same two (``PythonSetFilterer``, ``BloomFilterer``); these
work on negmine's ``int64`` keys without torch. The sets themselves live in the core
(:mod:`negmine.core.membership`); this module names them for the kg options and reports, and
:data:`negmine.kg.registry.FILTER_REGISTRY` maps a name to its class.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from negmine.core.membership import Bloom, ExactSet
from negmine.kg.registry import FILTERS, make_filter

__all__ = ["FILTERS", "BloomFilter", "ExactFilter", "KnownFilter", "NoFilter", "make_filter"]


class KnownFilter(Protocol):
    name: str

    def contains(self, keys: np.ndarray) -> np.ndarray: ...

    def config(self) -> dict[str, Any]: ...


class NoFilter:
    """Filters nothing (PyKEEN's default ``filtered=False``): corruptions may be true facts."""

    name = "none"

    def __init__(self, keys: np.ndarray | None = None) -> None:
        """``keys`` are ignored (every filter is built from the known keys)."""

    def contains(self, keys: np.ndarray) -> np.ndarray:
        return np.zeros(np.shape(keys), dtype=bool)

    def config(self) -> dict[str, Any]:
        return {"name": self.name}


class ExactFilter(ExactSet):
    """Exact membership of ``int64`` triple keys (:class:`negmine.core.membership.ExactSet`).

    Examples
    --------
    >>> f = ExactFilter(np.array([7, 3, 3]))
    >>> f.contains(np.array([[3, 4], [7, 0]])).tolist()
    [[True, False], [True, False]]
    """

    name = "exact"

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "known": len(self.keys_)}


class BloomFilter(Bloom):
    """Bloom filter of ``int64`` triple keys with a stated false-positive rate
    (:class:`negmine.core.membership.Bloom`).

    Parameters
    ----------
    keys
        ``int64[n]`` keys of the known triples.
    error_rate
        Target false-positive rate ``p`` in (0, 1); :attr:`stated_rate` is the rate the chosen
        ``m`` and ``k`` give for these ``n`` keys.
    """

    name = "bloom"

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "known": self.n_, "error_rate": self.error_rate, "bits": self.m_,
                "hashes": self.k_, "stated_rate": self.stated_rate}
