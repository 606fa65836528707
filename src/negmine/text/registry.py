"""The registries of the text domain: retrievers, filters, samplers, scorers and export formats.

Built on :mod:`negmine.core.registry`. Optional backends register by name with the module that
implements them, so ``negmine list`` works without the extras installed, and error messages list
the registered names.
"""

from __future__ import annotations

from negmine.core.registry import Entry as Entry
from negmine.core.registry import Option as Option
from negmine.core.registry import Registry as Registry
from negmine.core.registry import check_declared as check_declared
from negmine.core.registry import parse_declared_list as parse_declared_list

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
    Option("screen_dtype", str, "auto", "products the CPU search screens with (the result is the same): "
           "auto, float32, or bfloat16 (about 2x faster on CPUs with bfloat16 instructions)",
           choices=("auto", "float32", "bfloat16")),
)
retrievers.register("bm25", "negmine.text.retrievers.bm25:BM25", "lexical BM25 (bm25s)", ("bm25s",), options=(
    Option("bm25_k1", float, 1.5, "BM25 k1 (term-frequency saturation)", arg="k1", low=0),
    Option("bm25_b", float, 0.75, "BM25 b (length normalisation)", arg="b", low=0, high=1),
    Option("bm25_stemmer", str, None, "Snowball stemmer language for BM25, e.g. english (none)", arg="stemmer"),
))
retrievers.register(
    "dense",
    "negmine.text.retrievers.dense:Dense",
    "exact dense search by blocks with a running top-k (sentence-transformers model)",
    ("sentence_transformers",),
    options=(*_ENCODER, *_BLOCKS),
)
retrievers.register(
    "faiss",
    "negmine.text.retrievers.faiss:Faiss",
    "FAISS index over dense embeddings (flat or HNSW)",
    ("sentence_transformers", "faiss"),
    options=(*_ENCODER,
             Option("faiss_index", str, "flat", "faiss index type", arg="index", choices=("flat", "hnsw")),
             Option("hnsw_m", int, 32, "HNSW links per node", arg="m", low=2),
             Option("ef_search", int, 256, "HNSW search breadth", low=1)),
)
retrievers.register(
    "union", "negmine.text.retrievers.multi:Union",
    "several retrievers, provenance kept, ranked by one member's score or rrf (--members, --union-score)",
    options=(Option("union_score", str, None, "score that ranks union candidates: a member name or rrf",
                    arg="score"),),
)
retrievers.register(
    "hybrid", "negmine.text.retrievers.multi:Hybrid", "reciprocal-rank fusion (k=60) of several retrievers (--members)"
)
retrievers.register(
    "precomputed", "negmine.text.retrievers.precomputed:Precomputed",
    "candidates from a TREC run file or an npz (--run)",
    options=(Option("run", str, None, "TREC run file or npz for --retriever precomputed", arg="path"),),
)

filters.register("exclude-positives", "negmine.text.filters:ExcludePositives",
                 "drop known positives and documents whose normalised text equals a positive's (always first)",
                 options=(Option("near_duplicates", bool, True,
                                 "also exclude documents whose normalised text equals a positive's"),))
filters.register("rank-window", "negmine.text.filters:RankWindow",
                 "keep raw retrieval ranks range_min <= rank < range_max", options=(
                     Option("range_min", int, 0, "skip raw ranks below this", low=0),
                     Option("range_max", int, None, "consider raw ranks below this", low=1)))
filters.register("max-score", "negmine.text.filters:MaxScore", "keep iff score <= max_score",
                 options=(Option("max_score", float, None, "keep iff score <= S", arg="value"),))
filters.register("min-score", "negmine.text.filters:MinScore", "keep iff score >= min_score",
                 options=(Option("min_score", float, None, "keep iff score >= S", arg="value"),))
_REFERENCE = Option("positive_reference", str, None,
                    "s+ of the margins: min (lowest positive, default), mean, max, or pair (one row per positive)",
                    arg="reference", choices=("min", "mean", "max", "pair"))
filters.register("absolute-margin", "negmine.text.filters:AbsoluteMargin", "keep iff score < s+ - margin",
                 options=(Option("absolute_margin", float, None, "keep iff score < s+ - M", arg="value"), _REFERENCE))
filters.register("relative-margin", "negmine.text.filters:RelativeMargin", "keep iff score < s+ - |s+| * margin",
                 options=(Option("relative_margin", float, None, "keep iff score < s+ - |s+| * M", arg="value"),
                          _REFERENCE))
