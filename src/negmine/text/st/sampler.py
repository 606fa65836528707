"""A sentence-transformers batch sampler from a negmine run: :class:`MinedBatchSampler`.

With ``MultipleNegativesRankingLoss`` most of the negatives a model sees are the other rows'
documents. sentence-transformers' samplers draw them at random (``BATCH_SAMPLER``) or only keep
equal strings apart (``NO_DUPLICATES``); neither knows that another row's positive may be a known
positive of this row's query, or a candidate the run judged a likely false negative. This sampler
composes batches from what the run knows (:class:`~negmine.text.st.index.RunIndex`):

- **No false in-batch negatives.** Row ``s`` may share a batch with row ``r`` only if none of
  ``s``'s documents is a known positive of ``r``'s query (all qrels the run was given, the
  positives of near-duplicate queries, documents whose normalised text equals one of them) or a
  likely false negative the run removed for it — and vice versa; and no two rows share an anchor
  or a positive (normalised). Unlike ``NO_DUPLICATES``, two rows may share a mined negative: it
  is a negative for both, and neighbouring queries often share them.
- **Hard batches** (TAS-B's topic-composed batches; NGAME's neighbour batches): each slot after a
  batch's first row is, with probability ``hardness``, the nearest free row in the run's neighbour
  graph of the rows already in the batch (queries whose retrieval lists overlap), else the next
  free row of the epoch's shuffle. ``hardness = 0`` is a conflict-free random batching;
  ``hardness = 1`` fills batches from neighbourhoods as long as they last.

Every row is used exactly once per epoch (``drop_last=False``); the epoch has ``ceil(n / b)``
batches as ``__len__`` says (a row that fits no batch at the end goes into the batch with room it
conflicts with least; counted in :attr:`MinedBatchSampler.stats`, never silent). Batches are
shuffled at the end so hard batches do not come first. Randomness is a ``numpy`` generator keyed
by ``(seed, epoch)``, and the shuffle key of a row is a hash of ``(seed, epoch, anchor text,
positive text)``, so the batches do not depend on the dataset's row order. ``set_epoch`` re-draws.

When the dataset's texts change during an epoch (a :class:`~negmine.text.st.RemineCallback` swapped its
negative columns), the batches not yet yielded are recomposed from the new texts.

Use it through the trainer's ``batch_sampler`` argument::

    args = SentenceTransformerTrainingArguments(..., batch_sampler=MinedBatchSampler.factory(run, hardness=0.5))
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from negmine.core.errors import ConfigError
from negmine.core.keys import BATCH_SAMPLER_SALT
from negmine.text.st.index import RowKeys, RunIndex, row_keys

log = logging.getLogger(__name__)

__all__ = ["MinedBatchSampler", "compose_batches", "count_collisions"]

SALT = BATCH_SAMPLER_SALT


def _check_hardness(hardness: float) -> float:
    if not (isinstance(hardness, (int, float)) and not isinstance(hardness, bool) and 0.0 <= hardness <= 1.0):
        raise ConfigError(f"hardness must be a number in [0, 1], got {hardness!r}; e.g. --hardness 0.5")
    return float(hardness)


def _shuffle_keys(anchors: Sequence[str], positives: Sequence[str], seed: int, epoch: int) -> np.ndarray:
    prefix = f"{seed}\x1f{epoch}\x1f".encode()
    return np.fromiter(
        (int.from_bytes(hashlib.blake2b(prefix + a.encode("utf-8", "surrogatepass") + b"\x1f"
                                        + p.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")
         for a, p in zip(anchors, positives)), dtype=np.uint64, count=len(anchors))


class _Batch:
    """The keys a batch holds: its rows' documents, forbidden keys and every text."""

    def __init__(self) -> None:
        self.rows: list[int] = []
        self.docs: set[int] = set()
        self.forbidden: set[int] = set()
        self.texts: set[int] = set()

    def fits(self, r: int, keys: RowKeys, forb: list[frozenset[int]]) -> bool:
        return (self.forbidden.isdisjoint(keys.docs[r]) and forb[r].isdisjoint(self.docs)
                and self.texts.isdisjoint(keys.texts[r]))

    def conflicts(self, r: int, keys: RowKeys, forb: list[frozenset[int]]) -> int:
        return (sum(d in self.forbidden for d in keys.docs[r]) + len(forb[r] & self.docs)
                + len(self.texts & keys.texts[r]))

    def add(self, r: int, keys: RowKeys, forb: list[frozenset[int]]) -> None:
        self.rows.append(r)
        self.docs.update(keys.docs[r])
        self.forbidden |= forb[r]
        self.texts |= keys.texts[r]


