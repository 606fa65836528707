"""Options are declared once (registry entries and ``options.RUN_OPTIONS``) and the CLI flags,
the TOML keys and the checks of Python arguments derive from that declaration: a value refused in
one place is refused in all three (issue "Trustworthy in daily use", item 4)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pytest

import negmine
from negmine.cli.mine import add_arguments, resolve_options
from negmine.core.errors import ConfigError
from negmine.text import registry
from negmine.text.options import DEFAULTS, OPTIONS, build_retriever, build_sampler, load_config, load_data


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    add_arguments(p)
    return p


def test_every_declared_option_is_a_flag_and_a_toml_key(tmp_path: Path) -> None:
    flags = {a.dest for a in parser()._actions}
    for fam in (registry.retrievers, registry.filters, registry.samplers, registry.scorers):
        for o in fam.options():
            assert o.key in flags, o.key
            assert o.key in DEFAULTS and DEFAULTS[o.key] == OPTIONS[o.key].default
    cfg = tmp_path / "c.toml"
    cfg.write_text("bm25-k1 = 1.2\nsimans_a = 2.0\n[mine]\nnum-negatives = 3\n")
    assert load_config(cfg) == {"bm25_k1": 1.2, "simans_a": 2.0, "num_negatives": 3}


BAD = [
    ("bm25_k1", math.nan, "finite"), ("bm25_k1", -1.0, ">= 0"), ("bm25_b", 1.5, "<= 1"),
    ("simans_a", math.inf, "finite"), ("simans_a", -1.0, ">= 0"), ("temperature", -0.1, "> 0"),
    ("llm_max_flagged", -1, ">= 0"), ("num_negatives", 0, ">= 1"), ("target_fnr", 1.0, "< 1"),
    ("num_negatives", 10**12, "<= 100000"),  # once a MemoryError deep inside the sampler
    ("relative_margin", math.nan, "finite"), ("range_min", -2, ">= 0"), ("query_shard", 0, ">= 1"),
]


@pytest.mark.parametrize(("key", "value", "message"), BAD)
def test_bad_numbers_are_refused_on_the_command_line(key: str, value: float, message: str) -> None:
    flag = OPTIONS[key].flag
    args = parser().parse_args(["--out", "x", flag, str(value)])
    with pytest.raises(ConfigError, match=message) as exc:
        resolve_options(args)
    assert flag in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize(("key", "value", "message"), [b for b in BAD if math.isfinite(b[1])])
def test_bad_numbers_are_refused_in_toml(tmp_path: Path, key: str, value: float, message: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"{key.replace('_', '-')} = {value!r}\n")
    with pytest.raises(ConfigError, match=message) as exc:
        load_config(cfg)
    assert str(cfg) in str(exc.value) and repr(key.replace("_", "-")) in str(exc.value)


def test_nan_in_toml_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("bm25-k1 = nan\n")
    with pytest.raises(ConfigError, match="finite"):
        load_config(cfg)


def test_bad_numbers_are_refused_through_the_python_api(make_data) -> None:
    data = make_data(["red apple", "green pear", "blue sky"], ["apple"], {"q0": ["d0"]})
    with pytest.raises(ConfigError, match="finite"):
        negmine.mine(data, negmine.text.retrievers.BM25(k1=math.nan))
    with pytest.raises(ConfigError, match="b must be >= 0 and <= 1"):
        negmine.mine(data, negmine.text.retrievers.BM25(b=2.0))
    with pytest.raises(ConfigError):
        build_retriever({**DEFAULTS, "bm25_b": -0.5})
    with pytest.raises(ConfigError):
        build_sampler({**DEFAULTS, "sampler": "softmax", "temperature": math.inf})


def test_toml_types_and_lists(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('exclude-splits = ["train", "dev"]\n')
    assert load_config(cfg) == {"exclude_splits": "train,dev"}
    cfg.write_text('retriever = ["bm25"]\n')
    with pytest.raises(ConfigError, match="must be a string"):
        load_config(cfg)
    cfg.write_text('\ufeffseed = 3\n')  # a UTF-8 byte-order mark is accepted
    assert load_config(cfg) == {"seed": 3}


def test_conflicting_inputs_are_a_usage_error() -> None:
    with pytest.raises(ConfigError, match="--dataset cannot be combined with --corpus"):
        load_data({**DEFAULTS, "dataset": "d", "corpus": "c.jsonl"})
    with pytest.raises(ConfigError, match="--pairs cannot be combined"):
        load_data({**DEFAULTS, "pairs": "p.jsonl", "qrels": "q.tsv"})


def test_a_window_beyond_the_corpus_is_an_error(make_data) -> None:
    data = make_data(["red apple", "green pear", "blue sky"], ["apple"], {"q0": ["d0"]})
    with pytest.raises(ConfigError, match="range_min 5 but the corpus has only 3"):
        negmine.mine(data, negmine.text.retrievers.BM25(), filters=[negmine.text.filters.RankWindow(5, 10)])


def test_a_cache_dir_that_is_a_file_is_refused_before_any_work(make_data, tmp_path: Path) -> None:
    data = make_data(["red apple", "green pear", "blue sky"], ["apple"], {"q0": ["d0"]})
    f = tmp_path / "cache"
    f.write_text("x")
    with pytest.raises(ConfigError, match="the cache directory is a file"):
        negmine.mine(data, negmine.text.retrievers.BM25(), cache_dir=f)


def test_doc_shard_needs_the_ray_engine(make_data) -> None:
    from negmine.text.options import mine_from_options

    with pytest.raises(ConfigError, match="--doc-shard applies to --engine ray"):
        mine_from_options({"doc_shard": 100}, data=make_data(["red apple", "blue sky"], ["apple"], {"q0": ["d0"]}))


def test_a_device_is_checked_here_for_the_local_engine_and_on_the_workers_for_ray() -> None:
    from negmine.text.encoders.base import available_devices

    if "cuda" in available_devices():
        pytest.skip("this machine has a GPU: the absent-device error cannot be shown")
    o = {**DEFAULTS, "retriever": "dense", "device": "cuda"}
    with pytest.raises(ConfigError, match="'cuda' is not available on this machine"):
        build_retriever(o)
    assert build_retriever({**o, "engine": "ray"}).config()["device"] == "cuda"  # the workers check it
    with pytest.raises(ConfigError, match="unknown device"):
        build_retriever({**o, "engine": "ray", "device": "tpu"})  # the name is still checked here


def test_the_detector_filter_is_refused_on_pair_rows(make_data) -> None:
    data = make_data(["red apple", "green pear", "blue sky"], ["apple"], {"q0": ["d0", "d1"]})
    with pytest.raises(ConfigError, match="--fn-max-prob cannot be combined with --positive-reference pair"):
        negmine.mine(data, negmine.text.retrievers.BM25(), filters=[negmine.text.filters.FnMaxProb(0.1)],
                     positive_reference="pair")
