"""The command line people expect (issue 12, items 1-2, 5-6, 8-10, 14): ``--version``; ``-v``/``-q``
before or after the subcommand; bars only on a terminal and never with ``-q`` (the libraries'
bars and notices included); ``-`` for stdout; examples in the help; and every user-fixable problem
in these paths is exit 2 with one line and no traceback — including a judge endpoint that
redirects to another host, which never receives the key."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import negmine

Cli = Callable[..., Any]
NEGMINE = Path(sys.executable).with_name("negmine")
SECRET = "sk-cli-5ecret"


def one_line_error(res: Any, *needles: str) -> str:
    """Exit 2, one stderr line, no traceback anywhere; the line contains every needle."""
    assert res.code == 2, res
    assert "Traceback" not in res.err and "Traceback" not in res.out, res
    lines = [ln for ln in res.err.splitlines() if ln.strip()]
    assert len(lines) == 1, res
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, sample_dir: Path) -> Path:
    from negmine.cli.main import main

    out = tmp_path_factory.mktemp("basics") / "run"
    assert main(["-q", "mine", "--dataset", str(sample_dir), "--num-negatives", "3", "--range-max", "4",
                 "--out", str(out)]) == 0
    return out


# -- version, verbosity, help ---------------------------------------------------------------------
def test_version(cli: Cli) -> None:
    res = cli("--version")
    assert res.code == 0 and res.out.strip() == f"negmine {negmine.__version__}"


@pytest.mark.parametrize("argv", [
    ["-q", "list", "retrievers"], ["list", "retrievers", "-q"], ["-v", "list", "retrievers"],
    ["list", "-v", "retrievers"], ["--debug", "list", "retrievers", "-q"],
])
def test_verbosity_flags_before_or_after_the_subcommand(cli: Cli, argv: list[str]) -> None:
    res = cli(*argv)
    assert res.code == 0 and "bm25" in res.out, res


@pytest.mark.parametrize("argv", [["-v", "list", "retrievers", "-q"], ["-q", "-v", "list", "retrievers"]])
def test_verbose_and_quiet_together_is_a_usage_error(cli: Cli, argv: list[str]) -> None:
    one_line_error(cli(*argv), "-v and -q")


@pytest.mark.extra("bm25")
def test_a_flag_before_the_subcommand_is_not_reset_after_it(cli: Cli, run: Path) -> None:
    from negmine.cli.main import build_parser

    assert build_parser().parse_args(["-q", "report", str(run)]).quiet is True
    assert build_parser().parse_args(["report", str(run), "-v"]).verbose is True


@pytest.mark.parametrize("command", ["mine", "audit", "export", "train", "compare"])
def test_examples_in_the_help(cli: Cli, command: str) -> None:
    res = cli(command, "--help")
    assert res.code == 0
    examples = res.out.split("examples:", 1)[1]
    assert examples.count(f"negmine {command} ") >= 2


# -- stdout as a file -------------------------------------------------------------------------------
@pytest.mark.extra("bm25")
def test_export_to_stdout_is_the_file(cli: Cli, run: Path, tmp_path: Path) -> None:
    res = cli("export", run, "--format", "flag", "--out", "-", "--json")
    assert res.code == 0
    assert cli("export", run, "--format", "flag", "--out", tmp_path / "f.jsonl").code == 0
    assert res.out == (tmp_path / "f.jsonl").read_text(encoding="utf-8")
    counts = json.loads(res.err.strip().splitlines()[-1])  # the counts go to stderr when stdout holds the rows
    assert counts["out"] == "-" and counts["rows"] == len(res.out.splitlines())


@pytest.mark.extra("bm25")
def test_report_html_to_stdout(cli: Cli, run: Path) -> None:
    res = cli("report", run, "--html", "-")
    assert res.code == 0 and res.out.startswith("<!DOCTYPE html>") and res.out.rstrip().endswith("</html>")
    one_line_error(cli("report", run, "--html", "-", "--json"), "--html -")


@pytest.mark.extra("bm25")
def test_a_closed_stdout_pipe_is_not_an_error(run: Path) -> None:
    env = {**os.environ, "NEGMINE_PROGRESS": "0"}
    p = subprocess.run(f"'{NEGMINE}' export '{run}' --format triplet --out - | head -1", shell=True,
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0 and p.stdout.startswith('{"anchor"')
    assert "Traceback" not in p.stderr and "BrokenPipe" not in p.stderr


# -- exit 2, one line, no traceback -------------------------------------------------------------------
@pytest.mark.extra("bm25")
def test_export_errors(cli: Cli, run: Path, tmp_path: Path) -> None:
    one_line_error(cli("export", run, "--format", "flag", "--out", tmp_path / "f.parquet"),
                   "FlagEmbedding reads only .json/.jsonl")
    one_line_error(cli("export", run, "--format", "flag", "--scores", "cross-encoder", "--out", tmp_path / "f.jsonl"),
                   "no cross-encoder scores", "--scores retrieval")
    one_line_error(cli("export", run, "--format", "triplet", "--prompt", "x", "--out", tmp_path / "t.jsonl"),
                   "--format flag")
    one_line_error(cli("export", run, "--format", "triplet", "--with-scores", "--scores", "cross-encoder",
                       "--out", tmp_path / "t.jsonl"), "--with-scores")
    (tmp_path / "file").write_text("x")
    one_line_error(cli("export", run, "--format", "triplet", "--out", tmp_path / "file" / "t.jsonl"),
                   "is not a directory")
    one_line_error(cli("export", run, "--format", "tevatron-ids", "--out", "-"), "--corpus-out")
    assert not (tmp_path / "f.jsonl").exists() and not (tmp_path / "t.jsonl").exists()


@pytest.mark.extra("bm25")
def test_report_errors(cli: Cli, run: Path, tmp_path: Path) -> None:
    one_line_error(cli("report", tmp_path), "negmine mine")
    one_line_error(cli("report", run, "--html", tmp_path), "is a directory")
    (tmp_path / "file").write_text("x")
    one_line_error(cli("report", run, "--html", tmp_path / "file" / "r.html"), "cannot write")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "report.json").write_text('{"truncated": ')
    one_line_error(cli("report", broken), str(broken))


@pytest.mark.parametrize(("name", "content", "needle"), [
    ("corpus.jsonl", '{"_id": NaN, "text": "x"}\n', "corpus.jsonl:1: field '_id' is NaN"),
    ("corpus.jsonl", '{"_id": "", "text": "x"}\n', "corpus.jsonl:1: field '_id' is empty"),
    ("queries.jsonl", '{"_id": "q1", "text": "bad \\udc80"}\n', "queries.jsonl:1: field 'text' has a lone surrogate"),
    ("qrels/train.tsv", "query-id\tcorpus-id\tscore\nq1\td1\tnan\n", "train.tsv:2: score 'nan' is not a finite"),
])
def test_bad_values_are_refused_at_load(cli: Cli, tmp_path: Path, fs: SimpleNamespace, name: str, content: str,
                                        needle: str) -> None:
    root = fs.write_beir(tmp_path / "ds", [{"_id": "d1", "text": "a"}, {"_id": "d2", "text": "b"}],
                         [{"_id": "q1", "text": "q"}], {"train": [("q1", "d1", 1)]})
    (root / name).write_text(content, encoding="utf-8")
    one_line_error(cli("mine", "--dataset", root, "--out", tmp_path / "out"), needle)
    assert not (tmp_path / "out").exists()


@pytest.mark.extra("bm25")
def test_a_bom_is_accepted(cli: Cli, tmp_path: Path, fs: SimpleNamespace) -> None:
    docs = [{"_id": f"d{i}", "text": f"document number {i} about topic {i % 3}"} for i in range(8)]
    root = fs.write_beir(tmp_path / "ds", docs, [{"_id": "q1", "text": "topic 1"}], {"train": [("q1", "d1", 1)]})
    for name in ("corpus.jsonl", "queries.jsonl", "qrels/train.tsv"):
        (root / name).write_bytes(b"\xef\xbb\xbf" + (root / name).read_bytes())
    res = cli("mine", "--dataset", root, "--num-negatives", "2", "--out", tmp_path / "out")
    assert res.code == 0, res


# -- the judge endpoint redirecting to another host ------------------------------------------------------
class Recorder:
    """A local HTTP server that records each request's path and Authorization header, answering
    with a redirect to ``location`` (or 500 when ``location`` is None)."""

    def __init__(self, location: str | None = None) -> None:
        self.seen: list[tuple[str, str | None]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.seen.append((self.path, self.headers.get("Authorization")))
                self.send_response(302 if outer.location else 500)
                if outer.location:
                    self.send_header("Location", outer.location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST

        self.location = location
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> Recorder:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NEGMINE_TEST_KEY", SECRET)
    yield


@pytest.mark.extra("bm25")
def test_judge_redirect_to_another_host_is_exit_2_and_the_key_stays_home(
        cli: Cli, no_proxy: None, sample_dir: Path, tmp_path: Path) -> None:
    with Recorder() as second, Recorder("placeholder") as first:
        first.location = f"http://{second.host}/v1/chat/completions?api_key=SECRET-Q"
        url = f"http://bob:SECRET-PW@{first.host}/v1?api_key=SECRET-Q"
        res = cli("-v", "mine", "--dataset", sample_dir, "--num-negatives", "2", "--range-max", "4",
                  "--llm-base-url", url, "--llm-model", "m", "--llm-api-key-env", "NEGMINE_TEST_KEY",
                  "--llm-retries", "0", "--out", tmp_path / "out")
    assert res.code == 2, res
    assert "Traceback" not in res.err
    errors = [ln for ln in res.err.splitlines() if ln.startswith("negmine: error:")]
    assert len(errors) == 1 and first.host in errors[0] and second.host in errors[0]
    assert "SECRET" not in res.err + res.out  # not the key, not the password, not the query key, even with -v
    assert first.seen and all(auth == f"Bearer {SECRET}" for _, auth in first.seen)
    assert second.seen == []


# -- progress bars ----------------------------------------------------------------------------------------
def run_with_stderr(argv: list[str], *, tty: bool, env_progress: str | None = None) -> tuple[int, str]:
    """Run the real ``negmine`` with stderr a pipe or a pseudo-terminal; return (code, stderr)."""
    quieting = ("NEGMINE_PROGRESS", "TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS",
                "TRANSFORMERS_VERBOSITY", "TRANSFORMERS_NO_ADVISORY_WARNINGS")
    env = {k: v for k, v in os.environ.items() if k not in quieting}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", COLUMNS="100")
    if env_progress is not None:
        env["NEGMINE_PROGRESS"] = env_progress
    if not tty:
        p = subprocess.run([str(NEGMINE), *argv], capture_output=True, text=True, env=env, timeout=300)
        return p.returncode, p.stderr
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a 0-column tty hides every bar
    proc = subprocess.Popen([str(NEGMINE), *argv], stdout=subprocess.DEVNULL, stderr=slave, env=env)
    os.close(slave)
    chunks: list[bytes] = []
    while True:
        ready, _, _ = select.select([master], [], [], 1.0)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    proc.wait(timeout=300)
    os.close(master)
    return proc.returncode, b"".join(chunks).decode("utf-8", "replace")


BAR = ("it/s", "%|", "Loading weights", "Batches", "Writing model shards", "Computing widget examples")


@pytest.mark.extra("st", "model")
def test_no_bars_when_stderr_is_not_a_terminal(tiny_beir: Path, tmp_path: Path) -> None:
    code, err = run_with_stderr(["mine", "--dataset", str(tiny_beir), "--retriever", "dense", "--num-negatives", "2",
                                 "--out", str(tmp_path / "out")], tty=False)
    assert code == 0, err
    assert not [b for b in BAR if b in err], err  # neither negmine's nor transformers' bars
    assert "LOAD REPORT" not in err


@pytest.mark.extra("st", "model")
@pytest.mark.slow
def test_bars_on_a_terminal_and_none_with_quiet(tiny_beir: Path, tmp_path: Path) -> None:
    argv = ["mine", "--dataset", str(tiny_beir), "--retriever", "dense", "--num-negatives", "2"]
    code, err = run_with_stderr([*argv, "--out", str(tmp_path / "a")], tty=True)
    assert code == 0 and any(b in err for b in BAR), err
    code, err = run_with_stderr(["-q", *argv, "--out", str(tmp_path / "b")], tty=True)
    assert code == 0 and not [b for b in BAR if b in err], err
    code, err = run_with_stderr([*argv, "--out", str(tmp_path / "c")], tty=True, env_progress="0")
    assert code == 0 and not [b for b in BAR if b in err], err


@pytest.mark.parametrize(("value", "expected"), [("0", False), ("off", False), ("no", False), ("1", True),
                                                 ("yes", True), ("on", True)])
def test_negmine_progress_values(monkeypatch: pytest.MonkeyPatch, value: str, expected: bool) -> None:
    from negmine.core import progress as _progress

    monkeypatch.setenv("NEGMINE_PROGRESS", value)
    assert _progress.enabled() is expected
    _progress.set_enabled(not expected)  # -q (or a forced setting) wins over the variable
    try:
        assert _progress.enabled() is (not expected)
    finally:
        _progress.set_enabled(None)


@pytest.mark.extra("st")
def test_quiet_third_party_sets_the_libraries_switches(monkeypatch: pytest.MonkeyPatch) -> None:
    from negmine.core import progress as _progress

    names = ("HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS", "TQDM_DISABLE",
             "TRANSFORMERS_VERBOSITY", "TRANSFORMERS_NO_ADVISORY_WARNINGS")
    for name in names:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NEGMINE_PROGRESS", "1")
    assert _progress.quiet_third_party(verbose=True) == {}
    assert not [n for n in names if n in os.environ]  # bars on and -v: nothing touched
    monkeypatch.setenv("NEGMINE_PROGRESS", "0")
    previous = _progress.quiet_third_party()
    try:
        assert all(os.environ[n] for n in names)
        from huggingface_hub.utils import are_progress_bars_disabled

        assert are_progress_bars_disabled()
    finally:
        _progress.restore_environment(previous)
    assert not [n for n in names if n in os.environ]


def test_the_cli_leaves_the_environment_as_it_found_it(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    monkeypatch.setenv("NEGMINE_PROGRESS", "0")
    assert cli("list", "retrievers").code == 0
    assert "TQDM_DISABLE" not in os.environ


@pytest.mark.parametrize(("exc", "expected"), [
    (PermissionError(13, "Permission denied", "/data/corpus.jsonl"), "/data/corpus.jsonl: permission denied; check"),
    (OSError(28, "No space left on device", "/out/mined.parquet"), "/out/mined.parquet: no space left on the device"),
    (OSError(30, "Read-only file system", "/ro/x"), "/ro/x: read-only file system"),
    (MemoryError(), "out of memory; lower --num-negatives"),
    (OSError(5, "Input/output error"), None),  # not something the user fixes: exit 1
    (ConnectionResetError(104, "reset"), None),
])
def test_environment_problems_are_exit_2_with_the_fix(exc: BaseException, expected: str | None) -> None:
    from negmine.cli.main import _environment_fix

    fix = _environment_fix(exc)
    assert (fix is None) if expected is None else (fix is not None and fix.startswith(expected)), fix


@pytest.mark.extra("bm25", "train")
@pytest.mark.slow
def test_training_notices_follow_the_same_switch(run: Path, tmp_path: Path) -> None:
    """transformers' "Loading weights"/"Writing model shards" and sentence-transformers'
    "Computing widget examples" appear only when bars are on."""
    from tests.unit.tiny_models import WORDS, build_tiny_sentence_transformer

    model = build_tiny_sentence_transformer(tmp_path / "st", WORDS)
    notices = ("Loading weights", "Writing model shards", "Computing widget examples")
    argv = ["train", str(run), "--model", str(model), "--max-steps", "1", "--batch-size", "4"]
    code, err = run_with_stderr([*argv, "--out", str(tmp_path / "quiet")], tty=False)
    assert code == 0 and not [n for n in notices if n in err], err
    code, err = run_with_stderr([*argv, "--out", str(tmp_path / "loud")], tty=False, env_progress="1")
    assert code == 0 and all(n in err for n in notices), err
