"""Mining options as one flat mapping (the CLI flags and the TOML config share these keys), and
the factory that turns them into data and components."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomllib

from negmine import filters as F
from negmine import registry
from negmine.errors import ConfigError
from negmine.types import MiningData

#: every option, its default, and its type (for TOML validation)
DEFAULTS: dict[str, Any] = {
    "dataset": None, "split": "train", "exclude_splits": None, "corpus": None, "queries": None, "qrels": None,
    "pairs": None, "drop_unknown": False, "min_relevance": 1.0,
    "retriever": "bm25", "members": "bm25,dense", "union_score": None, "run": None,
    "model": "sentence-transformers/all-MiniLM-L6-v2", "query_prompt": None,
    "document_prompt": None, "max_length": None, "batch_size": 32, "faiss_index": "flat", "hnsw_m": 32,
    "ef_search": 256, "query_block": 256, "doc_block": 8192, "bm25_k1": 1.5, "bm25_b": 0.75, "bm25_stemmer": None,
    "sampler": "top", "num_negatives": 5, "temperature": 0.05, "simans_a": 0.5, "simans_b": 0.0,
    "range_min": 0, "range_max": None, "depth": None, "max_score": None, "min_score": None,
    "absolute_margin": None, "relative_margin": None, "near_duplicates": True,
    "cross_encoder": None, "ce_max_score": None, "ce_margin": None, "ce_activation": "sigmoid",
    "llm_base_url": None, "llm_model": None, "llm_verify_model": None, "llm_api_key_env": "OPENAI_API_KEY",
    "llm_batch_size": 10, "llm_concurrency": 4, "llm_timeout": 60.0, "llm_retries": 3, "llm_drop": "better",
    "llm_max_flagged": 7,
    "judge_action": "drop",
    "target_fnr": None, "seed": 0, "cache_dir": None, "out": None, "overwrite": False, "format": "parquet",
}
_TYPES: dict[str, tuple[type, ...]] = {
    "drop_unknown": (bool,), "overwrite": (bool,), "near_duplicates": (bool,),
    "min_relevance": (int, float), "max_length": (int,), "batch_size": (int,), "hnsw_m": (int,),
    "ef_search": (int,), "query_block": (int,), "doc_block": (int,), "bm25_k1": (int, float),
    "bm25_b": (int, float), "num_negatives": (int,), "temperature": (int, float), "simans_a": (int, float),
    "simans_b": (int, float), "range_min": (int,), "range_max": (int,), "depth": (int,),
    "max_score": (int, float), "min_score": (int, float), "absolute_margin": (int, float),
    "relative_margin": (int, float), "target_fnr": (int, float), "seed": (int,), "exclude_splits": (str, list),
    "members": (str, list), "ce_max_score": (int, float), "ce_margin": (int, float), "llm_batch_size": (int,),
    "llm_concurrency": (int,), "llm_timeout": (int, float), "llm_retries": (int,), "llm_max_flagged": (int,),
}


#: options limited to a few values (argparse checks the flags; this checks the TOML)
CHOICES: dict[str, tuple[str, ...]] = {
    "format": ("parquet", "jsonl"), "faiss_index": ("flat", "hnsw"), "ce_activation": ("sigmoid", "none"),
    "llm_drop": ("better", "relevant"), "judge_action": ("drop", "relabel"),
}


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a TOML config (keys as the CLI flags, with ``-`` or ``_``; an optional ``[mine]``
    table) and validate names and types."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found; check --config")
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML ({exc}); fix the file") from None
    if isinstance(raw.get("mine"), dict):
        raw = {**{k: v for k, v in raw.items() if k != "mine"}, **raw["mine"]}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        k = key.replace("-", "_")
        if k not in DEFAULTS:
            raise ConfigError(f"{p}: unknown option {key!r}; known options: {', '.join(sorted(DEFAULTS))}")
        types = _TYPES.get(k, (str,))
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            want = " or ".join(t.__name__ for t in types)
            raise ConfigError(f"{p}: option {key!r} must be {want}, got {value!r}")
        if k in CHOICES and value not in CHOICES[k]:
            raise ConfigError(f"{p}: option {key!r} must be one of {', '.join(CHOICES[k])}, got {value!r}")
        out[k] = value
    return out


def merge(config: dict[str, Any], flags: dict[str, Any]) -> dict[str, Any]:
    """Defaults, overridden by the config file, overridden by flags given on the command line."""
    return {**DEFAULTS, **config, **{k: v for k, v in flags.items() if k in DEFAULTS}}


def load_data(o: dict[str, Any]) -> MiningData:
    from negmine.data import load_beir, load_files, load_pairs

    given = [k for k in ("dataset", "pairs") if o[k]] + (["corpus/queries/qrels"] if o["qrels"] else [])
    if len(given) != 1:
        raise ConfigError(
            "pass exactly one input: --dataset DIR, or --corpus F --queries F --qrels F, or --pairs F [--corpus F]"
            + (f" (got {', '.join(given)})" if given else "")
        )
    excl = o["exclude_splits"]
    if isinstance(excl, str):
        excl = [s for s in excl.split(",") if s]
    if o["dataset"]:
        return load_beir(o["dataset"], o["split"], exclude_splits=excl, drop_unknown=o["drop_unknown"],
                         min_relevance=o["min_relevance"])
    if o["pairs"]:
        return load_pairs(o["pairs"], corpus=o["corpus"])
    if not (o["corpus"] and o["queries"]):
        raise ConfigError("--qrels needs --corpus and --queries too")
    return load_files(o["corpus"], o["queries"], o["qrels"], exclude_qrels=excl or (),
                      drop_unknown=o["drop_unknown"], min_relevance=o["min_relevance"])


def build_retriever(o: dict[str, Any]) -> Any:
    name = o["retriever"]
    registry.retrievers.get(name)  # unknown names fail here, listing the known ones
    if name in ("union", "hybrid"):
        members = o["members"].split(",") if isinstance(o["members"], str) else list(o["members"])
        if any(m in ("union", "hybrid") for m in members):
            raise ConfigError("--members cannot contain union or hybrid; list plain retrievers, e.g. bm25,dense")
        built = [build_retriever({**o, "retriever": m.strip()}) for m in members if m.strip()]
        if name == "hybrid":
            return registry.retrievers.create(name, members=built)
        return registry.retrievers.create(name, members=built, score=o["union_score"])
    if name == "precomputed":
        if not o["run"]:
            raise ConfigError("--retriever precomputed needs --run FILE (a TREC run or an npz)")
        return registry.retrievers.create(name, path=o["run"])
    if name == "bm25":
        return registry.retrievers.create(name, k1=float(o["bm25_k1"]), b=float(o["bm25_b"]),
                                          stemmer=o["bm25_stemmer"])
    common = {"model": o["model"], "query_prompt": o["query_prompt"], "document_prompt": o["document_prompt"],
              "batch_size": o["batch_size"], "max_length": o["max_length"]}
    if name == "dense":
        return registry.retrievers.create(name, query_block=o["query_block"], doc_block=o["doc_block"], **common)
    return registry.retrievers.create(name, index=o["faiss_index"], m=o["hnsw_m"], ef_search=o["ef_search"],
                                      **common)


def build_filters(o: dict[str, Any]) -> list[Any]:
    out: list[Any] = []
    if o["range_min"] or o["range_max"] is not None:
        out.append(F.RankWindow(int(o["range_min"]), o["range_max"]))
    if o["absolute_margin"] is not None:
        out.append(F.AbsoluteMargin(o["absolute_margin"]))
    if o["relative_margin"] is not None:
        out.append(F.RelativeMargin(o["relative_margin"]))
    if o["max_score"] is not None:
        out.append(F.MaxScore(o["max_score"]))
    if o["min_score"] is not None:
        out.append(F.MinScore(o["min_score"]))
    if (o["ce_max_score"] is not None or o["ce_margin"] is not None) and not o["cross_encoder"]:
        raise ConfigError("--ce-max-score/--ce-margin need --cross-encoder NAME_OR_PATH")
    if o["ce_max_score"] is not None:
        out.append(F.CrossEncoderMaxScore(o["ce_max_score"]))
    if o["ce_margin"] is not None:
        out.append(F.CrossEncoderMargin(o["ce_margin"]))
    if o["llm_model"]:
        if o["judge_action"] not in ("drop", "relabel"):
            raise ConfigError(f"--judge-action must be drop or relabel, got {o['judge_action']!r}")
        out.append(F.JudgeFilter(drop=o["llm_drop"], max_flagged=o["llm_max_flagged"],
                                 relabel=o["judge_action"] == "relabel"))
    return out


def build_scorers(o: dict[str, Any]) -> list[Any]:
    """Scorers named by the options: ``--cross-encoder`` and/or ``--llm-model``."""
    out: list[Any] = []
    if o["cross_encoder"]:
        out.append(registry.scorers.create("cross-encoder", model=o["cross_encoder"], batch_size=o["batch_size"],
                                           activation=o["ce_activation"], cache_dir=o["cache_dir"]))
    if o["llm_model"]:
        if not o["llm_base_url"]:
            raise ConfigError("--llm-model needs --llm-base-url (an OpenAI-compatible endpoint, e.g. http://localhost:8000/v1)")
        out.append(registry.scorers.create(
            "llm-judge", base_url=o["llm_base_url"], model=o["llm_model"], verify_model=o["llm_verify_model"],
            api_key_env=o["llm_api_key_env"], batch_size=o["llm_batch_size"], max_concurrency=o["llm_concurrency"],
            timeout_s=float(o["llm_timeout"]), max_retries=o["llm_retries"], cache_dir=o["cache_dir"],
        ))
    return out


def build_sampler(o: dict[str, Any]) -> Any:
    name = o["sampler"]
    registry.samplers.get(name)
    if name == "softmax":
        return registry.samplers.create(name, temperature=float(o["temperature"]))
    if name == "simans":
        return registry.samplers.create(name, a=float(o["simans_a"]), b=float(o["simans_b"]))
    return registry.samplers.create(name)
