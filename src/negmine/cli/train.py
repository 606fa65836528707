"""``negmine train OUT --model NAME --loss mnrl|cached-mnrl|gist|debiased --out MODEL_DIR``:
fine-tune a sentence-transformers model on a mining output (``--batch-sampler mined``,
``--mask-false-negatives``, ``--remine-every``: :mod:`negmine.text.st`)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from negmine.core.errors import ConfigError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("mined", metavar="MINED_DIR", help="the --out directory of 'negmine mine'")
    p.add_argument("--model", default="sentence-transformers/all-MiniLM-L6-v2",
                   help="starting sentence-transformers model, name or path (MiniLM-L6-v2)")
    p.add_argument("--loss", default="mnrl", help="mnrl | cached-mnrl | gist | debiased (mnrl)")
    p.add_argument("--out", default=None, help="model directory to write (required)")
    p.add_argument("--overwrite", action="store_true", help="replace a previous 'negmine train' output in --out")
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=float, default=1, help="passes over the training rows (1)")
    g.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (overrides --epochs)")
    g.add_argument("--batch-size", type=int, default=16, help="rows per batch (16)")
    g.add_argument("--lr", type=float, default=2e-5, help="learning rate (2e-5)")
    g.add_argument("--warmup-ratio", type=float, default=0.1, help="share of steps with linear warm-up (0.1)")
    g.add_argument("--max-seq-length", type=int, default=128, help="tokens per text (128)")
    g.add_argument("--seed", type=int, default=0, help="random seed: batch order, dropout (0)")
    g.add_argument("--num-negatives", type=int, default=None,
                   help="use at most N mined negatives per row (default: all; 0 = in-batch negatives only)")
    g = p.add_argument_group("loss")
    g.add_argument("--temperature", type=float, default=None,
                   help="softmax temperature, scale = 1/temperature (0.05; gist: 0.01)")
    g.add_argument("--tau-plus", type=float, default=0.1, help="debiased: share of negatives assumed positive (0.1)")
    g.add_argument("--mini-batch-size", type=int, default=8, help="cached-mnrl: GradCache mini-batch (8)")
    g.add_argument("--guide", default=None, help="gist: guide model (default: the mining model, else --model)")
    g.add_argument("--query-prompt", default=None, help="text prepended to anchors")
    g.add_argument("--document-prompt", default=None, help="text prepended to positives and negatives")
    g = p.add_argument_group("in-batch negatives (negmine.text.st)")
    g.add_argument("--batch-sampler", default="no-duplicates",
                   help="no-duplicates | default | mined: batches with no known positive or likely false negative "
                        "of another row, hard by the run's neighbour graph (no-duplicates)")
    g.add_argument("--hardness", type=float, default=0.5,
                   help="mined sampler: share of batch slots filled from neighbouring queries, 0-1 (0.5)")
    g.add_argument("--mask-false-negatives", action="store_true",
                   help="mnrl/cached-mnrl: mask in-batch candidates scoring like a known positive")
    g.add_argument("--mask-target", type=float, default=0.05,
                   help="hidden-positive rate the masking bound is calibrated for (0.05)")
    g = p.add_argument_group("re-mining and evaluation")
    g.add_argument("--remine-every", type=int, default=None,
                   help="re-mine with the model being trained every N steps (ANCE/AR2)")
    g.add_argument("--eval-dataset", default=None, help="BEIR directory to evaluate on during training")
    g.add_argument("--eval-split", default="test", help="qrels split of --eval-dataset (test)")
    g.add_argument("--eval-steps", type=int, default=None, help="evaluate every N steps (default: start and end)")
    g.add_argument("--encode-batch-size", type=int, default=32, help="batch size of re-mining/eval encoding (32)")
    p.add_argument("--json", action="store_true", help="print the training record as JSON on stdout")


_FIELDS = ("model", "loss", "epochs", "max_steps", "batch_size", "lr", "warmup_ratio", "max_seq_length", "seed",
           "num_negatives", "temperature", "tau_plus", "mini_batch_size", "guide", "query_prompt",
           "document_prompt", "remine_every", "eval_dataset", "eval_split", "eval_steps", "encode_batch_size",
           "batch_sampler", "hardness", "mask_false_negatives", "mask_target")


def run(args: argparse.Namespace) -> int:
    from negmine.text.train.trainer import TrainConfig, train

    if not args.out:
        raise ConfigError("--out is required: the directory to write the trained model to")
    options: dict[str, Any] = {k: getattr(args, k) for k in _FIELDS}
    if float(options["epochs"]).is_integer():
        options["epochs"] = int(options["epochs"])
    config = TrainConfig(**options)
    config.validate()
    result = train(args.mined, args.out, config, overwrite=args.overwrite)
    rec = result.record
    if args.json:
        sys.stdout.write(json.dumps(rec, indent=2) + "\n")
        return 0
    ds = rec["dataset"]
    t = rec["timings"]
    sys.stdout.write(
        f"trained {rec['model']['name']} with {rec['loss']['name']} for {rec['steps']} steps on {ds['rows']} rows "
        f"({ds['queries_used']} of {ds['queries']} queries, {ds['num_negatives']} negatives each) "
        f"in {t['train_s']:.1f}s -> {result.model_dir}\n"
    )
    if rec["train_loss"] is not None:
        sys.stdout.write(f"mean training loss {rec['train_loss']:.4f}\n")
    bs = rec["batch_sampler"]
    if bs["name"] == "mined":
        sys.stdout.write(f"mined batch sampler: hardness {bs['hardness']}, {bs['neighbour_slots']} slots from "
                         f"neighbours, {bs['forced_rows']} rows placed with a conflict, "
                         f"{bs['compose_s']:.2f}s composing\n")
    if rec["masking"] is not None:
        m = rec["masking"]
        sys.stdout.write(f"masked {m['masked_cells']} of {m['scored_cells']} in-batch cells "
                         f"({100 * m['masked_share']:.2f}%) over {m['steps']} steps, {m['seconds']:.2f}s\n")
    for r in rec["refreshes"]:
        sys.stdout.write(f"re-mined at step {r['step']}: {100 * r['new_pair_share']:.1f}% new (query, negative) "
                         f"pairs, mean Jaccard {r['mean_jaccard']:.3f}, {r['seconds']:.1f}s\n")
    if rec["evaluations"]:
        names = list(rec["evaluations"][0]["metrics"])
        sys.stdout.write("| step | " + " | ".join(names) + " |\n|---:|" + "---:|" * len(names) + "\n")
        for e in rec["evaluations"]:
            sys.stdout.write(f"| {e['step']} | " + " | ".join(f"{e['metrics'][m]:.4f}" for m in names) + " |\n")
    return 0
