"""Fingerprint the outputs of a fixed set of runs, to show a refactor changed no byte.

Runs the CLI (``python -m negmine``) on the bundled sample (BM25 and dense mining, every export
format, the text and HTML reports, an audit, a two-seed compare with a tiny model built in code),
on MovieLens 100K (rec mine, audit, compare; read from ``../shared`` and skipped without it) and
on PyKEEN's Nations (kg mine with four samplers, kg audit, kg compare), then writes one SHA-256
per output file. Values that differ between two runs of the same code (wall times, dates,
absolute paths of the temporary directory) are masked before hashing; everything else must match.

    python benchmarks/layout_snapshot.py --out before.json          # on the old layout
    python benchmarks/layout_snapshot.py --out after.json           # on the new one
    python benchmarks/layout_snapshot.py --diff before.json after.json
    python benchmarks/layout_snapshot.py --only kg --out kg.json && ... --only kg --diff before.json kg.json

Several people sharing a machine: wrap it in ``flock /tmp/negmine-layout.lock`` (one fixed work
directory).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "src" / "negmine" / "sample"
ML100K = ROOT.parent / "shared" / "datasets" / "ml-100k"

# keys whose values are clocks, dates, hosts or durations: masked in every JSON file
VOLATILE_KEY = re.compile(r"(seconds|elapsed|wall|duration|_time$|^time$|timestamp|created|date|started|finished"
                          r"|host|pid|per_second|throughput|rss|memory|took|timing|_s$)", re.IGNORECASE)
# a SHA-256 is of a file that holds timings (manifest checksums, compare-state), or a key made of one; the
# files themselves are compared
DIGEST = re.compile(r"\b[0-9a-f]{64}\b")
TIME_TEXT = re.compile(r"(\"|&quot;)\w+_s(\"|&quot;): ?-?[\d.e+-]+|\d+(\.\d+)?\s?(s|ms|min)\b"
                       r"|\d{4}-\d\d-\d\dT[\d:.]+\S*|\d{4}-\d\d-\d\d \d\d:\d\d(:\d\d)?")


def negmine(*args: str | Path, cwd: Path) -> None:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", NEGMINE_PROGRESS="0",
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0")
    cmd = [sys.executable, "-m", "negmine.cli", *map(str, args)]
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr[-3000:]}")


def text_runs(w: Path) -> None:
    sys.path.insert(0, str(ROOT / "tests" / "unit"))
    from tiny_models import build_tiny_sentence_transformer

    sample = w / "sample"  # a copy, so that paths in the outputs do not depend on the checkout
    shutil.copytree(SAMPLE, sample, ignore=shutil.ignore_patterns("*.md"))

    words: set[str] = set()
    for name in ("corpus.jsonl", "queries.jsonl"):
        for line in (sample / name).read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            words.update(re.findall(r"\w+", f"{r.get('title', '')} {r['text']}".lower()))
    model = build_tiny_sentence_transformer(w / "tiny-st", sorted(words))
    for name, extra in (("bm25", ["--retriever", "bm25"]),
                        ("dense", ["--retriever", "dense", "--model", str(model), "--cache-dir", str(w / "cache")]),
                        ("bm25-random", ["--retriever", "bm25", "--sampler", "random", "--num-negatives", "3"])):
        negmine("mine", "--dataset", sample, *extra, "--out", w / "text" / name,
                "--html", w / "text" / f"{name}.html", cwd=w)
    for fmt in ("triplet", "n-tuple", "labeled-pair", "labeled-list", "flag", "tevatron", "tevatron-ids"):
        for suffix in ("jsonl",) if fmt == "flag" else ("jsonl", "parquet"):
            negmine("export", w / "text" / "bm25", "--format", fmt, "--out", w / "export" / f"{fmt}.{suffix}", cwd=w)
    negmine("report", w / "text" / "dense", "--html", w / "text" / "dense-report.html", cwd=w)
    negmine("audit", "--dataset", sample, "--retriever", "bm25", "--out", w / "audit", cwd=w)
    (w / "sweep.toml").write_text(f"""
