"""A drop-in for ``sentence_transformers.util.mine_hard_negatives``.

Moving over is changing one import::

    from negmine import mine_hard_negatives          # was: from sentence_transformers.util import ...

    triplets = mine_hard_negatives(pairs, model, num_negatives=5, range_min=10, range_max=50,
                                   relative_margin=0.05, sampling_strategy="random",
                                   output_format="n-tuple", output_scores=True)

The call runs negmine's one mining path (:func:`negmine.text.pipeline.mine`) with a peer-flavoured
selection filter, so the result follows the peer's semantics (see :func:`mine_hard_negatives`).

The pieces: the inputs (a dataset, its columns) and the peer's arguments here;
:mod:`negmine.text.compat_models` (the model, cross-encoder and selection as negmine components);
:mod:`negmine.text.compat_output` (the peer's output formats).
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

from negmine.core.errors import ConfigError, DataError
from negmine.core.optional import require
from negmine.text.compat_models import (
    FINGERPRINT_PROBE,
    CrossEncoderObject,
    ModelEncoder,
    ModelSimilarity,
    PeerSelection,
    similarity_name,
)
from negmine.text.compat_output import _chosen, _output, _positive_scores

# the model adapters live in compat_models, the output formats in compat_output; their names stay
# importable from here
__all__ = ["FINGERPRINT_PROBE", "OUTPUT_FORMATS", "CrossEncoderObject", "ModelEncoder", "ModelSimilarity",
           "PeerSelection", "mine_hard_negatives", "similarity_name"]

log = logging.getLogger(__name__)

OUTPUT_FORMATS = ("triplet", "n-tuple", "n-tuple-scores", "labeled-pair", "labeled-list")


# -- inputs ---------------------------------------------------------------------------------------
def _as_dataset(dataset: Any) -> Any:
    """A ``datasets.Dataset`` from a Dataset, a one-split DatasetDict, a ``save_to_disk``
    directory, a jsonl/json/parquet/csv file, or any ``datasets.load_dataset`` path."""
    ds = require("datasets")
    if isinstance(dataset, (str, Path)):
        path = Path(dataset)
        try:
            if path.is_dir() and ((path / "state.json").is_file() or (path / "dataset_dict.json").is_file()):
                dataset = ds.load_from_disk(str(path))
            elif path.is_file():
                kind = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}.get(path.suffix)
                if kind is None:
                    raise DataError(f"{path}: unknown file type {path.suffix!r}; pass .jsonl, .json, .parquet or .csv")
                dataset = ds.load_dataset(kind, data_files=str(path), split="train")
            else:
                dataset = ds.load_dataset(str(dataset))
        except (OSError, ValueError, ds.exceptions.DatasetNotFoundError) as exc:
            if isinstance(exc, DataError):
                raise
            first = str(exc).splitlines()[0] if str(exc) else ""
            raise DataError(f"{dataset}: cannot load it as a dataset ({exc.__class__.__name__}: {first}); "
                            "pass a Dataset or a local path") from None
    if isinstance(dataset, ds.DatasetDict):
        if len(dataset) != 1:
            raise DataError(f"the dataset has splits {', '.join(dataset)}; pass one of them, e.g. dataset['train']")
        dataset = next(iter(dataset.values()))
    if not isinstance(dataset, ds.Dataset):
        raise DataError(f"expected a datasets.Dataset (or a path to one), got {type(dataset).__name__}")
    if len(dataset) == 0:
        raise DataError("The dataset is empty. Please provide a non-empty dataset.")
    return dataset


def _columns(dataset: Any, anchor: str | None, positive: str | None) -> tuple[str, str]:
    """The peer's choice: the named columns when present, else the first and second column."""
    cols = list(dataset.column_names)
    if not anchor or anchor not in cols:
        anchor = cols[0]
    if not positive or positive not in cols:
        rest = [c for c in cols if c != anchor]
        if not rest:
            raise DataError(f"the dataset has only the column {anchor!r}; it needs an anchor and a positive column")
        positive = rest[0]
    return anchor, positive


