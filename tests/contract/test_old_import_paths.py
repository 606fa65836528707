"""The import paths from before the core/text/rec/kg layout still work, as the same objects."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import negmine

# (old dotted path of a module or attribute, new one): documented in the README / docs before the layout
DOCUMENTED = [
    ("negmine.retrievers.BM25", "negmine.text.retrievers.BM25"),
    ("negmine.filters.expand_pairs", "negmine.text.filters.expand_pairs"),
    ("negmine.samplers.uniform", "negmine.core.keys.uniform"),
    ("negmine.compare.permutation_test", "negmine.core.stats.permutation_test"),
    ("negmine.audit.wilson", "negmine.core.stats.wilson"),
    ("negmine.detector.prior_ratio", "negmine.text.detector.prior_ratio"),
    ("negmine.calibrate.default_policy", "negmine.text.calibrate.default_policy"),
    ("negmine.calibrate.calibrate", "negmine.text.calibrate.calibrate"),
    ("negmine.holdout.Holdout", "negmine.text.holdout.Holdout"),
    ("negmine.textcol", "negmine.text.textcol"),
    ("negmine.registry.Option", "negmine.core.registry.Option"),
    ("negmine.compat.mine_hard_negatives", "negmine.text.compat.mine_hard_negatives"),
    ("negmine.st.load_run", "negmine.text.st.load_run"),
    ("negmine.rundir.RunDir", "negmine.core.rundir.RunDir"),
    ("negmine.compare_run.Runner", "negmine.text.compare.run.Runner"),
    ("negmine.writers._atomic.write_atomic", "negmine.core.atomic.write_atomic"),
    ("negmine.report.html_page", "negmine.text.report.html.page"),
    ("negmine.errors.ConfigError", "negmine.core.errors.ConfigError"),
]


def resolve(path: str) -> object:
    """A module, or the attribute of the longest importable module prefix."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(path)


@pytest.mark.parametrize(("old", "new"), DOCUMENTED)
def test_an_old_path_is_the_new_object(old: str, new: str) -> None:
    assert resolve(old) is resolve(new)


def test_a_submodule_under_an_old_path_is_never_a_second_copy() -> None:
    from negmine.text.retrievers.dense import Dense

    old = importlib.import_module("negmine.retrievers.dense")
    assert old.Dense is Dense
    assert old is importlib.import_module("negmine.text.retrievers.dense")
    assert old.__spec__ is not None and old.__spec__.name == "negmine.text.retrievers.dense"
    assert sys.modules["negmine.retrievers.dense"] is old


def test_public_names_of_the_package() -> None:
    for name in ("mine", "load_beir", "load_files", "load_pairs", "from_pairs", "mine_hard_negatives", "retrievers",
                 "filters", "samplers", "encoders", "MiningResult", "MiningData", "Qrels", "ConfigError"):
        assert hasattr(negmine, name), name
    assert negmine.MiningResult is resolve("negmine.text.result.MiningResult")
    with pytest.raises(AttributeError):
        negmine.nothing_here  # noqa: B018
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("negmine.retrievers.nothing_here")


def test_python_dash_m_negmine() -> None:
    out = subprocess.run([sys.executable, "-m", "negmine", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"negmine {negmine.__version__}"
