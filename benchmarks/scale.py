"""Scale benchmark (issue 7): seeded synthetic corpora of 100k / 1M / 10M documents.

Each measurement runs in its own subprocess (a fresh interpreter, so its peak RSS is its own):

* ``bm25s``        — bm25s alone, the reference: load the texts, tokenize, index, retrieve.
* ``negmine-bm25`` — ``negmine.load_beir`` + ``negmine.mine(data, BM25(), ...)`` end to end.
* ``dense``        — precomputed embeddings (``float32[n, 384]``, memory-mapped ``.npy``):
  the bare blocked matmul, ``faiss.knn`` (brute force, inner product) and ``Dense.search`` on the
  same arrays in the same process, then ``negmine.mine`` end to end with those embeddings.

Synthetic data: a Zipfian (s = 1.1) vocabulary of 50,000 pseudo-words, documents of 20-60 words
(mean 40), and queries of 4-8 words drawn from one planted positive document plus 2 random
words. Everything is a function of ``--seed``.

Usage::

    python benchmarks/scale.py --sizes 100000 1000000 --queries 2000 --dense-queries 1024
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _bench import quiet

VOCAB = 50_000
DIM = 384
ROOT = Path(os.environ.get("NEGMINE_SCALE_DIR", "/tmp/negmine-scale"))


# ------------------------------------------------------------------------------------------ data
def _words(n: int) -> list[str]:
    """``n`` distinct pseudo-words (base-20 consonant/vowel spellings), no stop-words."""
    cons, vow = "bcdfghjklmnprstvwxz", "aeiou"
    out = []
    for i in range(n):
        w, x = "", i + 400
        while x:
            x, r = divmod(x, len(cons) * len(vow))
            w += cons[r % len(cons)] + vow[r // len(cons)]
        out.append(w + "q")  # a suffix no English stop-word has
    return out


def generate(n_docs: int, n_queries: int, seed: int) -> Path:
    """Write (once) a BEIR directory with ``n_docs`` documents and ``n_queries`` queries."""
    root = ROOT / f"zipf-{n_docs}-{n_queries}-{seed}"
    if (root / "done").exists():
        return root
    root.mkdir(parents=True, exist_ok=True)
    (root / "qrels").mkdir(exist_ok=True)
    rng = np.random.default_rng([seed, n_docs, n_queries])
    words = np.array(_words(VOCAB), dtype=object)
    cdf = np.cumsum(1.0 / np.arange(1, VOCAB + 1) ** 1.1)
    cdf /= cdf[-1]
    chunk = 200_000
    with open(root / "corpus.jsonl", "w", encoding="utf-8") as fh:
        for lo in range(0, n_docs, chunk):
            hi = min(n_docs, lo + chunk)
            lens = rng.integers(20, 61, size=hi - lo)
            toks = np.searchsorted(cdf, rng.random(int(lens.sum())))
            ends = np.cumsum(lens)
            lines = []
            for i, (e, m) in enumerate(zip(ends, lens, strict=True)):
                text = " ".join(words[toks[e - m : e]])
                lines.append(json.dumps({"_id": f"d{lo + i}", "title": "", "text": text}))
            fh.write("\n".join(lines) + "\n")
    # planted positives: each query is a few words of its positive plus two random words
    pos = rng.choice(n_docs, size=n_queries, replace=False)
    want = {int(p): q for q, p in enumerate(pos)}
    texts: dict[int, str] = {}
    with open(root / "corpus.jsonl", encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i in want:
                texts[i] = json.loads(line)["text"]
    with open(root / "queries.jsonl", "w", encoding="utf-8") as fq, \
            open(root / "qrels" / "test.tsv", "w", encoding="utf-8") as fr:
        fr.write("query-id\tcorpus-id\tscore\n")
        for q, p in enumerate(pos):
            doc = texts[int(p)].split()
            pick = rng.choice(len(doc), size=min(len(doc), int(rng.integers(4, 9))), replace=False)
            extra = words[np.searchsorted(cdf, rng.random(2))]
            fq.write(json.dumps({"_id": f"q{q}", "text": " ".join([*(doc[i] for i in sorted(pick)), *extra])}) + "\n")
            fr.write(f"q{q}\td{int(p)}\t1\n")
    (root / "done").write_text("ok")
    return root


def embeddings(beir: Path, seed: int) -> tuple[Path, Path]:
    """Unit-norm ``float32[n, 384]`` document and query embeddings (``.npy``, rows aligned with
    the corpus and the queries of ``beir``), written in chunks; each query is a noisy copy of
    its planted positive."""
    root = beir / f"emb-{seed}"
    dpath, qpath = root / "docs.npy", root / "queries.npy"
    if (root / "done").exists():
        return dpath, qpath
    root.mkdir(parents=True, exist_ok=True)
    n_docs = sum(1 for _ in open(beir / "corpus.jsonl", "rb"))
    d = np.lib.format.open_memmap(dpath, mode="w+", dtype=np.float32, shape=(n_docs, DIM))
    for lo in range(0, n_docs, 250_000):
        rng = np.random.default_rng([seed, lo])
        x = rng.standard_normal((min(n_docs, lo + 250_000) - lo, DIM), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        d[lo : lo + len(x)] = x
    pos = [int(line.split("\t")[1][1:]) for line in open(beir / "qrels" / "test.tsv").read().splitlines()[1:]]
    rng = np.random.default_rng([seed, n_docs, len(pos)])
    q = d[np.array(pos)] + 0.5 * rng.standard_normal((len(pos), DIM), dtype=np.float32) / math.sqrt(DIM)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    np.save(qpath, q.astype(np.float32))
    d.flush()
    del d
    (root / "done").write_text("ok")
    return dpath, qpath


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_s() -> float:
    """User + system CPU seconds of this process so far (less sensitive than wall time to other
    processes sharing the cores)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# ------------------------------------------------------------------------------- measurements
