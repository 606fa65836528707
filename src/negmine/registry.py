"""Small registries, one per component family, keyed by short kebab-case names.

Optional backends register by name with the module that implements them, so ``negmine list``
works without the extras installed, and error messages list the registered names.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from negmine._optional import available
from negmine.errors import ConfigError

_MISSING = object()


def _number(x: float) -> str:
    """A bound as written: integers exactly (4294967295, not 4.29497e+09), others compactly."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e18 else f"{x:g}"


@dataclass(frozen=True)
class Option:
    """One option of a component or run: the single place its name, type, default, range and help
    live. The CLI flags (``--key-with-dashes``), the TOML config keys, ``negmine list`` and the
    validation of Python arguments all derive from it.

    ``arg`` is the constructor keyword (default: ``key``); ``low``/``high`` bound numbers
    (``low_open``/``high_open`` make a bound strict); numbers must be finite.
    """

    key: str
    type: type
    default: Any = None
    help: str = ""
    arg: str | None = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] | None = None
    multiple: bool = False  # a comma-separated list (a TOML list of strings is joined with commas)

    @property
    def flag(self) -> str:
        return "--" + self.key.replace("_", "-")

    @property
    def keyword(self) -> str:
        return self.arg or self.key

    def describe_range(self) -> str:
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {_number(self.low)}")
        if self.high is not None:
            parts.append(f"{'<' if self.high_open else '<='} {_number(self.high)}")
        return " and ".join(parts)

    def check(self, value: Any, where: str = "", name: str | None = None) -> Any:
        """``value`` converted to the option's type, or a one-line :class:`ConfigError` naming the
        option (``name``, as the user spelled it), where it came from (``where``: a file; a flag
        names itself) and what is allowed."""
        flag = not where or where.startswith("--")
        at = "" if flag else f"{where}: "
        name = name or (self.flag if flag else repr(self.key))
        if value is None:
            return None
        if self.type is bool:
            if not isinstance(value, bool):
                raise ConfigError(f"{at}option {name} must be true or false, got {value!r}")
            return value
        if self.type in (int, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{at}option {name} must be {'an integer' if self.type is int else 'a number'}, "
                                  f"got {value!r}")
            if self.type is int and isinstance(value, float):
                if not value.is_integer():
                    raise ConfigError(f"{at}option {name} must be an integer, got {value!r}")
                value = int(value)
            if not math.isfinite(value):
                raise ConfigError(f"{at}option {name} must be a finite number, got {value!r}")
            if (self.low is not None and (value <= self.low if self.low_open else value < self.low)) or (
                self.high is not None and (value >= self.high if self.high_open else value > self.high)
            ):
                raise ConfigError(f"{at}option {name} must be {self.describe_range()}, got {value!r}")
            return self.type(value)
        if self.type is str:
            if self.multiple and isinstance(value, list) and all(isinstance(v, str) for v in value):
                value = ",".join(value)
            if not isinstance(value, str):
                raise ConfigError(f"{at}option {name} must be a string, got {value!r}")
            if self.choices is not None and value not in self.choices:
                raise ConfigError(f"{at}option {name} must be one of {', '.join(self.choices)}, got {value!r}")
            return value
        return value


@dataclass(frozen=True)
class Entry:
    name: str
    target: str  # "module:attribute", imported on first use
    summary: str
    requires: tuple[str, ...] = ()  # import names of optional dependencies
    options: tuple[Option, ...] = ()  # what the component is built from (constructor keywords)

    def build(self, values: dict[str, Any], **extra: Any) -> Any:
        """Construct the component from a flat option mapping (each option validated), plus
        ``extra`` keywords that are not options (e.g. already built members)."""
        kwargs = {o.keyword: o.check(values.get(o.key, o.default)) for o in self.options}
        return self.load()(**kwargs, **extra)

    def missing(self) -> list[str]:
        return [m for m in self.requires if not available(m)]

    def load(self) -> Callable[..., Any]:
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)


