"""``negmine audit``: hidden-positive false-negative rates of several settings, one retrieval."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from negmine.cli.mine import add_mining_arguments, resolve_options
from negmine.errors import ConfigError

MULTI = ("relative_margin", "absolute_margin", "max_score", "fn_max_prob", "positive_reference", "sampler")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_mining_arguments(p, multi=MULTI)
    p.add_argument("--config", help="TOML file with the mining options (flags override it)")
    h = p.add_argument_group("hidden positives (pick one)")
    h.add_argument("--hide-fraction", type=float, default=None,
                   help="hide this seeded fraction of each query's positives (0.5 when nothing else is given)")
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
    from negmine import filters as F
    from negmine.audit import Setting
    from negmine.options import build_filters, build_sampler

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
    lines.append(
        f"{len(rows)} settings on {info['retrievals']} retrieval (depth {info['depth']}, "
        f"{info['retrieve_s']:.2f}s); {first.get('queries_audited', 0)} queries with "
        f"{first.get('hidden_positives', 0)} hidden positives audited"
    )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from negmine import audit
    from negmine.data import read_qrels
    from negmine.options import build_retriever, load_data

    o = resolve_options(args)
    chosen = [x for x in ("hide_fraction", "visible_min_grade", "hidden_qrels") if getattr(args, x) is not None]
    if len(chosen) > 1:
        flags = ", ".join("--" + c.replace("_", "-") for c in chosen)
        raise ConfigError(f"pick one way to hide positives, got {flags}")
    settings = build_settings(o)
    retriever = build_retriever(o)
    data = load_data(o)
    if args.hidden_qrels:
        split = audit.hide_qrels(data, read_qrels(args.hidden_qrels))
    elif args.visible_min_grade is not None:
        split = audit.hide_below_grade(data, args.visible_min_grade)
    else:
        split = audit.hide_fraction(data, args.hide_fraction if args.hide_fraction is not None else 0.5, o["seed"])
    rows, info = audit.run_settings(data, split, retriever, settings, o["num_negatives"], o["seed"],
                                    depth=o["depth"], cache_dir=o["cache_dir"], near_duplicates=o["near_duplicates"])
    table = render(rows, info)
    payload = {"settings": rows, "retrieval": info}
    if args.out:
        out = Path(args.out)
        from negmine.writers._atomic import write_json, write_text

        write_json(out / "audit.json", payload)
        write_text(out / "audit.md", table + "\n")
    sys.stdout.write((json.dumps(payload, indent=2) if args.json else table) + "\n")
    return 0
