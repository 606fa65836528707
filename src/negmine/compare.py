"""``compare(sweep.toml)``: run a grid of mining settings through mine → train → evaluate and
write one table (``compare.md``, ``compare.json``) and a plot (``compare.png``).

The sweep file
--------------
TOML with four tables of shared options and one ``[[setting]]`` array::

    [sweep]
    out = "runs/scifact"                     # output directory (--out overrides it)
    dataset = "../shared/datasets/scifact"   # a BEIR directory (required)
    train_split = "train"                    # qrels split mined and trained on ("train")
    eval_split = "test"                      # qrels split evaluated on ("test")
    baseline = "zero-shot"                   # the setting the others are tested against
                                             # (default: the first untrained setting, else the first)
    seeds = [0]                              # each trained setting runs once per seed ([0])
    audit_hide_fraction = 0.5                # optional: hidden-positive FNR of each mining

    [mine]        # mining options of every setting: any key of ``negmine mine`` (options.DEFAULTS)
    retriever = "dense"                      # except the inputs (dataset, split, corpus, queries,
    num_negatives = 1                        # qrels, pairs), out, overwrite and seed
    cache_dir = "runs/cache"

    [train]       # training options of every setting: any field of negmine.train.TrainConfig
    model = "sentence-transformers/all-MiniLM-L6-v2"   # the starting model (except seed)
    loss = "mnrl"
    epochs = 1
    max_seq_length = 128

    [evaluate]    # evaluation options shared by every row: max_length, batch_size,
    batch_size = 64                          # query_prompt, document_prompt

    [[setting]]
    name = "zero-shot"
    train = false                            # evaluate the starting model only

    [[setting]]
    name = "bm25 top"
    retriever = "bm25"                       # any [mine] key, for this setting only

    [[setting]]
    name = "dense rm 0.05"
    relative_margin = 0.05
    train = { loss = "gist" }                # training options for this setting only

Rules:

- Unknown tables or keys are a :class:`~negmine.errors.ConfigError` naming the key and the
  known ones. Relative paths are relative to the working directory, as for ``negmine mine``.
- A setting with ``train = false`` mines and trains nothing: it evaluates a model as it is. It
  accepts only ``name``, ``train``, ``model`` (default: the starting model) and ``retriever``
  (``"dense"``, the default, or ``"bm25"`` to evaluate BM25 itself). It is seed-independent and
  evaluated once.
- The starting model is ``[train] model``; it is also the mining model when ``[mine]`` names
  none (and vice versa), so one ``model`` key sets both.
- Mining never sees the evaluation labels: ``exclude_splits`` defaults to the train split only
  (``negmine mine`` itself excludes the positives of every split).
- Every row is evaluated with the same options: ``[evaluate] max_length`` defaults to
  ``[train] max_seq_length`` (128) and the prompts to the ``[train]`` prompts.

Layout and resumability
-----------------------
A trained setting writes ``OUT/<slug>/seed-<s>/`` with ``mined/`` (``negmine mine`` output),
``model/`` (``negmine train`` output), ``metrics.json`` (means and per-query scores),
``audit.json`` (with ``audit_hide_fraction``) and ``compare-state.json``, which records for each
step the key of its inputs (the mining run id; the mined manifest's hash and the training
options; the model record's hash and the evaluation options) and the hash of what it wrote. A
step whose output exists with the recorded hash and whose key matches is *reused*, not re-run,
so a re-run skips what is done and redoes exactly what changed downstream. An untrained setting
writes ``OUT/<slug>/metrics.json`` and ``OUT/<slug>/compare-state.json``.

Sharing: data is loaded once; retrievers are kept by their configuration, so settings with the
same retriever share its BM25 index and dense embeddings, and candidates are retrieved once per
(retriever, depth); dense embeddings of the starting model go through ``[mine] cache_dir``
(mining and the untrained rows). A trained model is always evaluated *without* the embedding
cache: it is encoded once anyway, and a model retrained into the same directory must never meet
entries of its predecessor (the cache key fingerprints the model files by name, size and content
samples, so it would change too; not caching makes that independent of the fingerprint).

Significance
------------
The difference in nDCG@10 to the baseline is tested with a paired two-sided randomisation
(sign-flip) test over the evaluation queries, per-query scores averaged over seeds
(:func:`permutation_test`): exact enumeration up to 16 non-zero differences, else 10,000 seeded
random sign vectors.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from negmine._progress import progress
from negmine.errors import ConfigError, DataError
from negmine.evaluate import METRICS
from negmine.options import DEFAULTS, OPTIONS
from negmine.types import Candidates, MiningData, RunContext

log = logging.getLogger(__name__)

__all__ = ["CompareResult", "Setting", "Sweep", "compare", "load_sweep", "permutation_test"]

#: the metric the baseline difference and the test are computed on
PRIMARY = "ndcg@10"
N_PERMUTATIONS = 10_000
EXACT_MAX = 16
STATE = "compare-state.json"

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


# ------------------------------------------------------------------------------------- config
@dataclass
class Setting:
    """One row of the sweep: its own mining options (over ``[mine]``) and training options (over
    ``[train]``); ``train`` false evaluates a model as it is."""

    name: str
    slug: str
    train: bool = True
    mine: dict[str, Any] = field(default_factory=dict)
    train_options: dict[str, Any] = field(default_factory=dict)


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
        """The :func:`negmine.train.train` options of setting ``s`` at ``seed``."""
        return {**self.train, "model": self.starting_model(), **s.train_options, "seed": seed}

    def eval_options(self) -> dict[str, Any]:
        from negmine.train.trainer import TrainConfig

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
    from negmine.train.trainer import TrainConfig

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
    import tomllib

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: sweep file not found; pass the path of a TOML file")
    text = p.read_text(encoding="utf-8")
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
    return Setting(name, slugify(name), True, _check_mine(where, rest), train_options)


def _validate_components(sweep: Sweep) -> None:
    """Build every component and training config once, so bad values fail before any work."""
    from negmine.encoders.st import resolve_model
    from negmine.options import build_filters, build_retriever, build_sampler
    from negmine.train.trainer import TrainConfig

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


# --------------------------------------------------------------------------------- statistics
def permutation_test(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, *,
                     n_permutations: int = N_PERMUTATIONS, seed: int = 0, exact_max: int = EXACT_MAX) -> float:
    """Two-sided p-value of a paired randomisation (sign-flip) test of ``mean(a - b) = 0``.

    Under the null hypothesis each per-query difference ``d_i = a_i - b_i`` is as likely to have
    had the other sign, so the p-value is the share of the ``2^n`` sign assignments ``s`` with
    ``|Σ s_i d_i| >= |Σ d_i|`` (the observed one included). Queries with ``d_i = 0`` do not
    change under a flip and are left out. With at most ``exact_max`` non-zero differences every
    assignment is enumerated; otherwise ``n_permutations`` random ones are drawn from a
    generator seeded with ``seed`` and ``p = (hits + 1) / (n_permutations + 1)``.

    Parameters
    ----------
    a, b
        ``float[n]`` per-query scores of two systems on the same queries, in the same order.

    Examples
    --------
    >>> permutation_test([0.5, 0.7], [0.5, 0.7])          # no difference
    1.0
    >>> permutation_test([1.0] * 12, [0.0] * 12)           # all 12 better: 2 of 2^12 as extreme
    0.00048828125
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"a and b must be 1-d and of the same length, got shapes {x.shape} and {y.shape}")
    d = x - y
    d = d[d != 0]
    n = len(d)
    if n == 0:
        return 1.0
    observed = abs(float(d.sum()))
    tol = 1e-9 * float(np.abs(d).sum())  # float noise must not turn a tie into a miss
    if n <= exact_max:
        signs = 1.0 - 2.0 * ((np.arange(2**n)[:, None] >> np.arange(n)[None, :]) & 1)
        return float(np.mean(np.abs(signs @ d) >= observed - tol))
    rng = np.random.default_rng(seed)
    hits = 0
    chunk = max(1, 2_000_000 // n)
    for start in range(0, n_permutations, chunk):
        m = min(chunk, n_permutations - start)
        signs = 1.0 - 2.0 * rng.integers(0, 2, size=(m, n))
        hits += int((np.abs(signs @ d) >= observed - tol).sum())
    return (hits + 1) / (n_permutations + 1)


# ------------------------------------------------------------------------------------- running
@dataclass
class CompareResult:
    """The table (``rows``, one per setting), every run with its steps (``runs``: status ``"done"``
    or ``"reused"``, seconds, paths), and the files written."""

    out: Path
    rows: list[dict[str, Any]]
    runs: list[dict[str, Any]]
    files: dict[str, Path]
    summary: dict[str, Any]
    markdown: str

    @property
    def all_reused(self) -> bool:
        """Whether every step of every run was reused (nothing was computed)."""
        return all(all(r["reused"].values()) for r in self.runs)


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:24]