@dataclass
class Registry:
    family: str
    entries: dict[str, Entry] = field(default_factory=dict)

    def register(self, name: str, target: str, summary: str, requires: tuple[str, ...] = (),
                 options: tuple[Option, ...] = ()) -> None:
        if name in self.entries:
            raise ValueError(f"{self.family} {name!r} is already registered")
        self.entries[name] = Entry(name, target, summary, requires, options)

    def names(self) -> list[str]:
        return sorted(self.entries)

    def get(self, name: str) -> Entry:
        try:
            return self.entries[name]
        except KeyError:
            raise ConfigError(
                f"unknown {self.family} {name!r}; known {self.family}s: {', '.join(self.names())}"
            ) from None

    def create(self, name: str, /, **kwargs: Any) -> Any:
        return self.get(name).load()(**kwargs)

    def validate(self, component: Any) -> None:
        """Check a component built in Python (not from options) against its declared options:
        every option stored on it under its keyword must be a finite number in range, a valid
        choice... — so the Python API refuses what the CLI and TOML refuse."""
        entry = self.entries.get(getattr(component, "name", ""))
        if entry is None:
            return
        for o in entry.options:
            value = getattr(component, o.keyword, _MISSING)
            if value is not _MISSING and not isinstance(value, (bool, int, float, str)) and value is not None:
                continue
            if value is not _MISSING and (o.type is not bool or isinstance(value, bool)):
                o.check(value, f"{self.family} {entry.name!r}", name=o.keyword)

    def options(self) -> list[Option]:
        """Every option of the family, each key once (entries sharing a key share its spec)."""
        seen: dict[str, Option] = {}
        for e in self.entries.values():
            for o in e.options:
                seen.setdefault(o.key, o)
        return list(seen.values())


retrievers = Registry("retriever")
filters = Registry("filter")
samplers = Registry("sampler")
scorers = Registry("scorer")
formats = Registry("format")

_ENCODER = (
    Option("model", str, "sentence-transformers/all-MiniLM-L6-v2", "sentence-transformers model name or path"),
    Option("query_prompt", str, None, "text prepended to queries"),
    Option("document_prompt", str, None, "text prepended to documents"),
    Option("max_length", int, None, "maximum tokens per text", low=1),
    Option("batch_size", int, 32, "encoding batch size", low=1),
    Option("device", str, "cpu", "where to encode and search: cpu, cuda, cuda:N or mps (checked to exist)"),
    Option("precision", str, "fp32", "encoder precision", choices=("fp32", "fp16", "bf16")),
    Option("doc_embeddings", str, None, "precomputed document embeddings: .npy aligned with the corpus, or "
           "parquet with an id and a vector column (skips encoding the corpus)"),
    Option("query_embeddings", str, None, "precomputed query embeddings: .npy aligned with the queries, or "
           "parquet with an id and a vector column"),
)
_BLOCKS = (
    Option("query_block", int, 1024, "queries per dense search block", low=1),
    Option("doc_block", int, 8192, "documents per dense search block", low=1),
)
retrievers.register("bm25", "negmine.retrievers.bm25:BM25", "lexical BM25 (bm25s)", ("bm25s",), options=(
    Option("bm25_k1", float, 1.5, "BM25 k1 (term-frequency saturation)", arg="k1", low=0),
    Option("bm25_b", float, 0.75, "BM25 b (length normalisation)", arg="b", low=0, high=1),
    Option("bm25_stemmer", str, None, "Snowball stemmer language for BM25, e.g. english (none)", arg="stemmer"),
))
retrievers.register(
    "dense",
    "negmine.retrievers.dense:Dense",
    "exact dense search by blocks with a running top-k (sentence-transformers model)",
    ("sentence_transformers",),
    options=(*_ENCODER, *_BLOCKS),
)
retrievers.register(
    "faiss",
    "negmine.retrievers.faiss:Faiss",
    "FAISS index over dense embeddings (flat or HNSW)",
    ("sentence_transformers", "faiss"),
    options=(*_ENCODER,
             Option("faiss_index", str, "flat", "faiss index type", arg="index", choices=("flat", "hnsw")),
             Option("hnsw_m", int, 32, "HNSW links per node", arg="m", low=2),
             Option("ef_search", int, 256, "HNSW search breadth", low=1)),
)
retrievers.register(
    "union", "negmine.retrievers.multi:Union",
    "several retrievers, provenance kept, ranked by one member's score or rrf (--members, --union-score)",
    options=(Option("union_score", str, None, "score that ranks union candidates: a member name or rrf",
                    arg="score"),),
)
retrievers.register(
    "hybrid", "negmine.retrievers.multi:Hybrid", "reciprocal-rank fusion (k=60) of several retrievers (--members)"
)
retrievers.register(
    "precomputed", "negmine.retrievers.precomputed:Precomputed", "candidates from a TREC run file or an npz (--run)",
    options=(Option("run", str, None, "TREC run file or npz for --retriever precomputed", arg="path"),),
)

