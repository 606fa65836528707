"""The sweep file of :func:`negmine.text.compare.compare`: its settings, its validation and the options
each setting's steps run with (the format is described in :mod:`negmine.text.compare`)."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from negmine.core.errors import ConfigError
from negmine.text.options import DEFAULTS, OPTIONS, POLICY_KEYS

#: the metric the baseline difference and the test are computed on
PRIMARY = "ndcg@10"

SWEEP_KEYS: dict[str, tuple[type, ...]] = {
    "out": (str,), "dataset": (str,), "train_split": (str,), "eval_split": (str,), "baseline": (str,),
    "seeds": (list,), "audit_hide_fraction": (int, float),
}
#: mining options that the sweep sets itself
NOT_MINE_KEYS = ("dataset", "split", "corpus", "queries", "qrels", "pairs", "out", "overwrite", "seed")
MINE_KEYS = tuple(k for k in DEFAULTS if k not in NOT_MINE_KEYS)
EVAL_KEYS: dict[str, tuple[type, ...]] = {
    "max_length": (int,), "batch_size": (int,), "query_prompt": (str,), "document_prompt": (str,),
}
UNTRAINED_KEYS = ("name", "train", "model", "retriever")
TABLES = ("sweep", "mine", "train", "evaluate", "setting")


@dataclass
class Setting:
    """One row of the sweep: its own mining options (over ``[mine]``) and training options (over
    ``[train]``); ``train`` false evaluates a model as it is."""

    name: str
    slug: str
    train: bool = True
    mine: dict[str, Any] = field(default_factory=dict)
    train_options: dict[str, Any] = field(default_factory=dict)
    #: ``policy = "default"``: mine with ``negmine mine``'s default policy (calibrated or the
    #: preset, decided on the train split as the CLI decides it: :func:`negmine.text.calibrate.default_policy`)
    default_policy: bool = False


@dataclass
class Sweep:
    """A validated sweep file (see the module docstring)."""

    path: Path
    text: str
    out: Path
    dataset: str
    settings: list[Setting]
    baseline: str
    seeds: list[int] = field(default_factory=lambda: [0])
    train_split: str = "train"
    eval_split: str = "test"
    audit_hide_fraction: float | None = None
    mine: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    evaluate: dict[str, Any] = field(default_factory=dict)
    out_overridden: bool = False

    def starting_model(self) -> str:
        return str(self.train.get("model") or self.mine.get("model") or DEFAULTS["model"])

    def mine_options(self, s: Setting, seed: int, out: Path | None = None) -> dict[str, Any]:
        """Every ``negmine mine`` option of setting ``s`` at ``seed``."""
        o = {**DEFAULTS, "exclude_splits": [self.train_split], **self.mine, **s.mine}
        if "model" not in self.mine and "model" not in s.mine:
            o["model"] = self.starting_model()
        o.update(dataset=self.dataset, split=self.train_split, seed=seed, out=str(out) if out else None)
        return o

    def train_options(self, s: Setting, seed: int) -> dict[str, Any]:
        """The :func:`negmine.text.train.train` options of setting ``s`` at ``seed``."""
        return {**self.train, "model": self.starting_model(), **s.train_options, "seed": seed}

    def eval_options(self) -> dict[str, Any]:
        from negmine.text.train.trainer import TrainConfig

        default = TrainConfig()
        return {
            "max_length": self.evaluate.get("max_length", self.train.get("max_seq_length", default.max_seq_length)),
            "batch_size": self.evaluate.get("batch_size", 32),
            "query_prompt": self.evaluate.get("query_prompt", self.train.get("query_prompt")),
            "document_prompt": self.evaluate.get("document_prompt", self.train.get("document_prompt")),
        }

    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def command(self) -> str:
        cmd = f"negmine compare {shlex.quote(str(self.path))}"
        return cmd + (f" --out {shlex.quote(str(self.out))}" if self.out_overridden else "")


def slugify(name: str) -> str:
    """``"dense rm 0.05"`` -> ``"dense-rm-0-05"``."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _type_error(where: str, key: str, value: Any, types: tuple[type, ...]) -> ConfigError:
    want = " or ".join("float" if t is float else t.__name__ for t in types)
    return ConfigError(f"{where}: {key!r} must be {want}, got {value!r}")