def compose_batches(rows: Sequence[int], keys: RowKeys, index: RunIndex, batch_size: int, n_batches: int,
                    hardness: float, rng: np.random.Generator, neighbour_rows: dict[int, list[int]],
                    stats: dict[str, int]) -> list[list[int]]:
    """``n_batches`` conflict-free batches of ``rows`` (in the order given: the epoch's shuffle),
    filled from neighbours with probability ``hardness`` (see the module docstring)."""
    forb = _forbidden_by_row(keys, index)
    used = np.zeros(len(keys.anchor), dtype=bool)
    order = list(rows)
    head = 0
    batches: list[_Batch] = []
    for _ in range(n_batches):
        while head < len(order) and used[order[head]]:
            head += 1
        if head >= len(order):
            break
        batch = _Batch()
        batch.add(order[head], keys, forb)
        used[order[head]] = True
        scan = head + 1
        while len(batch.rows) < batch_size:
            r = -1
            if hardness > 0.0 and rng.random() < hardness:
                r = _nearest_free(batch, keys, forb, used, neighbour_rows)
                if r >= 0:
                    stats["neighbour_slots"] += 1
            if r < 0:
                while scan < len(order) and (used[order[scan]] or not batch.fits(order[scan], keys, forb)):
                    scan += 1
                if scan >= len(order):
                    break
                r = order[scan]
            batch.add(r, keys, forb)
            used[r] = True
        batches.append(batch)
    for r in (r for r in order if not used[r]):  # rows that fit no batch when their turn came
        _place_left_over(r, batches, batch_size, keys, forb, stats)
        used[r] = True
    return [b.rows for b in batches]


def _rebuilt(rows: list[int], keys: RowKeys, forb: list[frozenset[int]]) -> _Batch:
    b = _Batch()
    for r in rows:
        b.add(r, keys, forb)
    return b


def _place_left_over(r: int, batches: list[_Batch], batch_size: int, keys: RowKeys, forb: list[frozenset[int]],
                     stats: dict[str, int]) -> None:
    """Put row ``r`` into a batch with room: directly if it fits one; else by moving a row ``s``
    of a full batch that ``r`` fits without ``s`` into a batch with room that ``s`` fits; else
    into the batch with room it conflicts with least (counted as forced)."""
    room = [i for i, b in enumerate(batches) if len(b.rows) < batch_size] or list(range(len(batches)))
    for i in reversed(room):
        if batches[i].fits(r, keys, forb):
            batches[i].add(r, keys, forb)
            return
    for j, full in enumerate(batches):
        if j in room:
            continue
        for s in full.rows:
            if not any(batches[i].fits(s, keys, forb) for i in room):
                continue
            without = _rebuilt([x for x in full.rows if x != s], keys, forb)
            if without.fits(r, keys, forb):
                i = next(i for i in reversed(room) if batches[i].fits(s, keys, forb))
                batches[i].add(s, keys, forb)
                without.add(r, keys, forb)
                batches[j] = without
                stats["swaps"] = stats.get("swaps", 0) + 1
                return
    best = min(reversed(room), key=lambda i: (batches[i].conflicts(r, keys, forb), len(batches[i].rows)))
    batches[best].add(r, keys, forb)
    stats["forced_rows"] += 1


def _forbidden_by_row(keys: RowKeys, index: RunIndex) -> list[frozenset[int]]:
    memo: dict[int, frozenset[int]] = {}
    out = []
    for a in keys.anchor.tolist():
        if a not in memo:
            memo[a] = index.forbidden(a)
        out.append(memo[a])
    return out


