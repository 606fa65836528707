"""Issue 22 (text domain): each case of the adversarial campaign that lost data, leaked a secret,
ended in exit 1 or accepted a value it should refuse, run through the real CLI. Every bad input
ends with exit 2, exactly one stderr line ``negmine: error: <what>, <where>: <fix>``, no secret in
any output or file, and nothing changed on disk."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

Cli = Callable[..., Any]

SECRET_URL = "http://alice:SECRETPW1@llm.example.com:9/v1?api-key=SECRETQK2&model=m"
SECRETS = ("SECRETPW1", "SECRETQK2", "sk-SECRETENV3")


def assert_exit_2_one_line(res: Any, *needles: str) -> str:
    assert res.code == 2, res
    lines = res.err.splitlines()
    assert len(lines) == 1, res
    msg = lines[0]
    assert msg.startswith("negmine: error: "), res
    assert "Traceback" not in res.err and ".tmp" not in msg, res
    for n in needles:
        assert n in msg, f"{n!r} not in {msg!r}"
    return msg


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def run_copy(bm25_run: Path, tmp_path: Path) -> Path:
    """A private copy of the shared BM25 run (tests may try to destroy it)."""
    dst = tmp_path / "run"
    shutil.copytree(bm25_run, dst)
    return dst


# ------------------------------------------------------------------------ 1. data loss, secrets
def test_lock_records_no_secret_and_a_refused_contender_leaves_the_record(
        tmp_path: Path, negmine_exe: Cli, sample_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The lock once held ``" ".join(sys.argv)``: the second run printed both URL secrets, a
    ``kill -9`` left them on disk, and the refused contender truncated the holder's record."""
    from negmine.core.rundir import RunDir

    out = tmp_path / "out"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-SECRETENV3")
    monkeypatch.setattr(sys, "argv", ["negmine", "mine", "--dataset", str(sample_dir), "--llm-model", "m",
                                      "--llm-base-url", SECRET_URL, "--note=sk-SECRETENV3", "--out", str(out)])
    with RunDir(out).claim("holder-run"):
        lock = out / ".negmine" / "lock"
        record = lock.read_bytes()
        assert json.loads(record)["pid"] == os.getpid()
        assert "llm.example.com" in record.decode() and not any(s in record.decode() for s in SECRETS)
        res = negmine_exe("mine", "--dataset", sample_dir, "--llm-model", "m", "--llm-base-url", SECRET_URL,
                          "--out", out)
        msg = assert_exit_2_one_line(res, "another negmine run is writing here", str(os.getpid()))
        assert not any(s in res.err + res.out for s in SECRETS), msg
        assert lock.read_bytes() == record  # the contender did not truncate the holder's record
    assert not any(s.encode() in p.read_bytes() for p in out.rglob("*") if p.is_file() for s in SECRETS)


def test_an_old_lock_record_with_secrets_is_redacted_in_the_message(
        tmp_path: Path, negmine_exe: Cli, sample_dir: Path) -> None:
    """A record written by an earlier version holds the raw command: the message redacts it."""
    import fcntl

    out = tmp_path / "out"
    (out / ".negmine").mkdir(parents=True)
    lock = out / ".negmine" / "lock"
    lock.write_text(json.dumps({"pid": 1, "host": "h", "started": "t",
                                "command": f"negmine mine --llm-base-url {SECRET_URL}"}))
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        res = negmine_exe("mine", "--dataset", sample_dir, "--out", out)
    finally:
        os.close(fd)
    assert_exit_2_one_line(res, "another negmine run is writing here", "llm.example.com")
    assert not any(s in res.err for s in SECRETS)


@pytest.mark.extra("bm25")
@pytest.mark.parametrize(("fmt", "target"), [
    ("triplet", "mined.parquet"), ("flag", "manifest.json"), ("triplet", "texts.parquet"),
    ("n-tuple", "report.jsonl"), ("triplet", "sub/new.jsonl"), ("triplet", ".negmine/x.jsonl"),
])
def test_export_into_the_run_it_reads_is_refused(cli: Cli, run_copy: Path, fmt: str, target: str) -> None:
    """``export RUN --out RUN/mined.parquet --overwrite`` once exited 0 and destroyed the run."""
    before = snapshot(run_copy)
    res = cli("export", run_copy, "--format", fmt, "--out", run_copy / target, "--overwrite")
    assert_exit_2_one_line(res, "--out", "choose another --out")
    assert snapshot(run_copy) == before


