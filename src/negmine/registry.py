"""Small registries, one per component family, keyed by short kebab-case names.

Optional backends register by name with the module that implements them, so ``negmine list``
works without the extras installed, and error messages list the registered names.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from negmine._optional import available
from negmine.errors import ConfigError


@dataclass(frozen=True)
class Entry:
    name: str
    target: str  # "module:attribute", imported on first use
    summary: str
    requires: tuple[str, ...] = ()  # import names of optional dependencies

    def missing(self) -> list[str]:
        return [m for m in self.requires if not available(m)]

    def load(self) -> Callable[..., Any]:
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)


@dataclass
class Registry:
    family: str
    entries: dict[str, Entry] = field(default_factory=dict)

    def register(self, name: str, target: str, summary: str, requires: tuple[str, ...] = ()) -> None:
        if name in self.entries:
            raise ValueError(f"{self.family} {name!r} is already registered")
        self.entries[name] = Entry(name, target, summary, requires)

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


retrievers = Registry("retriever")
filters = Registry("filter")
samplers = Registry("sampler")
scorers = Registry("scorer")
formats = Registry("format")

retrievers.register("bm25", "negmine.retrievers.bm25:BM25", "lexical BM25 (bm25s)", ("bm25s",))
retrievers.register(
    "dense",
    "negmine.retrievers.dense:Dense",
    "exact dense search by blocks with a running top-k (sentence-transformers model)",
    ("sentence_transformers",),
)
retrievers.register(
    "faiss",
    "negmine.retrievers.faiss:Faiss",
    "FAISS index over dense embeddings (flat or HNSW)",
    ("sentence_transformers", "faiss"),
)
retrievers.register(
    "union", "negmine.retrievers.multi:Union",
    "several retrievers, provenance kept, ranked by one member's score or rrf (--members, --union-score)",
)
retrievers.register(
    "hybrid", "negmine.retrievers.multi:Hybrid", "reciprocal-rank fusion (k=60) of several retrievers (--members)"
)
retrievers.register(
    "precomputed", "negmine.retrievers.precomputed:Precomputed", "candidates from a TREC run file or an npz (--run)"
)

filters.register("exclude-positives", "negmine.filters:ExcludePositives",
                 "drop known positives and documents whose normalised text equals a positive's (always first)")
filters.register("rank-window", "negmine.filters:RankWindow",
                 "keep raw retrieval ranks range_min <= rank < range_max")
filters.register("max-score", "negmine.filters:MaxScore", "keep iff score <= max_score")
filters.register("min-score", "negmine.filters:MinScore", "keep iff score >= min_score")
filters.register("absolute-margin", "negmine.filters:AbsoluteMargin", "keep iff score < s+ - margin")
filters.register("relative-margin", "negmine.filters:RelativeMargin", "keep iff score < s+ - |s+| * margin")

scorers.register("cross-encoder", "negmine.scorers.cross_encoder:CrossEncoderScorer",
                 "sentence-transformers CrossEncoder scores of (query, candidate) and (query, positive) pairs",
                 ("sentence_transformers",))
scorers.register("llm-judge", "negmine.scorers.llm_judge:LLMJudge",
                 "OpenAI-compatible chat judge: better / worse / irrelevant per candidate, cheap-then-strong cascade")
filters.register("ce-max-score", "negmine.filters:CrossEncoderMaxScore", "keep iff cross-encoder score < S")
filters.register("ce-margin", "negmine.filters:CrossEncoderMargin",
                 "keep iff ce(n) <= min ce(p) - margin (cross-encoder)")
filters.register("llm-judge", "negmine.filters:JudgeFilter",
                 "drop what the LLM judge flags (fail closed); skip queries with > K flags; optional relabel")

samplers.register("top", "negmine.samplers:Top", "the highest-scoring surviving candidates")
samplers.register("random", "negmine.samplers:Random", "uniform among surviving candidates")
samplers.register("softmax", "negmine.samplers:Softmax", "without replacement, p ∝ exp(score / temperature)")
samplers.register("simans", "negmine.samplers:SimANS", "ambiguous negatives, w ∝ exp(-a (s - s+ + b)^2)")

for _fmt, _summary in [
    ("triplet", "(anchor, positive, negative) rows - sentence-transformers"),
    ("n-tuple", "(anchor, positive, negative_1..negative_n) rows - sentence-transformers"),
    ("labeled-pair", "(anchor, document, label) rows - sentence-transformers cross-encoder losses"),
    ("labeled-list", "(anchor, [documents], [labels]) rows - sentence-transformers listwise losses"),
    ("flag", "FlagEmbedding jsonl: query, pos, neg (+ pos_scores, neg_scores)"),
    ("tevatron", "Tevatron jsonl: query_id, query, positive_passages, negative_passages"),
]:
    formats.register(_fmt, "negmine.writers.export:export_rows", _summary)

FAMILIES: dict[str, Registry] = {
    "retrievers": retrievers,
    "filters": filters,
    "samplers": samplers,
    "scorers": scorers,
    "formats": formats,
}