def _check_type(where: str, key: str, value: Any, types: tuple[type, ...]) -> None:
    if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
        raise _type_error(where, key, value, types)


def _unknown(where: str, key: str, known: Sequence[str]) -> ConfigError:
    return ConfigError(f"{where}: unknown key {key!r}; known keys: {', '.join(sorted(known))}")


def _check_mine(where: str, table: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in table.items():
        k = key.replace("-", "_")
        if k not in MINE_KEYS:
            hint = " (set by the sweep: use [sweep] dataset/train_split/seeds/out)" if k in NOT_MINE_KEYS else ""
            raise ConfigError(str(_unknown(where, key, MINE_KEYS)) + hint)
        out[k] = OPTIONS[k].check(value, where, name=repr(key))
    return out


def _train_types() -> dict[str, tuple[type, ...]]:
    from negmine.text.train.trainer import TrainConfig

    names = {"str": str, "int": int, "float": float, "bool": bool}
    out: dict[str, tuple[type, ...]] = {}
    for f in dataclasses.fields(TrainConfig):
        parts = [p.strip() for p in str(f.type).split("|") if p.strip() != "None"]
        types = tuple(names[p] for p in parts if p in names)
        out[f.name] = (*types, int) if float in types and int not in types else types
    return out


def _check_train(where: str, table: dict[str, Any]) -> dict[str, Any]:
    types = _train_types()
    known = [k for k in types if k != "seed"]
    out: dict[str, Any] = {}
    for key, value in table.items():
        k = key.replace("-", "_")
        if k == "seed":
            raise ConfigError(f"{where}: 'seed' is set by the sweep; use [sweep] seeds = [0, 1, ...]")
        if k not in known:
            raise _unknown(where, key, known)
        _check_type(where, key, value, types[k])
        out[k] = value
    return out


def load_sweep(path: str | Path, *, out: str | Path | None = None) -> Sweep:
    """Read and validate a sweep file (see the module docstring); nothing is loaded or run.

    Parameters
    ----------
    path
        The TOML file.
    out
        Output directory; overrides ``[sweep] out``.

    Raises
    ------
    ConfigError
        A missing file, invalid TOML, an unknown table or key (named with the known ones), a
        value of the wrong type, duplicate setting names, an unknown baseline or invalid
        training options.
    """
    p = Path(path)
    text, raw = _read_toml(p)
    sweep = _check_sweep_table(p, raw, out)
    seeds = sweep.get("seeds", [0])
    fraction = sweep.get("audit_hide_fraction")

    mine = _check_mine(f"{p} [mine]", raw.get("mine", {}))
    train = _check_train(f"{p} [train]", raw.get("train", {}))
    evaluate = dict(raw.get("evaluate", {}))
    for key, value in evaluate.items():
        if key not in EVAL_KEYS:
            raise _unknown(f"{p} [evaluate]", key, list(EVAL_KEYS))
        _check_type(f"{p} [evaluate]", key, value, EVAL_KEYS[key])

    raw_settings = raw.get("setting", [])
    if not isinstance(raw_settings, list) or not raw_settings:
        raise ConfigError(f"{p}: no [[setting]]; add at least one, e.g. [[setting]] name = \"bm25 top\"")
    settings = [_parse_setting(p, i, s) for i, s in enumerate(raw_settings)]
    names = [s.name for s in settings]
    slugs = [s.slug for s in settings]
    for i, s in enumerate(settings):
        if s.name in names[:i] or s.slug in slugs[:i]:
            raise ConfigError(f"{p}: setting name {s.name!r} is used twice (or names the same directory "
                              f"{s.slug!r} as another); give every setting its own name")
    shared_policy = sorted(set(mine) & POLICY_KEYS)
    for s in settings:
        if s.default_policy and shared_policy:
            raise ConfigError(f"{p} [[setting]] {s.name!r}: policy = \"default\" chooses the mining policy itself, "
                              f"but [mine] sets {', '.join(shared_policy)}; move them into the settings that use them")
    baseline = sweep.get("baseline") or next((s.name for s in settings if not s.train), settings[0].name)
    if baseline not in names:
        raise ConfigError(f"{p} [sweep]: baseline {baseline!r} is not a setting; settings: {', '.join(names)}")
    result = Sweep(
        path=p, text=text, out=Path(out if out is not None else sweep["out"]), dataset=str(sweep["dataset"]),
        settings=settings, baseline=baseline, seeds=list(seeds),
        train_split=sweep.get("train_split", "train"), eval_split=sweep.get("eval_split", "test"),
        audit_hide_fraction=float(fraction) if fraction is not None else None,
        mine=mine, train=train, evaluate=evaluate, out_overridden=out is not None,
    )
    _validate_components(result)
    return result


def _read_toml(p: Path) -> tuple[str, dict[str, Any]]:
    """The text and the parsed tables of a sweep file (one-line ConfigErrors for every failure)."""
    import tomllib

    if not p.is_file():
        raise ConfigError(f"{p}: sweep file not found; pass the path of a TOML file")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{p}:{line}: not UTF-8 text (byte {exc.object[exc.start:exc.start + 1]!r}); save the "
                          "sweep file as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot be read ({exc.strerror or exc}); check the path and its "
                          "permissions") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML ({exc}); fix the file") from None
    for key in raw:
        if key not in TABLES:
            raise ConfigError(f"{p}: unknown table {key!r}; known tables: {', '.join(TABLES)}")
    for key in ("sweep", "mine", "train", "evaluate"):
        if not isinstance(raw.get(key, {}), dict):
            raise ConfigError(f"{p}: {key!r} must be a table ([{key}])")
    return text, raw


