"""``negmine.kg.mine(...)``: corrupt every training triple, report, and save with negmine's
discipline (``negatives.parquet``, ``report.json``, ``manifest.json`` with checksums, each file
written atomically, the manifest last).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from negmine.core.atomic import strict_json
from negmine.core.errors import ConfigError, DataError
from negmine.core.manifest import environment, run_id
from negmine.kg.data import KGData, triple_keys
from negmine.kg.engines import Corruptions, corrupt
from negmine.kg.filters import BloomFilter
from negmine.kg.graph import Graph, KGSampler, known_keys
from negmine.kg.registry import make_filter, make_sampler

__all__ = ["KGMiningResult", "mine"]

log = logging.getLogger(__name__)

FILES = ("negatives.parquet", "report.json")
#: the libraries whose versions the manifest records (beside Python's and negmine's)
DEPENDENCIES = ("numpy", "torch", "pykeen", "pyarrow")


@dataclass
class KGMiningResult:
    """Corruptions of ``data.train`` (``corruptions.negatives int64[n_train, N, 3]``) with the
    options that produced them and a JSON-ready :attr:`report`."""

    data: KGData
    sampler: KGSampler
    corruptions: Corruptions
    num_negatives: int
    seed: int
    filter_config: dict[str, Any]
    report: dict[str, Any]

    def columns(self) -> dict[str, list[Any]]:
        """One row per emitted corruption, in the order of the (sorted) training triples, then
        the draw order: labels of the true triple, of the corruption, the side and the draw."""
        ok = self.corruptions.ok
        rows, draws = np.nonzero(ok)
        pos = self.data.train[rows]
        neg = self.corruptions.negatives[rows, draws]
        ent, rel = self.data.entities, self.data.relations
        return {
            "head": [ent[i] for i in pos[:, 0]], "relation": [rel[i] for i in pos[:, 1]],
            "tail": [ent[i] for i in pos[:, 2]],
            "negative_head": [ent[i] for i in neg[:, 0]], "negative_tail": [ent[i] for i in neg[:, 2]],
            "corrupted": ["head" if s == 0 else "tail" for s in self.corruptions.side[rows, draws]],
            "draw": draws.astype(np.int32).tolist(),
        }

    def save(self, out: str | Path, *, overwrite: bool = False) -> dict[str, Any]:
        """Commit ``negatives.parquet``, ``report.json`` and ``manifest.json`` into ``out``
        (:mod:`negmine.core.rundir`: locked, manifest last with checksums; a directory holding a
        different run is refused unless ``overwrite``); return the manifest."""
        return write_run(Path(out), self, overwrite=overwrite)


def write_run(out: Path, result: KGMiningResult, *, overwrite: bool = False) -> dict[str, Any]:
    """The one place a KG mining run touches the disk, through the run-directory discipline of
    the text pipeline (:class:`negmine.core.rundir.RunDir`): one writer at a time, each file atomic,
    the manifest (with every file's sha256 and the versions of :data:`DEPENDENCIES`) last, so a
    reader sees the previous run or this one, never a mix. The run id hashes the identity only
    (not the versions): the same request on the same data is the same run."""
    from negmine.core.atomic import write_json, write_parquet
    from negmine.core.optional import require
    from negmine.core.rundir import RunDir

    pa = require("pyarrow")
    schema = pa.schema([("head", pa.string()), ("relation", pa.string()), ("tail", pa.string()),
                        ("negative_head", pa.string()), ("negative_tail", pa.string()),
                        ("corrupted", pa.string()), ("draw", pa.int32())])
    identity = {
        "kind": "negmine.kg",
        "source": result.data.source,
        "data_fingerprint": result.data.fingerprint(),
        "sampler": result.sampler.config(),
        "filter": result.filter_config,
        "num_negatives": result.num_negatives,
        "seed": result.seed,
    }
    rid = run_id(identity)

    def write(d: Path) -> tuple[list[str], dict[str, Any]]:
        write_parquet(d / FILES[0], result.columns(), schema)
        write_json(d / FILES[1], result.report)
        return list(FILES), {**identity, **environment(DEPENDENCIES)}

    with RunDir(out).claim(rid, overwrite=overwrite) as run:
        if not run.finished:
            run.commit_files(write)
    return json.loads((out / "manifest.json").read_text())


def mine(data: KGData, sampler: str | KGSampler = "uniform", *, num_negatives: int = 1, seed: int = 0,
         filter: str = "exact", filter_splits: list[str] | None = None,
         error_rate: float = 0.001, **sampler_options: Any) -> KGMiningResult:
    """Corrupt every training triple of ``data``.

    Parameters
    ----------
    sampler
        A name (``uniform``, ``bernoulli``, ``typed``, ``hard``, ``lemon``, ``hasa``; options
        such as ``embeddings`` go in ``sampler_options``) or a sampler object.
    filter, filter_splits, error_rate
        Known triples never emitted: ``exact`` or ``bloom`` (with ``error_rate``) over the
        triples of ``filter_splits`` (default: every split given), or ``none``.
    """
    from negmine.kg.options import check

    num_negatives = check("num_negatives", num_negatives, "kg mine")
    seed = check("seed", seed, "kg mine")
    filter = check("filter", filter, "kg mine")
    error_rate = check("error_rate", error_rate, "kg mine")
    for key in ("temperature", "strength", "clusters"):
        if key in sampler_options:
            sampler_options[key] = check(key, sampler_options[key], "kg mine", required=False)
    clusters = sampler_options.get("clusters")
    if clusters is not None and clusters > data.num_entities:
        raise ConfigError(f"clusters {clusters} exceeds the {data.num_entities} entities of {data.source}; give at "
                          f"most {data.num_entities} (--clusters; the default is ⌈√entities⌉)")
    s = make_sampler(sampler, **sampler_options) if isinstance(sampler, str) else sampler
    graph = Graph.from_data(data)
    s.fit(graph)
    keys = known_keys(data, filter_splits)
    known = make_filter(filter, keys, error_rate=error_rate)
    c = corrupt(s, graph, data.train, num_negatives, seed, known)
    if not c.ok.any():
        name = s.config().get("name", sampler)
        raise DataError(f"{data.source}: sampler {name!r} found 0 negatives for {len(data.train)} training triples "
                        "(every allowed corruption is a known triple or outside the sampler's support); "
                        + ("choose fewer --clusters" if name == "lemon" else "choose another sampler or its options"))
    filter_config = {**known.config(), "splits": filter_splits or sorted(data.splits)}
    return KGMiningResult(data, s, c, num_negatives, seed, filter_config,
                          build_report(data, s, c, num_negatives, filter_config, known))


def build_report(data: KGData, sampler: KGSampler, c: Corruptions, num_negatives: int,
                 filter_config: dict[str, Any], known: Any) -> dict[str, Any]:
    ok = c.ok
    got = ok.sum(axis=1)
    emitted = int(ok.sum())
    neg = c.negatives[ok]
    short = np.flatnonzero(got < num_negatives)
    report: dict[str, Any] = {
        "graph": {"source": data.source, "entities": data.num_entities, "relations": data.num_relations,
                  "triples": {k: len(v) for k, v in data.splits.items()}, "duplicates_dropped": data.duplicates},
        "sampler": sampler.config(),
        "filter": {**filter_config, "removed_candidates": c.filtered},
        "negatives": {"asked": num_negatives * len(data.train), "emitted": emitted,
                      "head_share": float((c.side[ok] == 0).mean()) if emitted else None,
                      "shortfall_triples": len(short),
                      "shortfall_examples": [
                          "\t".join((data.entities[a], data.relations[r], data.entities[b]))
                          for a, r, b in data.train[short[:5]]]},
    }
    if emitted:
        nk = triple_keys(neg, data.num_entities, data.num_relations)
        held = [s for s in data.splits if s != "train"]
        if held and not filter_config["splits"] == sorted(data.splits):
            hk = known_keys(data, held)
            report["negatives"]["in_held_out_splits"] = int(np.isin(nk, hk).sum())
        if isinstance(known, BloomFilter):
            report["filter"]["note"] = ("a known triple is never emitted; a valid corruption is dropped with "
                                        f"probability ≈ {known.stated_rate:.2e}")
    return dict(strict_json(report))  # plain JSON types only, null for a non-finite number
