"""Interactions for recommendation: load, validate, split.

A file of ``(user, item[, rating][, time])`` rows becomes :class:`Interactions`: integer rows
inside, numeric ids only at the edges. Users and items are numbered in order of their (sorted)
ids, and the rows are stored sorted by ``(user, item)``, so nothing downstream depends on the
order of the file. Known positives are CSR (:class:`~negmine.core.positives.Qrels`, users as queries).

The pieces live by concern: the array types and :func:`from_arrays` in
:mod:`negmine.rec.interactions`, reading files in :mod:`negmine.rec.readers`, splitting in
:mod:`negmine.rec.splits`; this module gathers them under their documented names.
"""

from __future__ import annotations

from negmine.rec.interactions import Interactions, RecData, from_arrays
from negmine.rec.readers import DEFAULT_COLUMNS, FORMATS, LOW_RATINGS, load_interactions
from negmine.rec.splits import SPLITS, from_splits, split_interactions

__all__ = ["DEFAULT_COLUMNS", "FORMATS", "LOW_RATINGS", "SPLITS", "Interactions", "RecData", "from_arrays",
           "from_splits", "load_interactions", "split_interactions"]
