"""``negmine mine`` without policy options applies the default policy (issue "Hard, but not
false", item 5); explicit options keep their meaning; ``--positive-reference pair`` writes one
row per (query, positive) under the query's own id."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from negmine.cli.main import main
from negmine.text.calibrate import MIN_CALIBRATION_QUERIES

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
    # the same queries as a minority (SciFact's shape: most queries have one positive): the preset
    for q in range(n_q, 2 * n_q + 1):
        queries.append({"_id": f"q{q}", "text": f"lone {WORDS[q % len(WORDS)]} topic{q}"})
        corpus.append({"_id": f"d{q}", "title": "", "text": f"lone {WORDS[q % len(WORDS)]} topic{q}"})
        qrels.append((f"q{q}", f"d{q}", 1))
    beir = fs.write_beir(tmp_path / "data2", corpus, queries, {"train": qrels})
    assert main(["mine", "--dataset", str(beir), "--out", str(tmp_path / "d")]) == 0
    rep = report(tmp_path / "d")
    policy = rep["run"]["default_policy"]
    assert policy["calibrate"] is False and policy["fnr_measured"] is False and "calibration" not in rep
    assert f"only {n_q} of {2 * n_q + 1} queries" in policy["reason"]
    manifest = json.loads((tmp_path / "d" / "manifest.json").read_text())
    assert manifest["options"]["positive_reference"] == "min" and manifest["options"]["relative_margin"] == 0.05


def many_positive_beir(root: Path, fs: Any, n_q: int) -> Path:
    """``n_q`` queries with four positives each (sharing the query's words) and a few distractors."""
    corpus, queries, qrels = [], [], []
    for q in range(n_q):
        w = [WORDS[(q + j) % len(WORDS)] for j in range(3)]
        queries.append({"_id": f"q{q}", "text": " ".join(w)})
        for j in range(4):
            corpus.append({"_id": f"d{q}-{j}", "title": "", "text": " ".join(w[: 1 + j % 3]) + f" topic{q}"})
            qrels.append((f"q{q}", f"d{q}-{j}", 1))
        corpus.append({"_id": f"x{q}", "title": "", "text": f"{w[0]} {w[2]} other{q}"})
    return fs.write_beir(root, corpus, queries, {"train": qrels, "test": qrels[:4]})


def test_compare_audits_each_setting_with_its_own_policy(tmp_path: Path, fs: Any) -> None:
    """``negmine compare``'s audit mines the visible half as the run mined everything: a
    ``policy = "default"`` setting with the policy the default calibrates *on the visible half*,
    a ``target_fnr`` setting likewise, and a preset-like setting with its positive reference (max)."""
    from negmine.text import audit as A
    from negmine.text.calibrate import calibrate
    from negmine.text.compare import load_sweep
    from negmine.text.compare.run import Runner, _State
    from negmine.text.filters import ExcludePositives, RelativeMargin
    from negmine.text.pipeline import choose, resolve_depth
    from negmine.text.samplers import Top

    beir = many_positive_beir(tmp_path / "data", fs, MIN_CALIBRATION_QUERIES + 10)
    toml = tmp_path / "sweep.toml"
    toml.write_text(f"""[sweep]
out = "{tmp_path / 'out'}"
dataset = "{beir}"
audit_hide_fraction = 0.5
[mine]
retriever = "bm25"
num_negatives = 2
[[setting]]
name = "default"
policy = "default"
[[setting]]
name = "calibrated"
target_fnr = 0.1
[[setting]]
name = "max margin"
positive_reference = "max"
relative_margin = 0.05
""")
    sweep = load_sweep(toml)
    runner = Runner(sweep)
    got = {}
    for s in sweep.settings:
        run_dir = tmp_path / "out" / s.slug
        state = _State(run_dir)
        m = runner.audit(s, 0, run_dir, state, runner.mine(s, 0, run_dir, state))["metrics"]
        got[s.name] = {k: m[k] for k in ("hp_fnr", "mean_rank", "coverage")}
    rep = json.loads((tmp_path / "out" / "default" / "mined" / "report.json").read_text())
    assert rep["run"]["default_policy"]["calibrate"] is True and rep["calibration"]["target_fnr"] == 0.1

    o = sweep.mine_options(sweep.settings[0], 0)
    (dkey, data), (rkey, retriever) = runner.data(o), runner.retriever(o)
    cand, _ = runner.candidates(rkey, retriever, dkey, data, resolve_depth(data, 2, [ExcludePositives()], None), None)
    split = A.hide_fraction(data, 0.5, 0)
    vcand = A.restrict(cand, data.positives, split.visible.positives, len(data.corpus))

    def measured(filters: list[Any], sampler: Any, reference: str) -> dict[str, Any]:
        m = A.negative_metrics(choose(split.visible, vcand, filters, sampler, 2, 0, config={}, reference=reference),
                               split.hidden)
        return {k: m[k] for k in ("hp_fnr", "mean_rank", "coverage")}

    cal = calibrate(split.visible, vcand, [ExcludePositives()], Top(), 2, 0, target_fnr=0.1, min_coverage=0.9)
    calibrated = measured(cal.filters, cal.sampler, cal.reference)
    assert got["default"] == calibrated and got["calibrated"] == calibrated  # min_coverage defaults to 0.9 too
    naive = measured([ExcludePositives()], Top(), "min")
    assert calibrated != naive  # the calibrated policy, not naive top in disguise
    by_max = measured([ExcludePositives(), RelativeMargin(0.05)], Top(), "max")
    assert got["max margin"] == by_max
    assert by_max != measured([ExcludePositives(), RelativeMargin(0.05)], Top(), "min")  # the reference matters


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
    from negmine.text.report.html import render_html

    assert main(["mine", "--dataset", str(sample_dir), "--num-negatives", "2", "--out", str(tmp_path / "h")]) == 0
    page = render_html(tmp_path / "h")
    assert "Default policy (no policy option given)" in page and "not measured" in page
