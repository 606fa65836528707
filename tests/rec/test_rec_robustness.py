"""Every bad ``negmine rec`` input ends as exit 2 with one stderr line ``negmine: error: ...`` and
nothing changed on disk (issue 22: the cases the campaign found, and more of our own), plus the
inputs that must be accepted (a UTF-8 BOM, users without positives: issue 21 item 5)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from negmine.cli.main import main

pytest.importorskip("pyarrow")

ROWS = [(u, i, 5 if (u + i) % 3 else 2, u * 100 + i) for u in range(1, 13) for i in range(1, 30) if (u * i) % 4 != 1]
HEADER = "user_id,item_id,rating,timestamp\n"


def _csv(rows: list[tuple[object, ...]]) -> str:
    return HEADER + "".join(",".join(map(str, r)) + "\n" for r in rows)


def _setup(root: Path) -> None:
    """Every input file the cases read, in ``root`` (the working directory of the cases)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    (root / "data.csv").write_text(_csv(ROWS))
    (root / "latin.csv").write_bytes(HEADER.encode() + b"1,2,5,1\n2,3,5,1\n3,4,5,1\xe9\n")
    pq.write_table(pa.table({"user_id": [1, 2], "item_id": [3, 4]}), root / "p.parquet")
    (root / "inf.csv").write_text(_csv([(1, 2, 5, 1), (1, 3, "inf", 2)]))
    (root / "big.csv").write_text(_csv([(1, 2, 5, 1), (1, 3, "1e400", 2)]))
    (root / "empty.csv").write_bytes(b"")
    (root / "header.csv").write_text(HEADER)
    (root / "strid.csv").write_text(_csv([(1, 2, 5, 1), ("u1", 3, 5, 2)]))
    (root / "huge.csv").write_text(_csv([(1, 2, 5, 1), (99999999999999999999, 3, 5, 2)]))
    (root / "fields.csv").write_text(HEADER + "1,2,5,1\n1,3,5\n")
    (root / "notime.csv").write_text("user_id,item_id,rating\n1,2,5\n1,3,5\n2,3,5\n")
    (root / "dupcol.csv").write_text("user_id,user_id,item_id\n1,2,3\n")
    (root / "one.csv").write_text("user_id,item_id\n1,1\n2,1\n")
    pq.write_table(pa.table({"user_id": [1, None], "item_id": [3, 4]}), root / "nulls.parquet")
    (root / "corrupt.parquet").write_bytes(b"PAR1 not really parquet PAR1")
    (root / "nanrating.csv").write_text(_csv([(1, 2, 5, 1), (1, 3, "nan", 2)]))
    users, items = np.arange(1, 13), np.arange(1, 30)
    rng = np.random.default_rng(0)
    uv, iv = rng.normal(size=(12, 4)), rng.normal(size=(29, 4))
    np.savez(root / "emb.npz", user_ids=users, user_vectors=uv, item_ids=items, item_vectors=iv)
    np.savez(root / "nan.npz", user_ids=users, user_vectors=np.where(users[:, None] == 3, np.nan, uv), item_ids=items,
             item_vectors=iv)
    np.savez(root / "dup.npz", user_ids=np.r_[users, 5], user_vectors=np.r_[uv, uv[:1]], item_ids=items,
             item_vectors=iv)
    np.savez(root / "complex.npz", user_ids=users, user_vectors=uv.astype(np.complex64), item_ids=items,
             item_vectors=iv)
    np.savez(root / "zero.npz", user_ids=users, user_vectors=np.zeros((12, 0)), item_ids=items,
             item_vectors=np.zeros((29, 0)))
    (root / "notzip.npz").write_text("this is not a zip file\n")
    (root / "model.npz").write_bytes((root / "emb.npz").read_bytes())
    (root / "file.txt").write_text("keep me\n")
    (root / "link.npz").symlink_to("data.csv")
    assert main(["rec", "mine", "--interactions", "data.csv", "--min-rating", "4", "--out", "run"]) == 0


