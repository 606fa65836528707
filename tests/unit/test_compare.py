"""``negmine compare``: the sweep file, the paired randomisation test, and a whole sweep
(zero-shot, BM25 top, dense random) run end to end on the bundled sample with a tiny
SentenceTransformer built in code (the tiny BERT of ``tiny_models`` + mean pooling), then re-run
to check that every step is reused.

The permutation test is checked against p-values counted by hand: with ``n`` non-zero per-query
differences there are ``2^n`` equally likely sign assignments under the null hypothesis, and p
is the share whose ``|sum|`` is at least the observed one.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from negmine.cli.main import main
from negmine.core.errors import ConfigError
from negmine.core.stats import permutation_test
from negmine.text.compare import CompareResult, compare, load_sweep, slugify

os.environ.setdefault("NEGMINE_PROGRESS", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SAMPLE = Path(__file__).resolve().parents[2] / "src" / "negmine" / "sample"
SETTINGS = ("zero-shot", "bm25 top", "random")


# ------------------------------------------------------------------------- permutation test
def by_hand(d: list[float]) -> float:
    """p of the sign-flip test by listing all 2^n sign vectors (zeros included: they change nothing)."""
    observed = abs(sum(d))
    hits = [abs(sum(s * x for s, x in zip(signs, d))) >= observed - 1e-12
            for signs in itertools.product((1, -1), repeat=len(d))]
    return sum(hits) / len(hits)


def test_identical_scores_give_p_one() -> None:
    a = [0.1, 0.5, 0.9, 0.0]
    assert permutation_test(a, a) == 1.0
    assert permutation_test([], []) == 1.0


def test_a_constant_improvement_over_12_queries_is_two_of_4096() -> None:
    # only "all +" and "all -" reach |sum| = 12c: p = 2 / 2^12
    p = permutation_test([0.7] * 12, [0.5] * 12)
    assert p == pytest.approx(2 / 2**12, rel=1e-12)
    assert p == by_hand([0.2] * 12)


def test_small_cases_counted_by_hand() -> None:
    # d = (1, 1, 1, -1): sum 2; |±1±1±1±1| >= 2 unless it is 0, C(4,2) = 6 of 16 -> p = 10/16
    assert permutation_test([1, 1, 1, 0], [0, 0, 0, 1]) == pytest.approx(10 / 16)
    # d = (3, 1): |±3±1| in {4, 2}; only the two 4s reach 4 -> p = 1/2
    assert permutation_test([3.0, 1.0], [0.0, 0.0]) == pytest.approx(0.5)
    # one non-zero difference: its sign flip is as extreme -> p = 1
    assert permutation_test([0.3, 0.2], [0.0, 0.2]) == 1.0
    rng = np.random.default_rng(7)
    d = rng.normal(0.05, 0.2, size=9).round(3)
    assert permutation_test(d, np.zeros(9)) == pytest.approx(by_hand(list(d)), abs=1e-12)


def test_zero_differences_and_the_order_of_the_systems_do_not_matter() -> None:
    a, b = [0.9, 0.4, 0.6, 0.3, 0.5], [0.5, 0.5, 0.2, 0.3, 0.5]
    p = permutation_test(a, b)
    assert permutation_test(b, a) == p
    assert permutation_test([*a, 0.7, 0.1], [*b, 0.7, 0.1]) == p  # two more ties


def test_sampled_test_approximates_the_exact_one_and_is_seeded() -> None:
    rng = np.random.default_rng(3)
    d = rng.normal(0.03, 0.1, size=14)
    exact = permutation_test(d, np.zeros(14))
    sampled = permutation_test(d, np.zeros(14), exact_max=0, n_permutations=20_000, seed=1)
    assert sampled == pytest.approx(exact, abs=0.015)
    assert sampled == permutation_test(d, np.zeros(14), exact_max=0, n_permutations=20_000, seed=1)
    # 30 constant improvements: no random sign vector is as extreme -> (0 + 1) / (10000 + 1)
    assert permutation_test([1.0] * 30, [0.0] * 30) == pytest.approx(1 / 10_001)


def test_unpaired_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="same length"):
        permutation_test([1.0, 2.0], [1.0])


# ------------------------------------------------------------------------------- sweep file
def write(tmp_path: Path, text: str, name: str = "sweep.toml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


HEAD = f'[sweep]\nout = "out"\ndataset = "{SAMPLE}"\n'


def test_a_sweep_file_is_parsed_with_defaults(tmp_path: Path) -> None:
    p = write(tmp_path, HEAD + """