# -- the drop-in ----------------------------------------------------------------------------------
def mine_hard_negatives(
    dataset: Any,
    model: Any,
    anchor_column_name: str | None = None,
    positive_column_name: str | None = None,
    corpus: list[str] | None = None,
    cross_encoder: Any = None,
    range_min: int = 0,
    range_max: int | None = None,
    max_score: float | None = None,
    min_score: float | None = None,
    absolute_margin: float | None = None,
    relative_margin: float | None = None,
    num_negatives: int = 3,
    sampling_strategy: str = "top",
    query_prompt_name: str | None = None,
    query_prompt: str | None = None,
    corpus_prompt_name: str | None = None,
    corpus_prompt: str | None = None,
    include_positives: bool = False,
    output_format: str = "triplet",
    output_scores: bool = False,
    batch_size: int = 32,
    faiss_batch_size: int = 16384,
    use_faiss: bool = False,
    use_multi_process: list[str] | bool = False,
    verbose: bool = True,
    cache_folder: str | None = None,
    as_triplets: bool | None = None,
    margin: float | None = None,
    *,
    prompt_name: str | None = None,
    seed: int = 0,
) -> Any:
    """Mine hard negatives with sentence-transformers' signature and output, through negmine.

    Accepts every argument of ``sentence_transformers.util.mine_hard_negatives`` (6.x) and returns
    the same ``datasets.Dataset`` columns: ``triplet`` (anchor, positive, negative[, scores]),
    ``n-tuple`` (anchor, positive, negative_1..n[, scores]; ``n-tuple-scores`` is ``n-tuple``
    with scores), ``labeled-pair`` (anchor, document, label | score), ``labeled-list`` (anchor,
    [documents], [labels] | [scores]). Column names are the input's anchor and positive columns.

    ``dataset`` may also be a ``save_to_disk`` directory, a jsonl/json/parquet/csv file, or a
    ``load_dataset`` path; ``model`` a loaded ``SentenceTransformer``, a model name/path, or any
    object with ``encode`` (and optionally ``similarity``; without ``state_dict()`` it is
    fingerprinted by its class and the embedding of :data:`FINGERPRINT_PROBE`).
    ``prompt_name`` sets ``query_prompt_name`` when that is not given.

    Semantics follow the peer, not negmine's own defaults:

    - the rank window ``range_min``/``range_max`` is counted among the candidates that survive
      the positives' removal and the margin/score filters (negmine's ``RankWindow`` counts raw
      retrieval ranks); the default ``range_max`` is the peer's (``range_min + num_negatives +
      max positives``, times 10 negatives when a margin or score filter is set);
    - margins are inclusive (a candidate exactly at ``s⁺ − margin`` is kept) and refer to the
      query's lowest positive; near-duplicates of a positive are *not* removed (only identical
      texts, which the peer de-duplicates);
    - with a ``cross_encoder`` and a margin/score filter, candidates are rescored, filtered,
      ordered and reported with the cross-encoder's scores, as the peer does;
    - scores are the model's similarity: ``cosine``/``dot`` by the exact inner-product search
      (the embeddings are normalised), ``euclidean``/``manhattan`` or an object's own
      ``similarity`` through ``model.similarity`` (:class:`ModelSimilarity`);
    - a shortfall logs the peer's hint at WARNING ("Could not find enough negatives for N
      samples ..."), whatever ``verbose`` says.

    Where the peer cannot be followed: ``sampling_strategy="random"`` is seeded by ``seed``
    (position-free, reproducible) where the peer uses the global ``random`` state;
    ``include_positives=True`` is refused (negmine never makes a positive a negative);
    ``use_faiss``/``faiss_batch_size``/``use_multi_process`` are accepted and ignored (the exact
    search returns the neighbours a flat FAISS index would); ``verbose`` logs instead of printing;
    an object without ``similarity`` is scored by the inner product of its normalised embeddings.

    (Long for the peer's thirty arguments and this account of its semantics; the body is a few named
    steps: :func:`_peer_arguments`, :func:`_rank_window`, :func:`_retriever`, one :func:`mine`, the output.)
    """
    from negmine.text.data import from_pairs
    from negmine.text.pipeline import mine

    output_format, output_scores, absolute_margin = _peer_arguments(
        output_format, output_scores, absolute_margin, as_triplets=as_triplets, margin=margin,
        sampling_strategy=sampling_strategy, include_positives=include_positives, faiss_batch_size=faiss_batch_size,
        num_negatives=num_negatives)
    query_prompt_name = query_prompt_name if query_prompt_name is not None else prompt_name

    ds = _as_dataset(dataset)
    anchor_col, positive_col = _columns(ds, anchor_column_name, positive_column_name)
    anchors, positives = list(ds[anchor_col]), list(ds[positive_col])
    by_anchor: dict[str, list[str]] = {}
    for a, p in zip(anchors, positives):
        by_anchor.setdefault(a, [])
        if p not in by_anchor[a]:
            by_anchor[a].append(p)
    # the peer counts rows per anchor, a repeated (anchor, positive) row included: its default
    # range_max and its candidate count (range_max + max_positives + 1) follow that count
    max_positives = max(Counter(anchors).values())

    filtering = any(x is not None for x in (absolute_margin, relative_margin, max_score)) or (
        cross_encoder is not None and min_score is not None)
    range_max = _rank_window(range_min, range_max, num_negatives, filtering, max_positives)

    data = from_pairs(anchors, positives, corpus, where="dataset")
    retriever = _retriever(model, query_prompt_name=query_prompt_name, query_prompt=query_prompt,
                           corpus_prompt_name=corpus_prompt_name, corpus_prompt=corpus_prompt, batch_size=batch_size)
    source = "cross-encoder" if cross_encoder is not None and filtering else "retrieval"
    top = num_negatives if sampling_strategy == "top" else None
    selection = PeerSelection(range_min=range_min, range_max=range_max, absolute_margin=absolute_margin,
                              relative_margin=relative_margin, max_score=max_score, min_score=min_score, top=top,
                              source=source)
    scorers = [CrossEncoderObject(cross_encoder, batch_size)] if source == "cross-encoder" else []
    result = mine(data, retriever, [selection], _sampler(top), num_negatives, seed,
                  depth=range_max + max_positives + 1, near_duplicates=False, cache_dir=cache_folder, scorers=scorers)

    neg_rows, neg_scores = _chosen(result, source)
    pos_scores = _positive_scores(result, source)
    text_row = {t: i for i, t in enumerate(data.corpus.texts)}
    q_row = {t: i for i, t in enumerate(data.queries.texts)}
    columns = _output(output_format, output_scores, anchor_col, positive_col, by_anchor, q_row, text_row,
                      data.corpus.texts, neg_rows, neg_scores, pos_scores, num_negatives)
    if verbose:
        log.info("mine_hard_negatives: %d rows (%s) for %d anchors", len(columns[anchor_col]), output_format,
                 len(by_anchor))
    rows = len(columns[anchor_col])
    n_pairs = sum(len(v) for v in by_anchor.values())
    possible = {"triplet": n_pairs * num_negatives, "labeled-pair": len(by_anchor) * num_negatives + len(ds)}.get(
        output_format, n_pairs)
    _warn_shortfall(possible - rows, possible, range_min=range_min, absolute_margin=absolute_margin,
                    relative_margin=relative_margin, max_score=max_score)
    return require("datasets").Dataset.from_dict(columns)