def _file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_json(path: Path) -> dict[str, Any]:
    try:
        out = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: unreadable ({exc.__class__.__name__}); delete it to recompute the step") from None
    if not isinstance(out, dict):
        raise DataError(f"{path}: not a JSON object; delete it to recompute the step")
    return out


class _State:
    """``compare-state.json`` of one run directory: per step, the key of its inputs, the hash of
    its output file and the seconds it took when it was computed."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / STATE
        self.steps: dict[str, Any] = _read_json(self.path).get("steps", {}) if self.path.is_file() else {}

    def fresh(self, step: str, key: str, output: Path) -> dict[str, Any] | None:
        entry = self.steps.get(step)
        if not entry or entry.get("key") != key or not output.is_file():
            return None
        return entry if _file_sha(output) == entry.get("output_sha256") else None

    def record(self, step: str, key: str, output: Path, seconds: float) -> dict[str, Any]:
        from negmine.writers._atomic import write_json

        entry = {"key": key, "output": output.name, "output_sha256": _file_sha(output), "seconds": round(seconds, 4),
                 "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        self.steps[step] = entry
        write_json(self.path, {"steps": self.steps})
        return entry


class _Runner:
    """Runs the steps, sharing data, retrievers, candidates and scorers between settings."""

    def __init__(self, sweep: Sweep) -> None:
        self.sweep = sweep
        self.data_: dict[str, MiningData] = {}
        self.retrievers_: dict[str, Any] = {}
        self.candidates_: dict[tuple[str, str, int], Candidates] = {}
        self.scorers_: dict[str, Any] = {}
        self.eval_data_: MiningData | None = None

    # shared resources -------------------------------------------------------------------
    def data(self, o: dict[str, Any]) -> tuple[str, MiningData]:
        from negmine.options import load_data

        key = _digest({k: o[k] for k in ("dataset", "split", "exclude_splits", "drop_unknown", "min_relevance")})
        if key not in self.data_:
            self.data_[key] = load_data(o)
        return key, self.data_[key]

    def eval_data(self) -> MiningData:
        if self.eval_data_ is None:
            from negmine.data import load_beir

            self.eval_data_ = load_beir(self.sweep.dataset, self.sweep.eval_split, exclude_splits=[])
        return self.eval_data_

    def retriever(self, o: dict[str, Any]) -> tuple[str, Any]:
        from negmine.options import build_retriever

        built = build_retriever(o)
        key = json.dumps(built.config(), sort_keys=True, default=str)
        return key, self.retrievers_.setdefault(key, built)

    def scorers(self, o: dict[str, Any]) -> list[Any]:
        from negmine.options import build_scorers

        out = []
        for s in build_scorers(o):
            out.append(self.scorers_.setdefault(json.dumps(s.config(), sort_keys=True, default=str), s))
        return out

    def candidates(self, rkey: str, retriever: Any, dkey: str, data: MiningData, k: int,
                   cache_dir: Any) -> tuple[Candidates, bool]:
        """``(candidates, shared)``: retrieved once per (retriever, data, depth)."""
        from negmine.pipeline import retrieve

        key = (rkey, dkey, k)
        if key in self.candidates_:
            return self.candidates_[key], True
        ctx = RunContext(cache_dir=str(cache_dir) if cache_dir else None)
        cand = retrieve(data, retriever, k, ctx)
        self.candidates_[key] = cand
        return cand, False

    # steps ------------------------------------------------------------------------------
    def mine(self, s: Setting, seed: int, run_dir: Path, state: _State) -> dict[str, Any]:
        from negmine.options import mine_from_options, plan_from_options, recorded

        mined_dir = run_dir / "mined"
        o = self.sweep.mine_options(s, seed, mined_dir)
        dkey, data = self.data(o)
        rkey, retriever = self.retriever(o)
        scorers = self.scorers(o)
        p = plan_from_options(o, data, retriever, scorers)
        key = p.run_id(data)
        manifest = mined_dir / "manifest.json"
        entry = state.fresh("mine", key, manifest)
        if entry is not None and _read_json(manifest).get("run_id") == key:
            return {"status": "reused", **entry}
        t0 = time.perf_counter()
        cand, shared = self.candidates(rkey, retriever, dkey, data, p.depth, o["cache_dir"])
        mine_from_options({**o, "overwrite": True}, data=data, retriever=retriever, scorers=scorers, candidates=cand,
                          out=mined_dir, extra_manifest={"options": recorded(o)})
        entry = state.record("mine", key, manifest, time.perf_counter() - t0)
        return {"status": "done", "retrieval_shared": shared, **entry}

    def audit(self, s: Setting, seed: int, run_dir: Path, state: _State, mine_entry: dict[str, Any]) -> dict[str, Any]:
        """Hidden-positive FNR of the setting's filters and sampler on its own retrieval, with
        ``audit_hide_fraction`` of each query's positives hidden (seeded by ``seed``)."""
        from negmine import audit as A
        from negmine.filters import ExcludePositives, RelativeMargin
        from negmine.options import build_filters, build_sampler
        from negmine.pipeline import choose, resolve_depth
        from negmine.writers._atomic import write_json

        fraction = float(self.sweep.audit_hide_fraction or 0.5)
        path = run_dir / "audit.json"
        key = _digest({"mined": mine_entry["output_sha256"], "hide_fraction": fraction})
        entry = state.fresh("audit", key, path)
        if entry is not None:
            return {"status": "reused", **entry, "metrics": _read_json(path)}
        t0 = time.perf_counter()
        o = self.sweep.mine_options(s, seed)
        dkey, data = self.data(o)
        rkey, retriever = self.retriever(o)
        filters = build_filters(o)
        if o["target_fnr"] is not None:  # audit the margin calibration chose
            report = _read_json(run_dir / "mined" / "report.json")
            chosen = report.get("calibration", {}).get("chosen_relative_margin")
            if chosen is not None:
                filters.append(RelativeMargin(float(chosen)))
        sampler = build_sampler(o)
        all_filters = [ExcludePositives(o["near_duplicates"]), *filters]
        k = resolve_depth(data, o["num_negatives"], all_filters, o["depth"])
        cand, _ = self.candidates(rkey, retriever, dkey, data, k, o["cache_dir"])
        split = A.hide_fraction(data, fraction, seed)
        vcand = A.restrict(cand, data.positives, split.visible.positives, len(data.corpus))
        res = choose(split.visible, vcand, all_filters, sampler, o["num_negatives"], seed, config={},
                     scorers=self.scorers(o), ctx=RunContext(cache_dir=o["cache_dir"]))
        metrics = {"hide_fraction": fraction, **A.negative_metrics(res, split.hidden)}
        write_json(path, metrics)
        entry = state.record("audit", key, path, time.perf_counter() - t0)
        return {"status": "done", **entry, "metrics": metrics}

    def train(self, s: Setting, seed: int, run_dir: Path, state: _State, mine_entry: dict[str, Any]) -> dict[str, Any]:
        from negmine.train.trainer import RECORD, train

        options = self.sweep.train_options(s, seed)
        model_dir = run_dir / "model"
        key = _digest({"mined": mine_entry["output_sha256"], "options": options})
        entry = state.fresh("train", key, model_dir / RECORD)
        if entry is not None:
            return {"status": "reused", **entry}
        t0 = time.perf_counter()
        train(run_dir / "mined", model_dir, overwrite=True, **options)
        entry = state.record("train", key, model_dir / RECORD, time.perf_counter() - t0)
        return {"status": "done", **entry}

    def evaluate(self, state: _State, path: Path, retriever: Any, identity: dict[str, Any], *,
                 cache_dir: Any = None, label: dict[str, Any]) -> dict[str, Any]:
        from negmine.evaluate import evaluate
        from negmine.writers._atomic import write_json

        data = self.eval_data()
        key = _digest({**identity, "eval_data": data.fingerprint(), "split": self.sweep.eval_split})
        entry = state.fresh("evaluate", key, path)
        if entry is not None:
            return {"status": "reused", **entry}
        t0 = time.perf_counter()
        result = evaluate(data, retriever, cache_dir=cache_dir)
        write_json(path, {**label, "dataset": self.sweep.dataset, "split": self.sweep.eval_split,
                          "retriever": retriever.config(), **result.to_dict()})
        entry = state.record("evaluate", key, path, time.perf_counter() - t0)
        return {"status": "done", **entry}

    def dense_for_eval(self, model: str) -> Any:
        from negmine.options import build_retriever

        e = self.sweep.eval_options()
        return build_retriever({**DEFAULTS, "retriever": "dense", "model": model, **e})

    # runs -------------------------------------------------------------------------------
    def run_untrained(self, s: Setting) -> dict[str, Any]:
        from negmine.options import build_retriever

        run_dir = self.sweep.out / s.slug
        state = _State(run_dir)
        name = s.mine.get("retriever", "dense")
        if name == "bm25":
            retriever = build_retriever({**DEFAULTS, **self.sweep.mine, "retriever": "bm25"})
            identity: dict[str, Any] = {"retriever": retriever.config()}
        else:
            retriever = self.dense_for_eval(str(s.mine.get("model") or self.sweep.starting_model()))
            identity = {"retriever": retriever.config(), "weights": retriever._encoder().identity("document"),
                        "eval": self.sweep.eval_options()}
        # a model as it is (not trained here): its embeddings are worth caching
        ev = self.evaluate(state, run_dir / "metrics.json", retriever, identity,
                           cache_dir=self.sweep.mine.get("cache_dir"), label={"setting": s.name, "trained": False})
        log.info("%s: evaluate %s", s.name, ev["status"])
        return {"setting": s.name, "seed": None, "dir": str(run_dir), "steps": {"evaluate": ev},
                "reused": {"evaluate": ev["status"] == "reused"}}

    def run_trained(self, s: Setting, seed: int) -> dict[str, Any]:
        run_dir = self.sweep.out / s.slug / f"seed-{seed}"
        state = _State(run_dir)
        steps: dict[str, Any] = {}
        steps["mine"] = self.mine(s, seed, run_dir, state)
        log.info("%s seed %d: mine %s", s.name, seed, steps["mine"]["status"])
        if self.sweep.audit_hide_fraction is not None:
            steps["audit"] = self.audit(s, seed, run_dir, state, steps["mine"])
            log.info("%s seed %d: audit %s", s.name, seed, steps["audit"]["status"])
        steps["train"] = self.train(s, seed, run_dir, state, steps["mine"])
        log.info("%s seed %d: train %s", s.name, seed, steps["train"]["status"])
        model_dir = run_dir / "model"
        # a trained model is evaluated without the embedding cache (see the module docstring)
        retriever = self.dense_for_eval(str(model_dir))
        steps["evaluate"] = self.evaluate(
            state, run_dir / "metrics.json", retriever,
            {"model": steps["train"]["output_sha256"], "eval": self.sweep.eval_options()},
            label={"setting": s.name, "seed": seed, "trained": True, "model": str(model_dir)},
        )
        log.info("%s seed %d: evaluate %s", s.name, seed, steps["evaluate"]["status"])
        return {"setting": s.name, "seed": seed, "dir": str(run_dir), "steps": steps,
                "reused": {k: v["status"] == "reused" for k, v in steps.items()}}


