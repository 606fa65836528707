"""``negmine rec``: negatives for recommendation (mine, audit, train, evaluate, compare).

The flags are derived from the option declarations of :mod:`negmine.rec.options` and every
parsed value is checked against them before any work (finite numbers in range, choices, non-empty
lists); output paths are checked before any work too. Argument parsing imports only argparse and
the declarations; the library is imported when a subcommand runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from negmine.cli._flags import add_options, check_args, check_out_dir, check_out_file, names_among
from negmine.core.errors import ConfigError, DataError
from negmine.rec.options import COMMANDS, REQUIRED, SAMPLER_NAMES, parse_list, parse_mix

__all__ = ["SAMPLER_NAMES", "add_arguments", "run"]

HELP = {
    "mine": "negatives for every training (user, positive item)",
    "audit": "hidden-interaction false-negative rate of several samplers, one fit",
    "train": "train MF-BPR or SimpleX (CCL loss, user tower) on sampled negatives (live-dns: the model picks them)",
    "evaluate": "full-ranking Recall@K / NDCG@K of a model on the held-out split",
    "compare": "sweep samplers x negative counts x seeds: train, evaluate, paired tests",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="rec_command", metavar="SUBCOMMAND", parser_class=type(p))
    sub.required = True
    for name, groups in COMMANDS.items():
        add_options(sub.add_parser(name, help=HELP[name], description=HELP[name]), groups, required=REQUIRED[name])


# ------------------------------------------------------------------------------------- helpers
def load_data(args: argparse.Namespace) -> Any:
    from negmine.rec.data import load_interactions, split_interactions

    inter = load_interactions(args.interactions, format=args.format, user_col=args.user_col, item_col=args.item_col,
                              rating_col=args.rating_col, time_col=args.time_col, min_rating=args.min_rating,
                              low_ratings=args.low_ratings, require_positives=args.require_positives)
    return split_interactions(inter, args.split, args.test_fraction, seed=args.split_seed)


def make_sampler(args: argparse.Namespace, name: str) -> Any:
    from negmine.rec.samplers import make_sampler as build

    return build(name, alpha=args.alpha, candidates=args.candidates, temperature=args.temperature,
                 mix=parse_mix(args.mix) if name == "mixed" else None,
                 guard_margin=getattr(args, "guard_margin", None),
                 guard_similarity=getattr(args, "guard_similarity", None))


def _applies() -> dict[str, tuple[str, ...]]:
    """Sampler options and the samplers that read them, from the rec registry's declarations."""
    from negmine.rec.registry import sampler_options

    return sampler_options()


def _sampler_names(args: argparse.Namespace) -> list[str]:
    """The samplers the command runs (checked choices; an empty list is an error), and a refusal
    of any sampler option none of them reads."""
    from negmine.rec.options import OPTIONS, TRAIN_SAMPLER_NAMES

    if hasattr(args, "sampler"):
        names = [args.sampler]
    elif args.rec_command == "compare":  # compare trains: the live samplers are allowed
        names = names_among(args.samplers, TRAIN_SAMPLER_NAMES, "--samplers")
    else:
        names = parse_list(args.samplers, "sampler", "--samplers")
    if "mixed" in names:
        if args.mix is None:
            raise ConfigError("sampler mixed needs --mix, e.g. --mix uniform=0.5,dns=0.5")
        names = names + list(parse_mix(args.mix) or {})
    for key, users in _applies().items():
        if hasattr(args, key) and getattr(args, key) != OPTIONS[key].default and not set(users) & set(names):
            flag = "--" + key.replace("_", "-")
            raise ConfigError(f"{flag} applies to the {' and '.join(users)} sampler(s), not "
                              f"{', '.join(dict.fromkeys(names))}; drop {flag} or choose such a sampler")
    return names

def make_scorer(args: argparse.Namespace, data: Any, needed: bool, seed: int) -> Any:
    from negmine.rec.scorers import load_embeddings
    from negmine.rec.scorers import make_scorer as build

    kind = args.scorer
    if kind is None:
        if args.embeddings:
            kind = "embeddings"
        elif needed:
            raise ConfigError("the chosen sampler needs a model: pass --scorer als|bpr or --embeddings FILE")
        else:
            return None
    if kind == "embeddings":
        if not args.embeddings:
            raise ConfigError("--scorer embeddings needs --embeddings FILE (.npz)")
        return load_embeddings(args.embeddings, data.interactions.user_ids, data.interactions.item_ids)
    if args.embeddings:
        raise ConfigError(f"--embeddings applies to --scorer embeddings, not {kind}; drop one of them")
    return build(kind, data, factors=args.factors, iterations=args.iterations, seed=seed)