def _peer_arguments(output_format: str, output_scores: bool, absolute_margin: float | None, *,
                    as_triplets: bool | None, margin: float | None, sampling_strategy: str,
                    include_positives: bool, faiss_batch_size: int,
                    num_negatives: int) -> tuple[str, bool, float | None]:
    """The peer's deprecated arguments mapped onto their successors, and every argument that can be
    checked before the data is read: ``(output_format, output_scores, absolute_margin)``."""
    if as_triplets is not None:
        log.warning("as_triplets is deprecated; use output_format")
        output_format = "triplet" if as_triplets else "n-tuple"
    if margin is not None:
        log.warning("margin is deprecated; use absolute_margin or relative_margin")
        absolute_margin = margin
    if output_format == "n-tuple-scores":
        output_format, output_scores = "n-tuple", True
    if output_format not in OUTPUT_FORMATS:
        raise ConfigError(f"Invalid output_format: {output_format!r}; use one of {', '.join(OUTPUT_FORMATS)}")
    if sampling_strategy not in ("top", "random"):
        raise ConfigError(f"sampling_strategy must be 'top' or 'random', got {sampling_strategy!r}")
    if include_positives:
        raise ConfigError("include_positives=True is not supported: negmine never makes a positive a negative")
    if faiss_batch_size <= 0:
        raise ConfigError(f"faiss_batch_size must be a positive integer, got {faiss_batch_size}")
    if isinstance(num_negatives, bool) or not isinstance(num_negatives, int):
        raise ConfigError(f"num_negatives must be an integer, got num_negatives={num_negatives!r}.")
    if num_negatives < 1:  # the peer's words
        raise ConfigError(f"num_negatives must be at least 1, got num_negatives={num_negatives}.")
    return output_format, output_scores, absolute_margin