[mine]
num_negatives = 2
model = "sentence-transformers/all-MiniLM-L6-v2"
[train]
loss = "gist"
max_seq_length = 64
[[setting]]
name = "zero-shot"
train = false
[[setting]]
name = "Dense RM 0.05"
retriever = "dense"
relative-margin = 0.05
train = { lr = 1e-4 }
""")
    sweep = load_sweep(p)
    assert sweep.baseline == "zero-shot"  # the first untrained setting
    assert sweep.seeds == [0] and sweep.train_split == "train" and sweep.eval_split == "test"
    assert [s.slug for s in sweep.settings] == ["zero-shot", "dense-rm-0-05"]
    s = sweep.settings[1]
    o = sweep.mine_options(s, 3)
    assert (o["relative_margin"], o["num_negatives"], o["seed"], o["split"]) == (0.05, 2, 3, "train")
    assert o["exclude_splits"] == ["train"]  # mining never reads the evaluation labels
    t = sweep.train_options(s, 3)
    assert (t["loss"], t["lr"], t["seed"], t["model"]) == ("gist", 1e-4, 3, "sentence-transformers/all-MiniLM-L6-v2")
    assert sweep.eval_options()["max_length"] == 64  # every row evaluated as it was trained
    assert sweep.command() == f"negmine compare {p}"
    assert load_sweep(p, out=tmp_path / "x").command() == f"negmine compare {p} --out {tmp_path / 'x'}"
    assert slugify("BM25 top / k=5") == "bm25-top-k-5"


@pytest.mark.parametrize(("body", "message"), [
    ("[mine]\nretreiver = 'bm25'\n", r"\[mine\]: unknown key 'retreiver'; known keys: .*relative_margin"),
    ("[mine]\nseed = 1\n", r"unknown key 'seed'.*set by the sweep"),
    ("[train]\nseed = 1\n", r"'seed' is set by the sweep"),
    ("[train]\nepochz = 1\n", r"\[train\]: unknown key 'epochz'; known keys: .*epochs"),
    ("[evaluate]\nmodel = 'x'\n", r"\[evaluate\]: unknown key 'model'; known keys: batch_size"),
    ("[sweeps]\n", r"unknown table 'sweeps'; known tables: sweep, mine"),
    ("[mine]\nnum_negatives = '3'\n", r"'num_negatives' must be an integer"),
    ("[train]\nloss = 'nope'\n", r"unknown loss function 'nope'"),
    ("[mine]\nsampler = 'nope'\n", r"unknown sampler 'nope'"),
])
def test_bad_keys_and_values_are_config_errors(tmp_path: Path, body: str, message: str) -> None:
    p = write(tmp_path, HEAD + body + "[[setting]]\nname = 'a'\n")
    with pytest.raises(ConfigError, match=message):
        load_sweep(p)


@pytest.mark.parametrize(("settings", "message"), [
    ("[[setting]]\nname = 'a'\nretreiver = 'bm25'\n", r"\[\[setting\]\] 'a': unknown key 'retreiver'"),
    ("[[setting]]\nname = 'z'\ntrain = false\nsampler = 'top'\n", r"unknown key 'sampler' for an untrained"),
    ("[[setting]]\nname = 'a'\n[[setting]]\nname = 'A'\n", r"setting name 'A' is used twice"),
    ("[[setting]]\nname = 'a'\ntrain = { seeds = [1] }\n", r"'a' train: unknown key 'seeds'"),
    ("", r"no \[\[setting\]\]"),
])
def test_bad_settings_are_config_errors(tmp_path: Path, settings: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_sweep(write(tmp_path, HEAD + settings))


def test_a_missing_model_directory_fails_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[\[setting\]\] 'a': model path './nowhere' does not exist"):
        load_sweep(write(tmp_path, HEAD + "[train]\nmodel = './nowhere'\n[[setting]]\nname = 'a'\n"))
    with pytest.raises(ConfigError, match=r"'z': model path './nowhere' does not exist"):
        load_sweep(write(tmp_path, HEAD + "[[setting]]\nname = 'z'\ntrain = false\nmodel = './nowhere'\n"))


def test_bad_baseline_and_seeds(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"baseline 'b' is not a setting; settings: a"):
        load_sweep(write(tmp_path, HEAD + "baseline = 'b'\n[[setting]]\nname = 'a'\n"))
    with pytest.raises(ConfigError, match=r"'seeds' must be a non-empty list of distinct integers"):
        load_sweep(write(tmp_path, HEAD + "seeds = [1, 1]\n[[setting]]\nname = 'a'\n"))


def test_cli_reports_a_bad_key_in_one_line_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = write(tmp_path, HEAD + "[[setting]]\nname = 'a'\nrelative_margn = 0.05\n")
    assert main(["compare", str(p)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("negmine: error: ") and "'relative_margn'" in err and "relative_margin" in err


# ------------------------------------------------------------------------------ end to end


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory: pytest.TempPathFactory, one_thread: None) -> Path:
    for module in ("sentence_transformers", "accelerate", "datasets", "bm25s", "pyarrow", "ranx", "matplotlib"):
        pytest.importorskip(module)
    root = tmp_path_factory.mktemp("compare")
    words: set[str] = set()
    for name in ("corpus.jsonl", "queries.jsonl"):
        for line in (SAMPLE / name).read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            words.update(re.findall(r"\w+", f"{r.get('title', '')} {r['text']}".lower()))
    from tiny_models import build_tiny_sentence_transformer

    model = build_tiny_sentence_transformer(root / "st", sorted(words))
    return write(root, f"""