def _nearest_free(batch: _Batch, keys: RowKeys, forb: list[frozenset[int]], used: np.ndarray,
                  neighbour_rows: dict[int, list[int]]) -> int:
    """The first free, fitting row in the neighbour lists of the batch's rows, newest row first."""
    for member in reversed(batch.rows):
        for r in neighbour_rows.get(member, ()):
            if not used[r] and batch.fits(r, keys, forb):
                return r
    return -1


def _neighbour_rows(keys: RowKeys, index: RunIndex) -> dict[int, list[int]]:
    """Row -> rows of its anchor's neighbours (each neighbour anchor's rows in dataset order)."""
    by_anchor: dict[int, list[int]] = {}
    for r, a in enumerate(keys.anchor.tolist()):
        by_anchor.setdefault(a, []).append(r)
    out: dict[int, list[int]] = {}
    for a, rows in by_anchor.items():
        near = [r for n in index.neighbours.get(a, ()) for r in by_anchor.get(n, ())]
        if near:
            for r in rows:
                out[r] = near
    return out


def count_collisions(batches: Sequence[Sequence[int]], keys: RowKeys, index: RunIndex) -> dict[str, int]:
    """In-batch negatives that are false by what the run knows, over ``batches`` of dataset rows.

    For every anchor ``r`` and every document of another row of its batch (that row's positive and
    negatives): ``known`` counts those that are a known positive of ``r``'s query, ``suspect`` those
    that are a likely false negative of it, ``cells`` all such in-batch negatives."""
    out = {"cells": 0, "known": 0, "suspect": 0, "batches": 0}
    for batch in batches:
        out["batches"] += 1
        for r in batch:
            a = int(keys.anchor[r])
            known, suspect = index.known.get(a, frozenset()), index.suspect.get(a, frozenset())
            for s in batch:
                if s == r:
                    continue
                for d in keys.docs[s]:
                    out["cells"] += 1
                    out["known"] += d in known
                    out["suspect"] += d in suspect and d not in known
    return out


def _dataset_version(dataset: Any) -> Any:
    return getattr(dataset, "_fingerprint", None) or id(getattr(dataset, "_data", dataset))


def _base() -> Any:
    from negmine.core.optional import require

    require("sentence_transformers")
    try:
        from sentence_transformers.base.sampler import DefaultBatchSampler
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers.sampler import DefaultBatchSampler  # type: ignore[no-redef]
    return DefaultBatchSampler