def _simplex_options(args: argparse.Namespace, models: list[str]) -> None:
    """``--margin``, ``--negative-weight`` and ``--gamma`` belong to SimpleX; refused without it."""
    from negmine.rec.options import OPTIONS

    for key in ("margin", "negative_weight", "gamma"):
        if getattr(args, key) != OPTIONS[key].default and "simplex" not in models:
            raise ConfigError(f"--{key.replace('_', '-')} applies to the simplex model, not {', '.join(models)}; "
                              "drop it or train simplex")


def _train_config(args: argparse.Namespace, model: str, num_negatives: int, seed: int) -> Any:
    from negmine.rec.train import TrainConfig

    cfg = TrainConfig(model=model, dim=args.dim, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                      num_negatives=num_negatives, margin=args.margin, negative_weight=args.negative_weight,
                      gamma=args.gamma, seed=seed)
    cfg.validate()
    return cfg


def _inputs(args: argparse.Namespace) -> list[Any]:
    return [args.interactions, getattr(args, "embeddings", None),
            args.model if args.rec_command == "evaluate" else None]


def _need_test(data: Any, what: str) -> None:
    if not len(data.test.indices):
        raise DataError(f"{data.interactions.source}: no held-out positives, so {what} has nothing to measure; "
                        "use --test-fraction > 0 (or --split leave-last) with users that have 2+ positives")


def _write_text_files(out: Path, files: dict[str, Any]) -> None:
    from negmine.core.atomic import strict_json, write_json, write_text

    for name, body in files.items():
        if name.endswith(".json"):
            write_json(out / name, strict_json(body))
        else:
            write_text(out / name, body)


# ---------------------------------------------------------------------------------------- run
def run(args: argparse.Namespace) -> int:
    check_args(args, COMMANDS[args.rec_command])
    return int({"mine": _mine, "audit": _audit, "train": _train, "evaluate": _evaluate,
                "compare": _compare}[args.rec_command](args))


def _scorer_applies(args: argparse.Namespace, needed: bool) -> None:
    """``--factors``/``--iterations`` only matter for an ALS/BPR scorer; a scorer only for dns,
    robust (and the audit's hardness)."""
    from negmine.rec.options import OPTIONS

    fitted = args.scorer in ("als", "bpr")
    for key in ("factors", "iterations"):
        if getattr(args, key) != OPTIONS[key].default and not fitted:
            raise ConfigError(f"--{key} applies to --scorer als|bpr; drop it or pass --scorer als|bpr")


def _live_without_scorer(args: argparse.Namespace, samplers: list[Any]) -> None:
    """A live sampler scores with the model being trained: a fixed scorer would go unread."""
    if all(getattr(s, "live", False) for s in samplers) and (args.scorer is not None or args.embeddings):
        raise ConfigError("--scorer/--embeddings apply to dns and robust; live-dns scores with the model being "
                          "trained: drop them")


def _mine(args: argparse.Namespace) -> int:
    from negmine.rec.mining import mine

    out = check_out_dir(args.out, "--out", overwrite=None, inputs=_inputs(args))
    _sampler_names(args)
    sampler = make_sampler(args, args.sampler)
    _scorer_applies(args, sampler.needs_scorer)
    data = load_data(args)
    scorer = make_scorer(args, data, sampler.needs_scorer, args.seed)
    result = mine(data, sampler, num_negatives=args.num_negatives, seed=args.seed, scorer=scorer)
    result.save(out, overwrite=args.overwrite)
    rep = result.report
    if args.json:
        sys.stdout.write(json.dumps(rep, indent=2) + "\n")
    else:
        pop = rep["popularity"]
        skipped = rep["data"].get("users_without_positives_dropped", 0)
        sys.stdout.write(
            f"mined {rep['negatives']} negatives for {rep['interactions_mined']} training interactions "
            f"({rep['sampler']['name']}); shortfall {rep['shortfall']['cells']}; popularity ratio "
            f"{pop['ratio_to_catalogue']}"
            + (f"; skipped {skipped} user(s) without a positive" if skipped else "") + f"; wrote {out}\n")
    return 0


