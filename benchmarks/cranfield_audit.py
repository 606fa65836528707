"""False-negative audit on Cranfield (test split, ~7 graded positives per query).

For BM25 and dense MiniLM: hidden-positive FNR, hardness and coverage of `top` with no filter,
relative margins 0.02 / 0.05 / 0.1, SimANS, and `--target-fnr 0.05` calibration (the policy search of
negmine.text.calibrate, through negmine.mine); under two hiding
schemes: (a) grades 3-4 visible to the miner, grades 1-2 hidden; (b) a seeded half of every
query's positives hidden. Each retriever runs ONE retrieval per scheme for all settings.

SimANS `a` is on the squared score scale: 0.05 for BM25 (scores ~0-40), 100 for cosine.

Usage: python benchmarks/cranfield_audit.py [--dataset DIR] [--cache-dir DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import negmine
from negmine.text import audit
from negmine.text import filters as F
from negmine.text import samplers as S
from negmine.text.audit import Setting

HERE = Path(__file__).resolve().parent
DEFAULT = HERE.parent.parent / "shared" / "datasets" / "cranfield"


def settings(simans_a: float) -> list[Setting]:
    out = [Setting("top, no filter", [], S.Top())]
    out += [Setting(f"top, relative margin {m}", [F.RelativeMargin(m)], S.Top()) for m in (0.02, 0.05, 0.1)]
    out.append(Setting(f"simans (a={simans_a:g}), no filter", [], S.SimANS(a=simans_a)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default=str(DEFAULT))
    ap.add_argument("--cache-dir", default=str(HERE / ".cache"))
    ap.add_argument("--out", default=str(HERE / "out-cranfield" / "cranfield_audit.json"))
    args = ap.parse_args()
    data = negmine.load_beir(args.dataset, "test")
    retrievers = {
        "bm25": (negmine.text.retrievers.BM25(), 0.05),
        "dense MiniLM": (negmine.text.retrievers.Dense("sentence-transformers/all-MiniLM-L6-v2"), 100.0),
    }
    schemes = {
        "grades 3-4 visible, 1-2 hidden": audit.hide_below_grade(data, 3),
        "half of each query's positives hidden (seed 0)": audit.hide_fraction(data, 0.5, 0),
    }
    results = []
    lines = []
    for rname, (retriever, a) in retrievers.items():
        for sname, split in schemes.items():
            t0 = time.perf_counter()
            rows, info = audit.run_settings(data, split, retriever, settings(a), 5, 0, cache_dir=args.cache_dir)
            # calibration: estimated on held-out queries of the visible data, then measured on the split
            vis = split.visible
            res = negmine.mine(vis, retriever, [], S.Top(), 5, 0, target_fnr=0.05, cache_dir=args.cache_dir)
            cal = res.calibration or {}
            met = audit.negative_metrics(res, split.hidden)
            rows.append({"setting": f"--target-fnr 0.05 (chose {cal.get('chosen', {}).get('policy')})",
                         **met, "calibration": {k: v for k, v in cal.items() if k != "frontier"}})
            elapsed = time.perf_counter() - t0
            results.append({"retriever": rname, "scheme": sname, "rows": rows, "retrieval": info, "seconds": elapsed})
            lines.append(f"\n### {rname} — {sname}\n")
            lines.append("| setting | HP-FNR | 95% CI | mean neg score | mean rank | mean s/s+ | coverage | set |")
            lines.append("|---|---:|---:|---:|---:|---:|---:|---:|")
            for r in rows:
                ci = r["hp_fnr_ci95"]
                lines.append(
                    f"| {r['setting']} | {r['hp_fnr']:.4f} | {ci[0]:.3f}–{ci[1]:.3f} | "
                    f"{r['mean_negative_score']:.3f} | {r['mean_rank']:.1f} | "
                    f"{r['mean_score_over_positive']:.3f} | {r['coverage']:.3f} | {r['set_score']:.3f} |"
                )
            lines.append(f"\n{len(rows) - 1} settings on {info['retrievals']} retrieval (depth {info['depth']}); "
                         f"{rows[0]['queries_audited']} queries, {rows[0]['hidden_positives']} hidden positives; "
                         f"{elapsed:.1f}s with calibration")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