def _check_sweep_table(p: Path, raw: dict[str, Any], out: str | Path | None) -> dict[str, Any]:
    """The ``[sweep]`` table, every key known and typed, the required ones present."""
    sweep = dict(raw.get("sweep", {}))
    for key, value in sweep.items():
        if key not in SWEEP_KEYS:
            raise _unknown(f"{p} [sweep]", key, list(SWEEP_KEYS))
        _check_type(f"{p} [sweep]", key, value, SWEEP_KEYS[key])
    if "dataset" not in sweep:
        raise ConfigError(f"{p} [sweep]: 'dataset' is required: a BEIR directory with the train and eval splits")
    if out is None and "out" not in sweep:
        raise ConfigError(f"{p} [sweep]: 'out' is required (or pass --out DIR)")
    seeds = sweep.get("seeds", [0])
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) for s in seeds) or len(set(seeds)) < len(seeds):
        raise ConfigError(f"{p} [sweep]: 'seeds' must be a non-empty list of distinct integers, got {seeds!r}")
    fraction = sweep.get("audit_hide_fraction")
    if fraction is not None and not 0 < fraction < 1:
        raise ConfigError(f"{p} [sweep]: 'audit_hide_fraction' must be in (0, 1), got {fraction!r}")
    return sweep


def _parse_setting(p: Path, i: int, raw: Any) -> Setting:
    where = f"{p} [[setting]] #{i + 1}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a table")
    name = raw.get("name")
    if not isinstance(name, str) or not slugify(name):
        raise ConfigError(f"{where}: 'name' is required: a string with a letter or digit, e.g. name = \"bm25 top\"")
    where = f"{p} [[setting]] {name!r}"
    flag = raw.get("train", True)
    if not isinstance(flag, (bool, dict)):
        raise ConfigError(f"{where}: 'train' must be true, false or a table of training options, got {flag!r}")
    rest = {k: v for k, v in raw.items() if k not in ("name", "train")}
    if flag is False:
        for key in rest:
            if key not in UNTRAINED_KEYS:
                raise ConfigError(f"{where}: unknown key {key!r} for an untrained setting (train = false); "
                                  f"known keys: {', '.join(UNTRAINED_KEYS)}")
        mine = _check_mine(where, rest)
        if mine.get("retriever", "dense") not in ("dense", "bm25"):
            raise ConfigError(f"{where}: an untrained setting evaluates retriever 'dense' (a model) or 'bm25', "
                              f"got {mine['retriever']!r}")
        return Setting(name, slugify(name), False, mine, {})
    train_options = _check_train(f"{where} train", flag) if isinstance(flag, dict) else {}
    policy = rest.pop("policy", None)
    if policy is not None and policy != "default":
        raise ConfigError(f"{where}: 'policy' can only be \"default\" (negmine mine's default policy), got {policy!r}; "
                          "set explicit options (sampler, relative_margin, target_fnr, ...) instead")
    mine = _check_mine(where, rest)
    if policy is not None:
        given = sorted(set(mine) & POLICY_KEYS)
        if given:
            raise ConfigError(f"{where}: policy = \"default\" chooses the mining policy itself; "
                              f"drop {', '.join(given)}")
    return Setting(name, slugify(name), True, mine, train_options, default_policy=policy is not None)