def run_bm25s(beir: Path, k: int, backend: str = "numba") -> dict[str, float]:
    """bm25s alone, as its README uses it: load the texts, tokenize, index, retrieve top ``k``
    (its ``backend``; retrieval on every core, ``n_threads=-1``)."""
    import bm25s

    t0 = time.perf_counter()
    texts = []
    with open(beir / "corpus.jsonl", encoding="utf-8") as fh:
        for line in fh:
            doc = json.loads(line)
            texts.append(f"{doc['title']} {doc['text']}".strip())
    queries = [json.loads(line)["text"] for line in open(beir / "queries.jsonl", encoding="utf-8")]
    t_load = time.perf_counter()
    tokens = bm25s.tokenize(texts, stopwords="en", show_progress=False)
    del texts
    index = bm25s.BM25(k1=1.5, b=0.75, method="lucene", backend=backend)
    index.index(tokens, show_progress=False)
    del tokens
    t_index = time.perf_counter()
    qt = bm25s.tokenize(queries, stopwords="en", show_progress=False)
    ids, _ = index.retrieve(qt, k=k, show_progress=False, n_threads=-1)
    t_end = time.perf_counter()
    return {"wall_s": t_end - t0, "load_s": t_load - t0, "index_s": t_index - t_load,
            "search_s": t_end - t_index, "peak_rss_mb": peak_rss_mb(), "rows": float(ids.shape[0]),
            "cpu_s": cpu_s()}


def run_negmine_bm25(beir: Path, k: int) -> dict[str, float]:
    """negmine end to end through the public API (load, BM25, filters, sampler, result)."""
    import negmine
    from negmine.text.retrievers.bm25 import BM25

    t0 = time.perf_counter()
    data = negmine.load_beir(beir, split="test")
    t_load = time.perf_counter()
    res = negmine.mine(data, BM25(), num_negatives=5, depth=k, seed=0)
    t_end = time.perf_counter()
    timings = getattr(res, "timings", None) or {}
    out = {"wall_s": t_end - t0, "load_s": t_load - t0, "peak_rss_mb": peak_rss_mb(),
           "rows": float(len(data.queries)), "cpu_s": cpu_s()}
    out.update({f"neg_{key}": float(v) for key, v in timings.items() if isinstance(v, (int, float))})
    return out