def compare(sweep: Sweep | str | Path, *, out: str | Path | None = None) -> CompareResult:
    """Run every setting of a sweep (mine → train → evaluate, each seed), reusing finished steps,
    and write ``compare.md``, ``compare.json`` and ``compare.png`` into the output directory.

    Parameters
    ----------
    sweep
        A :class:`Sweep` or the path of a sweep file (see the module docstring).
    out
        Output directory; overrides ``[sweep] out`` (only with a path).

    Returns
    -------
    CompareResult
        One row per setting (metrics averaged over seeds, the difference in nDCG@10 to the
        baseline with its paired randomisation p-value, training and mining seconds, mining
        audit figures) and every run with the status of each of its steps.

    Raises
    ------
    ConfigError
        An invalid sweep file (before anything runs).
    DataError
        A missing dataset or split.
    """
    if not isinstance(sweep, Sweep):
        sweep = load_sweep(sweep, out=out)
    elif out is not None:
        sweep = dataclasses.replace(sweep, out=Path(out), out_overridden=True)
    runner = _Runner(sweep)
    runner.eval_data()  # fail on a missing split before any training
    for s in sweep.settings:
        if s.train:
            runner.data(sweep.mine_options(s, sweep.seeds[0]))
    jobs: list[tuple[Setting, int | None]] = []
    for s in sweep.settings:
        jobs.extend([(s, None)] if not s.train else [(s, seed) for seed in sweep.seeds])
    runs: list[dict[str, Any]] = []
    for s, seed in progress(jobs, desc="compare", total=len(jobs), unit="run"):
        runs.append(runner.run_untrained(s) if seed is None else runner.run_trained(s, seed))
    rows = _rows(sweep, runs)
    n_queries = len(runner.eval_data().queries)
    summary = {
        "command": sweep.command(),
        "config": str(sweep.path),
        "config_sha256": sweep.sha256(),
        "dataset": sweep.dataset,
        "train_split": sweep.train_split,
        "eval_split": sweep.eval_split,
        "eval_queries": n_queries,
        "seeds": sweep.seeds,
        "baseline": sweep.baseline,
        "metric": PRIMARY,
        "test": {"name": "paired two-sided randomisation (sign-flip) test over queries",
                 "exact_up_to": EXACT_MAX, "permutations": N_PERMUTATIONS, "seed": 0},
        "rows": rows,
        "runs": runs,
    }
    return _write(sweep, summary, rows, runs)