[sweep]
out = "{root / 'out'}"
dataset = "{SAMPLE}"
seeds = [0, 1]
audit_hide_fraction = 0.5

[mine]
num_negatives = 1
cache_dir = "{root / 'cache'}"

[train]
model = "{model}"
max_steps = 2
batch_size = 8
lr = 0.005

[[setting]]
name = "zero-shot"
train = false

[[setting]]
name = "bm25 top"
retriever = "bm25"

[[setting]]
name = "random"
retriever = "dense"
sampler = "random"
""")


@pytest.fixture(scope="module")
def first(sweep_file: Path) -> CompareResult:
    return compare(sweep_file)


def rows_by_name(result: CompareResult | dict[str, Any]) -> dict[str, dict[str, Any]]:
    rows = result.rows if isinstance(result, CompareResult) else result["rows"]
    return {r["setting"]: r for r in rows}


def test_a_sweep_runs_every_step_and_writes_the_table(first: CompareResult) -> None:
    out = first.out
    assert [r["setting"] for r in first.rows] == list(SETTINGS)
    # zero-shot once; each trained setting once per seed, every step computed
    assert [(r["setting"], r["seed"]) for r in first.runs] == [
        ("zero-shot", None), ("bm25 top", 0), ("bm25 top", 1), ("random", 0), ("random", 1)]
    assert not any(any(r["reused"].values()) for r in first.runs)
    assert {tuple(r["steps"]) for r in first.runs if r["seed"] is not None} == {("mine", "audit", "train", "evaluate")}
    # one retrieval per retriever: the second seed (and the audits) reuse the candidates
    trained = [r for r in first.runs if r["seed"] is not None]
    shared = {(r["setting"], r["seed"]): r["steps"]["mine"]["retrieval_shared"] for r in trained}
    assert shared == {("bm25 top", 0): False, ("bm25 top", 1): True, ("random", 0): False, ("random", 1): True}
    for slug in ("bm25-top", "random"):
        for seed in (0, 1):
            d = out / slug / f"seed-{seed}"
            assert (d / "mined" / "manifest.json").is_file() and (d / "mined" / "report.json").is_file()
            assert (d / "model" / "negmine-train.json").is_file() and (d / "model" / "config.json").is_file()
            metrics = json.loads((d / "metrics.json").read_text())
            assert set(metrics["metrics"]) == {"ndcg@10", "recall@100", "mrr@10", "map@100"}
            assert len(metrics["per_query"]) == metrics["n_queries"] == 20
            # a trained model is never looked up in the embedding cache
            assert metrics["encoding"] == {"document_encoded": 288, "query_encoded": 20}
            record = json.loads((d / "model" / "negmine-train.json").read_text())
            assert record["seed"] == seed and record["steps"] == 2
    assert json.loads((out / "zero-shot" / "metrics.json").read_text())["trained"] is False

    rows = rows_by_name(json.loads((out / "compare.json").read_text()))
    assert list(rows) == list(SETTINGS)
    base, bm25, rand = rows["zero-shot"], rows["bm25 top"], rows["random"]
    assert base["delta"] is None and base["p_value"] is None and base["seeds"] == []
    for r in (bm25, rand):
        assert r["seeds"] == [0, 1]
        assert r["delta"] == pytest.approx(r["metrics"]["ndcg@10"] - base["metrics"]["ndcg@10"])
        assert 0 < r["p_value"] <= 1
        assert r["train_s"] > 0 and r["mine_s"] > 0 and r["shortfall_pct"] == 0
        assert 0 <= r["hp_fnr"] <= 1
    # mean over seeds of the per-seed means
    per_seed = [json.loads((out / "random" / f"seed-{s}" / "metrics.json").read_text())["metrics"]["ndcg@10"]
                for s in (0, 1)]
    assert rand["metrics"]["ndcg@10"] == pytest.approx(np.mean(per_seed))
    # BM25 top mines the best-scoring non-positive; random sampling goes deeper into the list
    assert bm25["mean_rank"] < rand["mean_rank"]

    md = (out / "compare.md").read_text()
    for name in SETTINGS:
        assert re.search(rf"^\| {re.escape(name)}( \(untrained\))? \| \d\.\d{{4}}", md, re.M)
    assert "| setting | nDCG@10 | Recall@100 | MRR@10 | MAP@100 | Δ nDCG@10 | p |" in md
    assert f"`negmine compare {first.summary['config']}`" in md
    assert (out / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "sweep.toml").read_text() == Path(first.summary["config"]).read_text()


def test_a_second_run_reuses_every_step(first: CompareResult, sweep_file: Path) -> None:
    out = first.out
    record = out / "bm25-top" / "seed-0" / "model" / "negmine-train.json"
    state = out / "random" / "seed-1" / "compare-state.json"
    before = (record.stat().st_mtime_ns, state.read_bytes(), (out / "compare.md").read_text())
    again = compare(sweep_file)
    assert again.all_reused
    assert all(step["status"] == "reused" for r in again.runs for step in r["steps"].values())
    assert (record.stat().st_mtime_ns, state.read_bytes(), (out / "compare.md").read_text()) == before
    for name, row in rows_by_name(again).items():
        old = rows_by_name(first)[name]
        assert row["reused"] and row["metrics"] == old["metrics"]
        assert row.get("train_s") == old.get("train_s") and row.get("mine_s") == old.get("mine_s")
    first_steps = {(r["setting"], r["seed"]): r["steps"] for r in first.runs}
    for r in again.runs:  # the seconds of a step are those of the run that computed it
        for step, info in r["steps"].items():
            assert info["seconds"] == first_steps[(r["setting"], r["seed"])][step]["seconds"]


def test_the_cli_reuses_and_prints_json(first: CompareResult, sweep_file: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(sweep_file), "--out", str(first.out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert [r["setting"] for r in summary["rows"]] == list(SETTINGS)
    assert all(all(r["reused"].values()) for r in summary["runs"])
    assert summary["command"] == f"negmine compare {sweep_file} --out {first.out}"


def test_a_changed_training_option_retrains_only_what_it_touches(first: CompareResult, sweep_file: Path,
                                                                 tmp_path: Path) -> None:
    text = sweep_file.read_text().replace('name = "random"\n', 'name = "random"\ntrain = { lr = 0.001 }\n')
    changed = write(tmp_path, text)
    result = compare(changed, out=first.out)
    status = {(r["setting"], r["seed"]): {k: v["status"] for k, v in r["steps"].items()} for r in result.runs}
    assert status[("zero-shot", None)] == {"evaluate": "reused"}
    assert status[("bm25 top", 0)] == {"mine": "reused", "audit": "reused", "train": "reused", "evaluate": "reused"}
    for seed in (0, 1):
        assert status[("random", seed)] == {"mine": "reused", "audit": "reused", "train": "done", "evaluate": "done"}
    rec = json.loads((first.out / "random" / "seed-0" / "model" / "negmine-train.json").read_text())
    assert rec["config"]["lr"] == 0.001


# --------------------------------------------------------- default and calibrated settings
def test_policy_default_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'policy' can only be \"default\""):
        load_sweep(write(tmp_path, HEAD + "[[setting]]\nname = 'a'\npolicy = 'calibrated'\n"))
    with pytest.raises(ConfigError, match=r"'a': policy = \"default\" chooses the mining policy itself; drop sampler"):
        load_sweep(write(tmp_path, HEAD + "[[setting]]\nname = 'a'\npolicy = 'default'\nsampler = 'top'\n"))
    with pytest.raises(ConfigError, match=r"but \[mine\] sets relative_margin; move them"):
        load_sweep(write(tmp_path, HEAD + "[mine]\nrelative_margin = 0.1\n"
                                    "[[setting]]\nname = 'a'\npolicy = 'default'\n"))


def test_a_default_setting_mines_and_is_audited_as_the_cli_default(tmp_path: Path) -> None:
    """``policy = "default"`` mines what ``negmine mine`` mines without policy options (the bundled
    sample has 12 of 80 queries with two positives or more: the one-positive preset, rm 0.05 below
    the lowest positive), and the audit measures that policy on the visible half."""
    pytest.importorskip("bm25s")
    import pyarrow.parquet as pq

    from negmine.text import audit as A
    from negmine.text.calibrate import PRESET_ONE_POSITIVE
    from negmine.text.compare.run import Runner, _State
    from negmine.text.filters import ExcludePositives, RelativeMargin
    from negmine.text.pipeline import choose, resolve_depth
    from negmine.text.samplers import Top

    p = write(tmp_path, HEAD.replace('"out"', f'"{tmp_path / "out"}"') + """audit_hide_fraction = 0.5
