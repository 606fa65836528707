"""``compare(sweep.toml)``: run a grid of mining settings through mine → train → evaluate and
write one table (``compare.md``, ``compare.json``) and a plot (``compare.png``).

The sweep file
--------------
TOML with four tables of shared options and one ``[[setting]]`` array::

    [sweep]
    out = "runs/scifact"                     # output directory (--out overrides it)
    dataset = "../shared/datasets/scifact"   # a BEIR directory (required)
    train_split = "train"                    # qrels split mined and trained on ("train")
    eval_split = "test"                      # qrels split evaluated on ("test")
    baseline = "zero-shot"                   # the setting the others are tested against
                                             # (default: the first untrained setting, else the first)
    seeds = [0]                              # each trained setting runs once per seed ([0])
    audit_hide_fraction = 0.5                # optional: hidden-positive FNR of each mining

    [mine]        # mining options of every setting: any key of ``negmine mine`` (options.DEFAULTS)
    retriever = "dense"                      # except the inputs (dataset, split, corpus, queries,
    num_negatives = 1                        # qrels, pairs), out, overwrite and seed
    cache_dir = "runs/cache"

    [train]       # training options of every setting: any field of negmine.text.train.TrainConfig
    model = "sentence-transformers/all-MiniLM-L6-v2"   # the starting model (except seed)
    loss = "mnrl"
    epochs = 1
    max_seq_length = 128

    [evaluate]    # evaluation options shared by every row: max_length, batch_size,
    batch_size = 64                          # query_prompt, document_prompt

    [[setting]]
    name = "zero-shot"
    train = false                            # evaluate the starting model only

    [[setting]]
    name = "bm25 top"
    retriever = "bm25"                       # any [mine] key, for this setting only

    [[setting]]
    name = "dense rm 0.05"
    relative_margin = 0.05
    train = { loss = "gist" }                # training options for this setting only

    [[setting]]
    name = "dense default"
    policy = "default"                       # the policy ``negmine mine`` picks without policy options

Rules:

- Unknown tables or keys are a :class:`~negmine.core.errors.ConfigError` naming the key and the
  known ones. Relative paths are relative to the working directory, as for ``negmine mine``.
- A setting with ``train = false`` mines and trains nothing: it evaluates a model as it is. It
  accepts only ``name``, ``train``, ``model`` (default: the starting model) and ``retriever``
  (``"dense"``, the default, or ``"bm25"`` to evaluate BM25 itself). It is seed-independent and
  evaluated once.
- ``policy = "default"`` mines with :func:`negmine.text.calibrate.default_policy` decided on the train
  split (calibrated, or the preset), as ``negmine mine`` without policy options does; the setting
  and ``[mine]`` then may not set policy options (sampler, filters, ``target_fnr``, ``depth``, ...).
  With ``audit_hide_fraction``, every setting is audited by mining the visible half as the run
  mined everything: a calibrated policy is chosen again on the visible half, margins keep their
  ``positive_reference``.
- The starting model is ``[train] model``; it is also the mining model when ``[mine]`` names
  none (and vice versa), so one ``model`` key sets both.
- Mining never sees the evaluation labels: ``exclude_splits`` defaults to the train split only
  (``negmine mine`` itself excludes the positives of every split).
- Every row is evaluated with the same options: ``[evaluate] max_length`` defaults to
  ``[train] max_seq_length`` (128) and the prompts to the ``[train]`` prompts.

Layout and resumability
-----------------------
A trained setting writes ``OUT/<slug>/seed-<s>/`` with ``mined/`` (``negmine mine`` output),
``model/`` (``negmine train`` output), ``metrics.json`` (means and per-query scores),
``audit.json`` (with ``audit_hide_fraction``) and ``compare-state.json``, which records for each
step the key of its inputs (the mining run id; the mined manifest's hash and the training
options; the model record's hash and the evaluation options) and the hash of what it wrote. A
step whose output exists with the recorded hash and whose key matches is *reused*, not re-run,
so a re-run skips what is done and redoes exactly what changed downstream. An untrained setting
writes ``OUT/<slug>/metrics.json`` and ``OUT/<slug>/compare-state.json``.

Sharing: data is loaded once; retrievers are kept by their configuration, so settings with the
same retriever share its BM25 index and dense embeddings, and candidates are retrieved once per
(retriever, depth); dense embeddings of the starting model go through ``[mine] cache_dir``
(mining and the untrained rows). A trained model is always evaluated *without* the embedding
cache: it is encoded once anyway, and a model retrained into the same directory must never meet
entries of its predecessor (the cache key fingerprints the model files by name, size and content
samples, so it would change too; not caching makes that independent of the fingerprint).

Significance
------------
The difference in nDCG@10 to the baseline is tested with a paired two-sided randomisation
(sign-flip) test over the evaluation queries, per-query scores averaged over seeds
(:func:`permutation_test`): exact enumeration up to 16 non-zero differences, else 10,000 seeded
random sign vectors.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from negmine.core.progress import progress
from negmine.core.stats import EXACT_MAX, N_PERMUTATIONS
from negmine.core.stats import permutation_test as permutation_test
from negmine.text.compare.render import render_markdown as render_markdown
from negmine.text.compare.render import write_outputs
from negmine.text.compare.run import Runner, read_json
from negmine.text.compare.sweep import PRIMARY as PRIMARY
from negmine.text.compare.sweep import Setting, Sweep, load_sweep
from negmine.text.compare.sweep import slugify as slugify
from negmine.text.evaluate import METRICS

__all__ = ["CompareResult", "Setting", "Sweep", "compare", "load_sweep", "permutation_test"]

# ------------------------------------------------------------------------------------- running
@dataclass
class CompareResult:
    """The table (``rows``, one per setting), every run with its steps (``runs``: status ``"done"``
    or ``"reused"``, seconds, paths), and the files written."""

    out: Path
    rows: list[dict[str, Any]]
    runs: list[dict[str, Any]]
    files: dict[str, Path]
    summary: dict[str, Any]
    markdown: str

    @property
    def all_reused(self) -> bool:
        """Whether every step of every run was reused (nothing was computed)."""
        return all(all(r["reused"].values()) for r in self.runs)



def compare(sweep: Sweep | str | Path, *, out: str | Path | None = None) -> CompareResult:
    """Run every setting of a sweep (mine → train → evaluate, each seed), reusing finished steps,
    and write ``compare.md``, ``compare.json`` and ``compare.png`` into the output directory.

    Parameters
    ----------
    sweep
        A :class:`Sweep` or the path of a sweep file (see the module docstring).
    out
        Output directory; overrides ``[sweep] out`` (only with a path).

    Returns
    -------
    CompareResult
        One row per setting (metrics averaged over seeds, the difference in nDCG@10 to the
        baseline with its paired randomisation p-value, training and mining seconds, mining
        audit figures) and every run with the status of each of its steps.

    Raises
    ------
    ConfigError
        An invalid sweep file (before anything runs).
    DataError
        A missing dataset or split.
    """
    if not isinstance(sweep, Sweep):
        sweep = load_sweep(sweep, out=out)
    elif out is not None:
        sweep = dataclasses.replace(sweep, out=Path(out), out_overridden=True)
    runner = Runner(sweep)
    runner.eval_data()  # fail on a missing split before any training
    for s in sweep.settings:
        if s.train:
            runner.data(sweep.mine_options(s, sweep.seeds[0]))
    jobs: list[tuple[Setting, int | None]] = []
    for s in sweep.settings:
        jobs.extend([(s, None)] if not s.train else [(s, seed) for seed in sweep.seeds])
    runs: list[dict[str, Any]] = []
    for s, seed in progress(jobs, desc="compare", total=len(jobs), unit="run"):
        runs.append(runner.run_untrained(s) if seed is None else runner.run_trained(s, seed))
    rows = _rows(sweep, runs)
    n_queries = len(runner.eval_data().queries)
    summary = {
        "command": sweep.command(),
        "config": str(sweep.path),
        "config_sha256": sweep.sha256(),
        "dataset": sweep.dataset,
        "train_split": sweep.train_split,
        "eval_split": sweep.eval_split,
        "eval_queries": n_queries,
        "seeds": sweep.seeds,
        "baseline": sweep.baseline,
        "metric": PRIMARY,
        "test": {"name": "paired two-sided randomisation (sign-flip) test over queries",
                 "exact_up_to": EXACT_MAX, "permutations": N_PERMUTATIONS, "seed": 0},
        "rows": rows,
        "runs": runs,
    }
    files, markdown = write_outputs(sweep, summary)
    return CompareResult(out=sweep.out, rows=rows, runs=runs, files=files, summary=summary, markdown=markdown)


def _mean(values: Sequence[float | None]) -> float | None:
    v = [x for x in values if x is not None and not (isinstance(x, float) and np.isnan(x))]
    return float(np.mean(v)) if v else None


def _rows(sweep: Sweep, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from negmine.text.train.trainer import RECORD

    per_query: dict[str, dict[str, float]] = {}
    rows: list[dict[str, Any]] = []
    for s in sweep.settings:
        mine = [r for r in runs if r["setting"] == s.name]
        metrics = [read_json(Path(r["dir"]) / "metrics.json") for r in mine]
        qids = sorted(metrics[0]["per_query"])
        per_query[s.name] = {q: float(np.mean([m["per_query"][q][PRIMARY] for m in metrics])) for q in qids}
        row: dict[str, Any] = {
            "setting": s.name, "slug": s.slug, "trained": s.train,
            "seeds": [r["seed"] for r in mine] if s.train else [],
            "metrics": {m: float(np.mean([x["metrics"][m] for x in metrics])) for m in METRICS},
            "metrics_std": {m: float(np.std([x["metrics"][m] for x in metrics])) for m in METRICS},
            "reused": all(all(r["reused"].values()) for r in mine),
        }
        if s.train:
            reports = [read_json(Path(r["dir"]) / "mined" / "report.json") for r in mine]
            records = [read_json(Path(r["dir"]) / "model" / RECORD) for r in mine]
            row.update(
                train_s=_mean([rec.get("timings", {}).get("train_s") for rec in records]),
                mine_s=_mean([rep.get("timings", {}).get("total_s") for rep in reports]),
                mean_negative_score=_mean([rep["scores"]["negative"]["mean"] for rep in reports]),
                mean_rank=_mean([rep["ranks"]["mean"] for rep in reports]),
                shortfall_pct=_mean([rep["shortfall"]["pct"] for rep in reports]),
            )
            if sweep.audit_hide_fraction is not None:
                row["hp_fnr"] = _mean([r["steps"]["audit"]["metrics"].get("hp_fnr") for r in mine])
        rows.append(row)
    base = per_query[sweep.baseline]
    base_row = next(r for r in rows if r["setting"] == sweep.baseline)
    for row in rows:
        if row["setting"] == sweep.baseline:
            row.update(delta=None, p_value=None)
            continue
        mine_pq = per_query[row["setting"]]
        common = sorted(set(base) & set(mine_pq))
        a = np.array([mine_pq[q] for q in common])
        b = np.array([base[q] for q in common])
        row.update(delta=row["metrics"][PRIMARY] - base_row["metrics"][PRIMARY],
                   p_value=permutation_test(a, b))
    return rows