def _validate_components(sweep: Sweep) -> None:
    """Build every component and training config once, so bad values fail before any work."""
    from negmine.text.encoders.st import resolve_model
    from negmine.text.options import build_filters, build_retriever, build_sampler, check_applicable
    from negmine.text.train.trainer import TrainConfig

    for s in sweep.settings:
        where = f"{sweep.path} [[setting]] {s.name!r}"
        if not s.train:
            try:
                if s.mine.get("retriever", "dense") == "dense":
                    resolve_model(str(s.mine.get("model") or sweep.starting_model()))
            except ConfigError as exc:
                raise ConfigError(f"{where}: {exc}") from None
            continue
        o = sweep.mine_options(s, sweep.seeds[0])
        try:
            resolve_model(str(sweep.train_options(s, sweep.seeds[0])["model"]))  # a missing path fails here
            if o["retriever"] in ("dense", "faiss", "union", "hybrid"):
                resolve_model(str(o["model"]))
            build_retriever(o)
            build_filters(o)
            build_sampler(o)
            if o["target_fnr"] is not None and o["relative_margin"] is not None:
                raise ConfigError("target_fnr chooses the relative margin itself; drop relative_margin")
            if o["target_fnr"] is not None and (o["cross_encoder"] or o["llm_model"]):
                raise ConfigError("target_fnr cannot be combined with cross_encoder or llm_model in a sweep")
            if not isinstance(o["num_negatives"], int) or o["num_negatives"] < 1:
                raise ConfigError(f"num_negatives must be >= 1, got {o['num_negatives']!r}")
            TrainConfig(**sweep.train_options(s, sweep.seeds[0])).validate()
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        check_applicable(s.mine, o, where)  # e.g. device with retriever bm25: refused
    _check_shared_applicable(sweep)


def _check_shared_applicable(sweep: Sweep) -> None:
    """A ``[mine]`` key must apply to at least one trained setting (``model`` is also the model
    training starts from, so it always applies)."""
    from negmine.text.options import check_applicable

    trained = [s for s in sweep.settings if s.train]
    for key in sweep.mine:
        if key == "model" or not trained:
            continue
        errors = []
        for s in trained:
            try:
                check_applicable([key], sweep.mine_options(s, sweep.seeds[0]), f"{sweep.path} [mine]")
            except ConfigError as exc:
                errors.append(str(exc))
        if len(errors) == len(trained):
            raise ConfigError(errors[0].replace("the chosen components", "the chosen components of every setting"))
