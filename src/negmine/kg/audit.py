"""``kg audit``: how many corruptions each sampler makes that are true facts, beside how hard they are.

One KGE model is trained on the training triples (PyKEEN, uniform negatives); its entity
embeddings feed ``hard`` and ``hasa``, and its scores measure hardness. Each sampler corrupts
every training triple with the ``exact`` filter over the *training* triples only (what a trainer
knows). A corruption that is a valid or test triple is a false negative: a true fact the
training graph lacks. Reported per sampler: false-negative rate with its Wilson 95% interval
(:func:`negmine.core.stats.wilson`), mean model score of the corruptions, and their hardness
percentile (:func:`negmine.kg.evaluation.hardness_percentile`: 0.5 ≈ random, 1 = hardest).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from negmine.core.stats import wilson
from negmine.core.tables import markdown_table
from negmine.kg.data import KGData, triple_keys
from negmine.kg.engines import corrupt
from negmine.kg.evaluation import all_scores, hardness_percentile
from negmine.kg.graph import Graph, known_keys
from negmine.kg.registry import SAMPLERS, make_filter, make_sampler

__all__ = ["audit", "render_audit", "sampler_options"]

NEEDS_EMBEDDINGS = ("hard", "hasa")


def sampler_options(name: str, embeddings: np.ndarray | None, entity_texts: list[str] | None = None,
                    **extra: Any) -> dict[str, Any]:
    """Options for ``make_sampler(name, ...)``: embeddings for hard/hasa, texts for lemon."""
    opts: dict[str, Any] = {}
    if name in NEEDS_EMBEDDINGS:
        opts["embeddings"] = embeddings
        if "temperature" in extra and extra["temperature"] is not None:
            opts["temperature"] = extra["temperature"]
        if name == "hasa" and extra.get("strength") is not None:
            opts["strength"] = extra["strength"]
    if name == "lemon":
        if entity_texts is not None:
            opts["texts"] = entity_texts
        if extra.get("text_embeddings") is not None:
            opts["text_embeddings"] = extra["text_embeddings"]
        if extra.get("clusters") is not None:
            opts["clusters"] = extra["clusters"]
    return opts


def audit(data: KGData, samplers: list[str] | None = None, *, num_negatives: int = 10, seed: int = 0,
          kge_epochs: int = 100, dim: int = 50, entity_texts: list[str] | None = None,
          **options: Any) -> dict[str, Any]:
    """False-negative rate (against valid + test) and hardness of each sampler on one model fit."""
    from negmine.core.errors import ConfigError
    from negmine.kg.kge import fit_kge
    from negmine.kg.options import check

    names = list(SAMPLERS if samplers is None else samplers)
    if not names:
        raise ConfigError("no samplers to audit; name at least one, e.g. --samplers uniform,bernoulli")
    for name in names:
        check("sampler", name, "kg audit")
    num_negatives = check("num_negatives", num_negatives, "kg audit")
    seed = check("seed", seed, "kg audit")
    kge_epochs = check("kge_epochs", kge_epochs, "kg audit")
    dim = check("dim", dim, "kg audit")
    for key in ("temperature", "strength", "clusters"):
        if options.get(key) is not None:
            options[key] = check(key, options[key], "kg audit")
    if options.get("clusters") is not None and options["clusters"] > data.num_entities:
        raise ConfigError(f"clusters {options['clusters']} exceeds the {data.num_entities} entities of "
                          f"{data.source}; give at most {data.num_entities} (--clusters)")
    held = [s for s in data.splits if s != "train"]
    if not held:
        from negmine.core.errors import DataError

        raise DataError(f"{data.source}: no valid or test triples to count false negatives against; give them")
    t0 = time.perf_counter()
    model = fit_kge(data, dim=dim, epochs=kge_epochs, seed=seed)
    fit_s = time.perf_counter() - t0
    emb = model.entity_embeddings
    scores = all_scores(model.model, data.train)
    graph = Graph.from_data(data)
    known = make_filter("exact", known_keys(data, ["train"]))
    held_keys = known_keys(data, held)
    rows = []
    for name in names:
        s = make_sampler(name, **sampler_options(name, emb, entity_texts, **options)).fit(graph)
        c = corrupt(s, graph, data.train, num_negatives, seed, known)
        neg = c.negatives[c.ok]
        k = int(np.isin(triple_keys(neg, data.num_entities, data.num_relations), held_keys).sum())
        n = len(neg)
        lo, hi = wilson(k, n) if n else (None, None)
        pct = hardness_percentile(scores, data.train, c.negatives, c.side)
        rows_, draws = np.nonzero(c.ok)
        side = c.side[rows_, draws].astype(np.int64)
        cand = np.where(side == 0, neg[:, 0], neg[:, 2])
        neg_scores = scores[rows_, side, cand]
        rows.append({"sampler": name, "emitted": n, "false_negatives": k, "fnr": k / n if n else None,
                     "fnr_ci95": [lo, hi], "mean_score": float(neg_scores.mean()) if n else None,
                     "hardness": float(pct.mean()) if n else None, "config": s.config()})
    return {"source": data.source, "held_out": held, "num_negatives": num_negatives, "seed": seed,
            "model": {"name": model.name, "dim": dim, "epochs": kge_epochs, "seconds": round(fit_s, 1)},
            "rows": rows}


def render_audit(result: dict[str, Any]) -> str:
    m = result["model"]
    lines = [
        f"False negatives (corruptions that are {' or '.join(result['held_out'])} triples) and hardness under "
        f"{m['name']} (dim {m['dim']}, {m['epochs']} epochs), {result['num_negatives']} negatives per training "
        f"triple, seed {result['seed']}, exact filter over train:",
        "",
    ]
    rows = []
    for r in result["rows"]:
        fnr = "–" if r["fnr"] is None else f"{100 * r['fnr']:.2f}%"
        ci = "–" if r["fnr_ci95"][0] is None else f"{100 * r['fnr_ci95'][0]:.2f}–{100 * r['fnr_ci95'][1]:.2f}%"
        ms = "–" if r["mean_score"] is None else f"{r['mean_score']:.3f}"
        hd = "–" if r["hardness"] is None else f"{r['hardness']:.3f}"
        rows.append([r["sampler"], r["emitted"], r["false_negatives"], fnr, ci, ms, hd])
    lines.append(markdown_table(["sampler", "emitted", "false neg.", "FNR", "95% CI", "mean score", "hardness"], rows,
                                align="-rrr-rr"))
    lines += ["", "hardness: share of the other entities on the corrupted side whose corruption the model scores "
              "lower (0.5 ≈ random, 1 = the model's top pick)."]
    return "\n".join(lines) + "\n"
