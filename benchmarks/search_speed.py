"""Search speed against the references, on the same arrays / the same index, in the same run
(issue 18, items 2, 3 and 5). Holds the benchmark lock, records the load, repeats every
measurement (3 times; dense: ``--repeat`` rounds after an untimed one, the three in turn) and
prints median (min-max) and ratios.

* dense: unit-norm random ``float32[n, 384]`` documents and queries in memory; the bare blocked
  sgemm (the BLAS limit: the products alone, no selection), ``faiss.knn`` (inner product) and
  ``negmine.text.retrievers.Dense.search`` (exact top k, ties settled exactly) screening float32
  products and, on a CPU with bfloat16 instructions, bfloat16 ones (the same bytes), k = 100.
* bm25: the synthetic Zipf corpus of ``benchmarks/scale.py``; bm25s' numpy and numba backends
  (``retrieve``, one thread, as their README) against negmine's BM25 search on the same tokens
  (numpy path; compiled path on one thread and on every core), top 100. The index is built once.

Usage::

    python benchmarks/search_speed.py dense --sizes 200000:2048 1000000:1024
    python benchmarks/search_speed.py bm25 --sizes 200000 1000000 --queries 2000
    python benchmarks/search_speed.py dense --sizes 200000:2048 --doc-blocks 8192 2048 1024 512
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _bench import Session, Timing, interleaved, paired, quiet, ratio, timed

K = 100
DIM = 384


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    x = np.empty((n, DIM), dtype=np.float32)
    for lo in range(0, n, 100_000):
        b = rng.standard_normal((min(n, lo + 100_000) - lo, DIM), dtype=np.float32)
        x[lo : lo + len(b)] = b / np.linalg.norm(b, axis=1, keepdims=True)
    return x


def blocked_sgemm(q: np.ndarray, d: np.ndarray, qbs: int, dbs: int) -> Callable[[], None]:
    """The BLAS limit: every ``qbs x dbs`` block of products into one reused buffer, nothing else."""
    buf = np.empty((qbs, dbs), dtype=np.float32)

    def sgemm() -> None:
        for qs in range(0, len(q), qbs):
            qb = q[qs : qs + qbs]
            for ds in range(0, len(d), dbs):
                db = d[ds : ds + dbs]
                np.matmul(qb, db.T, out=buf[: len(qb), : len(db)])

    return sgemm


def dense_blocks(sizes: list[str], blocks: list[int], repeat: int = 3) -> None:
    """``Dense.search`` with each ``doc_block`` (one sgemm's documents; the block of products the
    screen reads is ``query_block x doc_block`` floats), the settings interleaved repeat by repeat
    so that a drift of the machine hits them alike, beside the bare blocked sgemm of the default
    block. The output bytes must not depend on the block size; checked."""
    print("## Dense.search by doc_block (interleaved)\n")
    print("| docs | queries | doc_block | products per block | Dense.search | / sgemm (default block) |")
    print("|---|---|---|---|---|---|")
    for spec in sizes:
        n_docs, n_q = (int(x) for x in spec.split(":"))
        print(_dense_blocks_one(n_docs, n_q, blocks, repeat), flush=True)


def _dense_blocks_one(n_docs: int, n_q: int, blocks: list[int], repeat: int) -> str:
    import time

    from negmine.text.retrievers import Dense

    rng = np.random.default_rng([0, n_docs])
    d, q = unit(rng, n_docs), unit(rng, n_q)
    base = Dense(encoder=None)
    qbs, dbs = base.query_block, base.doc_block
    sgemm = blocked_sgemm(q, d, qbs, dbs)
    runs: dict[int, list[float]] = {b: [] for b in blocks}
    gemm: list[float] = []
    first: dict[int, bytes] = {}
    for _ in range(repeat):
        t0 = time.perf_counter()
        sgemm()
        gemm.append(time.perf_counter() - t0)
        for b in blocks:
            r = Dense(encoder=None, doc_block=b)
            t0 = time.perf_counter()
            ids, sc = r.search(q, d, K)
            runs[b].append(time.perf_counter() - t0)
            first.setdefault(b, ids.tobytes() + sc.tobytes())
    if len(set(first.values())) != 1:
        raise SystemExit("Dense.search gave different bytes for different doc_block")
    tg = Timing(gemm)
    rows = [f"| {n_docs:,} | {n_q:,} | {b:,} | {qbs * b * 4 / 2**20:.0f} MB | {Timing(runs[b])} | "
            f"{ratio(Timing(runs[b]), tg)} |" for b in blocks]
    return "\n".join(rows) + f"\n\nbare blocked sgemm (doc_block {dbs:,}): {tg}\n"


def dense(sizes: list[str], s: Session, repeat: int = 3) -> None:
    from negmine.text.retrievers import dense_bf16

    bf16 = dense_bf16.usable()
    if bf16:
        import torch  # imported before timing, as in a run that encodes with sentence-transformers

        torch_threads = torch.get_num_threads()
    print("## Exact dense search, 384 dims, k = 100 (same arrays, same process)\n")
    print(f"Each measurement once untimed, then {repeat} rounds of all of them in turn (each round starting one "
          "further on); times are medians (min-max) over the rounds, ratios the median (min-max) of the "
          "ratios within each round. `Dense.search` screens float32 products (`screen_dtype=float32`) or "
          "bfloat16 ones (`screen_dtype=bfloat16`, what `auto` takes for searches this large on this CPU); "
          "both give the exact top k, and the last column checks that their bytes are equal.\n")
    print(f"bfloat16 dot-product instructions on this CPU: {'yes' if dense_bf16.native() else 'no'}"
          + (f" (torch {torch.__version__}, {torch_threads} threads)" if bf16 else " (bfloat16 columns skipped)")
          + "\n")
    print("| docs | queries | bare blocked sgemm | faiss.knn | Dense.search float32 | Dense.search bfloat16 | "
          "float32 / faiss | float32 / sgemm | bfloat16 / faiss | bfloat16 / sgemm | GFLOP/s (sgemm) | "
          "top-k agreement with faiss | same bytes |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for spec in sizes:
        n_docs, n_q = (int(x) for x in spec.split(":"))
        print(_dense_one(n_docs, n_q, repeat, bf16), flush=True)


def _dense_one(n_docs: int, n_q: int, repeat: int, bf16: bool) -> str:
    import faiss

    from negmine.text.retrievers import Dense

    rng = np.random.default_rng([0, n_docs])
    d, q = unit(rng, n_docs), unit(rng, n_q)
    r = Dense(encoder=None, screen_dtype="float32")
    fns = {"sgemm": blocked_sgemm(q, d, r.query_block, r.doc_block),
           "faiss": lambda: faiss.knn(q, d, K, metric=faiss.METRIC_INNER_PRODUCT),
           "float32": lambda: r.search(q, d, K)}
    if bf16:
        rb = Dense(encoder=None, screen_dtype="bfloat16")
        fns["bfloat16"] = lambda: rb.search(q, d, K)
    t = interleaved(fns, repeat)
    agree = float(np.mean([len(np.intersect1d(a, b)) / K
                           for a, b in zip(t["float32"].value[0], t["faiss"].value[1])]))
    gflops = 2 * n_docs * n_q * DIM / t["sgemm"].median / 1e9
    cells = [f"{n_docs:,}", f"{n_q:,}", str(t["sgemm"]), str(t["faiss"]), str(t["float32"])]
    b = t.get("bfloat16")
    cells += [str(b) if b else "—", paired(t["float32"], t["faiss"]), paired(t["float32"], t["sgemm"])]
    cells += [paired(b, t["faiss"]), paired(b, t["sgemm"])] if b else ["—", "—"]
    equal = b is not None and all(np.array_equal(x.view(np.uint8), y.view(np.uint8))
                                  for x, y in zip(b.value, t["float32"].value))
    cells += [f"{gflops:.0f}", f"{agree:.4f}", "—" if b is None else "yes" if equal else "**no**"]
    return "| " + " | ".join(cells) + " |"


def bm25(sizes: list[str], n_queries: int, s: Session) -> None:
    import numba

    print(f"## BM25 search, {n_queries:,} queries, top {K} (index built once; search only)\n")
    print("| docs | bm25s numpy (1 thread) | bm25s numba (1 thread) | negmine numpy | negmine compiled, 1 thread | "
          f"negmine compiled, {numba.config.NUMBA_NUM_THREADS} threads | compiled 1 thread / bm25s numba | "
          "compiled all / bm25s numba | compiled all / negmine numpy |")
    print("|---|---|---|---|---|---|---|---|---|")
    for spec in sizes:
        print(_bm25_one(int(spec), n_queries), flush=True)


def _bm25_one(n_docs: int, n_queries: int) -> str:
    import bm25s
    import numba
    from scale import generate  # the same synthetic corpus as the scale benchmark

    import negmine
    from negmine.text.retrievers.bm25 import BM25

    root = generate(n_docs, n_queries, 0)
    data = negmine.load_beir(root, split="test")
    ours = {b: BM25(backend=b) for b in ("numpy", "numba")}
    for r in ours.values():
        r.retrieve(data, K)  # index, tokenize the queries, compile
    index = ours["numba"].state_[1]
    query_tokens = [[int(t) for t in row] for row in ours["numba"].queries_[1]]
    ref = {}
    for backend in ("numpy", "numba"):  # bm25s on the very same index and token ids
        b = bm25s.BM25(backend=backend)
        b.scores, b.vocab_dict, b.nonoccurrence_array = index.scores, index.vocab_dict, None
        b.unique_token_ids_set = set(index.vocab_dict.values())
        b.retrieve(query_tokens[:8], k=K, n_threads=1, show_progress=False)  # compile
        ref[backend] = timed(lambda b=b: b.retrieve(query_tokens, k=K, n_threads=1, show_progress=False))
    t_np = timed(lambda: ours["numpy"].retrieve(data, K))
    numba.set_num_threads(1)
    t_one = timed(lambda: ours["numba"].retrieve(data, K))
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    t_all = timed(lambda: ours["numba"].retrieve(data, K))
    same = np.array_equal(t_np.value.ids, t_all.value.ids) and np.array_equal(t_np.value.scores, t_all.value.scores)
    flag = "" if same else " DIFFERENT candidates between negmine's numpy and compiled paths"
    return (f"| {n_docs:,} | {ref['numpy']} | {ref['numba']} | {t_np} | {t_one} | {t_all} | "
            f"{ratio(t_one, ref['numba'])} | {ratio(t_all, ref['numba'])} | {ratio(t_all, t_np)} |{flag}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["dense", "bm25"])
    ap.add_argument("--sizes", nargs="+", required=True)
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--allow-load", action="store_true", help="run on a busy machine (figures flagged)")
    ap.add_argument("--repeat", type=int, default=3, help="dense: timed rounds, at least 1 (after one untimed)")
    ap.add_argument("--doc-blocks", type=int, nargs="+", default=None,
                    help="dense: time Dense.search with each doc_block instead (interleaved)")
    args = ap.parse_args()
    if args.repeat < 1:
        ap.error(f"--repeat {args.repeat}: give at least 1 timed round")
    with quiet(allow_load=args.allow_load) as s:
        if args.what == "dense" and args.doc_blocks:
            dense_blocks(args.sizes, args.doc_blocks, args.repeat)
        elif args.what == "dense":
            dense(args.sizes, s, args.repeat)
        else:
            bm25(args.sizes, args.queries, s)
    print(f"\n{s.header()}")


if __name__ == "__main__":
    main()
