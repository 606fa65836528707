"""Every option of the ``negmine rec`` commands, declared once as :class:`negmine.core.registry.Option`
specs (type, default, range, choices, help), as the text options are.

The CLI flags of ``negmine rec ...`` are derived from these declarations and every parsed value is
checked against them before any work (numbers finite and in range, choices); the library's entry
points (:func:`negmine.rec.samplers.make_sampler`, :class:`negmine.rec.train.TrainConfig`,
:func:`negmine.rec.scorers.fit_implicit`, ...) check their keyword arguments against the same
specs (:func:`check`), so the Python API refuses what the CLI refuses. Imports nothing heavy.
"""

from __future__ import annotations

import math
from typing import Any

from negmine.core import registry
from negmine.core.errors import ConfigError
from negmine.core.registry import Option

__all__ = ["COMMANDS", "LIVE_SAMPLER_NAMES", "OPTIONS", "SAMPLER_NAMES", "TRAIN_SAMPLER_NAMES", "check", "parse_list",
           "parse_mix"]

SAMPLER_NAMES = ("uniform", "popularity", "dns", "robust", "mixed")
#: samplers that pick with the model being trained: ``rec train`` and ``rec compare`` only
LIVE_SAMPLER_NAMES = ("live-dns",)
TRAIN_SAMPLER_NAMES = (*SAMPLER_NAMES, *LIVE_SAMPLER_NAMES)
MODEL_NAMES = ("mf-bpr", "simplex")
MAX_NEGATIVES = 100_000

DATA = (
    Option("interactions", str, None, "csv/tsv (with a header), parquet, or MovieLens u.data (required)"),
    Option("format", str, None, "file format (default: from the suffix)",
           choices=("csv", "tsv", "parquet", "movielens")),
    Option("user_col", str, None, "user id column (default user_id)"),
    Option("item_col", str, None, "item id column (default item_id)"),
    Option("rating_col", str, None, "rating column (default rating, optional)"),
    Option("time_col", str, None, "time column (default timestamp, optional)"),
    Option("min_rating", float, None, "ratings >= R are positives (default: every interaction is)"),
    Option("low_ratings", str, "negative", "below --min-rating: may be a negative, or never",
           choices=("negative", "ignore")),
    Option("drop_users_without_positives", bool, False,
           "accepted for compatibility and does nothing: users without a positive are skipped (and counted in "
           "the report) by default"),
    Option("require_positives", bool, False,
           "strict: refuse the data (exit 2, naming them) when a user has no positive, instead of skipping them"),
    Option("split", str, "time", "how each user's positives are split into train and test",
           choices=("random", "time", "leave-last")),
    Option("test_fraction", float, 0.2, "share of each user's positives held out (random, time)",
           low=0, high=1, high_open=True),
    Option("split_seed", int, 0, "seed of the random split", low=0, high=2**32 - 1),
)
SAMPLER = (
    Option("sampler", str, "uniform", "negative sampler", choices=SAMPLER_NAMES),
    Option("alpha", float, 0.75, "popularity: p(i) ∝ count(i)^alpha (word2vec: 0.75)", low=0, high=10),
    Option("candidates", int, 10, "dns/robust/live-dns: uniform candidates scored per negative", low=1, high=10_000),
    Option("temperature", float, 0.1, "robust: score temperature", low=1e-6, high=1e6),
    Option("mix", str, None, "mixed: shares of the parts, e.g. uniform=0.5,dns=0.5"),
    Option("guard_margin", float, None, "live-dns guard: refuse a candidate the model scores above "
           "score(positive) - M (off by default)", low=-1e6, high=1e6),
    Option("guard_similarity", float, None, "live-dns guard: refuse a candidate whose item vector has cosine "
           ">= S with the positive item's (off by default)", low=-1, high=1),
)
SCORER = (
    Option("scorer", str, None, "model behind dns, robust and hardness: implicit ALS/BPR fitted on the "
           "training split, or --embeddings", choices=("als", "bpr", "embeddings")),
    Option("embeddings", str, None, ".npz with user_ids, user_vectors, item_ids, item_vectors"),
    Option("factors", int, 64, "ALS/BPR factors", low=1, high=100_000),
    Option("iterations", int, 15, "ALS/BPR iterations", low=1, high=100_000),
)
TRAIN = (
    Option("model", str, "mf-bpr", "model to train", choices=MODEL_NAMES),
    Option("dim", int, 64, "embedding dimension", low=1, high=100_000),
    Option("epochs", int, 20, "passes over the training positives", low=1, high=1_000_000),
    Option("batch_size", int, 1024, "positives per optimiser step", low=1),
    Option("lr", float, 5e-3, "Adam learning rate", low=0, low_open=True, high=100),
    Option("margin", float, 0.8, "simplex: cosine margin", low=-1, high=1),
    Option("negative_weight", float, 1.0, "simplex: weight of the negative term", low=0, high=1e6),
    Option("gamma", float, 0.5, "simplex: user tower gate, g*user + (1-g)*W*mean(training items); 1 = plain "
           "user embedding", low=0, high=1),
    Option("k", int, 20, "cut-off of Recall@K / NDCG@K", low=1, high=100_000),
)
COMMON = (
    Option("num_negatives", int, 1, "negatives per training interaction", low=1, high=MAX_NEGATIVES),
    Option("seed", int, 0, "random seed", low=0, high=2**32 - 1),
)
LISTS = (
    Option("samplers", str, "uniform,popularity,dns,robust", "comma-separated samplers", multiple=True),
    Option("negatives", str, "1,50", "comma-separated negatives per positive", multiple=True),
    Option("seeds", str, "0,1,2", "comma-separated seeds", multiple=True),
    Option("models", str, "mf-bpr,simplex", "comma-separated models", multiple=True),
)
OUTPUT = (
    Option("out", str, None, "output"),
    Option("overwrite", bool, False, "replace what --out already holds"),
    Option("json", bool, False, "print the result as JSON"),
)