filters.register("fn-max-prob", "negmine.text.filters:FnMaxProb",
                 "keep iff the false-negative detector's probability <= P (cross-fitted on the known positives)",
                 ("sklearn",), options=(
                     Option("fn_max_prob", float, None, "keep iff detector probability <= P", arg="value",
                            low=0, high=1),
                     Option("fn_detector", str, "logistic", "detector model", arg="detector",
                            choices=("logistic", "spline", "gbm"))))

scorers.register("cross-encoder", "negmine.text.scorers.cross_encoder:CrossEncoderScorer",
                 "sentence-transformers CrossEncoder scores of (query, candidate) and (query, positive) pairs",
                 ("sentence_transformers",), options=(
                     Option("cross_encoder", str, None, "CrossEncoder model name or path", arg="model"),
                     Option("batch_size", int, 32, "encoding batch size", low=1),
                     Option("ce_activation", str, "sigmoid", "activation on cross-encoder logits",
                            arg="activation", choices=("sigmoid", "none"))))
scorers.register("llm-judge", "negmine.text.scorers.llm_judge:LLMJudge",
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
filters.register("ce-max-score", "negmine.text.filters:CrossEncoderMaxScore", "keep iff cross-encoder score < S",
                 options=(Option("ce_max_score", float, None, "keep iff cross-encoder score < S", arg="value"),))
filters.register("ce-margin", "negmine.text.filters:CrossEncoderMargin",
                 "keep iff ce(n) <= min ce(p) - margin (cross-encoder)",
                 options=(Option("ce_margin", float, None, "keep iff ce(n) <= min ce(p) - M", arg="value"),))
filters.register("llm-judge", "negmine.text.filters:JudgeFilter",
                 "drop what the LLM judge flags (fail closed); skip queries with > K flags; optional relabel",
                 options=(
                     Option("llm_drop", str, "better", "what the judge drops: better, or also relevant",
                            arg="drop", choices=("better", "relevant")),
                     Option("llm_max_flagged", int, 7, "skip a query whose judge flags more than K candidates",
                            arg="max_flagged", low=0),
                     Option("judge_action", str, "drop", "drop flagged candidates, or relabel them as positives "
                            "(built as JudgeFilter(relabel=...))", choices=("drop", "relabel"))))

samplers.register("top", "negmine.text.samplers:Top", "the highest-scoring surviving candidates")
samplers.register("random", "negmine.text.samplers:Random", "uniform among surviving candidates")
_SCALE = Option("sampler_scale", str, "raw",
                "raw: parameters on the retriever's scale (the papers); query: on z = (s - s+) / sd of the list",
                arg="scale", choices=("raw", "query"))
samplers.register("softmax", "negmine.text.samplers:Softmax", "without replacement, p ∝ exp(score / temperature)",
                  options=(Option("temperature", float, 0.05, "softmax temperature", low=0, low_open=True), _SCALE))
samplers.register("simans", "negmine.text.samplers:SimANS", "ambiguous negatives, w ∝ exp(-a (s - s+ + b)^2)",
                  options=(Option("simans_a", float, 0.5, "SimANS kernel width a (0: uniform)", arg="a", low=0),
                           Option("simans_b", float, 0.0, "SimANS offset b", arg="b"), _SCALE))

for _fmt, _builder, _summary in [
    ("triplet", "triplet_rows", "(anchor, positive, negative) rows - sentence-transformers"),
    ("n-tuple", "n_tuple_rows", "(anchor, positive, negative_1..negative_n) rows - sentence-transformers"),
    ("labeled-pair", "labeled_pair_rows",
     "(anchor, document, label) rows - sentence-transformers cross-encoder losses"),
    ("labeled-list", "labeled_list_rows",
     "(anchor, [documents], [labels]) rows - sentence-transformers listwise losses"),
    ("flag", "flag_rows", "FlagEmbedding jsonl: query, pos, neg (+ pos_scores, neg_scores)"),
    ("tevatron", "tevatron_rows", "Tevatron jsonl: query_id, query, positive_passages, negative_passages"),
    ("tevatron-ids", "tevatron_ids_rows",
     "Tevatron 2 id-based jsonl: query_id, query_text, positive/negative_document_ids + a corpus file"),
]:
    formats.register(_fmt, f"negmine.text.writers.formats:{_builder}", _summary)  # one row builder per format

FAMILIES: dict[str, Registry] = {
    "retrievers": retrievers,
    "filters": filters,
    "samplers": samplers,
    "scorers": scorers,
    "formats": formats,
}
