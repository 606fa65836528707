"""``negmine mine`` without policy options applies the default policy (issue "Hard, but not
false", item 5); explicit options keep their meaning; ``--positive-reference pair`` writes one
row per (query, positive) under the query's own id."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from negmine.calibrate import MIN_CALIBRATION_QUERIES
from negmine.cli.main import main

pytest.importorskip("bm25s")
pytest.importorskip("sklearn")

WORDS = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "theta", "lambda", "zeta", "eta", "iota"]


def report(out: Path) -> dict[str, Any]:
    return json.loads((out / "report.json").read_text())


def test_few_multi_positive_queries_use_the_preset_and_say_fnr_was_not_measured(
        sample_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mine", "--dataset", str(sample_dir), "--out", str(tmp_path / "a")]) == 0
    captured = capsys.readouterr()
    assert not captured.err  # a successful run is quiet on stderr; the policy is told in the report
    assert "default policy" in captured.out and "not measured" in captured.out
    policy = report(tmp_path / "a")["run"]["default_policy"]
    assert policy["calibrate"] is False and policy["fnr_measured"] is False
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["options"]["relative_margin"] == policy["options"]["relative_margin"]  # re-mining repeats it


def test_explicit_options_mean_what_they_say(sample_dir: Path, tmp_path: Path) -> None:
    assert main(["mine", "--dataset", str(sample_dir), "--sampler", "top", "--out", str(tmp_path / "b")]) == 0
    rep = report(tmp_path / "b")
    assert "default_policy" not in rep.get("run", {}) and "calibration" not in rep
    assert [f["name"] for f in rep["filters"]] == ["exclude-positives"]


def test_enough_multi_positive_queries_are_calibrated(tmp_path: Path, fs: Any) -> None:
    n_q = MIN_CALIBRATION_QUERIES + 10
    corpus, queries, qrels = [], [], []
    for q in range(n_q):
        w = [WORDS[(q + j) % len(WORDS)] for j in range(3)]
        queries.append({"_id": f"q{q}", "text": " ".join(w)})
        for j in range(4):  # four positives per query, sharing the query's words
            corpus.append({"_id": f"d{q}-{j}", "title": "", "text": " ".join(w[: 1 + j % 3]) + f" topic{q}"})
            qrels.append((f"q{q}", f"d{q}-{j}", 1))
    beir = fs.write_beir(tmp_path / "data", corpus, queries, {"train": qrels})
    out = tmp_path / "c"
    assert main(["mine", "--dataset", str(beir), "--out", str(out)]) == 0
    rep = report(out)
    assert rep["run"]["default_policy"]["calibrate"] is True
    assert rep["calibration"]["target_fnr"] == 0.1 and rep["calibration"]["note"]


def test_pair_reference_writes_one_row_per_query_and_positive(sample_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "p"
    assert main(["mine", "--dataset", str(sample_dir), "--positive-reference", "pair", "--relative-margin", "0",
                 "--num-negatives", "2", "--out", str(out)]) == 0
    rows = pq.read_table(out / "mined.parquet").to_pylist()
    qrels = [ln.split("\t") for ln in (sample_dir / "qrels" / "train.tsv").read_text().splitlines()[1:] if ln]
    assert len(rows) == len(qrels)  # one row per (query, positive)
    assert all(len(r["positive_ids"]) == 1 for r in rows)
    assert sorted((r["query_id"], r["positive_ids"][0]) for r in rows) == sorted((q, d) for q, d, *_ in qrels)
    for r in rows:  # each row's margin is against its own positive
        assert all(s < r["positive_scores"][0] for s in r["negative_scores"])
    texts = {(t["kind"], t["id"]) for t in pq.read_table(out / "texts.parquet").to_pylist()}
    assert {("query", r["query_id"]) for r in rows} <= texts


def test_the_html_report_says_which_default_policy_ran(sample_dir: Path, tmp_path: Path) -> None:
    from negmine.report.html import render_html

    assert main(["mine", "--dataset", str(sample_dir), "--num-negatives", "2", "--out", str(tmp_path / "h")]) == 0
    page = render_html(tmp_path / "h")
    assert "Default policy (no policy option given)" in page and "not measured" in page
