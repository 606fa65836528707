"""Mining options as one flat mapping (the CLI flags, the TOML config and the Python dictionaries of
``compare`` share these keys), and the factory that turns them into data and components.

Every option is declared once as an :class:`~negmine.text.registry.Option`: the run's own options
below, and each component's options in its registry entry (:mod:`negmine.text.registry`). The CLI
flags, the TOML validation, the defaults and ``negmine list --options`` all derive from these
declarations, so they cannot drift apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomllib

from negmine.core.errors import ConfigError
from negmine.core.registry import Option
from negmine.text import filters as F
from negmine.text import registry
from negmine.text.types import MiningData

#: the run's own options, by group (components' options live in their registry entries)
RUN_OPTIONS: dict[str, tuple[Option, ...]] = {
    "input": (
        Option("dataset", str, None, "BEIR directory (corpus.jsonl, queries.jsonl, qrels/)"),
        Option("split", str, "train", "qrels split to mine"),
        Option("exclude_splits", str, None,
               "comma-separated splits whose positives are never negatives (default: every split)",
               multiple=True),
        Option("corpus", str, None, "corpus jsonl/parquet (_id, title, text)"),
        Option("queries", str, None, "queries jsonl/parquet (_id, text)"),
        Option("qrels", str, None, "qrels TSV with header (query-id, corpus-id, score)"),
        Option("pairs", str, None, "jsonl/parquet with anchor/positive text columns"),
        Option("drop_unknown", bool, False, "skip qrels naming unknown ids (counted in the report)"),
        Option("min_relevance", float, 1.0, "lowest grade that is a positive"),
    ),
    "retrieval": (
        Option("retriever", str, "bm25", "bm25 | dense | faiss | union | hybrid | precomputed"),
        Option("members", str, "bm25,dense", "retrievers of union/hybrid, comma-separated", multiple=True),
        Option("depth", int, None, "candidates per query (default: range_max, or 100 + positives)", low=1),
        Option("cache_dir", str, None, "embedding and score cache directory"),
    ),
    "sampling": (
        Option("sampler", str, "top", "top | random | softmax | simans"),
        Option("num_negatives", int, 5, "negatives per query", low=1, high=100_000),
        Option("seed", int, 0, "random seed"),
        Option("target_fnr", float, None,
               "calibrate the filters to this hidden-positive false-negative rate", low=0, high=1, high_open=True),
        Option("min_coverage", float, None,
               "with --target-fnr: least share of queries that must get all their negatives", low=0, high=1),
    ),
    "engine": (
        Option("engine", str, "local", "where the stages run: local (this process) or ray (a Ray cluster)",
               choices=("local", "ray")),
        Option("ray_address", str, None, "Ray cluster to join: auto, ray://HOST:10001 (default: start a local one)"),
        Option("workers", int, None, "Ray workers (actors/tasks in flight; default: the cluster's CPUs)", low=1),
        Option("gpus_per_worker", float, 0.0, "GPUs per Ray worker (0: CPU workers)", low=0),
        Option("doc_shard", int, None, "documents per search task with --engine ray: exact dense search split "
               "by document shards, merged into the same top-k (dense only; rounded up to a multiple of "
               "--doc-block; default: the whole corpus in each task)", low=1),
    ),
    "output": (
        Option("out", str, None, "output directory (required)"),
        Option("overwrite", bool, False, "replace a different run in --out"),
        Option("format", str, "parquet", "mined file format", choices=("parquet", "jsonl")),
        Option("query_shard", int, 4096, "queries per retrieval shard (the unit a killed run resumes from)",
               low=1),
    ),
}


def _families() -> list[registry.Registry]:
    return [registry.retrievers, registry.scorers, registry.filters, registry.samplers]


def all_options() -> dict[str, Option]:
    """Every option by key: the run's, then each component family's (first declaration wins)."""
    out: dict[str, Option] = {}
    for group in RUN_OPTIONS.values():
        for o in group:
            out.setdefault(o.key, o)
    for fam in _families():
        for o in fam.options():
            out.setdefault(o.key, o)
    return out


OPTIONS: dict[str, Option] = all_options()
#: every option and its default
DEFAULTS: dict[str, Any] = {k: o.default for k, o in OPTIONS.items()}
#: options limited to a few values
CHOICES: dict[str, tuple[str, ...]] = {k: o.choices for k, o in OPTIONS.items() if o.choices}


def check(values: dict[str, Any], where: str = "") -> dict[str, Any]:
    """Validate and convert every known option of ``values`` (numbers finite and in range,
    choices, types); unknown keys are an error naming the known ones."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        k = key.replace("-", "_")
        if k not in OPTIONS:
            raise ConfigError(f"{where + ': ' if where else ''}unknown option {key!r}; known options: "
                              f"{', '.join(sorted(OPTIONS))}")
        opt = OPTIONS[k]
        out[k] = opt.check(value, where or opt.flag, name=repr(key) if where else None)
    return out


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a TOML config (keys as the CLI flags, with ``-`` or ``_``; an optional ``[mine]``
    table) and validate names, types and ranges."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found; check --config")
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{p}:{line}: not UTF-8 text (byte {exc.object[exc.start:exc.start + 1]!r}); save the "
                          "config as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot be read ({exc.strerror or exc}); check --config") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML ({exc}); fix the file") from None
    if isinstance(raw.get("mine"), dict):
        raw = {**{k: v for k, v in raw.items() if k != "mine"}, **raw["mine"]}
    return check(raw, str(p))


