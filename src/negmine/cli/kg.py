"""``negmine kg mine|audit|compare``: negatives for knowledge-graph embeddings.

The flags are derived from the option declarations of :mod:`negmine.kg.options` and every parsed
value is checked against them before any work (finite numbers in range, choices, non-empty lists,
a PyKEEN model that exists); output paths are checked before any work too.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from negmine.cli._flags import add_options, check_args, check_out_dir, names_among
from negmine.core.errors import ConfigError
from negmine.kg.options import COMMANDS, OPTIONS, REQUIRED, SAMPLER_NAMES, check_model, parse_list

__all__ = ["SAMPLERS", "add_arguments", "run"]

SAMPLERS = SAMPLER_NAMES

HELP = {
    "mine": "corrupt every training triple and write negatives.parquet + manifest + report",
    "audit": "false-negative rate (vs valid+test) and hardness of each sampler, one model",
    "compare": "PyKEEN training per sampler and seed: filtered MRR/Hits@10, paired tests",
}
FILES = {"audit": ("audit.json", "audit.md"), "compare": ("compare.json", "compare.md", "compare.png")}


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="kg_command", metavar="{mine,audit,compare}", parser_class=type(p))
    for name, groups in COMMANDS.items():
        add_options(sub.add_parser(name, help=HELP[name], description=HELP[name]), groups, required=REQUIRED[name],
                    extra={"triples": {"nargs": "+", "metavar": "DIR_OR_FILES"}})


def _load(args: argparse.Namespace) -> Any:
    from negmine.kg.data import load_dataset, load_triples

    if bool(args.triples) == bool(args.dataset):
        raise ConfigError("give exactly one of --triples DIR_OR_FILES or --dataset nations|kinships|umls")
    return load_dataset(args.dataset) if args.dataset else load_triples(args.triples)


def _names(args: argparse.Namespace) -> list[str]:
    """The samplers the command runs, and a refusal of any sampler option none of them reads."""
    from negmine.kg.registry import SAMPLER_OPTIONS, TRAIN_SAMPLERS

    if args.kg_command == "mine":
        names = [args.sampler]
    elif args.kg_command == "compare":  # compare trains: the live samplers are allowed
        names = names_among(args.samplers, TRAIN_SAMPLERS, "--samplers")
    else:
        names = parse_list(args.samplers, "sampler", "--samplers")

    for key, users in SAMPLER_OPTIONS.items():
        if key not in vars(args) or (key == "kge_epochs" and args.kg_command != "mine"):  # audit: hardness model
            continue
        if getattr(args, key) != OPTIONS[key].default and not set(users) & set(names):
            raise ConfigError(f"--{key.replace('_', '-')} applies to the {' and '.join(users)} sampler(s), not "
                              f"{', '.join(names)}; drop it or choose such a sampler")
    if args.kg_command == "mine" and args.embeddings and args.kge_epochs is not None:
        raise ConfigError("--kge-epochs trains a model for hard/hasa when no --embeddings are given; drop one of them")
    if args.kg_command == "mine" and args.filter != "bloom" and args.error_rate != OPTIONS["error_rate"].default:
        raise ConfigError("--error-rate applies to --filter bloom; drop it or pass --filter bloom")
    return names


def _check_graph(args: argparse.Namespace, data: Any) -> None:
    """Options whose range depends on the graph, checked once it is loaded (before any work)."""
    if getattr(args, "clusters", None) is not None and args.clusters > data.num_entities:
        raise ConfigError(f"--clusters {args.clusters} exceeds the {data.num_entities} entities of {data.source}; "
                          f"give at most {data.num_entities} (the default is ⌈√entities⌉)")


def _inputs(args: argparse.Namespace) -> list[Any]:
    return [*(args.triples or []), args.entity_text, getattr(args, "embeddings", None)]


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

    out = check_out_dir(args.out, "--out", overwrite=None, inputs=_inputs(args))
    _names(args)
    data = _load(args)
    _check_graph(args, data)
    texts = load_entity_text(args.entity_text, data) if args.entity_text else None
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
    result.save(out, overwrite=args.overwrite)
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

    out = check_out_dir(args.out, "--out", overwrite=args.overwrite, files=FILES["audit"], inputs=_inputs(args)) \
        if args.out else None
    names = _names(args)
    data = _load(args)
    _check_graph(args, data)
    texts = load_entity_text(args.entity_text, data) if args.entity_text else None
    _prepare_torch()
    result = audit(data, names, num_negatives=args.num_negatives, seed=args.seed, kge_epochs=args.kge_epochs,
                   entity_texts=texts, temperature=args.temperature, strength=args.strength, clusters=args.clusters)
    text = render_audit(result)
    if out is not None:
        from negmine.core.atomic import strict_json, write_json, write_text

        write_json(out / "audit.json", strict_json(result))
        write_text(out / "audit.md", text)
    sys.stdout.write(text)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from negmine.kg.compare import compare, render_compare, write_compare
    from negmine.kg.data import load_entity_text

    out = check_out_dir(args.out, "--out", overwrite=args.overwrite, files=FILES["compare"], inputs=_inputs(args))
    names = _names(args)
    seeds = tuple(parse_list(args.seeds, "seed", "--seeds"))
    if args.baseline not in names:
        raise ConfigError(f"--baseline {args.baseline} is not among --samplers {','.join(names)}; add it or choose "
                          "another baseline")
    check_model(args.model)
    data = _load(args)
    if "test" not in data.splits:
        raise ConfigError(f"{data.source}: no test triples to evaluate on; give a test split")
    texts = load_entity_text(args.entity_text, data) if args.entity_text else None
    _prepare_torch()
    result = compare(data, names, seeds=seeds, model=args.model, epochs=args.epochs,
                     warmup_epochs=args.warmup_epochs, dim=args.dim, num_negatives=args.num_negatives,
                     batch_size=args.batch_size, lr=args.lr, baseline=args.baseline, entity_texts=texts)
    write_compare(result, out)
    sys.stdout.write(render_compare(result))
    return 0


def run(args: argparse.Namespace) -> int:
    handlers = {"mine": _mine, "audit": _audit, "compare": _compare}
    if args.kg_command not in handlers:
        raise ConfigError("choose a kg command: mine, audit or compare (see 'negmine kg --help')")
    check_args(args, COMMANDS[args.kg_command])
    return handlers[args.kg_command](args)