def run_dense(beir: Path, k: int, n_queries: int, seed: int) -> dict[str, float]:
    """Exact search of ``n_queries`` queries against every document embedding (memory-mapped):
    bare blocked matmul, ``faiss.knn`` and ``Dense.search`` side by side, then mining end to end
    with the precomputed embeddings (``Dense(doc_embeddings=..., query_embeddings=...)``, so
    nothing is encoded)."""
    import faiss

    import negmine
    from negmine.text.retrievers.base import rescore_exact, resort
    from negmine.text.retrievers.dense import Dense
    from negmine.text.retrievers.embedding import EXTRA

    dpath, qpath = embeddings(beir, seed)
    d = np.load(dpath, mmap_mode="r")
    q = np.load(qpath)[:n_queries]
    kk = k + EXTRA
    flop = 2.0 * len(q) * len(d) * d.shape[1]
    out: dict[str, float] = {"docs": float(len(d)), "queries": float(len(q))}
    dense = Dense(query_block=1024, doc_block=8192)
    for _ in range(2 if len(d) <= 300_000 else 1):  # alternate: load on the shared machine hits all three
        t0 = time.perf_counter()
        for qs in range(0, len(q), 1024):
            for ds in range(0, len(d), 8192):
                _ = q[qs : qs + 1024] @ np.asarray(d[ds : ds + 8192]).T
        t_mm = time.perf_counter() - t0
        t0 = time.perf_counter()
        _, fi = faiss.knn(q, np.asarray(d), kk, metric=faiss.METRIC_INNER_PRODUCT)
        t_faiss = time.perf_counter() - t0
        t0 = time.perf_counter()
        ids, _ = dense.search(q, d, kk)
        t_dense = time.perf_counter() - t0
        for name, t in (("matmul", t_mm), ("faiss_knn", t_faiss), ("dense_search", t_dense)):
            out[f"{name}_s"] = min(out.get(f"{name}_s", math.inf), t)
    for name in ("matmul", "faiss_knn", "dense_search"):
        out[f"{name}_gflops"] = flop / out[f"{name}_s"] / 1e9
    # the same candidates after the exact re-scoring both go through
    a = resort(ids, rescore_exact(q, d, ids), k)
    b = resort(fi.astype(np.int64), rescore_exact(q, d, fi.astype(np.int64)), k)
    out["same_top_k_as_faiss"] = float(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]))
    # end to end through negmine.mine with the precomputed embeddings
    del d
    t0 = time.perf_counter()
    data = negmine.load_beir(beir, split="test")
    retriever = Dense(doc_embeddings=str(dpath), query_embeddings=str(qpath))  # the --doc-embeddings path
    negmine.mine(data, retriever, num_negatives=5, depth=k, seed=0)
    out["mine_wall_s"] = time.perf_counter() - t0
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def child(argv: list[str], repeat: int = 3) -> dict[str, float]:
    """Run one measurement ``repeat`` times, each in a fresh interpreter; the median of every
    figure, and the min/max of the wall time (``wall_s_min``, ``wall_s_max``)."""
    runs = [_child_once(argv) for _ in range(repeat)]
    out = {key: float(np.median([r[key] for r in runs])) for key in runs[0]}
    out["wall_s_min"] = min(r["wall_s" if "wall_s" in r else "dense_search_s"] for r in runs)
    out["wall_s_max"] = max(r["wall_s" if "wall_s" in r else "dense_search_s"] for r in runs)
    return out


