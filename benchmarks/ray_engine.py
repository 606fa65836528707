"""The ray engine beside the local engine, in one run: BM25 mining and precomputed-embedding dense
mining of a synthetic corpus, each engine in its own fresh process (so peak memory is its own).

Reports, per retriever: wall time of ``negmine.mine`` with ``engine="local"`` and with
``engine="ray"`` (2 workers, on a local 2-CPU cluster started before the timer; its start-up is
reported apart), their ratio, the driver's peak RSS, the largest peak RSS of any Ray worker
process (sampled every 0.1 s; a worker's RSS counts the object-store pages and the pages of
memory-mapped files it touches, so shared pages are counted in every worker that reads them)
and the largest peak USS (the worker's private memory, sampled every second). With
``--doc-shard N``, dense also runs with ``RayEngine(doc_shard=N)`` (row ``ray-docs``). The mined
files are compared byte for byte.

Usage: python benchmarks/ray_engine.py [--docs 100000] [--queries 8192] [--dim 384]
       [--query-shard 2048] [--doc-shard N] [--retrievers bm25,dense] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

WORDS = [f"w{i}" for i in range(30000)]


def make_data(root: Path, n_docs: int, n_queries: int, dim: int) -> None:
    """A BEIR directory (Zipf-like word draws, seeded) and aligned precomputed embeddings."""
    if (root / "done").is_file():
        return
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    zipf = np.minimum(rng.zipf(1.3, size=(n_docs, 24)), len(WORDS)) - 1
    with (root / "corpus.jsonl").open("w") as fh:
        for i in range(n_docs):
            fh.write(json.dumps({"_id": f"d{i}", "title": "", "text": " ".join(WORDS[j] for j in zipf[i])}) + "\n")
    pos = rng.choice(n_docs, size=n_queries, replace=False)
    with (root / "queries.jsonl").open("w") as fh:
        for i, d in enumerate(pos):
            fh.write(json.dumps({"_id": f"q{i}", "text": " ".join(WORDS[j] for j in zipf[d][:6])}) + "\n")
    (root / "qrels").mkdir(exist_ok=True)
    (root / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{d}\t1\n" for i, d in enumerate(pos)))
    d = rng.standard_normal((n_docs, dim), dtype=np.float32)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    q = d[pos] + 0.5 * rng.standard_normal((n_queries, dim), dtype=np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    np.save(root / "docs.npy", d)
    np.save(root / "queries.npy", q.astype(np.float32))
    (root / "done").write_text("ok")


def _workers_rss(stop: threading.Event, peak: dict[str, int]) -> None:
    import psutil

    tick = 0
    while not stop.is_set():
        for p in psutil.process_iter(["cmdline", "memory_info"]):
            cmd = p.info.get("cmdline") or []
            mem = p.info.get("memory_info")
            if cmd and cmd[0].startswith("ray::") and mem is not None:
                peak["worker"] = max(peak.get("worker", 0), mem.rss)
                if tick % 10 == 0:  # USS reads /proc/PID/smaps: once a second
                    try:
                        peak["worker_uss"] = max(peak.get("worker_uss", 0), p.memory_full_info().uss)
                    except psutil.Error:
                        pass
        tick += 1
        stop.wait(0.1)


def child(engine: str, kind: str, root: Path, out: Path, query_shard: int, doc_shard: int | None) -> dict[str, Any]:
    import negmine
    from negmine.text.retrievers import BM25, Dense

    started = 0.0
    eng: Any = "local"
    if engine.startswith("ray"):
        import ray

        from negmine.text.engines.ray import RayEngine

        t0 = time.perf_counter()
        ray.init(address="local", num_cpus=2, log_to_driver=False, include_dashboard=False)
        started = time.perf_counter() - t0
        eng = RayEngine(workers=2, doc_shard=doc_shard if engine == "ray-docs" else None)
    data = negmine.load_beir(root, split="train")
    retriever = BM25() if kind == "bm25" else Dense(doc_embeddings=str(root / "docs.npy"),
                                                     query_embeddings=str(root / "queries.npy"))
    peak: dict[str, int] = {}
    stop = threading.Event()
    poll = threading.Thread(target=_workers_rss, args=(stop, peak), daemon=True)
    poll.start()
    t0 = time.perf_counter()
    res = negmine.mine(data, retriever, num_negatives=5, out=out, engine=eng, query_shard=query_shard, depth=30)
    wall = time.perf_counter() - t0
    stop.set()
    poll.join()
    mined = (out / "mined.parquet").read_bytes()
    return {"engine": engine, "retriever": kind, "wall_s": round(wall, 2), "cluster_start_s": round(started, 2),
            "driver_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
            "worker_peak_mb": peak.get("worker", 0) >> 20, "worker_uss_mb": peak.get("worker_uss", 0) >> 20,
            "sha256": hashlib.sha256(mined).hexdigest()[:16],
            "stats": {k: v for k, v in res.stats.items() if k.startswith("ray_")}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=8192)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--query-shard", type=int, default=2048)
    ap.add_argument("--doc-shard", type=int, default=None)
    ap.add_argument("--retrievers", default="bm25,dense", help="comma-separated: bm25, dense")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--child", nargs=2, metavar=("ENGINE", "RETRIEVER"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    work = Path(a.workdir or tempfile.mkdtemp(prefix="ray_bench_"))
    root = work / f"data_{a.docs}_{a.queries}_{a.dim}"
    if a.child:
        engine, kind = a.child
        out = work / f"out_{engine}_{kind}_{time.time_ns()}"
        print(json.dumps(child(engine, kind, root, out, a.query_shard, a.doc_shard)))
        return
    make_data(root, a.docs, a.queries, a.dim)
    print(f"{a.docs} documents, {a.queries} queries, dim {a.dim}, query shard {a.query_shard}, "
          f"doc shard {a.doc_shard}, depth 30")
    print(f"{'retriever':9} {'engine':8} {'wall s':>7} {'start s':>7} {'driver MB':>9} {'worker MB':>9} "
          f"{'wkr USS':>7}  sha256")
    for kind in a.retrievers.split(","):
        rows = {}
        engines = ("local", "ray", "ray-docs") if kind == "dense" and a.doc_shard else ("local", "ray")
        for engine in engines:
            cmd = [sys.executable, __file__, "--docs", str(a.docs), "--queries", str(a.queries), "--dim", str(a.dim),
                   "--query-shard", str(a.query_shard), "--workdir", str(work), "--child", engine, kind]
            if a.doc_shard:
                cmd += ["--doc-shard", str(a.doc_shard)]
            p = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if p.returncode != 0:
                sys.exit(f"{engine} {kind} failed:\n{p.stderr[-3000:]}")
            r = rows[engine] = json.loads(p.stdout.strip().splitlines()[-1])
            print(f"{kind:9} {engine:8} {r['wall_s']:7.2f} {r['cluster_start_s']:7.2f} {r['driver_peak_mb']:9d} "
                  f"{r['worker_peak_mb']:9d} {r['worker_uss_mb']:7d}  {r['sha256']}")
        for engine in engines[1:]:
            ratio = rows[engine]["wall_s"] / rows["local"]["wall_s"]
            same = rows[engine]["sha256"] == rows["local"]["sha256"]
            print(f"{kind:9} {engine}/local wall-time ratio {ratio:.2f}x; identical mined.parquet: {same}; "
                  f"ray stats {json.dumps(rows[engine]['stats'])}")


if __name__ == "__main__":
    main()