D = ["--interactions", "data.csv"]
MINE = ["rec", "mine", *D]
CASES = {
    # --- the campaign's cases (issue 22)
    "train --out is the input": ["rec", "train", *D, "--out", "data.csv"],
    "train --out is the input even with --overwrite": ["rec", "train", *D, "--out", "data.csv", "--overwrite"],
    "train --out is a symlink to the input": ["rec", "train", *D, "--out", "link.npz", "--overwrite"],
    "train --out exists": ["rec", "train", *D, "--out", "model.npz"],
    "audit --out is a file": ["rec", "audit", *D, "--out", "file.txt"],
    "latin-1 csv": ["rec", "mine", "--interactions", "latin.csv", "--out", "o"],
    "--format csv on parquet": ["rec", "mine", "--interactions", "p.parquet", "--format", "csv", "--out", "o"],
    "--mix share nan": [*MINE, "--sampler", "mixed", "--mix", "uniform=nan,popularity=1", "--out", "o"],
    "evaluate --k -5": ["rec", "evaluate", *D, "--model", "emb.npz", "--k", "-5"],
    "rating inf": ["rec", "mine", "--interactions", "inf.csv", "--out", "o"],
    "rating 1e400": ["rec", "mine", "--interactions", "big.csv", "--out", "o"],
    "--alpha inf": [*MINE, "--sampler", "popularity", "--alpha", "inf", "--out", "o"],
    "--temperature inf": [*MINE, "--sampler", "robust", "--embeddings", "emb.npz", "--temperature", "inf",
                          "--out", "o"],
    "--iterations -1": [*MINE, "--sampler", "dns", "--scorer", "als", "--iterations", "-1", "--out", "o"],
    "--factors 0": [*MINE, "--sampler", "dns", "--scorer", "als", "--factors", "0", "--out", "o"],
    "--embeddings with NaN": [*MINE, "--sampler", "dns", "--embeddings", "nan.npz", "--out", "o"],
    "train --lr inf": ["rec", "train", *D, "--lr", "inf", "--out", "m.npz"],
    "train --margin nan": ["rec", "train", *D, "--model", "simplex", "--margin", "nan", "--out", "m.npz"],
    "train --k 0": ["rec", "train", *D, "--k", "0", "--out", "m.npz"],
    "--min-rating 99": [*MINE, "--min-rating", "99", "--out", "o"],
    "audit --samplers ,": ["rec", "audit", *D, "--samplers", ","],
    "compare --seeds ,": ["rec", "compare", *D, "--seeds", ","],
    "evaluate --test-fraction 0": ["rec", "evaluate", *D, "--model", "emb.npz", "--test-fraction", "0"],
    # --- our own
    "empty file": ["rec", "mine", "--interactions", "empty.csv", "--out", "o"],
    "header only": ["rec", "mine", "--interactions", "header.csv", "--out", "o"],
    "string user id": ["rec", "mine", "--interactions", "strid.csv", "--out", "o"],
    "id beyond int64": ["rec", "mine", "--interactions", "huge.csv", "--out", "o"],
    "short row": ["rec", "mine", "--interactions", "fields.csv", "--out", "o"],
    "rating nan": ["rec", "mine", "--interactions", "nanrating.csv", "--out", "o"],
    "time split without a time column": ["rec", "mine", "--interactions", "notime.csv", "--out", "o"],
    "missing file": ["rec", "mine", "--interactions", "nope.csv", "--out", "o"],
    "a column named twice": ["rec", "mine", "--interactions", "dupcol.csv", "--split", "random", "--out", "o"],
    "0 negatives (every item liked)": ["rec", "mine", "--interactions", "one.csv", "--split", "random", "--out", "o"],
    "--format tsv on a csv": [*MINE, "--format", "tsv", "--out", "o"],
    "null id in parquet": ["rec", "mine", "--interactions", "nulls.parquet", "--split", "random", "--out", "o"],
    "corrupt parquet": ["rec", "mine", "--interactions", "corrupt.parquet", "--out", "o"],
    "--num-negatives -1": [*MINE, "--num-negatives", "-1", "--out", "o"],
    "--num-negatives too many": [*MINE, "--num-negatives", "1000000", "--out", "o"],
    "--num-negatives not a number": [*MINE, "--num-negatives", "many", "--out", "o"],
    "--candidates 0": [*MINE, "--sampler", "dns", "--embeddings", "emb.npz", "--candidates", "0", "--out", "o"],
    "--test-fraction 1": [*MINE, "--test-fraction", "1", "--out", "o"],
    "--test-fraction nan": [*MINE, "--test-fraction", "nan", "--out", "o"],
    "--min-rating nan": [*MINE, "--min-rating", "nan", "--out", "o"],
    "--seed -1": [*MINE, "--seed", "-1", "--out", "o"],
    "--dim 0": ["rec", "train", *D, "--dim", "0", "--out", "m.npz"],
    "--batch-size 0": ["rec", "train", *D, "--batch-size", "0", "--out", "m.npz"],
    "--epochs -2": ["rec", "train", *D, "--epochs", "-2", "--out", "m.npz"],
    "--negative-weight -1": ["rec", "train", *D, "--negative-weight", "-1", "--out", "m.npz"],
    "--margin 2": ["rec", "train", *D, "--model", "simplex", "--margin", "2", "--out", "m.npz"],
    "--margin for mf-bpr": ["rec", "train", *D, "--margin", "0.5", "--out", "m.npz"],
    "unknown --model": ["rec", "train", *D, "--model", "lightgcn", "--out", "m.npz"],
    # --- issue 21 item 3: live-dns, its guard, SimpleX's gate
    "live-dns for mine (needs the model being trained)": [*MINE, "--sampler", "live-dns", "--out", "o"],
    "live-dns in an audit": ["rec", "audit", *D, "--samplers", "uniform,live-dns"],
    "--guard-margin without live-dns": ["rec", "train", *D, "--guard-margin", "0.1", "--out", "m.npz"],
    "--guard-similarity without live-dns": ["rec", "train", *D, "--guard-similarity", "0.9", "--out", "m.npz"],
    "--guard-margin nan": ["rec", "train", *D, "--sampler", "live-dns", "--guard-margin", "nan", "--out", "m.npz"],
    "--guard-similarity 2": ["rec", "train", *D, "--sampler", "live-dns", "--guard-similarity", "2", "--out",
                             "m.npz"],
    "live-dns with --scorer": ["rec", "train", *D, "--sampler", "live-dns", "--scorer", "als", "--out", "m.npz"],
    "live-dns with --embeddings": ["rec", "train", *D, "--sampler", "live-dns", "--embeddings", "emb.npz", "--out",
                                   "m.npz"],
    "--gamma for mf-bpr": ["rec", "train", *D, "--gamma", "0.3", "--out", "m.npz"],
    "--gamma 1.5": ["rec", "train", *D, "--model", "simplex", "--gamma", "1.5", "--out", "m.npz"],
    "compare: unknown sampler": ["rec", "compare", *D, "--samplers", "uniform,bogus"],
    "compare: a sampler twice": ["rec", "compare", *D, "--samplers", "live-dns,live-dns"],
    "compare: --guard-margin without live-dns": ["rec", "compare", *D, "--samplers", "uniform,dns", "--scorer",
                                                 "als", "--guard-margin", "0.2"],
    "compare --negatives 1,0": ["rec", "compare", *D, "--negatives", "1,0"],
    "compare --models with an unknown one": ["rec", "compare", *D, "--models", "mf-bpr,nope"],
    "compare --samplers twice": ["rec", "compare", *D, "--samplers", "uniform,uniform"],
    "compare --out is a file": ["rec", "compare", *D, "--out", "file.txt"],
    "--mix with an unknown part": [*MINE, "--sampler", "mixed", "--mix", "uniform=0.5,bogus=0.5", "--out", "o"],
    "--mix without =": [*MINE, "--sampler", "mixed", "--mix", "uniform", "--out", "o"],
    "--mix shares sum to 0": [*MINE, "--sampler", "mixed", "--mix", "uniform=0,popularity=0", "--out", "o"],
    "--mix without the mixed sampler": [*MINE, "--mix", "uniform=1", "--out", "o"],
    "mixed without --mix": [*MINE, "--sampler", "mixed", "--out", "o"],
    "--alpha for uniform": [*MINE, "--alpha", "0.5", "--out", "o"],
    "--factors without als/bpr": [*MINE, "--factors", "8", "--out", "o"],
    "--embeddings with --scorer als": [*MINE, "--sampler", "dns", "--scorer", "als", "--embeddings", "emb.npz",
                                       "--out", "o"],
    "duplicate user ids in --embeddings": [*MINE, "--sampler", "dns", "--embeddings", "dup.npz", "--out", "o"],
    "complex --embeddings": [*MINE, "--sampler", "dns", "--embeddings", "complex.npz", "--out", "o"],
    "zero-dimension --embeddings": [*MINE, "--sampler", "dns", "--embeddings", "zero.npz", "--out", "o"],
    "--embeddings not a zip": [*MINE, "--sampler", "dns", "--embeddings", "notzip.npz", "--out", "o"],
    "evaluate --model is a csv": ["rec", "evaluate", *D, "--model", "data.csv"],
    "mine --out is a file": [*MINE, "--out", "file.txt"],
    "mine --out holds a different run": [*MINE, "--min-rating", "4", "--seed", "9", "--out", "run"],
    "mine --out is the input's directory": [*MINE, "--out", "."],
    "unknown --sampler": [*MINE, "--sampler", "hardest", "--out", "o"],
    "unknown --format": [*MINE, "--format", "xlsx", "--out", "o"],
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rec-robust")
    import os

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


def _strict(text: str) -> object:
    def refuse(name: str) -> None:
        raise AssertionError(f"non-strict JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def test_bom_is_stripped_and_users_without_positives_are_skipped(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    rows = [*ROWS, (77, 1, 1, 1), (77, 2, 2, 2)]  # user 77 has no rating >= 4
    Path("plain.csv").write_text(_csv(rows))
    Path("bom.csv").write_bytes(b"\xef\xbb\xbf" + _csv(rows).encode())
    for name in ("plain", "bom"):
        assert main(["rec", "mine", "--interactions", f"{name}.csv", "--min-rating", "4", "--out", name]) == 0
        assert "skipped 1 user(s) without a positive" in capsys.readouterr().out
    assert Path("plain/mined.parquet").read_bytes() == Path("bom/mined.parquet").read_bytes()
    report = _strict(Path("plain/report.json").read_text())
    assert isinstance(report, dict) and report["data"]["users_without_positives_dropped"] == 1
    assert report["positive_scores"] is None  # no scorer: null, never NaN
    # the old flag is an accepted no-op; --require-positives is the strict behaviour
    assert main(["rec", "mine", "--interactions", "plain.csv", "--min-rating", "4", "--drop-users-without-positives",
                 "--out", "plain"]) == 0
    capsys.readouterr()
    assert main(["rec", "mine", "--interactions", "plain.csv", "--min-rating", "4", "--require-positives",
                 "--out", "strict"]) == 2
    err = capsys.readouterr().err
    assert "1 user(s) have no interaction rated >= 4 (e.g. '77')" in err and not Path("strict").exists()


def test_audit_json_is_strict(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    Path("d.csv").write_text(_csv(ROWS))
    assert main(["rec", "audit", "--interactions", "d.csv", "--min-rating", "4", "--samplers", "uniform,popularity",
                 "--out", "a", "--json"]) == 0
    rows = _strict(capsys.readouterr().out)
    assert isinstance(rows, list) and len(rows) == 2
    _strict(Path("a/audit.json").read_text())
    # a second audit into the same directory needs --overwrite; with it, the files are replaced
    assert main(["rec", "audit", "--interactions", "d.csv", "--min-rating", "4", "--samplers", "uniform",
                 "--out", "a"]) == 2
    assert main(["rec", "audit", "--interactions", "d.csv", "--min-rating", "4", "--samplers", "uniform",
                 "--out", "a", "--overwrite"]) == 0


def test_python_entry_points_check_the_same_declarations() -> None:
    from negmine.core.errors import ConfigError
    from negmine.rec.data import from_arrays
    from negmine.rec.samplers import Mixed, Popularity, Robust, Uniform, make_sampler
    from negmine.rec.train import TrainConfig

    for bad in (lambda: Popularity(float("inf")), lambda: Robust(10, float("nan")),
                lambda: make_sampler("dns", candidates=0), lambda: Mixed([(Uniform(), float("nan"))]),
                lambda: make_sampler("mixed", mix={"uniform": float("inf")}),
                lambda: TrainConfig(lr=float("inf")).validate(), lambda: TrainConfig(margin=float("nan")).validate(),
                lambda: from_arrays([1], [2], [5.0], min_rating=float("nan"))):
        with pytest.raises(ConfigError):
            bad()


def test_movielens_users_without_positives_skipped_by_default(ml100k: Path, tmp_path: Path, capsys) -> None:
    # issue 21 item 5: one ml-100k user has no rating >= 4; the run goes on and counts them
    assert main(["rec", "mine", "--interactions", str(ml100k), "--min-rating", "4", "--out", str(tmp_path / "o")]) == 0
    assert "skipped 1 user(s) without a positive" in capsys.readouterr().out
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["data"]["users_without_positives_dropped"] == 1 and report["data"]["users"] == 942