def _audit(args: argparse.Namespace) -> int:
    from negmine.rec.audit import audit, render

    files = ("audit.json", "audit.md")
    out = check_out_dir(args.out, "--out", overwrite=args.overwrite, files=files, inputs=_inputs(args)) \
        if args.out else None
    names = _sampler_names(args)
    samplers = {n: make_sampler(args, n) for n in names}
    needed = any(s.needs_scorer for s in samplers.values())
    _scorer_applies(args, needed)
    data = load_data(args)
    _need_test(data, "the audit")
    scorer = make_scorer(args, data, needed, args.seed)
    rows = audit(data, samplers, num_negatives=args.num_negatives, seed=args.seed, scorer=scorer)
    text = render(rows)
    if out is not None:
        info = {"split": data.split, "data": data.interactions.stats, "scorer": scorer.info if scorer else None,
                "num_negatives": args.num_negatives, "seed": args.seed}
        _write_text_files(out, {"audit.json": {"info": info, "rows": rows}, "audit.md": text + "\n"})
    from negmine.core.atomic import strict_json

    sys.stdout.write((json.dumps(strict_json(rows), indent=2) if args.json else text) + "\n")
    return 0


def _train(args: argparse.Namespace) -> int:
    from negmine.rec.train import evaluate, train

    out = check_out_file(args.out, "--out", overwrite=args.overwrite, inputs=_inputs(args))
    _sampler_names(args)
    sampler = make_sampler(args, args.sampler)
    _scorer_applies(args, sampler.needs_scorer)
    _live_without_scorer(args, [sampler])
    _simplex_options(args, [args.model])
    cfg = _train_config(args, args.model, args.num_negatives, args.seed)
    data = load_data(args)
    scorer = make_scorer(args, data, sampler.needs_scorer, args.seed)
    result = train(data, sampler, cfg, scorer=scorer)
    path = result.save(out)
    head = f"trained {cfg.model} ({sampler.name}, {cfg.num_negatives} negatives, seed {cfg.seed})"
    if len(data.test.indices):
        ev = evaluate(result.scorer, data, k=args.k)
        head += f": Recall@{args.k} {ev[f'recall@{args.k}']:.4f}, NDCG@{args.k} {ev[f'ndcg@{args.k}']:.4f}"
    else:
        head += " (no held-out positives: not evaluated)"
    if getattr(sampler, "guard_margin", None) is not None or getattr(sampler, "guard_similarity", None) is not None:
        c = result.counters
        head += (f"; guard refused {c['guard_refused']} candidates ({c['guard_fallback']} negatives taken from "
                 "refused ones)")
    sys.stdout.write(f"{head}; wrote {path}\n")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from negmine.core.atomic import strict_json
    from negmine.rec.scorers import load_embeddings
    from negmine.rec.train import evaluate

    data = load_data(args)
    _need_test(data, "evaluate")
    scorer = load_embeddings(args.model, data.interactions.user_ids, data.interactions.item_ids)
    ev = evaluate(scorer, data, k=args.k)
    ev.pop("per_user")
    sys.stdout.write((json.dumps(strict_json(ev), indent=2) if args.json else
                      f"Recall@{args.k} {ev[f'recall@{args.k}']:.4f}  NDCG@{args.k} {ev[f'ndcg@{args.k}']:.4f}  "
                      f"({ev['users']} users)") + "\n")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from negmine.rec.sweep import render, sweep

    files = ("compare.json", "compare.md")
    out = check_out_dir(args.out, "--out", overwrite=args.overwrite, files=files, inputs=_inputs(args)) \
        if args.out else None
    samplers = _sampler_names(args)
    negatives = parse_list(args.negatives, "num_negatives", "--negatives")
    seeds = parse_list(args.seeds, "seed", "--seeds")
    models = parse_list(args.models, "model", "--models")
    built = {n: make_sampler(args, n) for n in samplers}
    needed = any(b.needs_scorer for b in built.values())
    _scorer_applies(args, needed)
    if not needed:
        _live_without_scorer(args, list(built.values()))
    _simplex_options(args, models)
    configs = {(m, n, s): _train_config(args, m, n, s) for m in models for n in negatives for s in seeds}
    data = load_data(args)
    _need_test(data, "compare")
    scorer = make_scorer(args, data, needed, seeds[0])
    summary = sweep(data, built, configs, scorer=scorer, k=args.k)
    text = render(summary)
    if out is not None:
        _write_text_files(out, {"compare.json": summary, "compare.md": text + "\n"})
    sys.stdout.write(text + "\n")
    return 0