class MinedBatchSampler(_base()):  # type: ignore[misc]
    """A ``DefaultBatchSampler`` whose batches hold no known positive or likely false negative of
    another row, and are hard by the run's neighbour graph (see the module docstring).

    Parameters
    ----------
    dataset
        The training ``datasets.Dataset``: ``(anchor, positive, negative_1, ...)`` text columns
        (``result.to_dataset("n-tuple")``).
    batch_size, drop_last, valid_label_columns, generator, seed
        What sentence-transformers passes to every batch sampler (``generator`` is not used:
        randomness is keyed by ``seed`` and the epoch).
    index
        The run's :class:`~negmine.text.st.index.RunIndex` (or a :class:`~negmine.MiningResult`).
    hardness
        Share of batch slots filled from the neighbours of the batch's rows, in ``[0, 1]``.

    Examples
    --------
    >>> args = SentenceTransformerTrainingArguments(                                 # doctest: +SKIP
    ...     "out", batch_sampler=MinedBatchSampler.factory(result, hardness=0.5))
    """

    def __init__(self, dataset: Any, batch_size: int, drop_last: bool, valid_label_columns: list[str] | None = None,
                 generator: Any = None, seed: int = 0, *, index: RunIndex | Any = None, hardness: float = 0.5) -> None:
        super().__init__(dataset, batch_size=batch_size, drop_last=drop_last,
                         valid_label_columns=valid_label_columns, generator=generator, seed=seed)
        if index is None:
            raise ConfigError("MinedBatchSampler needs the run: pass index=RunIndex.from_result(result), or use "
                              "MinedBatchSampler.factory(result) as the trainer's batch_sampler")
        self.dataset = dataset
        self.index = index if isinstance(index, RunIndex) else RunIndex.from_result(index)
        self.hardness = _check_hardness(hardness)
        self.stats: dict[str, int] = {"neighbour_slots": 0, "forced_rows": 0, "swaps": 0, "recomposed": 0}
        self.seconds = 0.0  # spent composing batches
        self._keys: RowKeys | None = None
        self._version: Any = None
        self._neighbours: dict[int, list[int]] = {}

    @classmethod
    def factory(cls, run: RunIndex | Any, *, hardness: float = 0.5) -> SamplerFactory:
        """What to pass as ``batch_sampler=``: a callable that sentence-transformers calls with
        ``(dataset, batch_size=, drop_last=, valid_label_columns=, generator=, seed=)``. ``run`` is
        a :class:`~negmine.MiningResult` or a :class:`~negmine.text.st.index.RunIndex`; the index is
        built once and shared by every sampler the trainer creates (``factory.samplers``)."""
        index = run if isinstance(run, RunIndex) else RunIndex.from_result(run)
        return SamplerFactory(cls, index, _check_hardness(hardness))

    def keys(self) -> RowKeys:
        """The dataset's row keys, recomputed when its texts changed."""
        version = _dataset_version(self.dataset)
        if self._keys is None or version != self._version:
            self._keys = row_keys(self.dataset, self.valid_label_columns)
            self._version = version
            self._neighbours = _neighbour_rows(self._keys, self.index)
        return self._keys

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else (n + self.batch_size - 1) // self.batch_size

    def batches(self, epoch: int | None = None) -> list[list[int]]:
        """Every batch of ``epoch`` (default: the current one), in the order they are yielded."""
        n_batches = (len(self.dataset) + self.batch_size - 1) // self.batch_size
        return self._compose(list(range(len(self.dataset))), n_batches, self.epoch if epoch is None else epoch)

    def _compose(self, rows: list[int], n_batches: int, epoch: int) -> list[list[int]]:
        t0 = time.perf_counter()
        try:
            return self._compose_now(rows, n_batches, epoch)
        finally:
            self.seconds += time.perf_counter() - t0

    def _compose_now(self, rows: list[int], n_batches: int, epoch: int) -> list[list[int]]:
        keys = self.keys()
        data = self.dataset
        anchors, positives = data[keys.columns[0]], data[keys.columns[1]]
        shuffle = _shuffle_keys([anchors[r] for r in rows], [positives[r] for r in rows], int(self.seed), epoch)
        order = [rows[i] for i in np.lexsort((np.asarray(rows), shuffle))]
        rng = np.random.default_rng([SALT, int(self.seed) & 0xFFFFFFFF, int(epoch)])
        stats = {"neighbour_slots": 0, "forced_rows": 0, "swaps": 0}
        batches = compose_batches(order, keys, self.index, self.batch_size, n_batches, self.hardness, rng,
                                  self._neighbours, stats)
        for k, v in stats.items():
            self.stats[k] += v
        if stats["forced_rows"]:
            log.warning("%d rows fit no batch without a false in-batch negative and were placed where they "
                        "conflict least", stats["forced_rows"])
        perm = rng.permutation(len(batches))
        out = [batches[i] for i in perm]
        if self.drop_last:
            out = [b for b in out if len(b) >= self.batch_size]
        return out

    def __iter__(self) -> Iterator[list[int]]:
        epoch = self.epoch
        pending = self.batches(epoch)
        version = self._version
        done = 0
        while done < len(pending):
            if _dataset_version(self.dataset) != version:  # texts swapped mid-epoch: recompose the rest
                rest = sorted(r for b in pending[done:] for r in b)
                pending = pending[:done] + self._compose(rest, len(pending) - done, epoch)
                version = self._version
                self.stats["recomposed"] += 1
            yield pending[done]
            done += 1


class SamplerFactory:
    """``MinedBatchSampler.factory(...)``: builds a sampler per data loader and keeps them
    (``samplers``), so their statistics and timings can be read after training."""

    def __init__(self, cls: type[MinedBatchSampler], index: RunIndex, hardness: float) -> None:
        self.cls = cls
        self.index = index
        self.hardness = hardness
        self.samplers: list[MinedBatchSampler] = []

    def __call__(self, dataset: Any, **kwargs: Any) -> MinedBatchSampler:
        sampler = self.cls(dataset, index=self.index, hardness=self.hardness, **kwargs)
        self.samplers.append(sampler)
        return sampler
