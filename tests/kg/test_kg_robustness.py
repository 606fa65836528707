"""Every bad ``negmine kg`` input ends as exit 2 with one stderr line ``negmine: error: ...`` and
nothing changed on disk (issue 22: the cases the campaign found, and more of our own), plus the
inputs that must be accepted (a UTF-8 BOM) and strict JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from kg_graphs import planted, write_triples_dir

from negmine.cli.main import main

pytest.importorskip("pyarrow")
pytest.importorskip("pykeen")


def _setup(root: Path) -> None:
    """Every input the cases read, in ``root`` (the working directory of the cases)."""
    train, valid, test = planted()
    write_triples_dir(root / "g", train, valid, test)
    write_triples_dir(root / "notest", train, valid)
    ents = sorted({x for rows in planted() for h, _, t in rows for x in (h, t)})
    vec = np.random.default_rng(0).normal(size=(len(ents), 4))
    np.savez(root / "emb.npz", entities=np.array(ents), embeddings=vec)
    np.savez(root / "nan.npz", entities=np.array(ents), embeddings=np.where(np.arange(len(ents))[:, None] == 2,
                                                                             np.nan, vec))
    np.savez(root / "dup.npz", entities=np.array([*ents, ents[0]]), embeddings=np.r_[vec, vec[:1]])
    np.savez(root / "complex.npz", entities=np.array(ents), embeddings=vec.astype(np.complex64))
    np.savez(root / "zero.npz", entities=np.array(ents), embeddings=np.zeros((len(ents), 0)))
    (root / "notzip.npz").write_text("not a zip\n")
    (root / "latin").mkdir()
    (root / "latin" / "train.txt").write_bytes(b"a\tr\tb\ncaf\xe9\tr\tb\n")
    (root / "midbom").mkdir()
    (root / "midbom" / "train.txt").write_text("a\tr\tb\n\ufeffc\tr\tb\n", encoding="utf-8")
    (root / "empty").mkdir()
    (root / "empty" / "train.txt").write_text("")
    (root / "comments").mkdir()
    (root / "comments" / "train.txt").write_text("# only a comment\n\n")
    (root / "twofields").mkdir()
    (root / "twofields" / "train.txt").write_text("a\tr\tb\na\tr\n")
    (root / "notrain").mkdir()
    (root / "notrain" / "valid.txt").write_text("a\tr\tb\n")
    (root / "latin.tsv").write_bytes(b"p0\tAda Lovelace caf\xe9\n")
    (root / "file.txt").write_text("keep me\n")
    assert main(["kg", "mine", "--triples", "g", "--out", "run"]) == 0


G = ["--triples", "g"]
MINE = ["kg", "mine", *G]
COMPARE = ["kg", "compare", *G, "--samplers", "uniform", "--seeds", "0", "--epochs", "1", "--out", "c"]
CASES = {
    # --- the campaign's cases (issue 22)
    "compare --model NoSuchModel": [*COMPARE, "--model", "NoSuchModel"],
    "compare --dim 0": [*COMPARE, "--dim", "0"],
    "compare --lr nan": [*COMPARE, "--lr", "nan"],
    "hard --temperature inf": [*MINE, "--sampler", "hard", "--embeddings", "emb.npz", "--temperature", "inf",
                               "--out", "o"],
    "--kge-epochs 0": [*MINE, "--sampler", "hard", "--kge-epochs", "0", "--out", "o"],
    "--kge-epochs -3": [*MINE, "--sampler", "hard", "--kge-epochs", "-3", "--out", "o"],
    "compare --epochs 0": ["kg", "compare", *G, "--samplers", "uniform", "--epochs", "0", "--out", "c"],
    "lemon --clusters 1000 on 13 entities": [*MINE, "--sampler", "lemon", "--clusters", "1000", "--out", "o"],
    "audit --out is a file": ["kg", "audit", *G, "--out", "file.txt"],
    "PyKEEN cannot build the model": [*COMPARE, "--model", "InductiveNodePiece"],
    # --- our own
    "BOM inside a line": ["kg", "mine", "--triples", "midbom", "--out", "o"],
    "latin-1 triples": ["kg", "mine", "--triples", "latin", "--out", "o"],
    "latin-1 entity text": [*MINE, "--sampler", "lemon", "--entity-text", "latin.tsv", "--out", "o"],
    "empty train file": ["kg", "mine", "--triples", "empty", "--out", "o"],
    "only comments": ["kg", "mine", "--triples", "comments", "--out", "o"],
    "two fields": ["kg", "mine", "--triples", "twofields", "--out", "o"],
    "no train file": ["kg", "mine", "--triples", "notrain", "--out", "o"],
    "four files": ["kg", "mine", "--triples", "g/train.txt", "g/valid.txt", "g/test.txt", "g/train.txt",
                   "--out", "o"],
    "missing file": ["kg", "mine", "--triples", "nope.txt", "--out", "o"],
    "--triples and --dataset": [*MINE, "--dataset", "nations", "--out", "o"],
    "neither --triples nor --dataset": ["kg", "mine", "--out", "o"],
    "--num-negatives 0": [*MINE, "--num-negatives", "0", "--out", "o"],
    "--num-negatives -1": [*MINE, "--num-negatives", "-1", "--out", "o"],
    "--num-negatives too many": [*MINE, "--num-negatives", "1000000", "--out", "o"],
    "--num-negatives 1.5": [*MINE, "--num-negatives", "1.5", "--out", "o"],
    "--error-rate 0": [*MINE, "--filter", "bloom", "--error-rate", "0", "--out", "o"],
    "--error-rate 1.5": [*MINE, "--filter", "bloom", "--error-rate", "1.5", "--out", "o"],
    "--error-rate without bloom": [*MINE, "--error-rate", "0.01", "--out", "o"],
    "unknown --filter": [*MINE, "--filter", "cuckoo", "--out", "o"],
    "unknown --sampler": [*MINE, "--sampler", "hardest", "--out", "o"],
    "--seed -1": [*MINE, "--seed", "-1", "--out", "o"],
    "--seed beyond 32 bits": [*MINE, "--seed", str(2**40), "--out", "o"],
    "--strength -1": [*MINE, "--sampler", "hasa", "--embeddings", "emb.npz", "--strength", "-1", "--out", "o"],
    "--strength for bernoulli": [*MINE, "--sampler", "bernoulli", "--strength", "2", "--out", "o"],
    "--clusters 0": [*MINE, "--sampler", "lemon", "--clusters", "0", "--out", "o"],
    "--temperature 0": [*MINE, "--sampler", "hard", "--embeddings", "emb.npz", "--temperature", "0", "--out", "o"],
    "--embeddings for uniform": [*MINE, "--embeddings", "emb.npz", "--out", "o"],
    "--embeddings and --kge-epochs": [*MINE, "--sampler", "hard", "--embeddings", "emb.npz", "--kge-epochs", "5",
                                      "--out", "o"],
    "NaN embeddings": [*MINE, "--sampler", "hard", "--embeddings", "nan.npz", "--out", "o"],
    "an entity twice in the embeddings": [*MINE, "--sampler", "hard", "--embeddings", "dup.npz", "--out", "o"],
    "complex embeddings": [*MINE, "--sampler", "hard", "--embeddings", "complex.npz", "--out", "o"],
    "zero-dimension embeddings": [*MINE, "--sampler", "hard", "--embeddings", "zero.npz", "--out", "o"],
    "embeddings not a zip": [*MINE, "--sampler", "hard", "--embeddings", "notzip.npz", "--out", "o"],
    "--out is the triples directory": [*MINE, "--out", "g"],
    "--out is a file": [*MINE, "--out", "file.txt"],
    "--out holds a different run": [*MINE, "--seed", "4", "--out", "run"],
    "compare --seeds ,": [*COMPARE, "--seeds", ","],
    "compare --seeds 0,x": [*COMPARE, "--seeds", "0,x"],
    "compare --seeds 0,0": [*COMPARE, "--seeds", "0,0"],
    "compare --samplers uniform,nope": ["kg", "compare", *G, "--samplers", "uniform,nope", "--out", "c"],
    "compare --baseline not compared": [*COMPARE, "--baseline", "typed"],
    "compare --batch-size 0": [*COMPARE, "--batch-size", "0"],
    "compare --warmup-epochs 0": [*COMPARE, "--warmup-epochs", "0"],
    "compare --warmup-epochs without hard/hasa": [*COMPARE, "--warmup-epochs", "5"],
    "compare --lr -1": [*COMPARE, "--lr", "-1"],
    "compare without a test split": ["kg", "compare", "--triples", "notest", "--samplers", "uniform", "--seeds", "0",
                                     "--epochs", "1", "--out", "c"],
    "compare --out is a file": ["kg", "compare", *G, "--samplers", "uniform", "--out", "file.txt"],
    "audit --samplers ,": ["kg", "audit", *G, "--samplers", ","],
    "audit --kge-epochs 0": ["kg", "audit", *G, "--kge-epochs", "0"],
    "unknown --dataset": ["kg", "mine", "--dataset", "wordnet", "--out", "o"],
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("kg-robust")
    old = os.getcwd()
    os.chdir(root)
    try:
        _setup(root)
    finally:
        os.chdir(old)
    return root


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_exits_2_one_line_nothing_changed(case: str, workdir: Path, assert_refused) -> None:
    assert_refused(CASES[case], workdir, case)


def test_zero_negatives_is_an_error(tmp_path: Path, monkeypatch, capsys) -> None:
    # lemon with one cluster per entity has nothing to corrupt with: an error, not an empty run with exit 0
    from negmine.core.errors import DataError
    from negmine.kg.data import load_triples
    from negmine.kg.mining import mine

    data = load_triples(write_triples_dir(tmp_path / "g", *planted()))
    with pytest.raises(DataError, match="found 0 negatives"):
        mine(data, "lemon", text_embeddings=np.eye(data.num_entities), clusters=data.num_entities)


def _strict(text: str) -> object:
    def refuse(name: str) -> None:
        raise AssertionError(f"non-strict JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def test_audit_writes_strict_json_and_needs_overwrite(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    write_triples_dir(tmp_path / "g", *planted())
    args = ["kg", "audit", "--triples", "g", "--samplers", "uniform,bernoulli", "--kge-epochs", "1", "--out", "a"]
    assert main(args) == 0
    result = _strict(Path("a/audit.json").read_text())
    assert isinstance(result, dict) and [r["sampler"] for r in result["rows"]] == ["uniform", "bernoulli"]
    capsys.readouterr()
    assert main(args) == 2 and "pass --overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0


def test_a_bom_is_stripped(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    write_triples_dir(tmp_path / "plain", *planted())
    write_triples_dir(tmp_path / "bom", *planted())
    for name in ("train.txt", "valid.txt"):
        f = tmp_path / "bom" / name
        f.write_bytes(b"\xef\xbb\xbf" + f.read_bytes())
    for name in ("plain", "bom"):
        assert main(["kg", "mine", "--triples", name, "--num-negatives", "3", "--out", f"o-{name}"]) == 0
    a, b = (Path(f"o-{n}/negatives.parquet").read_bytes() for n in ("plain", "bom"))
    assert a == b  # no '\ufeffp0' beside 'p0'
    report = _strict(Path("o-bom/report.json").read_text())
    assert isinstance(report, dict) and report["graph"]["entities"] == 13


def test_python_entry_points_check_the_same_declarations(tmp_path: Path) -> None:
    from negmine.core.errors import ConfigError
    from negmine.kg.data import load_triples
    from negmine.kg.kge import fit_kge
    from negmine.kg.mining import mine

    data = load_triples(write_triples_dir(tmp_path / "g", *planted()))
    for bad in (lambda: mine(data, num_negatives=0), lambda: mine(data, filter="bloom", error_rate=float("nan")),
                lambda: mine(data, "lemon", text_embeddings=np.eye(13), clusters=14),
                lambda: fit_kge(data, dim=0), lambda: fit_kge(data, lr=float("inf")),
                lambda: fit_kge(data, model="NoSuchModel")):
        with pytest.raises(ConfigError):
            bad()
