"""Every option of the ``negmine kg`` commands, declared once as :class:`negmine.core.registry.Option`
specs (type, default, range, choices, help), as the text options are.

The CLI flags of ``negmine kg mine|audit|compare`` are derived from these declarations and every
parsed value is checked against them before any work; :func:`negmine.kg.mining.mine`,
:func:`negmine.kg.audit.audit`, :func:`negmine.kg.compare.compare` and
:func:`negmine.kg.kge.fit_kge` check their keyword arguments against the same specs
(:func:`check`), so the Python API refuses what the CLI refuses. Imports nothing heavy.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from negmine.core import registry
from negmine.core.errors import ConfigError
from negmine.core.registry import Option
from negmine.kg.registry import FILTERS, SAMPLERS

__all__ = ["COMMANDS", "OPTIONS", "SAMPLER_NAMES", "check", "check_model", "parse_list"]

SAMPLER_NAMES = SAMPLERS  # from the sampler registry (negmine.kg.registry)
MAX_NEGATIVES = 100_000
MAX_SEED = 2**32 - 1  # PyKEEN seeds numpy's legacy generator, which takes 32-bit seeds

INPUT = (
    Option("triples", str, None, "a directory with train/valid/test (tab-separated head relation tail) or "
           "train [valid [test]] files"),
    Option("dataset", str, None, "a dataset shipped in PyKEEN's wheel: nations, kinships or umls"),
    Option("entity_text", str, None, "label<TAB>text lines: entity descriptions for lemon"),
    Option("seed", int, 0, "random seed", low=0, high=MAX_SEED),
)
SAMPLING = (
    Option("sampler", str, "uniform", "corruption sampler", choices=SAMPLER_NAMES),
    Option("num_negatives", int, 1, "negatives per training triple", low=1, high=MAX_NEGATIVES),
    Option("filter", str, "exact", "known triples (of every split given) never emitted: exact set or Bloom filter",
           choices=FILTERS),
    Option("error_rate", float, 0.001, "bloom: target false-positive rate", low=0, high=1, low_open=True,
           high_open=True),
    Option("embeddings", str, None, "hard/hasa: entity embeddings (.npz: entities, embeddings)"),
    Option("kge_epochs", int, None, "hard/hasa without --embeddings: train TransE this many epochs for them "
           "(default 100)", low=1, high=1_000_000),
    Option("temperature", float, None, "hard/hasa: softmax temperature T on the cosine of the replaced and the "
           "candidate entity (default 0.1)", low=1e-6, high=1e6),
    Option("strength", float, None, "hasa: weight of the structure penalty in log w = cos/T − strength · "
           "max(0, log(q(f)/π)), q(f)/π the likelihood ratio of a true fact in the candidate's structure bucket "
           "(default 1; 0 = hard)", low=0, high=1e6),
    Option("clusters", int, None, "lemon: k-means clusters of the entity texts, at most the number of entities "
           "(default ⌈√entities⌉)", low=1),
)
TRAINING = (
    Option("samplers", str, ",".join(SAMPLER_NAMES), "comma-separated samplers (kg compare also takes live-hard and "
           "live-hasa: hard negatives scored by the model being trained, guarded)", multiple=True),
    Option("seeds", str, "0,1,2", "comma-separated seeds", multiple=True),
    Option("model", str, "TransE", "PyKEEN model name (TransE, RotatE, DistMult, ...)"),
    Option("epochs", int, 100, "training epochs per run", low=1, high=1_000_000),
    Option("warmup_epochs", int, 50, "epochs of the model giving hard/hasa embeddings", low=1, high=1_000_000),
    Option("dim", int, 50, "embedding dimension", low=1, high=100_000),
    Option("batch_size", int, 256, "training batch size", low=1),
    Option("lr", float, 0.01, "Adam learning rate", low=0, low_open=True, high=100),
    Option("baseline", str, "uniform", "sampler the others are tested against", choices=SAMPLER_NAMES),
)
OUTPUT = (
    Option("out", str, None, "output directory"),
    Option("overwrite", bool, False, "replace what --out holds"),
    Option("json", bool, False, "print the report as JSON"),
)

#: every kg option by key
OPTIONS: dict[str, Option] = {o.key: o for group in (INPUT, SAMPLING, TRAINING, OUTPUT) for o in group}


def _with(key: str, **changes: Any) -> Option:
    return replace(OPTIONS[key], **changes)


def _keys(*keys: str) -> tuple[Option, ...]:
    return tuple(OPTIONS[k] for k in keys)


#: the options of each command, by group title (what ``negmine kg CMD --help`` shows)
COMMANDS: dict[str, dict[str, tuple[Option, ...]]] = {
    "mine": {
        "triples (pick one)": INPUT,
        "sampling": SAMPLING,
        "output": (_with("out", help="output directory (required)"),
                   _with("overwrite", help="replace a different run in --out"), OPTIONS["json"]),
    },
    "audit": {
        "triples (pick one)": INPUT,
        "samplers": (OPTIONS["samplers"], _with("num_negatives", default=10),
                     _with("kge_epochs", default=100, help="epochs of the TransE model (hardness, hard/hasa)"),
                     *_keys("temperature", "strength", "clusters")),
        "output": (_with("out", help="write audit.json and audit.md here"),
                   _with("overwrite", help="replace audit.json and audit.md in --out")),
    },
    "compare": {
        "triples (pick one)": INPUT,
        "training": (*_keys("samplers", "seeds", "model", "epochs", "warmup_epochs", "dim"),
                     _with("num_negatives", default=4), *_keys("batch_size", "lr", "baseline")),
        "output": (_with("out", help="write compare.json, compare.md and compare.png here (required)"),
                   _with("overwrite", help="replace compare.json, compare.md and compare.png in --out")),
    },
}
REQUIRED: dict[str, tuple[str, ...]] = {"mine": ("out",), "audit": (), "compare": ("out",)}


def check(key: str, value: Any, where: str, *, required: bool = True) -> Any:
    """``value`` checked against the declaration of option ``key`` (see
    :func:`negmine.core.registry.check_declared`)."""
    return registry.check_declared(OPTIONS, key, value, where, required=required)


def parse_list(raw: str, element: str | None, flag: str) -> list[Any]:
    """The checked items of a comma-separated flag (see :func:`negmine.core.registry.parse_declared_list`)."""
    return registry.parse_declared_list(OPTIONS, raw, element, flag)


def check_model(name: str, where: str = "--model") -> str:
    """``name`` if PyKEEN knows such a model (imports PyKEEN), else a one-line ConfigError listing
    some of the known ones."""
    from negmine.core.optional import require

    require("pykeen")
    from pykeen.models import model_resolver

    try:
        model_resolver.lookup(name)
    except (KeyError, ValueError, TypeError):
        known = sorted(model_resolver.lookup_dict)
        shown = ", ".join(model_resolver.lookup(k).__name__ for k in known[:12])
        raise ConfigError(f"{where}: PyKEEN has no model {name!r}; choose one of {shown}, ... "
                          f"({len(known)} known)") from None
    return name