def merge(config: dict[str, Any], flags: dict[str, Any]) -> dict[str, Any]:
    """Defaults, overridden by the config file, overridden by flags given on the command line."""
    return {**DEFAULTS, **config, **{k: v for k, v in flags.items() if k in DEFAULTS}}


def _split_list(value: Any) -> list[str]:
    items = value.split(",") if isinstance(value, str) else list(value or [])
    return [s.strip() for s in items if s and s.strip()]


def load_data(o: dict[str, Any]) -> MiningData:
    from negmine.text.data import load_beir, load_files, load_pairs

    files = [k for k in ("corpus", "queries", "qrels") if o.get(k)]
    given = [k for k in ("dataset", "pairs") if o.get(k)] + (["corpus/queries/qrels"] if o.get("qrels") else [])
    if o.get("dataset") and files:
        raise ConfigError(f"--dataset cannot be combined with --{', --'.join(files)}: the dataset directory "
                          "already holds them; pass either --dataset DIR or the files")
    if o.get("pairs") and (o.get("queries") or o.get("qrels")):
        raise ConfigError("--pairs cannot be combined with --queries/--qrels: pairs carry their own queries and "
                          "positives; pass either --pairs F [--corpus F] or --corpus F --queries F --qrels F")
    if len(given) != 1:
        raise ConfigError(
            "pass exactly one input: --dataset DIR, or --corpus F --queries F --qrels F, or --pairs F [--corpus F]"
            + (f" (got {', '.join(given)})" if given else "")
        )
    excl = o.get("exclude_splits")
    if isinstance(excl, str):
        excl = _split_list(excl)
    if o.get("dataset"):
        return load_beir(o["dataset"], o["split"], exclude_splits=excl, drop_unknown=o["drop_unknown"],
                         min_relevance=o["min_relevance"])
    if o.get("pairs"):
        return load_pairs(o["pairs"], corpus=o.get("corpus"))
    if not (o.get("corpus") and o.get("queries")):
        raise ConfigError("--qrels needs --corpus and --queries too")
    return load_files(o["corpus"], o["queries"], o["qrels"], exclude_qrels=excl or (),
                      drop_unknown=o["drop_unknown"], min_relevance=o["min_relevance"])


