"""Every bad input to ``negmine`` ends in one stderr line that says what is wrong, where (the file
and line, or up to three offending ids) and how to fix it; the exit code is 2; and nothing partial
is left behind: ``--out`` is not created, and a run already in it stays byte for byte the same
(STYLE.md habit 7, DESIGN.md §4)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from negmine.text import registry

Cli = Callable[..., Any]  # the ``cli`` / ``negmine_exe`` fixtures: argv -> result (code, out, err)

#: a remedy is part of every message: "fix this line", "pass --drop-unknown", "choose another --out",
#: "known retrievers: ...", "ids must be unique"...
REMEDY = re.compile(
    r"\b(fix|pass|add|remove|choose|check|make|use|name|install|needs?|must|required|known|available)\b",
    re.IGNORECASE,
)

CORPUS = [
    {"_id": "d1", "title": "Aspirin", "text": "aspirin reduces the risk of heart attack in adults"},
    {"_id": "d2", "title": "Vitamin D", "text": "vitamin d deficiency is linked to weak bones"},
    {"_id": "d3", "title": "Sleep", "text": "short sleep raises blood pressure in the elderly"},
    {"_id": "d4", "title": "Coffee", "text": "coffee drinkers show lower rates of liver disease"},
    {"_id": "d5", "title": "Exercise", "text": "regular exercise lowers blood pressure and heart risk"},
    {"_id": "d6", "title": "Salt", "text": "a high salt diet raises blood pressure"},
    {"_id": "d7", "title": "Statins", "text": "statins lower cholesterol and the risk of heart attack"},
    {"_id": "d8", "title": "Sugar", "text": "sugar intake is linked to liver fat and diabetes"},
]
QUERIES = [
    {"_id": "q1", "text": "does aspirin prevent heart attacks"},
    {"_id": "q2", "text": "is vitamin d good for bones"},
    {"_id": "q3", "text": "does sleep affect blood pressure"},
]
TRAIN = [("q1", "d1", 1), ("q2", "d2", 1), ("q3", "d3", 1)]


@pytest.fixture
def beir(tmp_path: Path, fs: SimpleNamespace) -> Path:
    """A small valid BEIR directory that each test then breaks in one way."""
    return fs.write_beir(tmp_path / "data", CORPUS, QUERIES, {"train": TRAIN})


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "out"


def assert_one_line_error(res: Any, *needles: str) -> str:
    """Exit code 2, nothing on stdout, exactly one stderr line naming every needle and a remedy."""
    assert res.code == 2, res
    assert res.out == "", res
    lines = res.err.splitlines()
    assert len(lines) == 1, res
    msg = lines[0]
    assert msg.startswith("negmine: error: "), res
    for n in needles:
        assert n in msg, f"{n!r} not in {msg!r}"
    assert REMEDY.search(msg), f"no remedy in {msg!r}"
    assert "Traceback" not in msg
    return msg


def mine_args(beir: Path, out: Path, *extra: str) -> list[str]:
    return ["mine", "--dataset", str(beir), "--num-negatives", "2", "--out", str(out), *extra]


def lines_of(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


# ----------------------------------------------------------------------------- malformed records
@pytest.mark.parametrize("name", ["corpus.jsonl", "queries.jsonl"])
def test_malformed_json_line_names_file_and_line(cli: Cli, beir: Path, out: Path,
                                                 name: str) -> None:
    path = beir / name
    rows = lines_of(path)
    rows[1] = '{"_id": "x", "text": "unterminated\n'
    path.write_text("".join(rows), encoding="utf-8")
    msg = assert_one_line_error(cli(*mine_args(beir, out)), f"{path}:2", "JSON")
    assert "fix" in msg.lower()
    assert not out.exists()


def test_json_line_that_is_not_an_object(cli: Cli, beir: Path, out: Path) -> None:
    path = beir / "corpus.jsonl"
    path.write_text("".join(lines_of(path)) + '["d9", "a list, not a record"]\n', encoding="utf-8")
    assert_one_line_error(cli(*mine_args(beir, out)), f"{path}:{len(CORPUS) + 1}", "object")
    assert not out.exists()


@pytest.mark.parametrize(
    ("name", "records", "line", "field"),
    [
        ("corpus.jsonl", CORPUS, 3, "_id"),
        ("corpus.jsonl", CORPUS, 5, "text"),
        ("queries.jsonl", QUERIES, 2, "_id"),
        ("queries.jsonl", QUERIES, 1, "text"),
    ],
)
def test_missing_field_names_file_line_and_field(cli: Cli, beir: Path, out: Path, fs: SimpleNamespace,
                                                 name: str, records: list[dict[str, Any]], line: int,
                                                 field: str) -> None:
    broken = [dict(r) for r in records]
    del broken[line - 1][field]
    fs.write_jsonl(beir / name, broken)
    assert_one_line_error(cli(*mine_args(beir, out)), f"{beir / name}:{line}", repr(field))
    assert not out.exists()


def test_blank_lines_do_not_shift_line_numbers(cli: Cli, beir: Path, out: Path) -> None:
    path = beir / "corpus.jsonl"
    rows = lines_of(path)
    path.write_text(rows[0] + "\n\n" + rows[1] + "not json\n" + "".join(rows[2:]), encoding="utf-8")
    assert_one_line_error(cli(*mine_args(beir, out)), f"{path}:5")


def test_corpus_that_is_not_utf8(cli: Cli, beir: Path, out: Path) -> None:
    """A byte that is not UTF-8 is bad input like malformed JSON: exit 2, the file and the line."""
    path = beir / "corpus.jsonl"
    path.write_bytes(path.read_bytes() + '{"_id": "d9", "title": "caf\u00e9", "text": "x"}\n'.encode("latin-1"))
    assert_one_line_error(cli(*mine_args(beir, out)), f"{path}:{len(CORPUS) + 1}")
    assert not out.exists()


def test_corrupt_parquet_corpus(cli: Cli, beir: Path, out: Path) -> None:
    """A file that claims to be parquet but is not is bad input: exit 2, naming the file."""
    (beir / "corpus.jsonl").unlink()
    path = beir / "corpus.parquet"
    path.write_text("this is not parquet\n")
    assert_one_line_error(cli(*mine_args(beir, out)), str(path))
    assert not out.exists()


# --------------------------------------------------------------------------------- duplicate ids
def test_duplicate_document_ids(cli: Cli, beir: Path, out: Path, fs: SimpleNamespace) -> None:
    fs.write_jsonl(beir / "corpus.jsonl", [*CORPUS, {**CORPUS[1], "text": "another text"}, dict(CORPUS[4])])
    msg = assert_one_line_error(cli(*mine_args(beir, out)), str(beir / "corpus.jsonl"), "'d2'", "'d5'")
    assert "duplicate" in msg
    assert not out.exists()


def test_duplicate_query_ids(cli: Cli, beir: Path, out: Path, fs: SimpleNamespace) -> None:
    fs.write_jsonl(beir / "queries.jsonl", [*QUERIES, {"_id": "q2", "text": "a second q2"}])
    msg = assert_one_line_error(cli(*mine_args(beir, out)), str(beir / "queries.jsonl"), "'q2'")
    assert "duplicate" in msg and "'q1'" not in msg
    assert not out.exists()


def test_duplicates_are_listed_at_most_three_with_the_count(cli: Cli, beir: Path,
                                                            out: Path, fs: SimpleNamespace) -> None:
    dups = [dict(d) for d in CORPUS[:5]]
    fs.write_jsonl(beir / "corpus.jsonl", CORPUS + dups)
    msg = assert_one_line_error(cli(*mine_args(beir, out)), "5 duplicate")
    named = [d["_id"] for d in dups if repr(d["_id"]) in msg]
    assert len(named) == 3, msg
    assert "+2 more" in msg


# ---------------------------------------------------------------------------------- unknown ids
def test_qrels_naming_unknown_ids(cli: Cli, beir: Path, out: Path, fs: SimpleNamespace) -> None:
    qrels = beir / "qrels" / "train.tsv"
    fs.write_qrels(qrels, [*TRAIN, ("q1", "nodoc", 1), ("noquery", "d4", 1)])
    msg = assert_one_line_error(cli(*mine_args(beir, out)), str(qrels), "'nodoc'", "'noquery'",
                                "--drop-unknown")
    assert "'d4'" not in msg and "'q1'" not in msg
    assert not out.exists()


def test_unknown_ids_listed_at_most_three(cli: Cli, beir: Path, out: Path, fs: SimpleNamespace) -> None:
    unknown = [f"gone{i}" for i in range(5)]
    fs.write_qrels(beir / "qrels" / "train.tsv", [*TRAIN, *[("q1", d, 1) for d in unknown]])
    msg = assert_one_line_error(cli(*mine_args(beir, out)), "5 unknown document id")
    assert sum(repr(d) in msg for d in unknown) == 3, msg
    assert not out.exists()


def test_unknown_ids_in_another_split_are_errors_too(cli: Cli, beir: Path,
                                                     out: Path, fs: SimpleNamespace) -> None:
    fs.write_qrels(beir / "qrels" / "test.tsv", [("q2", "missing-doc", 1)])
    assert_one_line_error(cli(*mine_args(beir, out)), "'missing-doc'")
    assert not out.exists()


@pytest.mark.extra("bm25")
def test_drop_unknown_skips_and_counts_them(cli: Cli, beir: Path, out: Path, fs: SimpleNamespace) -> None:
    fs.write_qrels(beir / "qrels" / "train.tsv",
                [*TRAIN, ("q1", "nodoc", 1), ("noquery", "d4", 1), ("noquery", "nodoc", 1)])
    res = cli(*mine_args(beir, out, "--drop-unknown"))
    assert res.code == 0, res
    report = json.loads((out / "report.json").read_text())
    assert report["qrels_unknown_dropped"] == 3
    assert report["queries"]["mined"] == 3
    assert report["positives"]["pairs"] == 3


@pytest.mark.extra("bm25")
def test_drop_unknown_from_toml(cli: Cli, beir: Path, out: Path, tmp_path: Path, fs: SimpleNamespace) -> None:
    fs.write_qrels(beir / "qrels" / "train.tsv", [*TRAIN, ("q3", "nodoc", 1)])
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(f'dataset = "{beir}"\ndrop-unknown = true\nnum-negatives = 2\nout = "{out}"\n')
    res = cli("mine", "--config", cfg)
    assert res.code == 0, res
    assert json.loads((out / "report.json").read_text())["qrels_unknown_dropped"] == 1


# ---------------------------------------------------------------------------------- empty inputs
@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_empty_corpus(cli: Cli, beir: Path, out: Path, content: str) -> None:
    (beir / "corpus.jsonl").write_text(content)
    msg = assert_one_line_error(cli(*mine_args(beir, out)), str(beir / "corpus.jsonl"))
    assert "empty" in msg
    assert not out.exists()


def test_qrels_without_positive_grades(cli: Cli, beir: Path, out: Path, fs: SimpleNamespace) -> None:
    fs.write_qrels(beir / "qrels" / "train.tsv", [(q, d, 0) for q, d, _ in TRAIN])
    assert_one_line_error(cli(*mine_args(beir, out)), str(beir / "qrels" / "train.tsv"), "positive")
    assert not out.exists()


# ------------------------------------------------------------------------------------ qrels header
def test_qrels_without_header(cli: Cli, beir: Path, out: Path, fs: SimpleNamespace) -> None:
    qrels = fs.write_qrels(beir / "qrels" / "train.tsv", TRAIN, header=False)
    assert_one_line_error(cli(*mine_args(beir, out)), f"{qrels}:1", "header")
    assert not out.exists()


def test_two_column_qrels_without_header_is_not_read_as_a_header(cli: Cli, beir: Path,
                                                                 out: Path) -> None:
    """``q1<TAB>d1`` as the first line of a headerless two-column qrels file must not be taken
    for a header and silently dropped: either it is an error, or q1 is mined."""
    qrels = beir / "qrels" / "train.tsv"
    qrels.write_text("".join(f"{q}\t{d}\n" for q, d, _ in TRAIN))
    res = cli(*mine_args(beir, out))
    if res.code == 2:
        assert_one_line_error(res, str(qrels), "header")
        assert not out.exists()
    else:
        assert res.code == 0, res
        report = json.loads((out / "report.json").read_text())
        assert report["queries"]["mined"] == 3, "the first qrels row was dropped as if it were a header"


def test_qrels_line_with_bad_score(cli: Cli, beir: Path, out: Path) -> None:
    qrels = beir / "qrels" / "train.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\thigh\n")
    assert_one_line_error(cli(*mine_args(beir, out)), f"{qrels}:3", "'high'")
    assert not out.exists()


# ------------------------------------------------------------------------------------------ options
@pytest.mark.parametrize("n", ["0", "-3"])
def test_num_negatives_below_one(cli: Cli, beir: Path, out: Path, n: str) -> None:
    res = cli("mine", "--dataset", beir, "--num-negatives", n, "--out", out)
    assert_one_line_error(res, "--num-negatives")
    assert not out.exists()


@pytest.mark.parametrize(("lo", "hi"), [("5", "5"), ("7", "3")])
def test_empty_rank_window(cli: Cli, beir: Path, out: Path, lo: str, hi: str) -> None:
    res = cli(*mine_args(beir, out, "--range-min", lo, "--range-max", hi))
    assert_one_line_error(res, "range_min", "range_max", lo, hi)
    assert not out.exists()


def test_negative_range_min(cli: Cli, beir: Path, out: Path) -> None:
    assert_one_line_error(cli(*mine_args(beir, out, "--range-min", "-1")), "--range-min must be >= 0")
    assert not out.exists()


@pytest.mark.parametrize(("flag", "family"), [("--retriever", registry.retrievers),
                                              ("--sampler", registry.samplers)])
def test_unknown_component_lists_the_known_ones(cli: Cli, beir: Path, out: Path,
                                                flag: str, family: registry.Registry) -> None:
    msg = assert_one_line_error(cli(*mine_args(beir, out, flag, "bm42")), "'bm42'")
    for name in family.names():
        assert name in msg
    assert not out.exists()


@pytest.mark.parametrize("retriever", ["dense", "faiss"])
@pytest.mark.parametrize("model", ["/nonexistent/model", "./nope", "~/no/such/model"])
def test_model_path_that_does_not_exist(cli: Cli, beir: Path, out: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch, retriever: str, model: str) -> None:
    monkeypatch.chdir(tmp_path)
    res = cli(*mine_args(beir, out, "--retriever", retriever, "--model", model))
    assert_one_line_error(res, repr(model), "does not exist")
    assert not out.exists()


def test_model_path_error_with_a_cache_dir(cli: Cli, beir: Path, out: Path,
                                           tmp_path: Path) -> None:
    res = cli(*mine_args(beir, out, "--retriever", "dense", "--model", "/nonexistent/model",
                         "--cache-dir", tmp_path / "cache"))
    assert_one_line_error(res, "/nonexistent/model")
    assert not out.exists()


@pytest.mark.extra("st")
def test_hub_name_that_cannot_be_loaded_offline(cli: Cli, beir: Path, out: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    res = cli(*mine_args(beir, out, "--retriever", "dense", "--model", "no-such-org/no-such-model"))
    assert_one_line_error(res, "'no-such-org/no-such-model'")
    assert not out.exists()


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["mine", "--num-negatives", "two"], "--num-negatives"),
        (["mine", "--no-such-flag"], "--no-such-flag"),
        (["export", "somewhere", "--format", "csv", "--out", "x.jsonl"], "csv"),
    ],
)
def test_argparse_errors_are_one_line_too(cli: Cli, argv: list[str], needle: str) -> None:
    res = cli(*argv)
    assert res.code == 2, res
    lines = res.err.splitlines()
    assert len(lines) == 1, res
    assert needle in lines[0] and "--help" in lines[0]


def test_no_input_and_two_inputs(cli: Cli, beir: Path, out: Path, tmp_path: Path,
                                 fs: SimpleNamespace) -> None:
    assert_one_line_error(cli("mine", "--out", out), "--dataset")
    pairs = fs.write_jsonl(tmp_path / "pairs.jsonl", [{"anchor": "a", "positive": "b"}])
    assert_one_line_error(cli("mine", "--dataset", beir, "--pairs", pairs, "--out", out), "exactly one")
    assert not out.exists()


def test_out_is_required(cli: Cli, beir: Path) -> None:
    assert_one_line_error(cli("mine", "--dataset", beir), "--out")


def test_missing_split_lists_the_available_ones(cli: Cli, beir: Path, out: Path, fs: SimpleNamespace) -> None:
    fs.write_qrels(beir / "qrels" / "test.tsv", TRAIN)
    assert_one_line_error(cli(*mine_args(beir, out, "--split", "dev")), "'dev'", "test", "train")
    assert not out.exists()


def test_missing_files(cli: Cli, beir: Path, out: Path, tmp_path: Path) -> None:
    assert_one_line_error(cli(*mine_args(tmp_path / "nowhere", out)), str(tmp_path / "nowhere"))
    res = cli("mine", "--corpus", beir / "corpus.jsonl", "--queries", tmp_path / "q.jsonl",
              "--qrels", beir / "qrels" / "train.tsv", "--out", out)
    assert_one_line_error(res, str(tmp_path / "q.jsonl"), "not found")
    assert not out.exists()


def test_pairs_missing_positive(cli: Cli, out: Path, tmp_path: Path, fs: SimpleNamespace) -> None:
    pairs = fs.write_jsonl(tmp_path / "pairs.jsonl", [{"anchor": "a", "positive": "b"}, {"anchor": "c"}])
    assert_one_line_error(cli("mine", "--pairs", pairs, "--out", out), f"{pairs}:2", "'positive'")
    assert not out.exists()


# ------------------------------------------------------------------------------------------ --out
@pytest.mark.extra("bm25")
def test_out_holding_a_different_run_is_refused_then_replaced_with_overwrite(
    cli: Cli, beir: Path, out: Path, fs: SimpleNamespace) -> None:
    first = cli(*mine_args(beir, out))
    assert first.code == 0, first
    before = fs.snapshot(out)
    run_id = json.loads((out / "manifest.json").read_text())["run_id"]

    res = cli("mine", "--dataset", beir, "--num-negatives", "3", "--out", out)
    assert_one_line_error(res, str(out), "--overwrite", run_id)
    assert fs.snapshot(out) == before

    res = cli("mine", "--dataset", beir, "--num-negatives", "3", "--out", out, "--overwrite")
    assert res.code == 0, res
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["num_negatives"] == 3 and manifest["run_id"] != run_id
    assert fs.snapshot(out) != before


@pytest.mark.extra("bm25")
def test_out_holding_the_same_run_can_be_rerun(cli: Cli, beir: Path, out: Path) -> None:
    assert cli(*mine_args(beir, out)).code == 0
    mined = (out / "mined.parquet").read_bytes()
    res = cli(*mine_args(beir, out))
    assert res.code == 0, res
    assert (out / "mined.parquet").read_bytes() == mined


def test_out_holding_other_files_is_refused(cli: Cli, beir: Path, out: Path, fs: SimpleNamespace) -> None:
    out.mkdir()
    (out / "notes.txt").write_text("mine, not negmine's")
    assert_one_line_error(cli(*mine_args(beir, out)), str(out), "--overwrite")
    assert fs.snapshot(out) == {"notes.txt": b"mine, not negmine's"}


def test_out_that_is_a_file_is_refused(cli: Cli, beir: Path, out: Path) -> None:
    out.write_text("a file")
    assert_one_line_error(cli(*mine_args(beir, out)), str(out))
    assert out.read_text() == "a file"


@pytest.mark.extra("bm25")
def test_a_failing_run_leaves_an_existing_run_untouched(cli: Cli, beir: Path,
                                                        out: Path, fs: SimpleNamespace) -> None:
    assert cli(*mine_args(beir, out)).code == 0
    before = fs.snapshot(out)
    fs.write_jsonl(beir / "queries.jsonl", [*QUERIES, dict(QUERIES[0])])
    assert_one_line_error(cli(*mine_args(beir, out, "--overwrite")), "'q1'")
    assert fs.snapshot(out) == before


# ----------------------------------------------------------------------------------------- config
def test_unknown_toml_key(cli: Cli, beir: Path, out: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "mine.toml"
    cfg.write_text(f'dataset = "{beir}"\nnum-negatives = 2\nnum-negativs = 3\n')
    msg = assert_one_line_error(cli("mine", "--config", cfg, "--out", out), str(cfg), "'num-negativs'")
    assert "num_negatives" in msg  # the known options are listed
    assert not out.exists()


def test_unknown_key_in_mine_table(cli: Cli, beir: Path, out: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "mine.toml"
    cfg.write_text(f'[mine]\ndataset = "{beir}"\nretreiver = "bm25"\n')
    assert_one_line_error(cli("mine", "--config", cfg, "--out", out), str(cfg), "'retreiver'")
    assert not out.exists()


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ('num-negatives = "5"', "'num-negatives'"),
        ("seed = 1.5", "'seed'"),
        ("drop-unknown = 1", "'drop-unknown'"),
        ('retriever = ["bm25"]', "'retriever'"),
        ("num-negatives = = 5", "TOML"),
    ],
)
def test_bad_toml_values(cli: Cli, beir: Path, out: Path, tmp_path: Path, body: str,
                         needle: str) -> None:
    cfg = tmp_path / "mine.toml"
    cfg.write_text(f'dataset = "{beir}"\n{body}\n')
    assert_one_line_error(cli("mine", "--config", cfg, "--out", out), str(cfg), needle)
    assert not out.exists()


def test_bad_mined_format_in_toml_is_refused_before_any_work(cli: Cli, beir: Path, out: Path,
                                                              tmp_path: Path) -> None:
    """``format`` from a config file is validated with the other options, before mining (the flag
    is limited by argparse). The dense model here cannot be found: had mining started, that
    would be the error reported instead."""
    cfg = tmp_path / "mine.toml"
    cfg.write_text(f'dataset = "{beir}"\nformat = "csv"\nretriever = "dense"\nmodel = "/nonexistent/model"\n')
    assert_one_line_error(cli("mine", "--config", cfg, "--out", out), "'csv'")
    assert not out.exists()


def test_missing_config_file(cli: Cli, out: Path, tmp_path: Path) -> None:
    assert_one_line_error(cli("mine", "--config", tmp_path / "none.toml", "--out", out), "none.toml")
    assert not out.exists()


# ----------------------------------------------------------------------------- export and report
def test_export_and_report_of_a_directory_that_is_not_a_run(cli: Cli,
                                                            tmp_path: Path) -> None:
    target = tmp_path / "train.jsonl"
    assert_one_line_error(cli("export", tmp_path, "--format", "triplet", "--out", target), str(tmp_path))
    assert not target.exists()
    assert_one_line_error(cli("report", tmp_path), str(tmp_path))


@pytest.mark.extra("bm25")
def test_export_refuses_an_existing_file_and_an_unknown_suffix(cli: Cli, beir: Path,
                                                               out: Path, tmp_path: Path) -> None:
    assert cli(*mine_args(beir, out)).code == 0
    target = tmp_path / "train.jsonl"
    target.write_text("keep me\n")
    res = cli("export", out, "--format", "triplet", "--out", target)
    assert_one_line_error(res, str(target), "--overwrite")
    assert target.read_text() == "keep me\n"
    csv = tmp_path / "train.csv"
    assert_one_line_error(cli("export", out, "--format", "triplet", "--out", csv), "'.csv'")
    assert not csv.exists()


# ----------------------------------------------------------------------- as a real process (exit codes)
@pytest.mark.extra("bm25")
def test_real_process_exit_codes(negmine_exe: Cli, beir: Path, out: Path, fs: SimpleNamespace) -> None:
    path = beir / "corpus.jsonl"
    good = path.read_text()
    path.write_text(good + "{oops\n")
    res = negmine_exe(*mine_args(beir, out))
    assert_one_line_error(res, f"{path}:{len(CORPUS) + 1}")
    assert not out.exists()

    res = negmine_exe(*mine_args(beir, out, "--retriever", "nope"))
    assert_one_line_error(res, "'nope'", *registry.retrievers.names())

    path.write_text(good)
    res = negmine_exe(*mine_args(beir, out))
    assert res.code == 0, res
    before = fs.snapshot(out)
    res = negmine_exe(*mine_args(beir, out, "--num-negatives", "3"))
    assert_one_line_error(res, "--overwrite")
    assert fs.snapshot(out) == before


def test_real_process_model_path_and_toml(negmine_exe: Cli, beir: Path, out: Path,
                                          tmp_path: Path) -> None:
    res = negmine_exe(*mine_args(beir, out, "--retriever", "dense", "--model", "./nope"), cwd=tmp_path)
    assert_one_line_error(res, "'./nope'")
    cfg = tmp_path / "c.toml"
    cfg.write_text("[mine]\nsampler = 'top'\nbogus = 1\n")
    res = negmine_exe("mine", "--dataset", beir, "--config", cfg, "--out", out)
    assert_one_line_error(res, "'bogus'")
    assert not out.exists()


def test_debug_shows_the_traceback(negmine_exe: Cli, beir: Path, out: Path) -> None:
    res = negmine_exe("--debug", *mine_args(beir, out, "--sampler", "nope"))
    assert res.code == 2
    assert "Traceback" in res.err
    assert res.err.rstrip().splitlines()[-1].startswith("negmine: error: unknown sampler 'nope'")