@pytest.mark.extra("bm25")
def test_export_corpus_out_into_the_run_and_through_a_symlink_are_refused(cli: Cli, run_copy: Path,
                                                                           tmp_path: Path) -> None:
    before = snapshot(run_copy)
    res = cli("export", run_copy, "--format", "tevatron-ids", "--out", tmp_path / "t.jsonl",
              "--corpus-out", run_copy / "texts.parquet", "--overwrite")
    assert_exit_2_one_line(res, "--corpus-out")
    link = tmp_path / "link"
    link.symlink_to(run_copy)
    res = cli("export", run_copy, "--format", "triplet", "--out", link / "mined.parquet", "--overwrite")
    assert_exit_2_one_line(res, "--out")
    assert snapshot(run_copy) == before and not (tmp_path / "t.jsonl").exists()


@pytest.mark.extra("bm25")
@pytest.mark.parametrize("name", ["report.json", "manifest.json", ".negmine/lock"])
def test_mine_html_onto_a_file_of_the_run_is_refused_before_any_work(cli: Cli, run_copy: Path, sample_dir: Path,
                                                                       name: str) -> None:
    before = snapshot(run_copy)
    res = cli("mine", "--dataset", sample_dir, "--num-negatives", "4", "--range-max", "5", "--out", run_copy,
              "--html", run_copy / name)
    assert_exit_2_one_line(res, "--html")
    assert snapshot(run_copy) == before


def test_mine_out_onto_an_input_is_refused(cli: Cli, tmp_path: Path, sample_dir: Path, fs: SimpleNamespace) -> None:
    data = tmp_path / "data"
    shutil.copytree(sample_dir, data)
    before = snapshot(data)
    res = cli("mine", "--dataset", data, "--out", data, "--overwrite")
    assert_exit_2_one_line(res, "--out")
    pairs = fs.write_jsonl(tmp_path / "out" / "mined.jsonl", [{"anchor": "a b", "positive": "c d"}] * 3)
    res = cli("mine", "--pairs", pairs, "--out", tmp_path / "out", "--overwrite")
    assert_exit_2_one_line(res, str(pairs), "choose another --out")
    assert snapshot(data) == before and pairs.is_file()


@pytest.mark.extra("bm25")
def test_report_html_onto_the_run_is_refused(cli: Cli, run_copy: Path) -> None:
    before = snapshot(run_copy)
    for name in ("manifest.json", "mined.parquet"):
        assert_exit_2_one_line(cli("report", run_copy, "--html", run_copy / name), "--html")
    assert snapshot(run_copy) == before


# --------------------------------------------------------------- 2. user errors that were exit 1
@pytest.fixture
def small_beir(tmp_path: Path, fs: SimpleNamespace) -> Path:
    corpus = [{"_id": f"d{i}", "title": "", "text": f"document {i} about topic {i % 3} and word{i}"}
              for i in range(12)]
    queries = [{"_id": f"q{i}", "text": f"topic {i} word{i}"} for i in range(3)]
    return fs.write_beir(tmp_path / "data", corpus, queries, {"train": [(f"q{i}", f"d{i}", 1) for i in range(3)]})


def test_unknown_bm25_stemmer(cli: Cli, small_beir: Path, tmp_path: Path) -> None:
    pytest.importorskip("Stemmer")
    msg = assert_exit_2_one_line(cli("mine", "--dataset", small_beir, "--bm25-stemmer", "klingon",
                                     "--out", tmp_path / "o"), "'klingon'", "--bm25-stemmer", "english")
    assert "known" in msg and not (tmp_path / "o").exists()


def _precomputed(cli: Cli, beir: Path, run: Path, out: Path) -> Any:
    return cli("mine", "--dataset", beir, "--retriever", "precomputed", "--run", run, "--num-negatives", "1",
               "--out", out)


