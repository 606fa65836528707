"""In-batch false negatives per batch sampler, on a mining output (issue 20).

For the training rows ``negmine train`` builds from MINED_DIR (``n-tuple``, NUM_NEGATIVES
negatives), draws one epoch of batches with sentence-transformers' ``BATCH_SAMPLER`` (plain
random), its ``NO_DUPLICATES`` and negmine's ``MinedBatchSampler`` at several hardness values, for
each seed, and counts the in-batch negatives (other rows' positives and negatives) that are a
known positive of the anchor's query, or a likely false negative the run skipped for it
(:func:`negmine.text.st.count_collisions`). Also the time the mined sampler takes to compose an epoch.

    python benchmarks/st_collisions.py runs/scifact-st/dense-default/seed-0/mined --batch-size 16
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mined")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--num-negatives", type=int, default=1)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--hardness", default="0,0.5,1")
    args = p.parse_args(argv)

    import torch
    from sentence_transformers.base.sampler import DefaultBatchSampler, NoDuplicatesBatchSampler
    from torch.utils.data import RandomSampler

    from negmine.text.st import MinedBatchSampler, RunIndex, count_collisions, load_run, row_keys
    from negmine.text.train.rows import to_dataset, training_rows
    from negmine.text.writers.mined import load_mined

    rows, texts, _ = load_mined(args.mined)
    train_rows, counts = training_rows(rows, texts, args.num_negatives)
    dataset = to_dataset(train_rows)
    t0 = time.perf_counter()
    index = RunIndex.from_result(load_run(args.mined))
    index_s = time.perf_counter() - t0
    keys = row_keys(dataset)
    b = args.batch_size
    out: dict[str, object] = {"rows": len(dataset), "batch_size": b, "index": index.stats,
                              "index_s (includes re-mining the run)": round(index_s, 2), "samplers": []}
    table: list[dict[str, object]] = []
    for seed in (int(s) for s in args.seeds.split(",")):
        g = torch.Generator()
        g.manual_seed(seed)
        plain = DefaultBatchSampler(RandomSampler(dataset, generator=g), b, False, generator=g, seed=seed)
        g2 = torch.Generator()
        g2.manual_seed(seed)
        nodup = NoDuplicatesBatchSampler(dataset, b, False, generator=g2, seed=seed)
        for name, sampler in (("st default", plain), ("st no-duplicates", nodup)):
            t = time.perf_counter()
            batches = [list(x) for x in sampler]
            table.append({"sampler": name, "seed": seed, "seconds": round(time.perf_counter() - t, 3),
                          **count_collisions(batches, keys, index)})
        for h in (float(x) for x in args.hardness.split(",")):
            mined = MinedBatchSampler.factory(index, hardness=h)(dataset, batch_size=b, drop_last=False, seed=seed)
            t = time.perf_counter()
            batches = list(mined)
            table.append({"sampler": f"mined h={h:g}", "seed": seed, "seconds": round(time.perf_counter() - t, 3),
                          **count_collisions(batches, keys, index), **mined.stats})
    out["samplers"] = table
    out["counts"] = counts
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
