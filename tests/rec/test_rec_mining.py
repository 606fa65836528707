"""``mine``: the result object's report, ranks, files and dataset."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from negmine.core.errors import ConfigError
from negmine.rec.data import from_arrays, split_interactions
from negmine.rec.mining import mine
from negmine.rec.samplers import DNS, Uniform
from negmine.rec.scorers import Scorer


def _data():  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    u = rng.integers(0, 15, 200)
    i = rng.integers(0, 40, 200)
    return split_interactions(from_arrays(u, i, None, np.arange(200)), "time", 0.2)


def test_ranks_scores_and_report_match_brute_force() -> None:
    data = _data()
    rng = np.random.default_rng(0)
    scorer = Scorer(rng.normal(size=(data.n_users, 3)).astype(np.float32),
                    rng.normal(size=(data.n_items, 3)).astype(np.float32), {"name": "planted"})
    r = mine(data, DNS(3), num_negatives=4, seed=1, scorer=scorer)
    full = scorer.user_factors @ scorer.item_factors.T
    for row in range(0, len(r.users), 7):
        u = r.users[row]
        for j, item in enumerate(r.negatives[row].tolist()):
            assert np.isclose(r.scores[row, j], full[u, item], atol=1e-5)
            assert r.ranks[row, j] == int((full[u] > full[u, item]).sum())
    rep = r.report
    assert rep["negatives"] == r.negatives.size and rep["shortfall"]["cells"] == 0
    assert rep["negative_ranks"]["count"] == r.negatives.size and rep["sampler"] == {"name": "dns", "candidates": 3}


@pytest.mark.extra("hf")
def test_save_manifest_and_dataset(tmp_path: Path) -> None:
    data = _data()
    r = mine(data, Uniform(), num_negatives=3, seed=0)
    out = r.save(tmp_path / "run")
    manifest = json.loads((out / "manifest.json").read_text())
    sha = hashlib.sha256((out / "mined.parquet").read_bytes()).hexdigest()
    assert manifest["files"]["mined.parquet"] == sha and manifest["kind"] == "rec"
    r.save(out)  # the same run again into its own directory: allowed
    with pytest.raises(ConfigError, match="holds a different mining run"):
        mine(data, Uniform(), num_negatives=3, seed=1).save(out)
    ds = r.to_dataset()
    assert len(ds) == len(data.train.indices)
    first = ds[0]
    assert first["user_id"] == int(data.interactions.user_ids[r.users[0]]) and len(first["negative_ids"]) == 3
    assert first["negative_scores"] is None and first["negative_ranks"] == [-1, -1, -1]