filters.register("exclude-positives", "negmine.filters:ExcludePositives",
                 "drop known positives and documents whose normalised text equals a positive's (always first)",
                 options=(Option("near_duplicates", bool, True,
                                 "also exclude documents whose normalised text equals a positive's"),))
filters.register("rank-window", "negmine.filters:RankWindow",
                 "keep raw retrieval ranks range_min <= rank < range_max", options=(
                     Option("range_min", int, 0, "skip raw ranks below this", low=0),
                     Option("range_max", int, None, "consider raw ranks below this", low=1)))
filters.register("max-score", "negmine.filters:MaxScore", "keep iff score <= max_score",
                 options=(Option("max_score", float, None, "keep iff score <= S", arg="value"),))
filters.register("min-score", "negmine.filters:MinScore", "keep iff score >= min_score",
                 options=(Option("min_score", float, None, "keep iff score >= S", arg="value"),))
_REFERENCE = Option("positive_reference", str, None,
                    "s+ of the margins: min (lowest positive, default), mean, max, or pair (one row per positive)",
                    arg="reference", choices=("min", "mean", "max", "pair"))
filters.register("absolute-margin", "negmine.filters:AbsoluteMargin", "keep iff score < s+ - margin",
                 options=(Option("absolute_margin", float, None, "keep iff score < s+ - M", arg="value"), _REFERENCE))
filters.register("relative-margin", "negmine.filters:RelativeMargin", "keep iff score < s+ - |s+| * margin",
                 options=(Option("relative_margin", float, None, "keep iff score < s+ - |s+| * M", arg="value"),
                          _REFERENCE))
filters.register("fn-max-prob", "negmine.filters:FnMaxProb",
                 "keep iff the false-negative detector's probability <= P (cross-fitted on the known positives)",
                 ("sklearn",), options=(
                     Option("fn_max_prob", float, None, "keep iff detector probability <= P", arg="value",
                            low=0, high=1),
                     Option("fn_detector", str, "logistic", "detector model", arg="detector",
                            choices=("logistic", "gbm"))))

scorers.register("cross-encoder", "negmine.scorers.cross_encoder:CrossEncoderScorer",
                 "sentence-transformers CrossEncoder scores of (query, candidate) and (query, positive) pairs",
                 ("sentence_transformers",), options=(
                     Option("cross_encoder", str, None, "CrossEncoder model name or path", arg="model"),
                     Option("batch_size", int, 32, "encoding batch size", low=1),
                     Option("ce_activation", str, "sigmoid", "activation on cross-encoder logits",
                            arg="activation", choices=("sigmoid", "none"))))
scorers.register("llm-judge", "negmine.scorers.llm_judge:LLMJudge",
                 "OpenAI-compatible chat judge: better / worse / irrelevant per candidate, cheap-then-strong cascade",
                 options=(
                     Option("llm_base_url", str, None, "OpenAI-compatible endpoint, e.g. http://localhost:8000/v1",
                            arg="base_url"),
                     Option("llm_model", str, None, "judge model (enables the LLM judge)", arg="model"),
                     Option("llm_verify_model", str, None, "stronger model that re-judges flagged candidates",
                            arg="verify_model"),
                     Option("llm_api_key_env", str, "OPENAI_API_KEY", "environment variable holding the API key",
                            arg="api_key_env"),
                     Option("llm_batch_size", int, 10, "candidates per judge request", arg="batch_size", low=1),
                     Option("llm_concurrency", int, 4, "requests in flight", arg="max_concurrency", low=1),
                     Option("llm_timeout", float, 60.0, "seconds per request", arg="timeout_s", low=0,
                            low_open=True),
                     Option("llm_retries", int, 3, "retries per failed request", arg="max_retries", low=0)))
filters.register("ce-max-score", "negmine.filters:CrossEncoderMaxScore", "keep iff cross-encoder score < S",
                 options=(Option("ce_max_score", float, None, "keep iff cross-encoder score < S", arg="value"),))
filters.register("ce-margin", "negmine.filters:CrossEncoderMargin",
                 "keep iff ce(n) <= min ce(p) - margin (cross-encoder)",
                 options=(Option("ce_margin", float, None, "keep iff ce(n) <= min ce(p) - M", arg="value"),))