def _child_once(argv: list[str]) -> dict[str, float]:
    proc = subprocess.run([sys.executable, __file__, "--child", *argv], capture_output=True, text=True,
                          env={**os.environ, "NEGMINE_PROGRESS": "0"})
    if proc.returncode != 0:
        raise RuntimeError(f"child {argv} failed:\n{proc.stderr[-3000:]}")
    out: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000], help="BM25 corpus sizes")
    ap.add_argument("--dense-sizes", type=int, nargs="+", default=[200_000, 1_000_000])
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--dense-queries", type=int, default=1024)
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip", nargs="*", default=[], choices=["bm25", "dense"])
    ap.add_argument("--ref-backend", default="numba", choices=["numba", "numpy"], help="bm25s backend of the reference")
    ap.add_argument("--allow-load", action="store_true", help="run on a busy machine (figures flagged)")
    ap.add_argument("--repeats", type=int, default=3, help="fresh processes per measurement (median of them)")
    args = ap.parse_args()
    if args.child:
        mode, n, nq, k, seed, dq = args.child[0], *map(int, args.child[1:6])
        beir = generate(n, nq, seed)
        if mode.startswith("bm25s"):
            res = run_bm25s(beir, k, mode.split("-")[1])
        elif mode == "negmine-bm25":
            res = run_negmine_bm25(beir, k)
        else:
            res = run_dense(beir, k, dq, seed)
        print(json.dumps(res))
        return
    with quiet(allow_load=args.allow_load) as session:
        report(args)
    print(f"\n{session.header()}")


def _exponent(rows: list[dict[str, float]], key: str) -> str:
    """Growth exponent of ``key`` with corpus size between the first and the last row."""
    if len(rows) < 2:
        return "-"
    a, b = rows[0], rows[-1]
    return f"{math.log(b[key] / a[key]) / math.log(b['n'] / a['n']):.2f}"