def _rank_window(range_min: int, range_max: int | None, num_negatives: int, filtering: bool,
                 max_positives: int) -> int:
    """The peer's ``range_max`` (its default: ``range_min + num_negatives × (10 when a margin or
    score filter is set, else 1) + max positives``), checked against ``range_min``."""
    if range_max is None:
        range_max = range_min + num_negatives * (10 if filtering else 1) + max_positives
    if range_min < 0:
        raise ConfigError(f"range_min must be non-negative, got range_min={range_min}")
    if range_min >= range_max:
        raise ConfigError(f"range_min must be smaller than range_max, got range_min={range_min} and "
                          f"range_max={range_max}")
    if num_negatives > range_max - range_min:
        raise ConfigError(f"Cannot mine {num_negatives} negatives per query: only {range_max - range_min} "
                          f"candidates remain after skipping the first range_min={range_min} of range_max={range_max}")
    return range_max


def _retriever(model: Any, **encoder_options: Any) -> Any:
    """The retriever of a model (a name or path is loaded as a ``SentenceTransformer``): the exact
    inner-product search for ``cosine``/``dot`` (or no ``similarity``), else the model's own
    similarity (:class:`ModelSimilarity`)."""
    from negmine.text.retrievers.dense import Dense

    if isinstance(model, (str, Path)):
        from negmine.text.encoders.st import resolve_model

        model = require("sentence_transformers").SentenceTransformer(resolve_model(str(model)))
    encoder = ModelEncoder(model, **encoder_options)
    sim = similarity_name(model)
    return Dense(encoder=encoder) if sim in (None, "cosine", "dot") else ModelSimilarity(encoder, model.similarity, sim)


def _sampler(top: int | None) -> Any:
    """The peer's ``top`` (the first ``num_negatives`` of the window) or ``random`` (seeded, position-free)."""
    from negmine.text.samplers import Random, Top

    return Top() if top else Random()

def _warn_shortfall(missing: int, possible: int, *, range_min: int, absolute_margin: float | None,
                    relative_margin: float | None, max_score: float | None) -> None:
    """The peer's hint when rows are missing (counted as the peer counts the rows a format could
    have had), logged at WARNING whatever ``verbose`` says: a shortfall is always reported."""
    if missing <= 0 or possible <= 0:
        return
    solutions = ["range_max"]
    if range_min > 0:
        solutions.append("range_min")
    for name, value in (("absolute_margin", absolute_margin), ("relative_margin", relative_margin),
                        ("max_score", max_score)):
        if value is not None:
            solutions.append(name)
    considerations = ", ".join(solutions[:-1]) + " and " + solutions[-1] if len(solutions) > 1 else solutions[0]
    log.warning("Could not find enough negatives for %d samples (%.2f%%). Consider adjusting the %s parameter%s if "
                "you'd like to find more valid negatives.", missing, 100 * missing / possible, considerations,
                "s" if len(solutions) > 1 else "")