def build_retriever(o: dict[str, Any]) -> Any:
    """The retriever the options name. With ``--engine ray`` a ``--device`` is checked on the
    workers (by the engine), not on this driver, which may be a head node without a GPU."""
    if o.get("engine") == "ray":
        from negmine.text.encoders.base import device_checked_elsewhere

        with device_checked_elsewhere():
            return _build_retriever(o)
    return _build_retriever(o)


def _build_retriever(o: dict[str, Any]) -> Any:
    name = o["retriever"]
    entry = registry.retrievers.get(name)  # unknown names fail here, listing the known ones
    if name in ("union", "hybrid"):
        members = _split_list(o["members"])
        if any(m in ("union", "hybrid") for m in members):
            raise ConfigError("--members cannot contain union or hybrid; list plain retrievers, e.g. bm25,dense")
        if not members:
            raise ConfigError(f"--retriever {name} needs --members, e.g. bm25,dense")
        built = [_build_retriever({**o, "retriever": m}) for m in members]
        return entry.build(o, members=built)
    if name == "precomputed" and not o.get("run"):
        raise ConfigError("--retriever precomputed needs --run FILE (a TREC run or an npz)")
    return entry.build(o)


#: filters enabled by setting their option, in the order they run (after exclude-positives)
OPTION_FILTERS: tuple[tuple[str, str], ...] = (
    ("absolute_margin", "absolute-margin"),
    ("relative_margin", "relative-margin"),
    ("max_score", "max-score"),
    ("min_score", "min-score"),
    ("ce_max_score", "ce-max-score"),
    ("ce_margin", "ce-margin"),
    ("fn_max_prob", "fn-max-prob"),
)


def build_filters(o: dict[str, Any]) -> list[Any]:
    """The user's filters, in order (``ExcludePositives`` is added by the pipeline)."""
    out: list[Any] = []
    if o.get("range_min") or o.get("range_max") is not None:
        out.append(registry.filters.get("rank-window").build(o))
    for key, name in OPTION_FILTERS:
        if o.get(key) is not None:
            out.append(registry.filters.get(name).build(o))
    if (o.get("ce_max_score") is not None or o.get("ce_margin") is not None) and not o.get("cross_encoder"):
        raise ConfigError("--ce-max-score/--ce-margin need --cross-encoder NAME_OR_PATH")
    if o.get("llm_model"):
        spec = {x.key: x for x in registry.filters.get("llm-judge").options}
        out.append(F.JudgeFilter(drop=spec["llm_drop"].check(o.get("llm_drop", "better")),
                                 max_flagged=spec["llm_max_flagged"].check(o.get("llm_max_flagged", 7)),
                                 relabel=spec["judge_action"].check(o.get("judge_action", "drop")) == "relabel"))
    return out


def build_scorers(o: dict[str, Any]) -> list[Any]:
    """Scorers named by the options: ``--cross-encoder`` and/or ``--llm-model``."""
    out: list[Any] = []
    if o.get("cross_encoder"):
        out.append(registry.scorers.get("cross-encoder").build(o, cache_dir=None))
    if o.get("llm_model"):
        if not o.get("llm_base_url"):
            raise ConfigError("--llm-model needs --llm-base-url (an OpenAI-compatible endpoint, "
                              "e.g. http://localhost:8000/v1)")
        out.append(registry.scorers.get("llm-judge").build(o, cache_dir=None))
    return out


def build_sampler(o: dict[str, Any]) -> Any:
    return registry.samplers.get(o["sampler"]).build(o)


#: run options that apply only with some choice: key -> (predicate on the options, what it needs)
CONDITIONAL_RUN_OPTIONS: dict[str, tuple[Any, str]] = {
    "members": (lambda o: o.get("retriever") in ("union", "hybrid"), "--retriever union or hybrid"),
    "ray_address": (lambda o: o.get("engine") == "ray", "--engine ray"),
    "workers": (lambda o: o.get("engine") == "ray", "--engine ray"),
    "gpus_per_worker": (lambda o: o.get("engine") == "ray", "--engine ray"),
    "doc_shard": (lambda o: o.get("engine") == "ray", "--engine ray"),
    "min_coverage": (lambda o: o.get("target_fnr") is not None, "--target-fnr"),
}
#: component options that every run uses whatever it chose: the positives' reference score also
#: shapes the rows (pair) and the samplers' s+ (SimANS, --sampler-scale query)
ALWAYS_APPLY = frozenset({"positive_reference", "near_duplicates"})


