"""Fixtures of the integration tests: the bundled sample, small BEIR directories written on the
fly, the CLI run in-process or as a real process, and one shared mining run per session."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

os.environ.setdefault("NEGMINE_PROGRESS", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "src" / "negmine" / "sample"
SCIFACT = REPO.parent / "shared" / "datasets" / "scifact"
NEGMINE_BIN = Path(sys.executable).with_name("negmine")


# ------------------------------------------------------------------------------------- plain data
def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def read_qrels(path: Path) -> list[tuple[str, str, int]]:
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    return [(a, b, int(c)) for a, b, c in (ln.split("\t") for ln in lines if ln.strip())]


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_qrels(path: Path, rows: Iterable[tuple[str, str, int]], header: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    head = "query-id\tcorpus-id\tscore\n" if header else ""
    path.write_text(head + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in rows), encoding="utf-8")
    return path


def write_beir(root: Path, corpus: list[dict[str, Any]], queries: list[dict[str, Any]],
               splits: dict[str, list[tuple[str, str, int]]]) -> Path:
    """A BEIR directory: corpus.jsonl, queries.jsonl, qrels/<split>.tsv."""
    write_jsonl(root / "corpus.jsonl", corpus)
    write_jsonl(root / "queries.jsonl", queries)
    for split, rows in splits.items():
        write_qrels(root / "qrels" / f"{split}.tsv", rows)
    return root


def full_text(doc: dict[str, Any]) -> str:
    """How negmine (and the sentence-transformers formats) join a BEIR document: title + ' ' + text."""
    return f"{doc['title']} {doc['text']}".strip() if doc.get("title") else doc["text"]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (relative path -> bytes), to prove nothing changed."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="session")
def fs() -> SimpleNamespace:
    """The helpers above, for test modules (which cannot import this conftest by name reliably:
    several ``conftest`` modules exist in the test tree)."""
    return SimpleNamespace(read_jsonl=read_jsonl, read_qrels=read_qrels, write_jsonl=write_jsonl,
                           write_qrels=write_qrels, write_beir=write_beir, full_text=full_text, sha256=sha256,
                           snapshot=snapshot, sample=SAMPLE, scifact=SCIFACT)


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    assert (SAMPLE / "corpus.jsonl").is_file(), "the bundled sample is part of the package"
    return SAMPLE


@pytest.fixture(scope="session")
def sample() -> dict[str, Any]:
    """The bundled sample as plain Python: corpus and queries by id, qrels rows per split."""
    corpus = {d["_id"]: d for d in read_jsonl(SAMPLE / "corpus.jsonl")}
    queries = {q["_id"]: q["text"] for q in read_jsonl(SAMPLE / "queries.jsonl")}
    qrels = {s: read_qrels(SAMPLE / "qrels" / f"{s}.tsv") for s in ("train", "test")}
    return {"corpus": corpus, "queries": queries, "qrels": qrels}


@pytest.fixture(scope="session")
def tiny_beir(tmp_path_factory: pytest.TempPathFactory, sample: dict[str, Any]) -> Path:
    """A dense-friendly slice of the sample: 6 train queries, their positives plus other documents
    (24 in all), texts cut to 300 characters so the real MiniLM encodes it in seconds."""
    rows = sample["qrels"]["train"]
    qids = list(dict.fromkeys(q for q, _, _ in rows))[:6]
    pos = [r for r in rows if r[0] in qids]
    doc_ids = list(dict.fromkeys(d for _, d, _ in pos))
    doc_ids += [d for d in sample["corpus"] if d not in doc_ids][: 24 - len(doc_ids)]
    corpus = [{"_id": d, "title": sample["corpus"][d]["title"], "text": sample["corpus"][d]["text"][:300]}
              for d in doc_ids]
    queries = [{"_id": q, "text": sample["queries"][q]} for q in qids]
    return write_beir(tmp_path_factory.mktemp("tiny_beir"), corpus, queries, {"train": pos})


# ------------------------------------------------------------------------------------------- CLI
class CliResult:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code = code
        self.out = out
        self.err = err

    def __repr__(self) -> str:
        return f"CliResult(code={self.code}, out={self.out[-500:]!r}, err={self.err[-1500:]!r})"


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run ``negmine ARGS`` in-process through ``negmine.cli.main.main``; ``SystemExit`` from
    argparse becomes its exit code."""
    from negmine.cli.main import main

    def run(*argv: str | Path) -> CliResult:
        capsys.readouterr()
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run


@pytest.fixture(scope="session")
def negmine_exe() -> Callable[..., CliResult]:
    """Run the installed ``negmine`` console script as a real process."""
    assert NEGMINE_BIN.is_file(), f"{NEGMINE_BIN}: the console script is installed with the package"
    env = {**os.environ, "NEGMINE_PROGRESS": "0", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}

    def run(*argv: str | Path, cwd: Path | None = None) -> CliResult:
        p = subprocess.run([str(NEGMINE_BIN), *map(str, argv)], capture_output=True, text=True, env=env,
                           cwd=cwd, timeout=300)
        return CliResult(p.returncode, p.stdout, p.stderr)

    return run


@pytest.fixture(scope="session")
def bm25_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One BM25 mining run of the bundled sample (4 negatives from the top 5 raw ranks, so some
    queries fall short), shared by the export and report tests. Tests must not modify it."""
    from negmine.cli.main import main

    out = tmp_path_factory.mktemp("bm25_run") / "run"
    code = main(["mine", "--dataset", str(SAMPLE), "--num-negatives", "4", "--range-max", "5",
                 "--out", str(out)])
    assert code == 0
    return out
