"""``kg compare``: train one KGE model per sampler and seed through PyKEEN, evaluate filtered MRR
and Hits@10 on test, and test each sampler against a baseline, paired over test triples.

Every run trains the same model (default TransE, dimension 50, Adam, PyKEEN's margin loss, a fixed
number of epochs) with negatives from :class:`negmine.kg.PyKEENSampler` (``exact`` filter over
the training triples). ``hard`` and ``hasa`` take their entity embeddings from a warm-up model of
the same seed trained with uniform negatives (static during training); ``lemon`` embeds the
entity texts once with the packaged MiniLM. Ranks are realistic filtered ranks over both sides
(:func:`negmine.kg.evaluation.filtered_ranks`, every split's triples filtered). The paired test is
negmine's sign-flip test (:func:`negmine.core.stats.permutation_test`) on per-test-triple reciprocal
ranks averaged over the seeds.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from negmine.core.atomic import strict_json
from negmine.core.errors import ConfigError
from negmine.core.stats import permutation_test
from negmine.core.tables import markdown_table
from negmine.kg.audit import NEEDS_EMBEDDINGS, sampler_options
from negmine.kg.data import KGData
from negmine.kg.evaluation import all_scores, filtered_ranks, rank_metrics
from negmine.kg.graph import known_keys
from negmine.kg.registry import LIVE_SAMPLERS, SAMPLERS, TRAIN_SAMPLERS

__all__ = ["compare", "paired_p", "render_compare", "write_compare"]

log = logging.getLogger(__name__)


def compare(data: KGData, samplers: list[str] | None = None, *, seeds: tuple[int, ...] = (0, 1, 2),
            model: str = "TransE", epochs: int = 100, warmup_epochs: int = 50, dim: int = 50,
            num_negatives: int = 4, batch_size: int = 256, lr: float = 0.01, baseline: str = "uniform",
            entity_texts: list[str] | None = None, **options: Any) -> dict[str, Any]:
    """Filtered MRR / Hits@10 on test per sampler and seed, and paired tests against ``baseline``."""
    from negmine.kg.kge import fit_kge
    from negmine.kg.options import check, check_model
    from negmine.kg.pykeen_sampler import PyKEENSampler

    names = list(SAMPLERS if samplers is None else samplers)
    if not names:
        raise ConfigError("no samplers to compare; name at least one, e.g. --samplers uniform,bernoulli")
    for n in names:
        if n not in TRAIN_SAMPLERS:
            raise ConfigError(f"kg compare: unknown sampler {n!r}; use {', '.join(TRAIN_SAMPLERS)}")
    if not seeds:
        raise ConfigError("no seeds; give at least one, e.g. --seeds 0,1,2")
    seeds = tuple(check("seed", s, "kg compare") for s in seeds)
    for key, value in (("epochs", epochs), ("warmup_epochs", warmup_epochs), ("dim", dim),
                       ("num_negatives", num_negatives), ("batch_size", batch_size), ("lr", lr)):
        check(key, value, "kg compare")
    for key in ("temperature", "strength", "clusters"):
        if options.get(key) is not None:
            options[key] = check(key, options[key], "kg compare")
    check_model(model)
    if baseline not in names:
        raise ConfigError(f"baseline {baseline!r} is not among the samplers {', '.join(names)}; add it")
    if "test" not in data.splits:
        raise ConfigError(f"{data.source}: no test triples to evaluate on; give a test split")
    test = data.splits["test"]
    all_known = np.sort(known_keys(data))
    text_emb = None
    if "lemon" in names:
        from negmine.text.encoders.st import SentenceTransformerEncoder

        texts = entity_texts or [e.replace("_", " ") for e in data.entities]
        text_emb = SentenceTransformerEncoder().encode(texts, "document")
    runs: list[dict[str, Any]] = []
    rr: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for seed in seeds:
        emb = None
        if any(n in NEEDS_EMBEDDINGS for n in names):  # the live samplers need none: they read the model
            emb = fit_kge(data, model=model, dim=dim, epochs=warmup_epochs, batch_size=batch_size, lr=lr,
                          seed=seed).entity_embeddings
        for name in names:
            t0 = time.perf_counter()
            kwargs = {**_sampler_kwargs(name, emb, entity_texts, text_emb, options), "num_negs_per_pos": num_negatives,
                      "seed": seed, "entity_labels": data.entities, "relation_labels": data.relations}
            fitted = fit_kge(data, model=model, dim=dim, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                             negative_sampler=PyKEENSampler, negative_sampler_kwargs=kwargs)
            train_s = time.perf_counter() - t0
            ranks = filtered_ranks(all_scores(fitted.model, test), test, all_known, data.num_entities,
                                   data.num_relations)
            rr[name].append((1.0 / ranks).mean(axis=1))
            runs.append({"sampler": name, "seed": seed, **rank_metrics(ranks), "train_seconds": round(train_s, 1)})
            log.info("%s seed %d: MRR %.4f", name, seed, runs[-1]["mrr"])
    base = np.mean(rr[baseline], axis=0)
    rows = []
    for name in names:
        mine = [r for r in runs if r["sampler"] == name]
        mrr = np.array([r["mrr"] for r in mine])
        h10 = np.array([r["hits@10"] for r in mine])
        per_triple = np.mean(rr[name], axis=0)
        rows.append({"sampler": name, "mrr": float(mrr.mean()), "mrr_sd": float(mrr.std(ddof=1)) if len(mrr) > 1
                     else 0.0, "hits@10": float(h10.mean()),
                     "hits@10_sd": float(h10.std(ddof=1)) if len(h10) > 1 else 0.0,
                     "delta_mrr": float(per_triple.mean() - base.mean()),
                     "p_value": None if name == baseline else permutation_test(per_triple, base, seed=0),
                     "train_seconds": float(np.mean([r["train_seconds"] for r in mine]))})
    return {"source": data.source, "model": model, "dim": dim, "epochs": epochs, "warmup_epochs": warmup_epochs,
            "num_negatives": num_negatives, "batch_size": batch_size, "lr": lr, "seeds": list(seeds),
            "baseline": baseline, "test_triples": len(test), "rows": rows, "runs": runs,
            "reciprocal_ranks": {n: [round(float(x), 6) for x in np.mean(rr[n], axis=0)] for n in names}}


def _sampler_kwargs(name: str, emb: Any, entity_texts: list[str] | None, text_emb: Any,
                    options: dict[str, Any]) -> dict[str, Any]:
    """``PyKEENSampler`` keywords of one compared sampler: a fixed sampler with its options, or a
    live one (``live-hard`` / ``live-hasa``) scoring with the model being trained, refreshed every
    batch and guarded by relation cardinality and a margin to the positive (plus HaSa's structure)."""
    from negmine.kg.kge import LIVE_MODEL

    if name in LIVE_SAMPLERS:
        live_opts = {"temperature": options["temperature"]} if options.get("temperature") is not None else {}
        return {"sampler": name.removeprefix("live-"), "model": LIVE_MODEL, "refresh": "batch",
                "guard": ("cardinality", "margin"), "sampler_kwargs": live_opts}
    return {"sampler": name, "sampler_kwargs": sampler_options(name, emb, entity_texts, text_embeddings=text_emb,
                                                               **options)}


def paired_p(result: dict[str, Any], a: str, b: str) -> float:
    """Sign-flip p-value of sampler ``a`` against ``b`` on the per-test-triple reciprocal ranks
    (averaged over seeds) stored in a :func:`compare` result."""
    rr = result["reciprocal_ranks"]
    for n in (a, b):
        if n not in rr:
            raise ConfigError(f"sampler {n!r} is not in this comparison; choose from {', '.join(rr)}")
    return permutation_test(np.asarray(rr[a]), np.asarray(rr[b]), seed=0)


def render_compare(result: dict[str, Any]) -> str:
    r0 = result
    lines = [
        f"{r0['model']} (dim {r0['dim']}, {r0['epochs']} epochs, {r0['num_negatives']} negatives per positive, "
        f"batch {r0['batch_size']}, Adam lr {r0['lr']}) on {r0['source']}, seeds {r0['seeds']}; filtered ranks "
        f"over both sides of {r0['test_triples']} test triples; mean ± sd over seeds.",
        "",
    ]
    rows = [[r["sampler"], f"{r['mrr']:.4f} ± {r['mrr_sd']:.4f}", f"{r['hits@10']:.4f} ± {r['hits@10_sd']:.4f}",
             f"{r['delta_mrr']:+.4f}", "–" if r["p_value"] is None else f"{r['p_value']:.4f}",
             f"{r['train_seconds']:.1f}"] for r in result["rows"]]
    lines.append(markdown_table(["sampler", "MRR", "Hits@10", f"Δ MRR vs {r0['baseline']}", "p", "train s"], rows,
                                align="---rrr"))
    lines += ["", "p: paired two-sided sign-flip test (negmine.compare.permutation_test) on per-test-triple "
              "reciprocal ranks averaged over the seeds."]
    return "\n".join(lines) + "\n"


def write_compare(result: dict[str, Any], out: Path) -> dict[str, Path]:
    """``compare.json``, ``compare.md`` and (with matplotlib) ``compare.png``, each atomically."""
    from negmine.core.atomic import write_json, write_text
    from negmine.core.optional import available

    files = {"json": out / "compare.json", "markdown": out / "compare.md"}
    write_json(files["json"], strict_json(result))
    write_text(files["markdown"], render_compare(result))
    if available("matplotlib"):
        files["plot"] = out / "compare.png"
        _plot(result, files["plot"])
    return files


def _plot(result: dict[str, Any], path: Path) -> None:
    from negmine.core.atomic import write_atomic
    from negmine.core.optional import require

    figure = require("matplotlib.figure").Figure
    canvas = require("matplotlib.backends.backend_agg").FigureCanvasAgg
    rows = result["rows"]
    fig = figure(figsize=(max(4.0, 1.0 * len(rows) + 1.5), 3.6), dpi=120, layout="constrained")
    canvas(fig)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r["mrr"] for r in rows], 0.4, yerr=[r["mrr_sd"] for r in rows], capsize=3, label="MRR")
    ax.bar(x + 0.2, [r["hits@10"] for r in rows], 0.4, yerr=[r["hits@10_sd"] for r in rows], capsize=3,
           label="Hits@10")
    for i, r in enumerate(rows):
        star = "*" if r["p_value"] is not None and r["p_value"] < 0.05 else ""
        ax.annotate(f"{r['mrr']:.3f}{star}", (i - 0.2, r["mrr"]), ha="center", va="bottom", fontsize=7,
                    xytext=(0, 2), textcoords="offset points")
    ax.set_xticks(x, [r["sampler"] for r in rows], rotation=20, ha="right")
    ax.set_ylim(0, 1.15)
    ax.set_title(f"{result['model']} on {result['source']} (* p < 0.05 vs {result['baseline']})", fontsize=9)
    ax.legend(loc="upper right", fontsize=8, frameon=False)
    write_atomic(path, lambda fh: fig.savefig(fh, format="png", metadata={"Software": None}, facecolor="white"))
