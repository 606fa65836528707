"""``negmine rec`` end to end on tiny files: mine writes the run; bad input exits 2 and writes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from negmine.cli.main import main

ROWS = [(u, i, 5 if (u + i) % 3 else 2, u * 100 + i) for u in range(1, 13) for i in range(1, 30) if (u * i) % 4 != 1]


def test_mine_writes_the_run_and_is_reproducible(tmp_path: Path, make_csv, capsys) -> None:
    f = make_csv(tmp_path / "x.csv", ROWS)
    args = ["rec", "mine", "--interactions", str(f), "--min-rating", "4", "--sampler", "popularity",
            "--num-negatives", "4", "--seed", "7"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert "mined" in capsys.readouterr().out
    rows = list(reversed(ROWS))
    g = make_csv(tmp_path / "y.csv", rows)
    assert main([*args[:3], str(g), *args[4:], "--out", str(tmp_path / "b")]) == 0
    a, b = tmp_path / "a", tmp_path / "b"
    files = sorted(p.name for p in a.iterdir() if p.name != ".negmine")  # .negmine: the run directory's lock
    assert files == ["manifest.json", "mined.parquet", "report.json"]
    assert (a / "mined.parquet").read_bytes() == (b / "mined.parquet").read_bytes()
    manifest = json.loads((a / "manifest.json").read_text())
    assert manifest["config"]["sampler"] == {"name": "popularity", "alpha": 0.75} and manifest["seed"] == 7
    import pyarrow.parquet as pq

    table = pq.read_table(a / "mined.parquet").to_pylist()
    liked = {(u, i) for u, i, r, _ in ROWS if r >= 4}
    assert all(len(r["negative_ids"]) == 4 for r in table)
    assert not {(r["user_id"], n) for r in table for n in r["negative_ids"]} & liked
    # a different run into the same directory is refused, and nothing there changes
    before = (a / "mined.parquet").read_bytes()
    assert main([*args[:-1], "8", "--out", str(a)]) == 2
    assert (a / "mined.parquet").read_bytes() == before


@pytest.mark.parametrize(("rows", "header", "extra", "message"), [
    (ROWS, "user_id,item_id,rating,timestamp", ["--user-col", "uid"], "no column 'uid'"),
    ([(1, "x", 5, 1)], "user_id,item_id,rating,timestamp", [], "not an integer"),
    ([(1, 2, "five", 1)], "user_id,item_id,rating,timestamp", [], "not a number"),
    ([(1, 2, 1, 1), (2, 2, 5, 1)], "user_id,item_id,rating,timestamp", ["--require-positives"],
     "have no interaction rated >= 4"),
    ([], "user_id,item_id,rating,timestamp", [], "empty file"),
    (ROWS, "user_id,item_id,rating,timestamp", ["--sampler", "dns"], "needs a model"),
    (ROWS, "user_id,item_id,rating,timestamp", ["--num-negatives", "0"], "--num-negatives must be >= 1"),
])
def test_bad_input_exits_2_and_writes_nothing(tmp_path: Path, make_csv, capsys, rows, header, extra,
                                              message) -> None:
    f = make_csv(tmp_path / "bad.csv", rows, header=header)
    out = tmp_path / "out"
    code = main(["rec", "mine", "--interactions", str(f), "--min-rating", "4", "--out", str(out), *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_duplicates_are_kept_once_and_counted(tmp_path: Path, make_csv, capsys) -> None:
    f = make_csv(tmp_path / "d.csv", [*ROWS, ROWS[0], ROWS[1]])
    assert main(["rec", "mine", "--interactions", str(f), "--min-rating", "4", "--out", str(tmp_path / "o")]) == 0
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["data"]["duplicates"] == 2 and report["data"]["rows"] == len(ROWS) + 2


@pytest.mark.extra("st")
def test_embeddings_scorer_audit_train_evaluate(tmp_path: Path, make_csv, capsys) -> None:
    f = make_csv(tmp_path / "x.csv", ROWS)
    users = np.arange(1, 13)
    items = np.arange(1, 30)
    rng = np.random.default_rng(0)
    emb = tmp_path / "e.npz"
    np.savez(emb, user_ids=users, user_vectors=rng.normal(size=(12, 4)), item_ids=items,
             item_vectors=rng.normal(size=(29, 4)))
    base = ["--interactions", str(f), "--min-rating", "4", "--test-fraction", "0.3"]
    assert main(["rec", "audit", *base, "--embeddings", str(emb), "--num-negatives", "3",
                 "--out", str(tmp_path / "audit")]) == 0
    out = capsys.readouterr().out
    assert "| uniform |" in out and "| robust |" in out
    rows = json.loads((tmp_path / "audit" / "audit.json").read_text())["rows"]
    assert [r["sampler"] for r in rows] == ["uniform", "popularity", "dns", "robust"]
    assert all(0 <= r["ci_low"] <= r["fnr"] <= r["ci_high"] <= 1 for r in rows)
    model = tmp_path / "m.npz"
    assert main(["rec", "train", *base, "--sampler", "dns", "--embeddings", str(emb), "--epochs", "2",
                 "--num-negatives", "3", "--dim", "8", "--out", str(model)]) == 0
    assert "Recall@20" in capsys.readouterr().out
    assert main(["rec", "evaluate", *base, "--model", str(model), "--json"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert 0 <= ev["recall@20"] <= 1 and ev["users"] > 0
    missing = tmp_path / "short.npz"
    np.savez(missing, user_ids=users[:-1], user_vectors=rng.normal(size=(11, 4)), item_ids=items,
             item_vectors=rng.normal(size=(29, 4)))
    assert main(["rec", "mine", *base, "--sampler", "dns", "--embeddings", str(missing),
                 "--out", str(tmp_path / "never")]) == 2
    assert "no vector for 1 user(s), e.g. '12'" in capsys.readouterr().err
    assert not (tmp_path / "never").exists()
