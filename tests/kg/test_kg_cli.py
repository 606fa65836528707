"""``negmine kg mine``: files, same bytes for the same seed, one-line errors with exit 2 and nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from kg_graphs import planted

from negmine.cli.main import main


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def test_mine_writes_manifest_report_parquet(tmp_path: Path, write_triples, capsys) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    root = write_triples(tmp_path / "g", *planted())
    rc, out, _ = _run(["kg", "mine", "--triples", str(root), "--sampler", "bernoulli", "--num-negatives", "2",
                       "--seed", "3", "--out", str(tmp_path / "o")], capsys)
    assert rc == 0 and "negatives for 18 training triples" in out
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert manifest["sampler"] == {"name": "bernoulli"} and manifest["seed"] == 3
    table = pq.read_table(tmp_path / "o" / "negatives.parquet").to_pylist()
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert len(table) == report["negatives"]["emitted"]
    known = {tuple(x) for x in planted()[0] + planted()[1] + planted()[2]}
    for r in table:
        assert (r["negative_head"], r["relation"], r["negative_tail"]) not in known
    rc, _, _ = _run(["kg", "mine", "--triples", str(root), "--sampler", "bernoulli", "--num-negatives", "2",
                     "--seed", "3", "--out", str(tmp_path / "o2")], capsys)
    assert (tmp_path / "o" / "negatives.parquet").read_bytes() == (tmp_path / "o2" / "negatives.parquet").read_bytes()


def test_hard_with_embeddings_file(tmp_path: Path, write_triples, capsys) -> None:
    root = write_triples(tmp_path / "g", *planted())
    ents = sorted({x for rows in planted() for h, _, t in rows for x in (h, t)})
    vectors = np.random.default_rng(0).normal(size=(len(ents), 4))
    np.savez(tmp_path / "emb.npz", entities=np.array(ents), embeddings=vectors)
    rc, _, err = _run(["kg", "mine", "--triples", str(root), "--sampler", "hasa", "--embeddings",
                       str(tmp_path / "emb.npz"), "--out", str(tmp_path / "o")], capsys)
    assert rc == 0, err
    np.savez(tmp_path / "bad.npz", entities=np.array(ents[:-1]), embeddings=np.zeros((len(ents) - 1, 4)))
    rc, _, err = _run(["kg", "mine", "--triples", str(root), "--sampler", "hard", "--embeddings",
                       str(tmp_path / "bad.npz"), "--out", str(tmp_path / "o3")], capsys)
    assert rc == 2 and "no embedding for 1 entity" in err and not (tmp_path / "o3").exists()


@pytest.mark.parametrize("case", ["malformed", "dataset", "text", "relation", "both", "negatives"])
def test_bad_input_one_line_exit_2_nothing_written(case: str, tmp_path: Path, write_triples, capsys) -> None:
    train, valid, test = planted()
    root = write_triples(tmp_path / "g", train, valid, test)
    out = tmp_path / "out"
    args = ["kg", "mine", "--triples", str(root), "--out", str(out)]
    expect = ""
    if case == "malformed":
        (root / "valid.txt").write_text("p0\tlikes\tt1\np0 likes t2\n", encoding="utf-8")
        expect = "valid.txt:2: expected 3 tab-separated fields"
    elif case == "dataset":
        args = ["kg", "mine", "--dataset", "wordnet", "--out", str(out)]
        expect = "unknown dataset 'wordnet'"
    elif case == "text":
        (tmp_path / "t.tsv").write_text("p0\tAda\nnobody\tx\n", encoding="utf-8")
        args += ["--sampler", "lemon", "--entity-text", str(tmp_path / "t.tsv")]
        expect = "t.tsv:2: 1 label(s) not among the graph's entities 'nobody'"
    elif case == "relation":
        (root / "test.txt").write_text("p0\tmarried\tp1\n", encoding="utf-8")
        expect = "relation(s) 'married' occur only outside the training split"
    elif case == "both":
        args += ["--dataset", "nations"]
        expect = "give exactly one of --triples"
    elif case == "negatives":
        args += ["--num-negatives", "0"]
        expect = "--num-negatives must be >= 1"
    rc, stdout, err = _run(args, capsys)
    assert rc == 2
    assert expect in err
    assert err.count("\n") == 1 and stdout == ""
    assert not out.exists()


def test_failed_run_keeps_the_previous_output(tmp_path: Path, write_triples, capsys) -> None:
    root = write_triples(tmp_path / "g", *planted())
    out = tmp_path / "o"
    assert _run(["kg", "mine", "--triples", str(root), "--out", str(out)], capsys)[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    (root / "train.txt").write_text("broken line\n", encoding="utf-8")
    assert _run(["kg", "mine", "--triples", str(root), "--out", str(out)], capsys)[0] == 2
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_a_different_run_needs_overwrite(tmp_path: Path, write_triples, capsys) -> None:
    root = write_triples(tmp_path / "g", *planted())
    out = tmp_path / "o"
    assert _run(["kg", "mine", "--triples", str(root), "--out", str(out)], capsys)[0] == 0
    code, *_ = _run(["kg", "mine", "--triples", str(root), "--seed", "5", "--out", str(out)], capsys)
    assert code == 2
    assert _run(["kg", "mine", "--triples", str(root), "--seed", "5", "--out", str(out), "--overwrite"],
                capsys)[0] == 0


def test_live_samplers_are_for_compare_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kg", "audit", "--dataset", "nations", "--samplers", "uniform,live-hard"]) == 2
    assert "live-hard" in capsys.readouterr().err
    assert main(["kg", "compare", "--dataset", "nations", "--samplers", "uniform,live-x",
                 "--out", str(tmp_path / "x")]) == 2
    assert "unknown sampler 'live-x'" in capsys.readouterr().err
    assert main(["kg", "compare", "--dataset", "nations", "--samplers", "live-hard,live-hard",
                 "--out", str(tmp_path / "x")]) == 2
    assert "names an item twice" in capsys.readouterr().err
    assert main(["kg", "compare", "--dataset", "nations", "--samplers", "bernoulli,live-hard", "--warmup-epochs", "3",
                 "--out", str(tmp_path / "x")]) == 2
    assert "--warmup-epochs applies to the hard and hasa sampler(s)" in capsys.readouterr().err
