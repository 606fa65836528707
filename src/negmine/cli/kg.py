"""``negmine kg mine|audit|compare``: negatives for knowledge-graph embeddings."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from negmine.errors import ConfigError

SAMPLERS = ("uniform", "bernoulli", "typed", "hard", "lemon", "hasa")


def _inputs(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("triples (pick one)")
    g.add_argument("--triples", nargs="+", metavar="DIR_OR_FILES",
                   help="a directory with train/valid/test (tab-separated head relation tail) or train [valid [test]] "
                        "files")
    g.add_argument("--dataset", help="a dataset shipped in PyKEEN's wheel: nations, kinships or umls")
    p.add_argument("--entity-text", metavar="FILE", help="label<TAB>text lines: entity descriptions for lemon")
    p.add_argument("--seed", type=int, default=0)


def _sampler_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--embeddings", metavar="NPZ", help="entity embeddings for hard/hasa (.npz: entities, embeddings)")
    p.add_argument("--kge-epochs", type=int, default=None,
                   help="hard/hasa without --embeddings: train TransE this many epochs for them (default 100)")
    p.add_argument("--temperature", type=float, default=None, help="hard/hasa: softmax temperature on cosine (0.1)")
    p.add_argument("--strength", type=float, default=None, help="hasa: weight of log(1 − P(true fact)) (1)")
    p.add_argument("--clusters", type=int, default=None, help="lemon: k-means clusters (⌈√entities⌉)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="kg_command", metavar="{mine,audit,compare}", parser_class=type(p))
    m = sub.add_parser("mine", help="corrupt every training triple and write negatives.parquet + manifest + report")
    _inputs(m)
    m.add_argument("--sampler", default="uniform", choices=SAMPLERS)
    m.add_argument("--num-negatives", type=int, default=1)
    m.add_argument("--filter", default="exact", choices=("exact", "bloom", "none"),
                   help="known triples (of every split given) never emitted: exact set or Bloom filter")
    m.add_argument("--error-rate", type=float, default=0.001, help="bloom: target false-positive rate")
    _sampler_options(m)
    m.add_argument("--out", required=True, help="output directory")
    m.add_argument("--overwrite", action="store_true", help="replace a different run in --out")
    m.add_argument("--json", action="store_true", help="print the report as JSON")
    a = sub.add_parser("audit", help="false-negative rate (vs valid+test) and hardness of each sampler, one model")
    _inputs(a)
    a.add_argument("--samplers", default=",".join(SAMPLERS), help="comma-separated samplers")
    a.add_argument("--num-negatives", type=int, default=10)
    a.add_argument("--kge-epochs", type=int, default=100, help="epochs of the TransE model (hardness, hard/hasa)")
    a.add_argument("--temperature", type=float, default=None)
    a.add_argument("--strength", type=float, default=None)
    a.add_argument("--clusters", type=int, default=None)
    a.add_argument("--out", default=None, help="write audit.json and audit.md here")
    c = sub.add_parser("compare", help="PyKEEN training per sampler and seed: filtered MRR/Hits@10, paired tests")
    _inputs(c)
    c.add_argument("--samplers", default=",".join(SAMPLERS), help="comma-separated samplers")
    c.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    c.add_argument("--model", default="TransE", help="PyKEEN model name (TransE, RotatE, ...)")
    c.add_argument("--epochs", type=int, default=100)
    c.add_argument("--warmup-epochs", type=int, default=50, help="epochs of the model giving hard/hasa embeddings")
    c.add_argument("--dim", type=int, default=50)
    c.add_argument("--num-negatives", type=int, default=4)
    c.add_argument("--batch-size", type=int, default=256)
    c.add_argument("--lr", type=float, default=0.01)
    c.add_argument("--baseline", default="uniform")
    c.add_argument("--out", required=True, help="write compare.json, compare.md and compare.png here")


def _load(args: argparse.Namespace) -> Any:
    from negmine.kg.data import load_dataset, load_triples

    if bool(args.triples) == bool(args.dataset):
        raise ConfigError("give exactly one of --triples DIR_OR_FILES or --dataset nations|kinships|umls")
    return load_dataset(args.dataset) if args.dataset else load_triples(args.triples)


def _list(raw: str, choices: tuple[str, ...] | None, what: str) -> list[str]:
    items = [x.strip() for x in raw.split(",") if x.strip()]
    bad = [x for x in items if choices is not None and x not in choices]
    if not items or bad:
        raise ConfigError(f"--{what} {raw!r}: choose from {', '.join(choices or ())}")
    return items


def _prepare_torch() -> None:
    """Freeze the objects alive after importing PyKEEN and torch: PyKEEN calls ``gc.collect()``
    after every epoch, which otherwise rescans them each time (seconds per epoch)."""
    import gc

    import pykeen.models
    import pykeen.training  # noqa: F401

    gc.freeze()


def _mine(args: argparse.Namespace) -> int:
    from negmine.kg.audit import NEEDS_EMBEDDINGS
    from negmine.kg.data import load_entity_text
    from negmine.kg.mining import mine

    data = _load(args)
    texts = load_entity_text(args.entity_text, data) if args.entity_text else None
    if args.num_negatives < 1:
        raise ConfigError(f"--num-negatives must be >= 1, got {args.num_negatives}")
    opts: dict[str, Any] = {}
    if args.sampler in NEEDS_EMBEDDINGS:
        if args.embeddings:
            from negmine.kg.kge import load_embeddings

            opts["embeddings"] = load_embeddings(args.embeddings, data)
        else:
            from negmine.kg.kge import fit_kge

            _prepare_torch()
            opts["embeddings"] = fit_kge(data, epochs=args.kge_epochs or 100, seed=args.seed).entity_embeddings
        if args.temperature is not None:
            opts["temperature"] = args.temperature
        if args.strength is not None and args.sampler == "hasa":
            opts["strength"] = args.strength
    elif args.sampler == "lemon":
        opts["texts"] = texts
        if args.clusters is not None:
            opts["clusters"] = args.clusters
    result = mine(data, args.sampler, num_negatives=args.num_negatives, seed=args.seed, filter=args.filter,
                  error_rate=args.error_rate, **opts)
    result.save(Path(args.out), overwrite=args.overwrite)
    n = result.report["negatives"]
    if args.json:
        sys.stdout.write(json.dumps(result.report, indent=2) + "\n")
    else:
        sys.stdout.write(f"{n['emitted']} negatives for {len(data.train)} training triples "
                         f"({n['shortfall_triples']} short) -> {args.out}\n")
    return 0


def _audit(args: argparse.Namespace) -> int:
    from negmine.kg.audit import audit, render_audit
    from negmine.kg.data import load_entity_text

    data = _load(args)
    texts = load_entity_text(args.entity_text, data) if args.entity_text else None
    names = _list(args.samplers, SAMPLERS, "samplers")
    _prepare_torch()
    result = audit(data, names, num_negatives=args.num_negatives, seed=args.seed, kge_epochs=args.kge_epochs,
                   entity_texts=texts, temperature=args.temperature, strength=args.strength, clusters=args.clusters)
    text = render_audit(result)
    if args.out:
        from negmine.writers._atomic import write_json, write_text

        write_json(Path(args.out) / "audit.json", result)
        write_text(Path(args.out) / "audit.md", text)
    sys.stdout.write(text)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from negmine.kg.compare import compare, render_compare, write_compare
    from negmine.kg.data import load_entity_text

    data = _load(args)
    texts = load_entity_text(args.entity_text, data) if args.entity_text else None
    names = _list(args.samplers, SAMPLERS, "samplers")
    try:
        seeds = tuple(int(x) for x in _list(args.seeds, None, "seeds"))
    except ValueError:
        raise ConfigError(f"--seeds {args.seeds!r}: give comma-separated integers") from None
    _prepare_torch()
    result = compare(data, names, seeds=seeds, model=args.model, epochs=args.epochs,
                     warmup_epochs=args.warmup_epochs, dim=args.dim, num_negatives=args.num_negatives,
                     batch_size=args.batch_size, lr=args.lr, baseline=args.baseline, entity_texts=texts)
    write_compare(result, Path(args.out))
    sys.stdout.write(render_compare(result))
    return 0


def run(args: argparse.Namespace) -> int:
    handlers = {"mine": _mine, "audit": _audit, "compare": _compare}
    if args.kg_command not in handlers:
        raise ConfigError("choose a kg command: mine, audit or compare (see 'negmine kg --help')")
    return handlers[args.kg_command](args)