[mine]
retriever = "bm25"
num_negatives = 2
[[setting]]
name = "default"
policy = "default"
""")
    sweep = load_sweep(p)
    runner = Runner(sweep)
    s = sweep.settings[0]
    run_dir = tmp_path / "out" / s.slug
    state = _State(run_dir)
    metrics = runner.audit(s, 0, run_dir, state, runner.mine(s, 0, run_dir, state))["metrics"]
    rep = json.loads((run_dir / "mined" / "report.json").read_text())
    assert rep["run"]["default_policy"]["calibrate"] is False
    assert "only 12 of 80 queries" in rep["run"]["default_policy"]["reason"]
    # the CLI's default on the same data mines the same negatives
    assert main(["mine", "--dataset", str(SAMPLE), "--retriever", "bm25", "--num-negatives", "2",
                 "--exclude-splits", "train", "--out", str(tmp_path / "cli"), "-q"]) == 0
    cols = ["query_id", "negative_ids"]
    assert (pq.read_table(run_dir / "mined" / "mined.parquet", columns=cols).to_pylist()
            == pq.read_table(tmp_path / "cli" / "mined.parquet", columns=cols).to_pylist())
    # the audit, from its parts: hide half (seed 0), mine the visible half with the preset
    o = sweep.mine_options(s, 0)
    (dkey, data), (rkey, retriever) = runner.data(o), runner.retriever(o)
    cand, _ = runner.candidates(rkey, retriever, dkey, data, resolve_depth(data, 2, [ExcludePositives()], None), None)
    split = A.hide_fraction(data, 0.5, 0)
    vcand = A.restrict(cand, data.positives, split.visible.positives, len(data.corpus))
    preset = A.negative_metrics(choose(split.visible, vcand, [ExcludePositives(), RelativeMargin(0.05)], Top(), 2, 0,
                                       config={}, reference=PRESET_ONE_POSITIVE["positive_reference"]), split.hidden)
    assert {k: metrics[k] for k in ("hp_fnr", "mean_rank", "coverage")} == {
        k: preset[k] for k in ("hp_fnr", "mean_rank", "coverage")}