[sweep]
out = "{w / 'compare'}"
dataset = "{sample}"
seeds = [0, 1]
audit_hide_fraction = 0.5
[mine]
num_negatives = 1
cache_dir = "{w / 'cache'}"
[train]
model = "{model}"
max_steps = 2
batch_size = 8
lr = 0.005
[[setting]]
name = "zero-shot"
train = false
[[setting]]
name = "bm25 top"
retriever = "bm25"
[[setting]]
name = "random"
retriever = "dense"
sampler = "random"
""", encoding="utf-8")
    negmine("compare", w / "sweep.toml", cwd=w)


def rec_runs(w: Path) -> None:
    if not ML100K.is_dir():
        return
    data = ["--interactions", ML100K / "u.data", "--format", "movielens"]
    negmine("rec", "mine", *data, "--out", w / "rec" / "uniform", cwd=w)
    negmine("rec", "mine", *data, "--sampler", "dns", "--scorer", "als", "--iterations", "3", "--num-negatives", "2",
            "--out", w / "rec" / "dns", cwd=w)
    negmine("rec", "audit", *data, "--samplers", "uniform,popularity,dns", "--scorer", "als", "--iterations", "3",
            "--out", w / "rec" / "audit", cwd=w)
    negmine("rec", "compare", *data, "--samplers", "uniform,popularity", "--seeds", "0,1", "--epochs", "1",
            "--out", w / "rec" / "compare", cwd=w)


def kg_runs(w: Path) -> None:
    for sampler in ("uniform", "bernoulli", "typed", "hard", "hasa"):
        model = ["--kge-epochs", "2"] if sampler in ("hard", "hasa") else []
        negmine("kg", "mine", "--dataset", "nations", "--sampler", sampler, "--num-negatives", "4", *model,
                "--out", w / "kg" / sampler, cwd=w)
    negmine("kg", "audit", "--dataset", "nations", "--samplers", "uniform,bernoulli,hard", "--kge-epochs", "2",
            "--out", w / "kg" / "audit",
            cwd=w)
    negmine("kg", "compare", "--dataset", "nations", "--samplers", "uniform,bernoulli", "--seeds", "0,1",
            "--epochs", "2", "--out", w / "kg" / "compare", cwd=w)


def mask(value: Any) -> Any:
    if isinstance(value, dict):
        if "key" in value and "output_sha256" in value:  # a compare step: its key hashes earlier outputs
            value = {**value, "key": "<key>"}
        return {k: ("<masked>" if VOLATILE_KEY.search(k) else mask(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v) for v in value]
    if isinstance(value, str):
        return DIGEST.sub("<sha>", TIME_TEXT.sub("<t>", value))
    return value


def mask_time_columns(text: str) -> str:
    """Blank the cells of markdown-table columns whose header is a time ('train s', 'mine s')."""
    out, timed = [], set()
    for line in text.splitlines():
        cells = line.split("|")
        if not line.startswith("|"):
            timed = set()
        elif not timed and any(c.strip().endswith(" s") or c.strip() == "s" for c in cells):
            timed = {i for i, c in enumerate(cells) if c.strip().endswith(" s") or c.strip() == "s"}
        elif timed and not set(line) <= set("|-: "):
            line = "|".join("<t>" if i in timed else c for i, c in enumerate(cells))
        out.append(line)
    return "\n".join(out)


def fingerprint(path: Path) -> str:
    data = path.read_bytes()
    if path.suffix == ".json":
        body = json.loads(data)
        if path.name == "manifest.json" and isinstance(body.get("files"), dict):
            body["files"] = sorted(body["files"])  # checksums of files that hold timings; each file is compared itself
        data = json.dumps(mask(body), sort_keys=True).encode()
    elif path.suffix in (".md", ".html", ".txt", ".toml", ".log") or path.name.endswith(".jsonl"):
        text = data.decode("utf-8", "replace")
        text = TIME_TEXT.sub("<t>", mask_time_columns(text) if path.suffix == ".md" else text)
        data = DIGEST.sub("<sha>", text).encode()
    return hashlib.sha256(data).hexdigest()


STEPS = {"text": text_runs, "rec": rec_runs, "kg": kg_runs}
#: the top-level output folders of each step (``--only`` compares just these)
FOLDERS = {"text": ("text", "export", "audit", "compare", "sweep.toml"), "rec": ("rec",), "kg": ("kg",)}


def snapshot(w: Path, only: tuple[str, ...] = tuple(STEPS)) -> dict[str, str]:
    """Run the steps in ``w`` (emptied first; a fixed path, since run ids and cache keys hash paths)."""
    shutil.rmtree(w, ignore_errors=True)
    w.mkdir(parents=True)
    for name in only:
        STEPS[name](w)
    skip = ("tiny-st", "tiny-st-bert", "cache", "sample")
    return {str(p.relative_to(w)): fingerprint(p) for p in sorted(w.rglob("*"))
            if p.is_file() and p.relative_to(w).parts[0] not in skip and "model" not in p.relative_to(w).parts
            and p.name != "lock"}


def diff(before: dict[str, str], after: dict[str, str], only: tuple[str, ...] = tuple(STEPS)) -> list[str]:
    folders = tuple(f for name in only for f in FOLDERS[name])
    before = {k: v for k, v in before.items() if k.split("/")[0] in folders}
    after = {k: v for k, v in after.items() if k.split("/")[0] in folders}
    lines = [f"only before: {k}" for k in sorted(before.keys() - after.keys())]
    lines += [f"only after:  {k}" for k in sorted(after.keys() - before.keys())]
    lines += [f"differs:     {k}" for k in sorted(before.keys() & after.keys()) if before[k] != after[k]]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="write {file: sha256} here")
    parser.add_argument("--work", type=Path, default=Path("/tmp/negmine-layout"),
                        help="where the runs are written and left to inspect (emptied first; default %(default)s)")
    parser.add_argument("--diff", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    parser.add_argument("--only", default="text,rec,kg", help="comma-separated steps to run or compare: text, rec, kg")
    args = parser.parse_args()
    only = tuple(x for x in args.only.split(",") if x)
    if set(only) - set(STEPS):
        parser.error(f"--only: unknown step(s) {sorted(set(only) - set(STEPS))}; use text, rec, kg")
    if args.diff:
        lines = diff(*(json.loads(p.read_text()) for p in args.diff), only=only)
        folders = tuple(f for name in only for f in FOLDERS[name])
        compared = [k for k in json.loads(args.diff[0].read_text()) if k.split("/")[0] in folders]
        print("\n".join(lines) or f"identical: {len(compared)} files")
        raise SystemExit(1 if lines else 0)
    if args.out is None:
        parser.error("give --out FILE or --diff BEFORE AFTER")
    files = snapshot(args.work, only)
    args.out.write_text(json.dumps(files, indent=1, sort_keys=True) + "\n")
    print(f"{len(files)} files -> {args.out}")


if __name__ == "__main__":
    main()