filters.register("llm-judge", "negmine.filters:JudgeFilter",
                 "drop what the LLM judge flags (fail closed); skip queries with > K flags; optional relabel",
                 options=(
                     Option("llm_drop", str, "better", "what the judge drops: better, or also relevant",
                            arg="drop", choices=("better", "relevant")),
                     Option("llm_max_flagged", int, 7, "skip a query whose judge flags more than K candidates",
                            arg="max_flagged", low=0),
                     Option("judge_action", str, "drop", "drop flagged candidates, or relabel them as positives "
                            "(built as JudgeFilter(relabel=...))", choices=("drop", "relabel"))))

samplers.register("top", "negmine.samplers:Top", "the highest-scoring surviving candidates")
samplers.register("random", "negmine.samplers:Random", "uniform among surviving candidates")
_SCALE = Option("sampler_scale", str, "raw",
                "raw: parameters on the retriever's scale (the papers); query: on z = (s - s+) / sd of the list",
                arg="scale", choices=("raw", "query"))
samplers.register("softmax", "negmine.samplers:Softmax", "without replacement, p ∝ exp(score / temperature)",
                  options=(Option("temperature", float, 0.05, "softmax temperature", low=0, low_open=True), _SCALE))
samplers.register("simans", "negmine.samplers:SimANS", "ambiguous negatives, w ∝ exp(-a (s - s+ + b)^2)",
                  options=(Option("simans_a", float, 0.5, "SimANS kernel width a (0: uniform)", arg="a", low=0),
                           Option("simans_b", float, 0.0, "SimANS offset b", arg="b"), _SCALE))

for _fmt, _summary in [
    ("triplet", "(anchor, positive, negative) rows - sentence-transformers"),
    ("n-tuple", "(anchor, positive, negative_1..negative_n) rows - sentence-transformers"),
    ("labeled-pair", "(anchor, document, label) rows - sentence-transformers cross-encoder losses"),
    ("labeled-list", "(anchor, [documents], [labels]) rows - sentence-transformers listwise losses"),
    ("flag", "FlagEmbedding jsonl: query, pos, neg (+ pos_scores, neg_scores)"),
    ("tevatron", "Tevatron jsonl: query_id, query, positive_passages, negative_passages"),
    ("tevatron-ids", "Tevatron 2 id-based jsonl: query_id, query_text, positive/negative_document_ids + a corpus file"),
]:
    formats.register(_fmt, "negmine.writers.export:export_rows", _summary)

FAMILIES: dict[str, Registry] = {
    "retrievers": retrievers,
    "filters": filters,
    "samplers": samplers,
    "scorers": scorers,
    "formats": formats,
}


def check_declared(options: dict[str, Option], key: str, value: Any, where: str, *, required: bool = True) -> Any:
    """``value`` checked against the declaration ``options[key]`` (a one-line
    :class:`~negmine.errors.ConfigError` naming ``where`` and the option otherwise); ``None`` is
    refused unless ``required=False`` (then it means "not set" and is returned as is)."""
    if value is None and required:
        raise ConfigError(f"{where}: option {key} needs a value ({options[key].help}), got None")
    return options[key].check(value, where, name=key)


def parse_declared_list(options: dict[str, Option], raw: str, element: str | None, flag: str) -> list[Any]:
    """The items of a comma-separated ``flag``, each checked against ``options[element]``
    (``None``: any non-empty string); an empty list (nothing to do) or a repeated item is an error."""
    spec_of_flag = options.get(flag[2:].replace("-", "_"))
    example = str(spec_of_flag.default) if spec_of_flag is not None and spec_of_flag.default else "a,b"
    items = [x.strip() for x in (raw or "").split(",") if x.strip()]
    if not items:
        raise ConfigError(f"{flag} {raw!r} names nothing; give a comma-separated list, e.g. {flag} {example}")
    if element is None:
        return items
    spec = options[element]
    out = []
    for x in items:
        value: Any = x
        if spec.type in (int, float):
            try:
                value = spec.type(x)
            except ValueError:
                raise ConfigError(f"{flag}: cannot read {x!r} as {'an integer' if spec.type is int else 'a number'}; "
                                  f"give a comma-separated list, e.g. {flag} {example}") from None
        out.append(spec.check(value, flag, name=f"{flag} item"))
    if len(set(out)) != len(out):
        raise ConfigError(f"{flag} {raw!r} names an item twice; list each once")
    return out
