"""``negmine audit``: hidden-positive false-negative rates of several settings, one retrieval."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from negmine.cli.mine import add_mining_arguments, resolve_options
from negmine.core.errors import ConfigError
from negmine.text.holdout import PROTOCOLS

MULTI = ("relative_margin", "absolute_margin", "max_score", "fn_max_prob", "positive_reference", "sampler")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_mining_arguments(p, multi=MULTI)
    p.add_argument("--config", help="TOML file with the mining options (flags override it)")
    h = p.add_argument_group("hidden positives (pick one protocol)")
    h.add_argument("--hide", choices=PROTOCOLS, default=None,
                   help="holdout protocol: random (--hide-fraction), grade (--visible-min-grade), pool (only what "
                        "--pool-retriever ranks in its top --pool-depth stays visible: how pooled judgements lose "
                        "labels) or qrels (--hidden-qrels); default random, or the one the flags below imply")
    h.add_argument("--hide-fraction", type=float, default=None,
                   help="hide this seeded fraction of each query's positives (0.5 when nothing else is given)")
    h.add_argument("--pool-retriever", default=None,
                   help="--hide pool: the labelling retriever (a registered name, e.g. bm25 or dense; default bm25)")
    h.add_argument("--pool-depth", type=int, default=None,
                   help="--hide pool: the labelling pool's depth per query (default 20)")
    h.add_argument("--visible-min-grade", type=float, default=None,
                   help="show the miner positives graded >= G, hide the rest (e.g. 3 on Cranfield)")
    h.add_argument("--hidden-qrels", default=None, help="a second qrels file whose pairs are the hidden labels")
    p.add_argument("--out", default=None, help="write audit.json and audit.md into this directory")
    p.add_argument("--json", action="store_true", help="print the audit as JSON")


def _values(raw: Any, cast: type) -> list[Any]:
    if raw is None:
        return []
    items = raw if isinstance(raw, list) else str(raw).split(",")
    try:
        return [cast(x) for x in items if str(x).strip()]
    except ValueError:
        raise ConfigError(f"cannot read {raw!r} as a comma-separated list of {cast.__name__}") from None


def build_settings(o: dict[str, Any]) -> list[Any]:
    from negmine.text import filters as F
    from negmine.text.audit import Setting
    from negmine.text.options import build_filters, build_sampler

    fixed = build_filters({**o, "relative_margin": None, "absolute_margin": None, "max_score": None,
                           "fn_max_prob": None, "positive_reference": None})
    refs: list[str | None] = list(_values(o.get("positive_reference"), str)) or [None]
    variants: list[tuple[str, list[Any]]] = [("no filter", [])]
    for ref in refs:
        on = "" if ref is None else f" vs {ref} positive"
        variants += [(f"relative margin {m:g}{on}", [F.RelativeMargin(m, reference=ref)])
                     for m in _values(o["relative_margin"], float)]
        variants += [(f"absolute margin {m:g}{on}", [F.AbsoluteMargin(m, reference=ref)])
                     for m in _values(o["absolute_margin"], float)]
    variants += [(f"max score {m:g}", [F.MaxScore(m)]) for m in _values(o["max_score"], float)]
    variants += [(f"fn-max-prob {m:g}", [F.FnMaxProb(m, detector=o.get("fn_detector") or "logistic")])
                 for m in _values(o.get("fn_max_prob"), float)]
    out = []
    for sampler_name in _values(o["sampler"], str) or ["top"]:
        sampler = build_sampler({**o, "sampler": sampler_name})
        for label, extra in variants:
            out.append(Setting(f"{sampler_name}, {label}", [*fixed, *extra], sampler))
    return out


def render(rows: list[dict[str, Any]], info: dict[str, Any]) -> str:
    cols = ["setting", "HP-FNR", "95% CI", "mean score", "mean rank", "score/s+", "coverage", "set score"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        ci = r.get("hp_fnr_ci95", [float("nan")] * 2)
        lines.append(
            f"| {r['setting']} | {r.get('hp_fnr', float('nan')):.4f} | {ci[0]:.3f}-{ci[1]:.3f} | "
            f"{r['mean_negative_score']:.4f} | {r['mean_rank']:.1f} | {r['mean_score_over_positive']:.3f} | "
            f"{r['coverage']:.3f} | {r['set_score']:.3f} |"
        )
    first = rows[0] if rows else {}
    lines.append("")
    if info.get("holdout"):
        lines.append(f"hidden positives: {info['holdout']['description']} (every figure above)")
    lines.append(
        f"{len(rows)} settings on {info['retrievals']} retrieval (depth {info['depth']}, "
        f"{info['retrieve_s']:.2f}s); {first.get('queries_audited', 0)} queries with "
        f"{first.get('hidden_positives', 0)} hidden positives audited"
    )
    return "\n".join(lines)


def holdout_from_args(args: argparse.Namespace, seed: int) -> Any:
    """The :class:`negmine.text.holdout.Holdout` the flags name. The old flags keep their meaning:
    ``--hide-fraction F`` is ``--hide random``, ``--visible-min-grade G`` is ``--hide grade``,
    ``--hidden-qrels F`` is ``--hide qrels``; nothing given is ``random`` with 0.5."""
    from negmine.text.holdout import Holdout

    implied = {"hide_fraction": "random", "visible_min_grade": "grade", "hidden_qrels": "qrels"}
    chosen = [x for x in implied if getattr(args, x) is not None]
    if len(chosen) > 1:
        flags = ", ".join("--" + c.replace("_", "-") for c in chosen)
        raise ConfigError(f"pick one way to hide positives, got {flags}")
    protocol = args.hide or (implied[chosen[0]] if chosen else "random")
    if chosen and implied[chosen[0]] != protocol:
        raise ConfigError(f"--{chosen[0].replace('_', '-')} belongs to --hide {implied[chosen[0]]}, "
                          f"not --hide {protocol}; drop one of them")
    pool_flags = [f for f in ("pool_retriever", "pool_depth") if getattr(args, f) is not None]
    if pool_flags and protocol != "pool":
        raise ConfigError(f"--{pool_flags[0].replace('_', '-')} needs --hide pool (got --hide {protocol})")
    return Holdout(protocol,
                   fraction=args.hide_fraction if args.hide_fraction is not None else 0.5, seed=seed,
                   min_grade=args.visible_min_grade, pool_retriever=args.pool_retriever or "bm25",
                   pool_depth=args.pool_depth if args.pool_depth is not None else 20, qrels_path=args.hidden_qrels)


def run(args: argparse.Namespace) -> int:
    from negmine.text import audit
    from negmine.text.data import read_qrels
    from negmine.text.options import build_retriever, build_scorers, load_data
    from negmine.text.types import RunContext

    o = resolve_options(args)
    holdout = holdout_from_args(args, o["seed"])
    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: --out is an existing file; pass a directory for audit.json and audit.md")
    settings = build_settings(o)
    retriever = build_retriever(o)
    scorers = build_scorers(o)  # --cross-encoder / --llm-model: built as `negmine mine` builds them
    pool_retriever = None
    if holdout.protocol == "pool":
        if holdout.pool_retriever in ("union", "hybrid"):
            raise ConfigError("--pool-retriever takes one plain retriever (e.g. bm25 or dense), not union/hybrid")
        pool_retriever = build_retriever({**o, "retriever": holdout.pool_retriever})
    data = load_data(o)
    rows_hidden = read_qrels(args.hidden_qrels) if holdout.protocol == "qrels" else None
    split = holdout.split(data, retriever=pool_retriever, qrels_rows=rows_hidden,
                          ctx=RunContext(cache_dir=str(o["cache_dir"]) if o["cache_dir"] else None))
    rows, info = audit.run_settings(data, split, retriever, settings, o["num_negatives"], o["seed"],
                                    depth=o["depth"], cache_dir=o["cache_dir"], near_duplicates=o["near_duplicates"],
                                    scorers=scorers)
    info["holdout"] = holdout.as_dict()
    for r in rows:
        r["holdout"] = holdout.protocol
    table = render(rows, info)
    payload = {"settings": rows, "retrieval": info, "holdout": holdout.as_dict()}
    if out is not None:
        from negmine.core.atomic import write_json, write_text

        write_json(out / "audit.json", payload)
        write_text(out / "audit.md", table + "\n")
    sys.stdout.write((json.dumps(payload, indent=2) if args.json else table) + "\n")
    return 0