def chosen_components(o: dict[str, Any]) -> list[tuple[str, registry.Entry]]:
    """``(family, entry)`` of every component the options choose: the retriever (and the members
    of union / hybrid), the sampler, the filters their options enable (exclude-positives always;
    the relative margin with --target-fnr, which calibrates it) and the scorers."""
    o = {**DEFAULTS, **o}
    out: list[tuple[str, registry.Entry]] = []
    names = [o["retriever"]]
    if o["retriever"] in ("union", "hybrid"):
        names += [m for m in _split_list(o["members"]) if m in registry.retrievers.entries]
    out += [("retriever", registry.retrievers.get(n)) for n in dict.fromkeys(names)]
    out.append(("sampler", registry.samplers.get(o["sampler"])))
    filters = ["exclude-positives"]
    if o.get("range_min") or o.get("range_max") is not None:
        filters.append("rank-window")
    filters += [name for key, name in OPTION_FILTERS if o.get(key) is not None]
    if o.get("target_fnr") is not None:
        filters.append("relative-margin")
    if o.get("llm_model"):
        filters.append("llm-judge")
    out += [("filter", registry.filters.get(n)) for n in dict.fromkeys(filters)]
    if o.get("cross_encoder"):
        out.append(("scorer", registry.scorers.get("cross-encoder")))
    if o.get("llm_model"):
        out.append(("scorer", registry.scorers.get("llm-judge")))
    return out


def check_applicable(given: Any, o: dict[str, Any], where: str = "") -> None:
    """Refuse an option the user gave (``given``: its keys) that none of the chosen components
    declares (:func:`chosen_components`), e.g. ``--device`` with ``--retriever bm25``: a one-line
    :class:`ConfigError` naming the option, the components chosen and those that take it. The
    run's own options always apply, except those of :data:`CONDITIONAL_RUN_OPTIONS`. ``where``
    names a config file (its keys are then named as written there)."""
    o = {**DEFAULTS, **o}
    chosen = chosen_components(o)
    declared = {opt.key for _, e in chosen for opt in e.options}
    run_keys = {opt.key for group in RUN_OPTIONS.values() for opt in group}
    for key in given:
        k = key.replace("-", "_")
        name = f"{where}: option {key!r}" if where else OPTIONS[k].flag if k in OPTIONS else repr(key)
        if k in CONDITIONAL_RUN_OPTIONS:
            applies, needs = CONDITIONAL_RUN_OPTIONS[k]
            if not applies(o):
                raise ConfigError(f"{name} applies only with {needs}; drop it or add {needs}")
            continue
        if k in run_keys or k in declared or k in ALWAYS_APPLY or k not in OPTIONS:
            continue
        takers = sorted({f"{fam} {e.name}" for fam, fam_reg in (("retriever", registry.retrievers),
                                                              ("filter", registry.filters),
                                                              ("sampler", registry.samplers),
                                                              ("scorer", registry.scorers))
                         for e in fam_reg.entries.values() if any(x.key == k for x in e.options)})
        what = ", ".join(f"{fam} {e.name}" for fam, e in chosen if fam in ("retriever", "sampler", "scorer"))
        raise ConfigError(f"{name} does not apply to the chosen components ({what}): no chosen component "
                          f"takes it; drop it, or choose a component that does ({', '.join(takers)})")


def recorded(o: dict[str, Any]) -> dict[str, Any]:
    """The options as a run's manifest records them: secrets in URLs redacted (user-info and
    key/token-like query parameters), ``overwrite`` left out (it does not change the result)."""
    from negmine.text.scorers.llm_judge import redact_url

    return {k: (redact_url(v) if k.endswith("_url") and isinstance(v, str) else v)
            for k, v in o.items() if k != "overwrite"}