def report(args: argparse.Namespace) -> None:
    t_start = time.perf_counter()
    print(f"# negmine scale benchmark: seed {args.seed}, {args.queries} queries, k {args.k}, "
          f"{os.cpu_count()} CPUs", flush=True)
    bm: list[dict[str, float]] = []
    if "bm25" not in args.skip:
        print(f"\n## BM25 (bm25s alone, {args.ref_backend} backend, retrieval on every core = reference; each run "
              f"in a fresh process, median of {args.repeats} (min-max))\n")
        print("| docs | bm25s s | bm25s MB | negmine s | negmine MB | wall ratio | CPU-time ratio | RSS ratio | "
              "negmine index / search s |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for n in args.sizes:
            generate(n, args.queries, args.seed)
            argv = [str(n), str(args.queries), str(args.k), str(args.seed), str(args.dense_queries)]
            ref = child([f"bm25s-{args.ref_backend}", *argv], args.repeats)
            ours = child(["negmine-bm25", *argv], args.repeats)
            row = {"n": n, "ref_s": ref["wall_s"], "ref_mb": ref["peak_rss_mb"], "s": ours["wall_s"],
                   "mb": ours["peak_rss_mb"], "search_s": ours.get("neg_search_s", math.nan),
                   "index_s": ours.get("neg_index_s", math.nan), "ref_search_s": ref["search_s"]}
            bm.append(row)
            print(f"| {n:,} | {ref['wall_s']:.1f} ({ref['wall_s_min']:.1f}-{ref['wall_s_max']:.1f}) | "
                  f"{ref['peak_rss_mb']:.0f} | "
                  f"{ours['wall_s']:.1f} ({ours['wall_s_min']:.1f}-{ours['wall_s_max']:.1f}) | "
                  f"{ours['peak_rss_mb']:.0f} | {ours['wall_s'] / ref['wall_s']:.2f} | "
                  f"{ours['cpu_s'] / ref['cpu_s']:.2f} | {ours['peak_rss_mb'] / ref['peak_rss_mb']:.3f} | "
                  f"{row['index_s']:.1f} / {row['search_s']:.1f} |",
                  flush=True)
            print(f"<!-- bm25s {json.dumps(ref)} -->\n<!-- negmine {json.dumps(ours)} -->", flush=True)
        print(f"\ngrowth exponent (time ∝ n^e, memory ∝ n^e), {bm[0]['n']:,} -> {bm[-1]['n']:,} docs: "
              f"negmine time {_exponent(bm, 's')}, RSS {_exponent(bm, 'mb')}; "
              f"bm25s time {_exponent(bm, 'ref_s')}, RSS {_exponent(bm, 'ref_mb')}")
    dn: list[dict[str, float]] = []
    if "dense" not in args.skip:
        print(f"\n## Exact dense search, {args.dense_queries} queries x n docs x {DIM} dims (same arrays, "
              "same process)\n")
        print("| docs | matmul s (GFLOP/s) | faiss.knn s (GFLOP/s) | Dense.search s (GFLOP/s) | "
              "Dense / faiss throughput | Dense / matmul | same top-k | mine end to end s | peak MB |")
        print("|---:|---:|---:|---:|---:|---:|---|---:|---:|")
        for n in args.dense_sizes:
            generate(n, args.queries, args.seed)
            argv = [str(n), str(args.queries), str(args.k), str(args.seed), str(args.dense_queries)]
            r = child(["dense", *argv])
            r["n"] = n
            dn.append(r)
            print(f"| {n:,} | {r['matmul_s']:.1f} ({r['matmul_gflops']:.0f}) | {r['faiss_knn_s']:.1f} "
                  f"({r['faiss_knn_gflops']:.0f}) | {r['dense_search_s']:.1f} ({r['dense_search_gflops']:.0f}) | "
                  f"{r['faiss_knn_s'] / r['dense_search_s']:.2f} | {r['matmul_s'] / r['dense_search_s']:.2f} | "
                  f"{'yes' if r['same_top_k_as_faiss'] else 'NO'} | {r['mine_wall_s']:.1f} | {r['peak_rss_mb']:.0f} |",
                  flush=True)
        print(f"\ngrowth exponent, {dn[0]['n']:,} -> {dn[-1]['n']:,} docs: Dense.search time "
              f"{_exponent(dn, 'dense_search_s')}, mine wall {_exponent(dn, 'mine_wall_s')}, "
              f"peak RSS {_exponent(dn, 'peak_rss_mb')}")
    projection(bm, dn, args)
    print(f"\n(benchmark wall time {time.perf_counter() - t_start:.0f} s)")


#: MiniLM-L6 on this CPU, from BENCHMARKS.md (SciFact cold run: 5,992 texts in 163.1 s)
CPU_ENCODE_PER_S = 5992 / 163.1


def projection(bm: list[dict[str, float]], dn: list[dict[str, float]], args: argparse.Namespace) -> None:
    """An 8.8M-passage x 500k-query run (MS MARCO), extrapolated from the largest measured size:
    BM25 indexing linear in documents, search linear in documents x queries; dense search at the
    measured GFLOP/s (CPU) or at an assumed sustained fp32 GEMM rate (GPU)."""
    n_docs, n_q = 8_800_000, 500_000
    print(f"\n## Projection: {n_docs:,} passages x {n_q:,} queries (from the largest size measured)\n")
    if bm:
        r = bm[-1]
        index = r["index_s"] * n_docs / r["n"]
        search = r["search_s"] * (n_docs / r["n"]) * (n_q / args.queries)
        print(f"- BM25 on this machine: index {index / 60:.0f} min + search {search / 3600:.1f} h "
              f"(1 core; the search is per query and parallel over queries)")
    if dn:
        r = dn[-1]
        flop = 2.0 * n_docs * n_q * DIM
        cpu = flop / (r["dense_search_gflops"] * 1e9)
        print(f"- Dense exact search on this machine: {flop / 1e15:.2f} PFLOP at "
              f"{r['dense_search_gflops']:.0f} GFLOP/s = {cpu / 3600:.1f} h; encoding {n_docs + n_q:,} texts "
              f"with MiniLM-L6 at {CPU_ENCODE_PER_S:.0f} texts/s (BENCHMARKS.md) = "
              f"{(n_docs + n_q) / CPU_ENCODE_PER_S / 3600:.0f} h")
        gpu_gflops = 30_000.0  # assumption: sustained fp32 GEMM of one H100/H200-class GPU, no TF32
        print(f"- Dense exact search on one GPU (assumed {gpu_gflops / 1000:.0f} TFLOP/s sustained fp32, "
              f"documents resident, 13.5 GB): {flop / (gpu_gflops * 1e9) / 60:.1f} min — not measured here "
              "(no GPU lent to this run)")


if __name__ == "__main__":
    main()
