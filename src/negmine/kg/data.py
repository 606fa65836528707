"""Knowledge-graph triples: loading, validation, id maps.

Triples come from a directory (``train``/``valid``/``test`` files, tab-separated ``head relation
tail``, as PyKEEN and the classic benchmark releases write them), from explicit files, or from a
dataset shipped inside PyKEEN's wheel (``nations``, ``kinships``, ``umls``; read from the
installed package's files, never downloaded, without importing torch).

Inside, everything is an ``int64[n, 3]`` array of ``(head, relation, tail)`` row indices into
``entities`` / ``relations``, which are sorted by label: the ids, and so everything computed from
them, do not depend on the order of the lines in the files.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from negmine.core.errors import ConfigError, DataError, examples

__all__ = ["DATASETS", "KGData", "load_dataset", "load_entity_text", "load_triples", "triple_keys"]

SPLITS = ("train", "valid", "test")
DATASETS = ("nations", "kinships", "umls")
_SUFFIXES = ("", ".txt", ".tsv")


@dataclass(frozen=True)
class KGData:
    """Labelled triples of every split, as ids.

    Attributes
    ----------
    entities, relations
        Labels, sorted; the id of a label is its position.
    splits
        Split name -> ``int64[n, 3]`` ``(head, relation, tail)`` ids, duplicates removed, rows
        sorted. ``"train"`` is always present.
    source
        Where the triples came from (paths or ``pykeen:<name>``), for the manifest.
    duplicates
        Split name -> number of duplicate lines dropped.
    """

    entities: list[str]
    relations: list[str]
    splits: dict[str, np.ndarray]
    source: str
    duplicates: dict[str, int] = field(default_factory=dict)

    @property
    def train(self) -> np.ndarray:
        return self.splits["train"]

    @property
    def num_entities(self) -> int:
        return len(self.entities)

    @property
    def num_relations(self) -> int:
        return len(self.relations)

    def known(self, splits: Sequence[str] | None = None) -> np.ndarray:
        """``int64[n, 3]`` union of the triples of ``splits`` (default: every split)."""
        names = list(self.splits) if splits is None else list(splits)
        for s in names:
            if s not in self.splits:
                raise ConfigError(f"unknown split {s!r}; this graph has {', '.join(self.splits)}")
        return np.unique(np.concatenate([self.splits[s] for s in names]), axis=0)

    def fingerprint(self) -> str:
        """sha256 of the labelled triples of every split (order-free)."""
        h = hashlib.sha256()
        for name in sorted(self.splits):
            h.update(f"[{name}]\n".encode())
            for a, r, b in self.splits[name]:
                h.update(f"{self.entities[a]}\t{self.relations[r]}\t{self.entities[b]}\n".encode())
        return h.hexdigest()

    def entity_ids(self, labels: Sequence[str], where: str) -> np.ndarray:
        index = {e: i for i, e in enumerate(self.entities)}
        unknown = [x for x in labels if x not in index]
        if unknown:
            raise DataError(
                f"{where}: {len(unknown)} unknown entit{'y' if len(unknown) == 1 else 'ies'} "
                f"{examples(unknown)}; use labels that occur in the triples"
            )
        return np.array([index[x] for x in labels], dtype=np.int64)


def triple_keys(triples: np.ndarray, num_entities: int, num_relations: int) -> np.ndarray:
    """``int64[n]`` key ``(h · n_r + r) · n_e + t`` of each triple (distinct triples, distinct keys)."""
    t = np.asarray(triples, dtype=np.int64)
    if num_entities * num_entities * max(num_relations, 1) >= 2**63:
        raise ConfigError(f"graph too large for 64-bit triple keys ({num_entities} entities, "
                          f"{num_relations} relations)")
    return (t[:, 0] * num_relations + t[:, 1]) * num_entities + t[:, 2]


# ---------------------------------------------------------------------------------------- reading
def _decode(raw: bytes, path: Path, line: int) -> str:
    """Line ``line`` of ``path`` as text: UTF-8, a byte-order mark at the start of the file
    stripped (not part of the first label), the line ending removed."""
    try:
        text = raw.decode("utf-8-sig" if line == 1 else "utf-8").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}:{line}: not valid UTF-8 (byte 0x{raw[exc.start]:02x}); re-save the file as UTF-8, "
                        "e.g. iconv -f latin1 -t utf-8") from None
    if "\ufeff" in text:
        raise DataError(f"{path}:{line}: a byte-order mark (U+FEFF) inside the line; remove it")
    return text


def _read(path: Path) -> list[tuple[str, str, str]]:
    if not path.is_file():
        raise DataError(f"{path}: triples file not found; check the path")
    rows: list[tuple[str, str, str]] = []
    with path.open("rb") as fh:
        for i, raw in enumerate(fh, start=1):
            line = _decode(raw, path, i)
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.split("\t")
            if len(parts) != 3 or any(not p.strip() for p in parts):
                raise DataError(
                    f"{path}:{i}: expected 3 tab-separated fields 'head<TAB>relation<TAB>tail', "
                    f"got {len(parts)} field(s) {line[:60]!r}; fix or remove this line"
                )
            rows.append((parts[0].strip(), parts[1].strip(), parts[2].strip()))
    if not rows:
        raise DataError(f"{path}: no triples (the file is empty or holds only comments); add "
                        "head<TAB>relation<TAB>tail lines")
    return rows


def _split_file(directory: Path, split: str) -> Path | None:
    for suffix in _SUFFIXES:
        p = directory / f"{split}{suffix}"
        if p.is_file():
            return p
    return None


def _build(labelled: Mapping[str, list[tuple[str, str, str]]], source: str) -> KGData:
    if "train" not in labelled:
        raise DataError(f"{source}: no training triples; give a train file")
    entities = sorted({x for rows in labelled.values() for h, _, t in rows for x in (h, t)})
    relations = sorted({r for rows in labelled.values() for _, r, _ in rows})
    e_id = {e: i for i, e in enumerate(entities)}
    r_id = {r: i for i, r in enumerate(relations)}
    splits: dict[str, np.ndarray] = {}
    duplicates: dict[str, int] = {}
    for name, rows in labelled.items():
        arr = np.array([(e_id[h], r_id[r], e_id[t]) for h, r, t in rows], dtype=np.int64).reshape(-1, 3)
        uniq = np.unique(arr, axis=0)
        splits[name] = uniq
        duplicates[name] = len(arr) - len(uniq)
    seen = np.zeros(len(relations), dtype=bool)
    seen[splits["train"][:, 1]] = True
    if not seen.all():
        missing = [relations[i] for i in np.flatnonzero(~seen)]
        raise DataError(
            f"{source}: relation(s) {examples(missing)} occur only outside the training split; "
            "every relation needs training triples (move some to train or drop them)"
        )
    return KGData(entities, relations, splits, source, duplicates)


def load_triples(paths: str | Path | Sequence[str | Path]) -> KGData:
    """Triples from a directory or from files.

    Parameters
    ----------
    paths
        A directory holding ``train`` (required), ``valid`` and ``test`` (``.txt``, ``.tsv`` or
        no suffix); or one or more files: the first is ``train``, the next ``valid`` then ``test``.
        Lines are ``head<TAB>relation<TAB>tail``; blank lines and ``#`` comments are skipped.

    Raises
    ------
    DataError
        A missing file, a malformed line (``file:line``), a relation without training triples.
    """
    items = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    if not items:
        raise ConfigError("no triples given; pass a directory or train [valid [test]] files")
    labelled: dict[str, list[tuple[str, str, str]]] = {}
    if len(items) == 1 and items[0].is_dir():
        d = items[0]
        for split in SPLITS:
            p = _split_file(d, split)
            if p is not None:
                labelled[split] = _read(p)
        if "train" not in labelled:
            raise DataError(f"{d}: no train file (train, train.txt or train.tsv); add one or pass files")
        return _build(labelled, str(d))
    if len(items) > len(SPLITS):
        raise ConfigError(f"{len(items)} triples files given; pass at most 3 (train, valid, test)")
    for split, p in zip(SPLITS, items):
        if p.is_dir():
            raise DataError(f"{p}: a directory among files; pass one directory or only files")
        labelled[split] = _read(p)
    return _build(labelled, ",".join(str(p) for p in items))


def pykeen_dataset_dir(name: str) -> Path:
    """The directory of a dataset shipped inside PyKEEN's wheel (located without importing it)."""
    key = name.lower()
    if key not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)} or pass --triples")
    spec = importlib.util.find_spec("pykeen")
    if spec is None or not spec.submodule_search_locations:
        from negmine.core.errors import MissingDependencyError

        raise MissingDependencyError(f"dataset {name!r} ships with pykeen, which is not installed; "
                                     "install it with: pip install 'negmine[kg]'")
    d = Path(next(iter(spec.submodule_search_locations))) / "datasets" / key
    if _split_file(d, "train") is None:
        raise DataError(f"{d}: the installed pykeen has no {key} files; reinstall pykeen or pass --triples")
    return d