#: every rec option by key
OPTIONS: dict[str, Option] = {o.key: o for group in (DATA, SAMPLER, SCORER, TRAIN, COMMON, LISTS, OUTPUT)
                              for o in group}


def _with(key: str, **changes: Any) -> Option:
    from dataclasses import replace

    return replace(OPTIONS[key], **changes)


def _keys(*keys: str) -> tuple[Option, ...]:
    return tuple(OPTIONS[k] for k in keys)


_SAMPLING = _keys("alpha", "candidates", "temperature", "mix")
_TRAIN_SAMPLING = (*_SAMPLING, *_keys("guard_margin", "guard_similarity"))
#: the options of each command, by group title (what ``negmine rec CMD --help`` shows)
COMMANDS: dict[str, dict[str, tuple[Option, ...]]] = {
    "mine": {
        "interactions": DATA, "sampler": (OPTIONS["sampler"], *_SAMPLING), "scorer (dns, robust)": SCORER,
        "output": (*COMMON, _with("out", help="directory for mined.parquet, manifest.json, report.json "
                                  "(required)"),
                   _with("overwrite", help="replace another run in --out"), OPTIONS["json"]),
    },
    "audit": {
        "interactions": DATA,
        "samplers": (_with("samplers", help="comma-separated samplers to audit"), *_SAMPLING),
        "scorer (dns, robust, hardness)": SCORER,
        "output": (_with("num_negatives", default=10), OPTIONS["seed"],
                   _with("out", help="write audit.json and audit.md into this directory"),
                   _with("overwrite", help="replace audit.json and audit.md in --out"), OPTIONS["json"]),
    },
    "train": {
        "interactions": DATA,
        "sampler": (_with("sampler", choices=TRAIN_SAMPLER_NAMES,
                          help="negative sampler (live-dns: the model being trained picks the hardest)"),
                    *_TRAIN_SAMPLING),
        "scorer (dns, robust)": SCORER,
        "training": (*_keys("model", "num_negatives", "seed"), *TRAIN[1:]),
        "output": (_with("out", help="model file (.npz: user/item ids and vectors; required)"),
                   _with("overwrite", help="replace an existing --out file")),
    },
    "evaluate": {
        "interactions": DATA,
        "model": (_with("model", type=str, choices=None, default=None,
                        help="a .npz written by 'negmine rec train' (or any embeddings; required)"),
                  OPTIONS["k"], OPTIONS["json"]),
    },
    "compare": {
        "interactions": DATA,
        "sweep": (_with("samplers", default="uniform,dns,robust"), *_keys("negatives", "seeds", "models")),
        "sampler": _TRAIN_SAMPLING, "scorer (dns, robust)": SCORER, "training": TRAIN[1:],
        "output": (_with("out", help="write compare.json and compare.md into this directory"),
                   _with("overwrite", help="replace compare.json and compare.md in --out")),
    },
}

#: flags each command requires
REQUIRED: dict[str, tuple[str, ...]] = {"mine": ("interactions", "out"), "audit": ("interactions",),
                                        "train": ("interactions", "out"), "evaluate": ("interactions", "model"),
                                        "compare": ("interactions",)}


def check(key: str, value: Any, where: str, *, required: bool = True) -> Any:
    """``value`` checked against the declaration of option ``key`` (see
    :func:`negmine.core.registry.check_declared`)."""
    return registry.check_declared(OPTIONS, key, value, where, required=required)


def parse_list(raw: str, element: str | None, flag: str) -> list[Any]:
    """The checked items of a comma-separated flag (see :func:`negmine.core.registry.parse_declared_list`)."""
    return registry.parse_declared_list(OPTIONS, raw, element, flag)


def parse_mix(raw: str | None, where: str = "--mix") -> dict[str, float] | None:
    """``{sampler: share}`` of ``uniform=0.5,dns=0.5``: every name a plain sampler, every share a
    finite number >= 0, their sum > 0."""
    if raw is None:
        return None
    out: dict[str, float] = {}
    for part in raw.split(","):
        if not part.strip():
            continue
        name, eq, share = (x.strip() for x in part.partition("="))
        try:
            value = float(share)
        except ValueError:
            value = math.nan
            eq = ""
        if not eq:
            raise ConfigError(f"{where}: cannot read {part.strip()!r}; write name=share, e.g. uniform=0.5,dns=0.5")
        out[name] = value
    return check_mix(out, where)


def check_mix(mix: dict[str, float], where: str = "--mix") -> dict[str, float]:
    plain = [n for n in SAMPLER_NAMES if n != "mixed"]
    if not mix:
        raise ConfigError(f"{where}: no parts; give shares, e.g. uniform=0.5,dns=0.5")
    for name, share in mix.items():
        if name not in plain:
            raise ConfigError(f"{where}: unknown sampler {name!r}; mix {', '.join(plain)}")
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not math.isfinite(share) or share < 0:
            raise ConfigError(f"{where}: the share of {name} must be a finite number >= 0, got {share!r}")
    if sum(mix.values()) <= 0:
        raise ConfigError(f"{where}: the shares sum to 0; give at least one share > 0")
    return {k: float(v) for k, v in mix.items()}
