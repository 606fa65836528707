"""Run directories under crashes and concurrency (issue "One machine, any corpus", DESIGN.md §7,
invariant 7), with the real ``negmine`` console script as a separate process.

A run is killed with SIGKILL at exact places (``NEGMINE_FAULT``, see :func:`negmine.core.rundir.fault`):
after a retrieval shard, before selection, mid-commit and just before the manifest — fresh and
while ``--overwrite`` replaces a different run. After every kill no reader accepts a mixed run
(``export`` exits 2 or reads the previous run intact), and the identical re-run ends with bytes
identical to an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from negmine.core.errors import ConfigError, DataError
from negmine.core.rundir import RunDir, verify

pytest.importorskip("bm25s")
pytest.importorskip("pyarrow")

NEGMINE = Path(sys.executable).with_name("negmine")
ENV = {**os.environ, "NEGMINE_PROGRESS": "0", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def shards(sample: Path) -> int:
    """Retrieval shards of 20 queries of the sample's train split."""
    lines = (sample / "qrels" / "train.tsv").read_text().splitlines()[1:]
    return -(-len({ln.split("\t")[0] for ln in lines if ln.strip()}) // 20)


def mine_args(sample: Path, out: Path, *extra: str) -> list[str]:
    # 20 queries per shard: several retrieval shards
    return ["mine", "--dataset", str(sample), "--num-negatives", "3", "--query-shard", "20", "--out", str(out),
            *extra]


def run(args: list[str], fault: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(ENV)
    if fault:
        env["NEGMINE_FAULT"] = fault
    return subprocess.run([str(NEGMINE), *args], capture_output=True, text=True, env=env, timeout=300)


def files(out: Path) -> dict[str, bytes]:
    return {n: (out / n).read_bytes() for n in ("mined.parquet", "texts.parquet") if (out / n).is_file()}


@pytest.fixture(scope="module")
def reference(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, bytes]]:
    """Uninterrupted runs: the default, and another (random sampler from a deeper retrieval) that
    --overwrite replaces."""
    root = tmp_path_factory.mktemp("reference")
    out = {}
    for name, extra in (("top", ()), ("random", OTHER)):
        p = run(mine_args(sample_dir, root / name, *extra))
        assert p.returncode == 0, p.stderr
        out[name] = files(root / name)
    assert out["top"]["mined.parquet"] != out["random"]["mined.parquet"]
    return out


OTHER = ("--sampler", "random", "--depth", "150")
FAULTS = ["retrieve-shard-1", "retrieve-shard-3", "select", "commit-files", "commit-manifest"]


@pytest.mark.parametrize("fault", FAULTS)
def test_killed_fresh_run_is_refused_by_readers_and_resumes_to_the_same_bytes(
        fault: str, sample_dir: Path, tmp_path: Path, reference: dict[str, dict[str, bytes]]) -> None:
    out = tmp_path / "run"
    killed = run(mine_args(sample_dir, out), fault)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    with pytest.raises(DataError, match="unfinished run"):
        verify(out)
    export = run(["export", str(out), "--format", "triplet", "--out", str(tmp_path / "t.jsonl")])
    assert export.returncode == 2 and "unfinished run" in export.stderr, export.stderr
    assert "Traceback" not in export.stderr
    again = run(mine_args(sample_dir, out))  # the identical command, no --overwrite: resumes
    assert again.returncode == 0, again.stderr
    assert files(out) == reference["top"]
    verify(out)
    if fault.startswith("retrieve-shard-"):  # finished shards were reused, not retrieved again
        report = json.loads((out / "report.json").read_text())
        assert report["run"]["retrieval_shards"] == shards(sample_dir) >= 3
        assert report["run"]["retrieval_shards_reused"] == int(fault.rsplit("-", 1)[1])


@pytest.mark.parametrize("fault", FAULTS)
def test_killed_overwrite_never_shows_a_mixed_run(fault: str, sample_dir: Path, tmp_path: Path,
                                                  reference: dict[str, dict[str, bytes]]) -> None:
    out = tmp_path / "run"
    assert run(mine_args(sample_dir, out, *OTHER)).returncode == 0
    killed = run(mine_args(sample_dir, out, "--overwrite"), fault)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    try:
        manifest = verify(out)
    except DataError as exc:  # the commit had begun: refused, never mixed
        assert "unfinished run" in str(exc)
    else:  # the commit had not begun: the previous run, intact
        assert files(out) == reference["random"], "a reader accepted a directory that is not the previous run"
        assert manifest["config"]["sampler"]["name"] == "random"
    again = run(mine_args(sample_dir, out, "--overwrite"))
    assert again.returncode == 0, again.stderr
    assert files(out) == reference["top"]


def test_identical_finished_run_does_nothing_and_a_different_one_needs_overwrite(
        sample_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert run(mine_args(sample_dir, out)).returncode == 0
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    same = run(mine_args(sample_dir, out))
    assert same.returncode == 0 and "nothing to do" in same.stdout, same
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    other = run(mine_args(sample_dir, out, "--sampler", "random"))
    assert other.returncode == 2 and "--overwrite" in other.stderr and "\n" not in other.stderr.strip()


def test_changed_sampler_reuses_the_stored_retrieval(sample_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert run(mine_args(sample_dir, out)).returncode == 0
    assert run(mine_args(sample_dir, out, "--sampler", "random", "--overwrite")).returncode == 0
    report = json.loads((out / "report.json").read_text())
    assert report["run"]["retrieval_shards_reused"] == report["run"]["retrieval_shards"] == shards(sample_dir)


def test_a_second_writer_is_refused_naming_the_holder(sample_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    with RunDir(out).claim("someone-else"):
        p = run(mine_args(sample_dir, out))
        assert p.returncode == 2, p.stderr
        assert "another negmine run is writing here" in p.stderr and f"process {os.getpid()}" in p.stderr
        with pytest.raises(ConfigError, match="another negmine run"):
            with RunDir(out).claim("x"):
                pass


def test_two_concurrent_runs_one_result_equal_to_a_lone_run(
        sample_dir: Path, tmp_path: Path, reference: dict[str, dict[str, bytes]]) -> None:
    out = tmp_path / "run"
    procs = [subprocess.Popen([str(NEGMINE), *mine_args(sample_dir, out)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=ENV) for _ in range(2)]
    codes = []
    for p in procs:
        _, err = p.communicate(timeout=300)
        codes.append(p.returncode)
        assert p.returncode in (0, 2), err
        if p.returncode == 2:
            assert "another negmine run is writing here" in err
    assert 0 in codes
    assert files(out) == reference["top"]
    verify(out)


def test_corrupted_run_files_are_refused(sample_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert run(mine_args(sample_dir, out)).returncode == 0
    (out / "texts.parquet").write_bytes((out / "texts.parquet").read_bytes()[:-10])
    p = run(["report", str(out)])
    assert p.returncode == 2 and "does not match the manifest" in p.stderr, p.stderr
    (out / "manifest.json").write_text("{not json")
    p = run(["export", str(out), "--format", "triplet", "--out", str(tmp_path / "t.jsonl")])
    assert p.returncode == 2 and "not a valid manifest" in p.stderr, p.stderr


def test_out_that_is_a_file_or_unwritable_is_exit_2(sample_dir: Path, tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    p = run(mine_args(sample_dir, f, "--overwrite"))
    assert p.returncode == 2 and "not a directory" in p.stderr
    if os.geteuid() != 0:  # root can write anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        p = run(mine_args(sample_dir, ro / "run"))
        assert p.returncode == 2 and "cannot write there" in p.stderr


def test_lock_is_released_when_the_holder_dies(sample_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    killed = run(mine_args(sample_dir, out), "select")
    assert killed.returncode == -signal.SIGKILL
    t0 = time.monotonic()
    with RunDir(out).claim("probe", overwrite=True):  # the kernel dropped the dead holder's lock
        pass
    assert time.monotonic() - t0 < 5


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("sentence_transformers")
    from tests.unit.tiny_models import WORDS, build_tiny_sentence_transformer

    return build_tiny_sentence_transformer(tmp_path_factory.mktemp("st") / "model", WORDS)


def test_killed_while_encoding_resumes_from_the_cache(sample_dir: Path, tmp_path: Path, tiny_model: Path) -> None:
    """Killed right after the corpus embeddings were saved (queries not yet encoded, nothing
    retrieved): the identical command reuses the cached documents and ends with the bytes of a
    clean run that had its own, empty cache."""
    dense = ("--retriever", "dense", "--model", str(tiny_model), "--max-length", "32")
    clean = tmp_path / "clean"
    assert run(mine_args(sample_dir, clean, *dense, "--cache-dir", str(tmp_path / "cache0"))).returncode == 0
    out = tmp_path / "run"
    args = mine_args(sample_dir, out, *dense, "--cache-dir", str(tmp_path / "cache1"))
    killed = run(args, "encode-document-chunk")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    with pytest.raises(DataError, match="unfinished run"):
        verify(out)
    again = run(args)
    assert again.returncode == 0, again.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["encoding"]["document_cached"] > 0 and "document_encoded" not in report["encoding"]
    assert files(out) == files(clean)