def load_dataset(name: str) -> KGData:
    """``nations`` (14 entities, 55 relations), ``kinships`` (104, 25) or ``umls`` (135, 46),
    read from the files inside the installed PyKEEN package."""
    d = pykeen_dataset_dir(name)
    data = load_triples(d)
    return KGData(data.entities, data.relations, data.splits, f"pykeen:{name.lower()}", data.duplicates)


def load_entity_text(path: str | Path, data: KGData) -> list[str]:
    """Per-entity text from a file of ``label<TAB>text`` lines, ``str[n_entities]`` in id order;
    entities the file does not mention keep their label (underscores as spaces).

    Raises
    ------
    DataError
        A malformed line (``file:line``), or a label that is not an entity of the graph.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: entity text file not found; check the path")
    index = {e: i for i, e in enumerate(data.entities)}
    texts = [e.replace("_", " ") for e in data.entities]
    unknown: list[str] = []
    first_unknown = 0
    with p.open("rb") as fh:
        for i, raw in enumerate(fh, start=1):
            line = _decode(raw, p, i)
            if not line.strip():
                continue
            label, sep, text = line.partition("\t")
            if not sep or not text.strip():
                raise DataError(f"{p}:{i}: expected 'label<TAB>text'; fix or remove this line")
            if label not in index:
                unknown.append(label)
                first_unknown = first_unknown or i
                continue
            texts[index[label]] = text.strip()
    if unknown:
        raise DataError(
            f"{p}:{first_unknown}: {len(unknown)} label(s) not among the graph's entities {examples(unknown)}; "
            "fix the labels or remove those lines"
        )
    return texts