def test_non_utf8_trec_run(cli: Cli, small_beir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run.trec"
    run.write_bytes(b"q0 Q0 d1 1 2.0 t\nq1 Q0 d\xe9 1 1.0 t\n")
    assert_exit_2_one_line(_precomputed(cli, small_beir, run, tmp_path / "o"), f"{run}:2", "UTF-8")
    assert not (tmp_path / "o").exists()


def test_non_zip_npz(cli: Cli, small_beir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run.npz"
    run.write_bytes(b"this is not a zip archive\n" * 4)
    assert_exit_2_one_line(_precomputed(cli, small_beir, run, tmp_path / "o"), str(run), "not a zip")
    assert not (tmp_path / "o").exists()


def test_npz_of_object_arrays_is_refused_unpickled(cli: Cli, small_beir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run.npz"
    np.savez(run, query_ids=np.array(["q0", "q1", "q2"], dtype=object),
             doc_ids=np.array([["d1"], ["d2"], ["d0"]], dtype=object), scores=np.ones((3, 1)))
    assert_exit_2_one_line(_precomputed(cli, small_beir, run, tmp_path / "o"), str(run), "object arrays",
                           "dtype=str")
    assert not (tmp_path / "o").exists()


def test_sweep_toml_with_a_non_utf8_byte(cli: Cli, small_beir: Path, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep.toml"
    sweep.write_bytes(f'[sweep]\ndataset = "{small_beir}"\n# caf\xe9\n'.encode("latin-1"))
    assert_exit_2_one_line(cli("compare", sweep), f"{sweep}:3", "UTF-8")


def test_mine_config_with_a_non_utf8_byte(cli: Cli, small_beir: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "mine.toml"
    cfg.write_bytes(b'num_negatives = 2\nsampler = "top" # \xff\n')
    assert_exit_2_one_line(cli("mine", "--dataset", small_beir, "--config", cfg, "--out", tmp_path / "o"),
                           f"{cfg}:2", "UTF-8")


@pytest.mark.extra("bm25")
def test_export_of_a_manifest_whose_num_negatives_is_not_a_count(cli: Cli, run_copy: Path, tmp_path: Path) -> None:
    manifest = run_copy / "manifest.json"
    m = json.loads(manifest.read_text())
    m["num_negatives"] = "five"
    manifest.write_text(json.dumps(m))
    res = cli("export", run_copy, "--format", "n-tuple", "--out", tmp_path / "x.jsonl")
    assert_exit_2_one_line(res, "num_negatives", "'five'", "--overwrite")
    assert not (tmp_path / "x.jsonl").exists()


def test_report_and_export_of_a_rec_run(cli: Cli, tmp_path: Path) -> None:
    rows = [(u, i, 5, u * 100 + i) for u in range(1, 9) for i in range(1, 25) if (u * i) % 4 != 1]
    f = tmp_path / "x.csv"
    f.write_text("user_id,item_id,rating,timestamp\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    rec = tmp_path / "rec"
    assert cli("rec", "mine", "--interactions", f, "--num-negatives", "2", "--out", rec).code == 0
    before = snapshot(rec)
    assert_exit_2_one_line(cli("report", rec), "recommendation run", "negmine rec")
    assert_exit_2_one_line(cli("export", rec, "--format", "triplet", "--out", tmp_path / "t.jsonl"),
                           "recommendation run")
    assert snapshot(rec) == before and not (tmp_path / "t.jsonl").exists()


# ------------------------------------------------------------------------- full disks, short writes
@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 48 KiB tmpfs (needs mount rights: root in a container); skipped elsewhere."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if shutil.which("mount") is None or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(mnt)],
                                                       capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


def test_numpy_short_write_without_errno_is_exit_2(tiny_disk: Path) -> None:
    """numpy's ``tofile`` on a full disk raises ``OSError('N requested and M written')`` with no errno."""
    from negmine.core.atomic import at_target
    from negmine.core.errors import environment_error, is_short_write

    with pytest.raises(OSError) as info:
        np.save(tiny_disk / "x.npy", np.zeros((100_000, 4), dtype=np.float32))
    assert info.value.errno is None and is_short_write(info.value)
    line = environment_error(info.value)
    assert line is not None and "full" in line and "free space" in line
    named = at_target(info.value, tiny_disk / "x.npy")
    assert named.filename == str(tiny_disk / "x.npy") and environment_error(named).startswith(str(tiny_disk))


@pytest.mark.extra("st", "model")
def test_dense_run_whose_cache_dir_fills_up(cli: Cli, tiny_beir: Path, tiny_disk: Path, tmp_path: Path) -> None:
    """The embedding cache on a full disk: one line naming --cache-dir, no partial entry left."""
    res = cli("mine", "--dataset", tiny_beir, "--retriever", "dense", "--cache-dir", tiny_disk / "cache",
              "--num-negatives", "2", "--out", tmp_path / "o")
    assert_exit_2_one_line(res, str(tiny_disk / "cache"), "no space left", "--cache-dir")
    assert not (tmp_path / "o").exists()
    assert not [p for p in (tiny_disk / "cache").iterdir() if p.name.endswith(".tmp")]


@pytest.mark.extra("bm25")
def test_run_files_on_a_full_disk_name_the_file_not_its_temp(cli: Cli, tmp_path: Path, tiny_disk: Path,
                                                             fs: SimpleNamespace) -> None:
    rng = np.random.default_rng(0)
    words = ["".join(chr(97 + c) for c in rng.integers(0, 26, 7)) for _ in range(3000)]
    corpus = [{"_id": f"d{i}", "title": "", "text": " ".join(rng.choice(words, 60))} for i in range(300)]
    queries = [{"_id": f"q{i}", "text": corpus[i]["text"][:40]} for i in range(40)]
    data = fs.write_beir(tmp_path / "data", corpus, queries, {"train": [(f"q{i}", f"d{i}", 1) for i in range(40)]})
    res = cli("mine", "--dataset", data, "--num-negatives", "2", "--range-max", "10", "--out", tiny_disk / "o")
    msg = assert_exit_2_one_line(res, "no space left", str(tiny_disk / "o"))
    assert ".tmp" not in msg
    assert not [p for p in tiny_disk.rglob("*.tmp")]


# ---------------------------------------------------------------- 3. values that were accepted
def test_rank_window_beyond_the_depth_is_refused(cli: Cli, sample_dir: Path, tmp_path: Path) -> None:
    """``--range-min 50 --depth 20`` once mined an empty window (0 negatives, exit 0)."""
    res = cli("mine", "--dataset", sample_dir, "--range-min", "50", "--depth", "20", "--out", tmp_path / "o")
    assert_exit_2_one_line(res, "range_min 50", "top 20", "--depth")
    assert not (tmp_path / "o").exists()


def test_rank_window_beyond_the_depth_is_refused_in_python(sample_dir: Path) -> None:
    import negmine
    from negmine.core.errors import ConfigError

    data = negmine.load_beir(sample_dir, split="train")
    with pytest.raises(ConfigError, match="range_min 50"):
        negmine.mine(data, negmine.text.retrievers.BM25(), [negmine.text.filters.RankWindow(50)], depth=20)


def _embeddings(tmp_path: Path, beir: Path, docs: np.ndarray) -> tuple[Path, Path]:
    n_q = sum(1 for line in (beir / "queries.jsonl").read_text().splitlines() if line.strip())
    d, q = tmp_path / "d.npy", tmp_path / "q.npy"
    np.save(d, docs)
    np.save(q, np.ones((n_q, max(docs.shape[1], 1)), dtype=np.float32))
    return d, q


@pytest.mark.parametrize(("docs", "needle"), [
    (np.zeros((12, 0), dtype=np.float32), "(12, 0)"),
    (np.ones((12, 4), dtype=np.complex64), "complex64"),
])
def test_bad_precomputed_document_embeddings(cli: Cli, small_beir: Path, tmp_path: Path, docs: np.ndarray,
                                             needle: str) -> None:
    d, q = _embeddings(tmp_path, small_beir, docs)
    res = cli("mine", "--dataset", small_beir, "--retriever", "dense", "--doc-embeddings", d, "--query-embeddings", q,
              "--num-negatives", "1", "--out", tmp_path / "o")
    assert_exit_2_one_line(res, str(d), needle)
    assert not (tmp_path / "o").exists()


def test_parquet_embeddings_with_a_duplicate_id(cli: Cli, small_beir: Path, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    ids = [f"d{i}" for i in range(12)] + ["d3"]
    d = tmp_path / "d.parquet"
    pq.write_table(pa.table({"_id": ids, "embedding": [[float(i), 1.0] for i in range(13)]}), d)
    _, q = _embeddings(tmp_path, small_beir, np.ones((12, 2), dtype=np.float32))
    res = cli("mine", "--dataset", small_beir, "--retriever", "dense", "--doc-embeddings", d, "--query-embeddings", q,
              "--num-negatives", "1", "--out", tmp_path / "o")
    assert_exit_2_one_line(res, str(d), "duplicate", "'d3'")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(("extra", "needles"), [
    (("--device", "cuda"), ("--device", "retriever bm25", "retriever dense")),
    (("--doc-embeddings", "d.npy", "--query-embeddings", "q.npy"), ("--doc-embeddings", "retriever bm25")),
    (("--batch-size", "8"), ("--batch-size", "retriever bm25", "scorer cross-encoder")),
    (("--temperature", "0.1"), ("--temperature", "sampler top", "sampler softmax")),
    (("--sampler", "random", "--simans-a", "1"), ("--simans-a", "sampler random", "sampler simans")),
    (("--faiss-index", "hnsw", "--retriever", "dense"), ("--faiss-index", "retriever dense", "retriever faiss")),
    (("--fn-detector", "gbm"), ("--fn-detector", "filter fn-max-prob")),
    (("--ce-activation", "none"), ("--ce-activation", "scorer cross-encoder")),
    (("--llm-batch-size", "3"), ("--llm-batch-size", "scorer llm-judge")),
    (("--members", "bm25,dense"), ("--members", "union or hybrid")),
    (("--workers", "2"), ("--workers", "--engine ray")),
])
def test_options_that_do_not_apply_are_refused(cli: Cli, small_beir: Path, tmp_path: Path, extra: tuple[str, ...],
                                               needles: tuple[str, ...]) -> None:
    """``--retriever bm25 --device cuda`` (and the precomputed embeddings) once exited 0 without a word."""
    res = cli("mine", "--dataset", small_beir, "--num-negatives", "1", "--out", tmp_path / "o", *extra)
    assert_exit_2_one_line(res, *needles)
    assert not (tmp_path / "o").exists()


@pytest.mark.extra("bm25")
def test_options_that_apply_are_accepted(cli: Cli, small_beir: Path, tmp_path: Path) -> None:
    """The same mechanism lets through what a chosen component takes (a member of a union, the
    chosen sampler's, a filter's, the positives' reference)."""
    res = cli("mine", "--dataset", small_beir, "--num-negatives", "1", "--retriever", "union", "--members", "bm25",
              "--bm25-k1", "1.2", "--sampler", "softmax", "--temperature", "0.5", "--sampler-scale", "query",
              "--range-min", "1", "--positive-reference", "max", "--out", tmp_path / "o")
    assert res.code == 0, res


def test_options_that_do_not_apply_in_a_config_file(cli: Cli, small_beir: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "mine.toml"
    cfg.write_text('retriever = "bm25"\n[mine]\ndevice = "cuda"\n')
    res = cli("mine", "--dataset", small_beir, "--config", cfg, "--out", tmp_path / "o")
    assert_exit_2_one_line(res, str(cfg), "'device'", "retriever bm25")
    assert not (tmp_path / "o").exists()


def test_options_that_do_not_apply_in_a_sweep(cli: Cli, small_beir: Path, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep.toml"
    head = f'[sweep]\ndataset = "{small_beir}"\nout = "{tmp_path / "sw"}"\n'
    sweep.write_text(head + '[[setting]]\nname = "bm25"\nretriever = "bm25"\ntemperature = 0.1\n')
    assert_exit_2_one_line(cli("compare", sweep), "'bm25'", "'temperature'", "sampler top")
    sweep.write_text(head + '[mine]\ndevice = "cuda"\n[[setting]]\nname = "bm25"\nretriever = "bm25"\n')
    assert_exit_2_one_line(cli("compare", sweep), "[mine]", "'device'", "every setting")
    assert not (tmp_path / "sw").exists()


def test_options_that_do_not_apply_in_python(small_beir: Path) -> None:
    from negmine.core.errors import ConfigError
    from negmine.text.options import check_applicable, mine_from_options

    o = {"dataset": str(small_beir), "retriever": "bm25", "device": "cuda"}
    with pytest.raises(ConfigError, match="--device does not apply"):
        mine_from_options(o, given=o)
    check_applicable(["device", "model"], {"retriever": "dense"})  # dense takes both


# ------------------------------------------------------------------------------------ 4. smaller
def _no_constant(name: str) -> Any:
    raise AssertionError(f"non-strict JSON constant {name}")


def strict_loads(text: str) -> Any:
    return json.loads(text, parse_constant=_no_constant)


def test_every_json_written_is_strict(cli: Cli, small_beir: Path, tmp_path: Path) -> None:
    """A TREC run that does not list the positives leaves their scores NaN: mined.jsonl once held
    ``NaN``, which strict parsers reject. Every JSON file and every ``--json`` output is strict,
    and the run still reads back (the ``null`` is NaN again, as in parquet)."""
    run = tmp_path / "run.trec"
    run.write_text("".join(f"q{i} Q0 d{j} {r + 1} {5.0 - r} t\n" for i in range(3)
                           for r, j in enumerate([(i + 5) % 12, (i + 7) % 12])))
    out = tmp_path / "o"
    res = cli("mine", "--dataset", small_beir, "--retriever", "precomputed", "--run", run, "--relative-margin",
              "0.1", "--num-negatives", "1", "--format", "jsonl", "--out", out, "--json")
    assert res.code == 0, res
    strict_loads(res.out)
    mined = (out / "mined.jsonl").read_text()
    assert "null" in mined  # the NaN positive scores
    for path in out.rglob("*.json"):
        strict_loads(path.read_text())
    for path in out.glob("*.jsonl"):
        for line in path.read_text().splitlines():
            strict_loads(line)
    rep = cli("report", out, "--json")
    assert rep.code == 0, rep
    strict_loads(rep.out)
    exp = cli("export", out, "--format", "labeled-list", "--out", tmp_path / "x.jsonl", "--json")
    assert exp.code == 0, exp
    strict_loads(exp.out)
    msg = assert_exit_2_one_line(cli("export", out, "--format", "triplet", "--with-scores", "--out",
                                     tmp_path / "y.jsonl"), "non-finite")  # NaN read back as NaN
    assert "q" in msg


def test_strict_json_helpers() -> None:
    from negmine.core.atomic import dumps, strict_json

    obj = {"a": float("nan"), "b": [np.float32("inf"), 1.5, -float("inf")], "c": np.int64(3), "d": np.arange(2)}
    assert strict_json(obj) == {"a": None, "b": [None, 1.5, None], "c": 3, "d": [0, 1]}
    assert strict_loads(dumps(obj)) == {"a": None, "b": [None, 1.5, None], "c": 3, "d": [0, 1]}


def test_mine_html_that_cannot_be_written_is_refused_before_any_work(cli: Cli, small_beir: Path,
                                                                     tmp_path: Path) -> None:
    """``mine --html DIR`` once wrote the whole run and only then failed on the HTML path."""
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("x")
    for html, needle in ((tmp_path / "adir", "is a directory"), (tmp_path / "afile" / "r.html", "cannot write")):
        res = cli("mine", "--dataset", small_beir, "--num-negatives", "1", "--out", tmp_path / "o", "--html", html)
        assert_exit_2_one_line(res, "--html", needle)
        assert not (tmp_path / "o").exists()


@pytest.mark.extra("bm25")
def test_errors_name_the_file_not_its_temp(cli: Cli, run_copy: Path, sample_dir: Path) -> None:
    """A run file that became a directory: the message once named ``.mined.parquet.xxxx.tmp``."""
    (run_copy / "mined.parquet").unlink()
    (run_copy / "mined.parquet").mkdir()
    res = cli("mine", "--dataset", sample_dir, "--num-negatives", "4", "--range-max", "6", "--out", run_copy,
              "--overwrite")
    msg = assert_exit_2_one_line(res, str(run_copy / "mined.parquet"), "is a directory")
    assert ".tmp" not in msg
    assert not [p for p in run_copy.rglob("*.tmp")]