def plan_from_options(o: dict[str, Any], data: MiningData, retriever: Any, scorers: list[Any] | None = None,
                      policy: dict[str, Any] | None = None) -> Any:
    """The :class:`negmine.text.pipeline.Plan` the options ask for (validated; no work done)."""
    from negmine.text.pipeline import plan

    o = {**DEFAULTS, **o}
    return plan(data, retriever, build_filters(o), build_sampler(o), o["num_negatives"], o["seed"],
                depth=o["depth"], near_duplicates=o["near_duplicates"],
                positive_reference=o["positive_reference"] or "min", policy=policy,
                scorers=scorers if scorers is not None else build_scorers(o),
                target_fnr=o["target_fnr"], min_coverage=o["min_coverage"])


#: options that choose the mining policy; when none is given, ``negmine mine`` uses the default policy
POLICY_KEYS = frozenset(
    {"sampler", "target_fnr", "min_coverage", "positive_reference", "range_min", "range_max", "depth"}
    | {o.key for o in registry.filters.options()} | {o.key for o in registry.samplers.options()}
) - {"near_duplicates"}


def apply_default_policy(o: dict[str, Any], data: MiningData) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(options, policy record)`` of the default policy (:func:`negmine.text.calibrate.default_policy`):
    calibrated to its target when the data has enough queries with several positives, else the
    documented preset (and the report says the false-negative rate was not measured)."""
    from negmine.text.calibrate import default_policy

    d = default_policy(data)
    if d["calibrate"]:
        return {**o, "target_fnr": d["target_fnr"], "min_coverage": d["min_coverage"]}, d
    return {**o, **d["options"]}, d


def mine_from_options(o: dict[str, Any], *, data: MiningData | None = None, retriever: Any = None,
                      scorers: list[Any] | None = None, candidates: Any = None, out: str | Path | None = None,
                      extra_manifest: dict[str, Any] | None = None, policy: dict[str, Any] | None = None,
                      given: Any = None) -> Any:
    """Mine as the flat options ``o`` say (defaults filled in): the one way the CLI, ``compare``
    and ``train --remine-every`` turn options into :func:`negmine.mine` — data, retriever,
    filters, sampler, scorers and calibration alike. ``data``, ``retriever``, ``scorers`` and
    ``candidates`` may be passed in when the caller already built them (sweeps share them).
    ``given``: the keys the user set (e.g. ``o``'s own keys), each refused when no chosen
    component takes it (:func:`check_applicable`); callers passing merged options leave it out."""
    from negmine.text.pipeline import mine

    o = {**DEFAULTS, **o}
    if given is not None:
        check_applicable(given, o)
    engine = None
    if o["doc_shard"] is not None and o["engine"] != "ray":
        raise ConfigError("--doc-shard applies to --engine ray; drop it or add --engine ray")
    if o["engine"] != "local":
        from negmine.text.engines import get_engine

        engine = get_engine(o["engine"], address=o["ray_address"], workers=o["workers"],
                            gpus_per_worker=o["gpus_per_worker"], doc_shard=o["doc_shard"])
    retriever = retriever if retriever is not None else build_retriever(o)
    filters, sampler = build_filters(o), build_sampler(o)
    scorers = scorers if scorers is not None else build_scorers(o)
    data = data if data is not None else load_data(o)
    return mine(data, retriever, filters, sampler, o["num_negatives"], o["seed"], depth=o["depth"],
                near_duplicates=o["near_duplicates"], cache_dir=o["cache_dir"], scorers=scorers,
                target_fnr=o["target_fnr"], min_coverage=o["min_coverage"], candidates=candidates, out=out,
                overwrite=bool(o["overwrite"]), fmt=o["format"], extra_manifest=extra_manifest,
                query_shard=o["query_shard"], engine=engine, positive_reference=o["positive_reference"] or "min",
                policy=policy)