def _mean(values: Sequence[float | None]) -> float | None:
    v = [x for x in values if x is not None and not (isinstance(x, float) and np.isnan(x))]
    return float(np.mean(v)) if v else None


def _rows(sweep: Sweep, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from negmine.train.trainer import RECORD

    per_query: dict[str, dict[str, float]] = {}
    rows: list[dict[str, Any]] = []
    for s in sweep.settings:
        mine = [r for r in runs if r["setting"] == s.name]
        metrics = [_read_json(Path(r["dir"]) / "metrics.json") for r in mine]
        qids = sorted(metrics[0]["per_query"])
        per_query[s.name] = {q: float(np.mean([m["per_query"][q][PRIMARY] for m in metrics])) for q in qids}
        row: dict[str, Any] = {
            "setting": s.name, "slug": s.slug, "trained": s.train,
            "seeds": [r["seed"] for r in mine] if s.train else [],
            "metrics": {m: float(np.mean([x["metrics"][m] for x in metrics])) for m in METRICS},
            "metrics_std": {m: float(np.std([x["metrics"][m] for x in metrics])) for m in METRICS},
            "reused": all(all(r["reused"].values()) for r in mine),
        }
        if s.train:
            reports = [_read_json(Path(r["dir"]) / "mined" / "report.json") for r in mine]
            records = [_read_json(Path(r["dir"]) / "model" / RECORD) for r in mine]
            row.update(
                train_s=_mean([rec.get("timings", {}).get("train_s") for rec in records]),
                mine_s=_mean([rep.get("timings", {}).get("total_s") for rep in reports]),
                mean_negative_score=_mean([rep["scores"]["negative"]["mean"] for rep in reports]),
                mean_rank=_mean([rep["ranks"]["mean"] for rep in reports]),
                shortfall_pct=_mean([rep["shortfall"]["pct"] for rep in reports]),
            )
            if sweep.audit_hide_fraction is not None:
                row["hp_fnr"] = _mean([r["steps"]["audit"]["metrics"].get("hp_fnr") for r in mine])
        rows.append(row)
    base = per_query[sweep.baseline]
    base_row = next(r for r in rows if r["setting"] == sweep.baseline)
    for row in rows:
        if row["setting"] == sweep.baseline:
            row.update(delta=None, p_value=None)
            continue
        mine_pq = per_query[row["setting"]]
        common = sorted(set(base) & set(mine_pq))
        a = np.array([mine_pq[q] for q in common])
        b = np.array([base[q] for q in common])
        row.update(delta=row["metrics"][PRIMARY] - base_row["metrics"][PRIMARY],
                   p_value=permutation_test(a, b))
    return rows


# --------------------------------------------------------------------------------------- output
def _f(v: Any, fmt: str) -> str:
    return "—" if v is None else format(v, fmt)


def render_markdown(summary: dict[str, Any]) -> str:
    """The table of ``compare.md`` from the ``compare.json`` content."""
    rows = summary["rows"]
    audit = any("hp_fnr" in r for r in rows)
    multi = len(summary["seeds"]) > 1
    cols = ["setting", "nDCG@10", "Recall@100", "MRR@10", "MAP@100", "Δ nDCG@10", "p", "train s", "mine s",
            "neg score", "neg rank", "shortfall %", *(["HP-FNR"] if audit else [])]
    lines = [
        f"# negmine compare: {Path(summary['config']).name}",
        "",
        f"Dataset `{summary['dataset']}`: mined and trained on `{summary['train_split']}`, evaluated on "
        f"`{summary['eval_split']}` ({summary['eval_queries']} queries); "
        f"seeds {', '.join(map(str, summary['seeds']))}; baseline **{summary['baseline']}**.",
        "",
        "| " + " | ".join(cols) + " |",
        "|---|" + "---:|" * (len(cols) - 1),
    ]
    for r in rows:
        cells = [r["setting"] + ("" if r["trained"] else " (untrained)")]
        for m in METRICS:
            sd = r["metrics_std"][m]
            cells.append(f"{r['metrics'][m]:.4f}" + (f" ±{sd:.4f}" if multi and r["trained"] else ""))
        cells += [_f(r["delta"], "+.4f"), _f(r["p_value"], ".4g"), _f(r.get("train_s"), ".1f"),
                  _f(r.get("mine_s"), ".1f"), _f(r.get("mean_negative_score"), ".4f"), _f(r.get("mean_rank"), ".1f"),
                  _f(r.get("shortfall_pct"), ".1f")]
        if audit:
            cells.append(_f(r.get("hp_fnr"), ".4f"))
        lines.append("| " + " | ".join(cells) + " |")
    t = summary["test"]
    lines += [
        "",
        f"Metrics are means over seeds{' (± standard deviation over seeds)' if multi else ''}. "
        f"Δ nDCG@10 is the difference to the baseline; p is a paired two-sided randomisation test over the "
        f"{summary['eval_queries']} queries (sign flips of the per-query differences, per-query scores averaged "
        f"over seeds; exact up to {t['exact_up_to']} non-zero differences, else {t['permutations']:,} "
        f"permutations with seed {t['seed']}). train s: optimisation time; mine s: retrieval + filtering + "
        "sampling (a retrieval shared between settings is counted in each). neg score / neg rank: mean retrieval "
        "score and candidate rank of the mined negatives; shortfall %: queries with fewer negatives than asked"
        + ("; HP-FNR: share of mined negatives that are hidden positives." if audit else "."),
        "",
        f"Reproduce: `{summary['command']}` (config sha256 {summary['config_sha256'][:12]}).",
        "",
    ]
    return "\n".join(lines)


def _plot(summary: dict[str, Any], path: Path) -> None:
    from negmine._optional import require
    from negmine.writers._atomic import write_atomic

    figure = require("matplotlib.figure").Figure
    canvas = require("matplotlib.backends.backend_agg").FigureCanvasAgg
    rows = summary["rows"]
    names = [r["setting"] for r in rows]
    values = [r["metrics"][PRIMARY] for r in rows]
    errors = [r["metrics_std"][PRIMARY] for r in rows]
    fig = figure(figsize=(max(4.0, 1.1 * len(rows) + 1.5), 3.6), dpi=120, layout="constrained")
    canvas(fig)
    ax = fig.add_subplot(1, 1, 1)
    colors = ["#adb5bd" if r["setting"] == summary["baseline"] else "#4c72b0" for r in rows]
    ax.bar(range(len(rows)), values, color=colors, yerr=errors if any(errors) else None, capsize=3)
    base = next(r for r in rows if r["setting"] == summary["baseline"])["metrics"][PRIMARY]
    ax.axhline(base, color="#c44e52", linestyle="--", linewidth=1, label=f"baseline ({summary['baseline']})")
    for i, r in enumerate(rows):
        label = f"{values[i]:.3f}" + ("" if r["p_value"] is None or r["p_value"] >= 0.05 else "*")
        ax.annotate(label, (i, values[i]), ha="center", va="bottom", fontsize=8, xytext=(0, 2),
                    textcoords="offset points")
    ax.set_xticks(range(len(rows)), names, rotation=20, ha="right")
    top = max([v + e for v, e in zip(values, errors)] + [base])
    ax.set_ylim(0, top * 1.3 if top > 0 else 1.0)  # headroom for the value labels and the legend
    ax.set_ylabel("nDCG@10")
    ax.set_title(f"nDCG@10 on {summary['eval_split']} (* p < 0.05 vs baseline)")
    ax.legend(loc="upper right", fontsize=8, frameon=False)
    write_atomic(path, lambda fh: fig.savefig(fh, format="png", metadata={"Software": None}, facecolor="white"))


def _write(sweep: Sweep, summary: dict[str, Any], rows: list[dict[str, Any]],
           runs: list[dict[str, Any]]) -> CompareResult:
    from negmine._optional import available
    from negmine.writers._atomic import write_json, write_text

    out = sweep.out
    markdown = render_markdown(summary)
    files = {"markdown": out / "compare.md", "json": out / "compare.json"}
    copy = out / "sweep.toml"
    if not copy.exists() or copy.read_text(encoding="utf-8") != sweep.text:
        write_text(copy, sweep.text)
    files["config"] = copy
    write_json(files["json"], summary)
    write_text(files["markdown"], markdown)
    if available("matplotlib"):
        files["plot"] = out / "compare.png"
        _plot(summary, files["plot"])
    else:
        log.warning("matplotlib is not installed: compare.png not drawn (pip install 'negmine[report]')")
    return CompareResult(out=out, rows=rows, runs=runs, files=files, summary=summary, markdown=markdown)
