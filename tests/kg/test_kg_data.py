"""Loading triples: ids, splits, validation errors (one line, with file and line)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from kg_graphs import planted

from negmine.core.errors import ConfigError, DataError
from negmine.kg.data import load_dataset, load_entity_text, load_triples, triple_keys


def test_directory_ids_sorted_and_duplicates_dropped(tmp_path: Path, write_triples) -> None:
    train, valid, test = planted()
    d = load_triples(write_triples(tmp_path, train + train[:3], valid, test))
    assert d.entities == sorted({x for h, _, t in train + valid + test for x in (h, t)})
    assert d.relations == ["knows", "likes", "parent"]
    assert d.duplicates["train"] == 3
    assert len(d.train) == len(set(train))
    back = {(d.entities[h], d.relations[r], d.entities[t]) for h, r, t in d.train}
    assert back == set(train)
    assert set(d.splits) == {"train", "valid", "test"}
    assert d.train.dtype == np.int64 and d.train.shape[1] == 3


def test_files_in_order_train_valid_test(tmp_path: Path, write_triples) -> None:
    train, valid, test = planted()
    root = write_triples(tmp_path, train, valid, test)
    d = load_triples([root / "train.txt", root / "valid.txt"])
    assert set(d.splits) == {"train", "valid"}
    assert len(d.splits["valid"]) == len(valid)


def test_malformed_line_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "train.txt").write_text("a\tr\tb\n\na\tr b\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"train\.txt:3: expected 3 tab-separated fields") as e:
        load_triples(tmp_path)
    assert "\n" not in str(e.value)


def test_relation_without_training_triples(tmp_path: Path, write_triples) -> None:
    root = write_triples(tmp_path, [("a", "r", "b")], [("a", "s", "b")])
    with pytest.raises(DataError, match="'s' occur only outside the training split"):
        load_triples(root)


def test_unknown_dataset_name() -> None:
    with pytest.raises(ConfigError, match="unknown dataset 'freebase'; choose one of nations, kinships, umls"):
        load_dataset("freebase")


def test_entity_text_unknown_label(tmp_path: Path, write_triples) -> None:
    d = load_triples(write_triples(tmp_path / "g", *planted()))
    f = tmp_path / "text.tsv"
    f.write_text("p0\tAda\nghost\tnobody\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"text\.tsv:2: 1 label\(s\) not among the graph's entities 'ghost'"):
        load_entity_text(f, d)
    f.write_text("p0\tAda Lovelace\n", encoding="utf-8")
    texts = load_entity_text(f, d)
    assert texts[d.entities.index("p0")] == "Ada Lovelace"
    assert texts[d.entities.index("t1")] == "t1"


def test_triple_keys_distinct() -> None:
    t = np.array([[a, r, b] for a in range(4) for r in range(3) for b in range(4)])
    assert len(np.unique(triple_keys(t, 4, 3))) == len(t)


def test_pykeen_shipped_datasets() -> None:
    pytest.importorskip("pykeen")
    n = load_dataset("nations")
    assert (n.num_entities, n.num_relations) == (14, 55)
    assert {k: len(v) for k, v in n.splits.items()} == {"train": 1592, "valid": 199, "test": 201}
    k = load_dataset("Kinships")
    assert (k.num_entities, k.num_relations, len(k.train)) == (104, 25, 8544)
