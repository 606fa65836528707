"""``negmine rec``: negatives for recommendation (mine, audit, train, evaluate, compare).

Argument parsing only imports argparse; the library is imported when a subcommand runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from negmine.errors import ConfigError

SAMPLER_NAMES = ("uniform", "popularity", "dns", "robust", "mixed")


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="rec_command", metavar="SUBCOMMAND", parser_class=type(p))
    sub.required = True
    m = sub.add_parser("mine", help="negatives for every training (user, positive item)")
    _data_args(m)
    _sampler_args(m)
    _scorer_args(m)
    m.add_argument("--num-negatives", type=int, default=1, help="negatives per training interaction")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--out", required=True, help="directory for mined.parquet, manifest.json, report.json")
    m.add_argument("--overwrite", action="store_true", help="replace another run in --out")
    m.add_argument("--json", action="store_true", help="print the report as JSON")

    a = sub.add_parser("audit", help="hidden-interaction false-negative rate of several samplers, one fit")
    _data_args(a)
    a.add_argument("--samplers", default="uniform,popularity,dns,robust",
                   help="comma-separated samplers to audit (default: uniform,popularity,dns,robust)")
    _sampler_args(a, single=False)
    _scorer_args(a)
    a.add_argument("--num-negatives", type=int, default=10)
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--out", default=None, help="write audit.json and audit.md into this directory")
    a.add_argument("--json", action="store_true", help="print the rows as JSON")

    t = sub.add_parser("train", help="train MF-BPR or SimpleX (cosine contrastive loss) on sampled negatives")
    _data_args(t)
    _sampler_args(t)
    _scorer_args(t)
    _train_args(t)
    t.add_argument("--out", required=True, help="model file (.npz: user/item ids and vectors)")

    e = sub.add_parser("evaluate", help="full-ranking Recall@K / NDCG@K of a model on the held-out split")
    _data_args(e)
    e.add_argument("--model", required=True, help="a .npz written by 'negmine rec train' (or any embeddings)")
    e.add_argument("--k", type=int, default=20)
    e.add_argument("--json", action="store_true")

    c = sub.add_parser("compare", help="sweep samplers x negative counts x seeds: train, evaluate, paired tests")
    _data_args(c)
    c.add_argument("--samplers", default="uniform,dns,robust", help="comma-separated samplers")
    c.add_argument("--negatives", default="1,50", help="comma-separated negatives per positive")
    c.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    c.add_argument("--models", default="mf-bpr,simplex", help="comma-separated models")
    _sampler_args(c, single=False)
    _scorer_args(c)
    _train_args(c, seed=False)
    c.add_argument("--out", default=None, help="write compare.json and compare.md into this directory")


def _data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("interactions")
    g.add_argument("--interactions", required=True, help="csv/tsv (with a header), parquet, or MovieLens u.data")
    g.add_argument("--format", choices=("csv", "tsv", "parquet", "movielens"), default=None)
    g.add_argument("--user-col", default=None)
    g.add_argument("--item-col", default=None)
    g.add_argument("--rating-col", default=None)
    g.add_argument("--time-col", default=None)
    g.add_argument("--min-rating", type=float, default=None, help="ratings >= R are positives (default: all)")
    g.add_argument("--low-ratings", choices=("negative", "ignore"), default="negative",
                   help="below --min-rating: may be a negative (default), or never")
    g.add_argument("--drop-users-without-positives", action="store_true")
    g.add_argument("--split", choices=("random", "time", "leave-last"), default="time")
    g.add_argument("--test-fraction", type=float, default=0.2)
    g.add_argument("--split-seed", type=int, default=0, help="seed of the random split")


def _sampler_args(p: argparse.ArgumentParser, single: bool = True) -> None:
    g = p.add_argument_group("sampler")
    if single:
        g.add_argument("--sampler", choices=SAMPLER_NAMES, default="uniform")
    g.add_argument("--alpha", type=float, default=0.75, help="popularity exponent (word2vec: 0.75)")
    g.add_argument("--candidates", type=int, default=10, help="dns/robust: candidates scored per negative")
    g.add_argument("--temperature", type=float, default=0.1, help="robust: score temperature")
    g.add_argument("--mix", default=None, help="mixed: shares, e.g. uniform=0.5,dns=0.5")


def _scorer_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("scorer (dns, robust, hardness)")
    g.add_argument("--scorer", choices=("als", "bpr", "embeddings"), default=None,
                   help="implicit ALS/BPR fitted on the training split, or --embeddings")
    g.add_argument("--embeddings", default=None, help=".npz with user_ids, user_vectors, item_ids, item_vectors")
    g.add_argument("--factors", type=int, default=64)
    g.add_argument("--iterations", type=int, default=15)


def _train_args(p: argparse.ArgumentParser, seed: bool = True) -> None:
    g = p.add_argument_group("training")
    if seed:
        g.add_argument("--model", choices=("mf-bpr", "simplex"), default="mf-bpr")
        g.add_argument("--num-negatives", type=int, default=1)
        g.add_argument("--seed", type=int, default=0)
    g.add_argument("--dim", type=int, default=64)
    g.add_argument("--epochs", type=int, default=20)
    g.add_argument("--batch-size", type=int, default=1024)
    g.add_argument("--lr", type=float, default=5e-3)
    g.add_argument("--margin", type=float, default=0.8, help="simplex: cosine margin")
    g.add_argument("--negative-weight", type=float, default=1.0, help="simplex: weight of the negative term")
    g.add_argument("--k", type=int, default=20, help="cut-off of Recall@K / NDCG@K")


# ------------------------------------------------------------------------------------- helpers
def _mix(raw: str | None) -> dict[str, float] | None:
    if not raw:
        return None
    out = {}
    for part in raw.split(","):
        name, _, share = part.partition("=")
        try:
            out[name.strip()] = float(share)
        except ValueError:
            raise ConfigError(f"--mix: cannot read {part!r}; write name=share, e.g. uniform=0.5,dns=0.5") from None
    return out


def _list(raw: str, cast: type, flag: str) -> list[Any]:
    try:
        return [cast(x.strip()) for x in raw.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"{flag}: cannot read {raw!r} as a comma-separated list of {cast.__name__}") from None


def load_data(args: argparse.Namespace) -> Any:
    from negmine.rec.data import load_interactions, split_interactions

    inter = load_interactions(args.interactions, format=args.format, user_col=args.user_col, item_col=args.item_col,
                              rating_col=args.rating_col, time_col=args.time_col, min_rating=args.min_rating,
                              low_ratings=args.low_ratings,
                              drop_users_without_positives=args.drop_users_without_positives)
    return split_interactions(inter, args.split, args.test_fraction, seed=args.split_seed)


def make_sampler(args: argparse.Namespace, name: str) -> Any:
    from negmine.rec.samplers import make_sampler as build

    return build(name, alpha=args.alpha, candidates=args.candidates, temperature=args.temperature,
                 mix=_mix(args.mix))


def make_scorer(args: argparse.Namespace, data: Any, needed: bool, seed: int) -> Any:
    from negmine.rec.scorers import fit_implicit, load_embeddings

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
    return fit_implicit(data.train, data.n_items, kind, factors=args.factors, iterations=args.iterations, seed=seed)


def _train_config(args: argparse.Namespace, model: str, num_negatives: int, seed: int) -> Any:
    from negmine.rec.train import TrainConfig

    cfg = TrainConfig(model=model, dim=args.dim, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                      num_negatives=num_negatives, margin=args.margin, negative_weight=args.negative_weight,
                      seed=seed)
    cfg.validate()
    return cfg


# ---------------------------------------------------------------------------------------- run
def run(args: argparse.Namespace) -> int:
    return int({"mine": _mine, "audit": _audit, "train": _train, "evaluate": _evaluate,
                "compare": _compare}[args.rec_command](args))


def _mine(args: argparse.Namespace) -> int:
    from negmine.rec.mining import mine

    out = Path(args.out)
    if args.num_negatives < 1:
        raise ConfigError(f"--num-negatives must be >= 1, got {args.num_negatives}")
    sampler = make_sampler(args, args.sampler)
    data = load_data(args)
    scorer = make_scorer(args, data, sampler.needs_scorer, args.seed)
    result = mine(data, sampler, num_negatives=args.num_negatives, seed=args.seed, scorer=scorer)
    result.save(out, overwrite=args.overwrite)
    rep = result.report
    if args.json:
        sys.stdout.write(json.dumps(rep, indent=2) + "\n")
    else:
        pop = rep["popularity"]
        sys.stdout.write(
            f"mined {rep['negatives']} negatives for {rep['interactions_mined']} training interactions "
            f"({rep['sampler']['name']}); shortfall {rep['shortfall']['cells']}; popularity ratio "
            f"{pop['ratio_to_catalogue']}; wrote {out}\n")
    return 0


def _audit(args: argparse.Namespace) -> int:
    from negmine.rec.audit import audit, render

    names = _list(args.samplers, str, "--samplers")
    samplers = {n: make_sampler(args, n) for n in names}
    data = load_data(args)
    if not len(data.test.indices):
        raise ConfigError("the audit needs hidden positives: use --test-fraction > 0 (or --split leave-last)")
    needed = any(s.needs_scorer for s in samplers.values())
    scorer = make_scorer(args, data, needed, args.seed)
    rows = audit(data, samplers, num_negatives=args.num_negatives, seed=args.seed, scorer=scorer)
    text = render(rows)
    if args.out:
        from negmine.writers._atomic import write_json, write_text

        info = {"split": data.split, "data": data.interactions.stats, "scorer": scorer.info if scorer else None,
                "num_negatives": args.num_negatives, "seed": args.seed}
        write_json(Path(args.out) / "audit.json", {"info": info, "rows": rows})
        write_text(Path(args.out) / "audit.md", text + "\n")
    sys.stdout.write((json.dumps(rows, indent=2) if args.json else text) + "\n")
    return 0


def _train(args: argparse.Namespace) -> int:
    from negmine.rec.train import evaluate, train

    sampler = make_sampler(args, args.sampler)
    cfg = _train_config(args, args.model, args.num_negatives, args.seed)
    data = load_data(args)
    scorer = make_scorer(args, data, sampler.needs_scorer, args.seed)
    result = train(data, sampler, cfg, scorer=scorer)
    path = result.save(args.out)
    ev = evaluate(result.scorer, data, k=args.k)
    sys.stdout.write(f"trained {cfg.model} ({sampler.name}, {cfg.num_negatives} negatives, seed {cfg.seed}): "
                     f"Recall@{args.k} {ev[f'recall@{args.k}']:.4f}, NDCG@{args.k} {ev[f'ndcg@{args.k}']:.4f}; "
                     f"wrote {path}\n")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from negmine.rec.scorers import load_embeddings
    from negmine.rec.train import evaluate

    data = load_data(args)
    scorer = load_embeddings(args.model, data.interactions.user_ids, data.interactions.item_ids)
    ev = evaluate(scorer, data, k=args.k)
    ev.pop("per_user")
    sys.stdout.write((json.dumps(ev, indent=2) if args.json else
                      f"Recall@{args.k} {ev[f'recall@{args.k}']:.4f}  NDCG@{args.k} {ev[f'ndcg@{args.k}']:.4f}  "
                      f"({ev['users']} users)") + "\n")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from negmine.rec.sweep import render, sweep

    samplers = _list(args.samplers, str, "--samplers")
    negatives = _list(args.negatives, int, "--negatives")
    seeds = _list(args.seeds, int, "--seeds")
    models = _list(args.models, str, "--models")
    built = {n: make_sampler(args, n) for n in samplers}
    configs = {(m, n, s): _train_config(args, m, n, s) for m in models for n in negatives for s in seeds}
    data = load_data(args)
    scorer = make_scorer(args, data, any(b.needs_scorer for b in built.values()), seeds[0] if seeds else 0)
    summary = sweep(data, built, configs, scorer=scorer, k=args.k)
    text = render(summary)
    if args.out:
        from negmine.writers._atomic import write_json, write_text

        write_json(Path(args.out) / "compare.json", summary)
        write_text(Path(args.out) / "compare.md", text + "\n")
    sys.stdout.write(text + "\n")
    return 0
