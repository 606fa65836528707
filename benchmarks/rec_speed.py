"""Speed and memory of recommendation negative sampling: negmine vs a RecBole-style loop.

Task: 100 negatives for every training interaction (uniform and popularity^0.75 sampling; a
user's known positives never negatives).

- negmine: ``negmine.rec.sample_negatives`` (vectorised hashing, rejection in rounds), run over
  chunks of interactions whose outputs are folded into a checksum (position-free sampling means
  chunking does not change a single negative; memory is bounded by the chunk).
- reference: the loop RecBole's sampler runs, written here from its description: for each user,
  draw ``randint``/``choice`` values for all its slots, then check every draw against the user's
  set of positives in Python and redraw the hits until none is left.

Each measurement runs in a fresh interpreter, so its peak RSS (``ru_maxrss``) is its own.

Data: ml-100k (ratings >= 4 positives, time split 0.2, from ``../shared``) and a synthetic set
of 10M interactions (1M users with log-normal activity, 100k items with Zipf popularity). On the
synthetic set the reference runs on 1% of the users (and negmine on the same 1%, side by side);
its full-set time is the 1% time x 100, labelled as extrapolated.

Usage: ``python benchmarks/rec_speed.py [--quick] [--full-popularity]`` (``--quick``: ml-100k
only; the whole synthetic set runs uniform only unless ``--full-popularity``). The synthetic data
and its split are cached under ``$TMPDIR`` (building them takes minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ML100K = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "ml-100k"
N_NEG = 100
FIELDS = ("user_ids", "item_ids", "users", "items", "ratings", "times", "positive")


def load(dataset: str):  # type: ignore[no-untyped-def]
    from negmine.rec.data import Interactions, RecData, from_arrays, load_interactions, split_interactions
    from negmine.text.types import Qrels

    if dataset == "ml-100k":
        inter = load_interactions(ML100K, min_rating=4, drop_users_without_positives=True)
        return split_interactions(inter, "time", 0.2)
    cache = Path(os.environ.get("TMPDIR", "/tmp")) / "negmine-rec-synthetic-10M.npz"  # benchmark-only cache
    if not cache.is_file():
        rng = np.random.default_rng(0)
        n_users, n_items, n = 1_000_000, 100_000, 10_000_000
        activity = rng.lognormal(0.0, 1.0, n_users)
        users = rng.choice(n_users, size=int(n * 1.03), p=activity / activity.sum())
        zipf = 1.0 / np.arange(1, n_items + 1) ** 0.9
        items = rng.choice(n_items, size=len(users), p=zipf / zipf.sum())
        _, first = np.unique(users.astype(np.int64) * n_items + items, return_index=True)
        first = np.sort(first)[:n]  # the first n distinct pairs in drawing order
        np.savez(cache, users=users[first], items=items[first])
    split_cache = cache.with_name(cache.stem + "-split.npz")  # the split too: building it takes minutes
    if not split_cache.is_file():
        z = np.load(cache)
        d = split_interactions(from_arrays(z["users"], z["items"], None, None, source="synthetic"), "random", 0.2)
        x = d.interactions
        np.savez(split_cache, **{f"x_{f}": getattr(x, f) for f in FIELDS},
                 **{f"{q}_{a}": getattr(getattr(d, q), a) for q in ("train", "test", "exclude")
                    for a in ("indptr", "indices", "grades")})
    z = np.load(split_cache)
    x = Interactions(**{f: z[f"x_{f}"] for f in FIELDS}, has_time=False, source="synthetic")
    qrels = {q: Qrels(z[f"{q}_indptr"], z[f"{q}_indices"], z[f"{q}_grades"]) for q in ("train", "test", "exclude")}
    return RecData(x, qrels["train"], qrels["test"], qrels["exclude"], {"method": "random", "test_fraction": 0.2})


def subset(data, fraction: float):  # type: ignore[no-untyped-def]
    """Training pairs of the first ``fraction`` of users."""
    users = data.train.query_of_pair()
    m = users < int(data.n_users * fraction)
    return users[m], data.train.indices[m]


def run_negmine(data, sampler_name: str, users, items) -> dict:  # type: ignore[no-untyped-def]
    from negmine.rec.mining import sample_negatives
    from negmine.rec.samplers import Context, make_sampler

    sampler = make_sampler(sampler_name)
    t_setup = time.perf_counter()
    ctx = Context(data, 0)  # hashes the ids, builds the excluded-pair filter
    t0 = time.perf_counter()
    chunk = 200_000
    checksum = 0
    for a in range(0, len(users), chunk):
        neg, _ = sample_negatives(data, sampler, N_NEG, 0, users=users[a:a + chunk], items=items[a:a + chunk], ctx=ctx)
        checksum = (checksum + int(neg.sum())) % (1 << 61)
    return {"seconds": time.perf_counter() - t_setup, "setup_seconds": t0 - t_setup, "checksum": checksum,
            "rejected": ctx.rejected}


def run_reference(data, sampler_name: str, users, items) -> dict:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    n_items = data.n_items
    ex = data.exclude
    cdf = None
    if sampler_name == "popularity":  # one cumulative table, built once (RecBole builds an alias table once)
        w = data.item_counts().astype(np.float64) ** 0.75
        cdf = np.cumsum(w / w.sum())

    def draw(n: int) -> np.ndarray:
        if cdf is None:
            return rng.integers(0, n_items, n)
        return np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), n_items - 1)
    t0 = time.perf_counter()
    order = np.argsort(users, kind="stable")
    u_sorted = users[order]
    starts = np.searchsorted(u_sorted, np.arange(data.n_users))
    ends = np.searchsorted(u_sorted, np.arange(data.n_users), side="right")
    checksum = 0
    for u in range(data.n_users):
        n_rows = ends[u] - starts[u]
        if n_rows == 0:
            continue
        used = set(ex.indices[ex.indptr[u]:ex.indptr[u + 1]].tolist())
        n = n_rows * N_NEG
        draws = draw(n)
        check = [k for k, v in enumerate(draws.tolist()) if v in used]
        while check:
            new = draw(len(check))
            draws[check] = new
            check = [k for k, v in zip(check, new.tolist()) if v in used]
        checksum = (checksum + int(draws.sum())) % (1 << 61)
    return {"seconds": time.perf_counter() - t0, "checksum": checksum}


def child(method: str, dataset: str, sampler: str, fraction: float) -> None:
    t0 = time.perf_counter()
    data = load(dataset)
    load_s = time.perf_counter() - t0
    users, items = subset(data, fraction) if fraction < 1 else (data.train.query_of_pair(), data.train.indices)
    fn = run_negmine if method == "negmine" else run_reference
    out = fn(data, sampler, users, items)
    out.update(method=method, dataset=dataset, sampler=sampler, fraction=fraction, load_seconds=load_s,
               interactions=len(users), negatives=len(users) * N_NEG,
               peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    sys.stdout.write(json.dumps(out) + "\n")


def measure(method: str, dataset: str, sampler: str, fraction: float = 1.0) -> dict:
    env = {**os.environ, "NEGMINE_PROGRESS": "0"}
    p = subprocess.run([sys.executable, __file__, "--child", method, dataset, sampler, str(fraction)],
                       capture_output=True, text=True, env=env, check=True)
    return json.loads(p.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--full-popularity", action="store_true", help="also popularity on the whole synthetic set")
    ap.add_argument("--child", nargs=4, default=None)
    a = ap.parse_args()
    if a.child:
        child(a.child[0], a.child[1], a.child[2], float(a.child[3]))
        return
    runs = []
    plan = [("ml-100k", 1.0, ("uniform", "popularity"))]
    if not a.quick:
        plan += [("synthetic-10M", 0.01, ("uniform", "popularity")),
                 ("synthetic-10M", 1.0, ("uniform", "popularity") if a.full_popularity else ("uniform",))]
    for dataset, fraction, samplers in plan:
        for sampler in samplers:
            methods = ("negmine", "reference") if fraction < 1 or dataset == "ml-100k" else ("negmine",)
            for method in methods:
                r = measure(method, dataset, sampler, fraction)
                runs.append(r)
                print(json.dumps(r), flush=True)
    print("\n| data | sampler | users | interactions | negatives | negmine s | reference s | speed-up | "
          "negmine peak RSS MB | reference peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        if r["method"] != "negmine":
            continue
        ref = next((x for x in runs if x["method"] == "reference" and x["dataset"] == r["dataset"]
                    and x["sampler"] == r["sampler"] and x["fraction"] == r["fraction"]), None)
        if ref is None:  # full synthetic set: the reference extrapolated from its 1% run
            small = next(x for x in runs if x["method"] == "reference" and x["dataset"] == r["dataset"]
                         and x["sampler"] == r["sampler"])
            ref_s, ref_note, rss = small["seconds"] * r["interactions"] / small["interactions"], " (extrapolated)", "–"
        else:
            ref_s, ref_note, rss = ref["seconds"], "", f"{ref['peak_rss_mb']:.0f}"
        users = "1%" if r["fraction"] < 1 else "all"
        print(f"| {r['dataset']} | {r['sampler']} | {users} | {r['interactions']:,} | {r['negatives']:,} | "
              f"{r['seconds']:.2f} | {ref_s:.2f}{ref_note} | {ref_s / r['seconds']:.1f}x | "
              f"{r['peak_rss_mb']:.0f} | {rss} |")


if __name__ == "__main__":
    main()
