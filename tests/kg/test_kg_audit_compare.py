"""``kg audit`` counts false negatives exactly; ``kg compare`` runs end to end (slow)."""

from __future__ import annotations

from pathlib import Path

import pytest
from kg_graphs import planted

from negmine.core.stats import wilson
from negmine.kg.data import load_triples

pytest.importorskip("pykeen")


def test_audit_counts_every_held_out_corruption(tmp_path: Path, write_triples) -> None:
    from negmine.kg.audit import audit, render_audit

    train, valid, test = planted()
    data = load_triples(write_triples(tmp_path, train, valid, test))
    # asking for 2·n_e negatives takes every allowed corruption of every training triple, so a
    # full-support sampler emits each held-out triple once per training triple it corrupts
    held = set(valid + test)
    expected = sum(
        1 for h, r, t in train for x in held
        if x[1] == r and ((x[0] == h) != (x[2] == t))
    )
    result = audit(data, ["uniform", "bernoulli", "hard", "hasa"], num_negatives=2 * data.num_entities, seed=0,
                   kge_epochs=1, dim=4)
    allowed = sum(1 for h, r, t in train for e in data.entities for side in (0, 1)
                  if (e != h if side == 0 else e != t)
                  and ((e, r, t) if side == 0 else (h, r, e)) not in set(train))
    for row in result["rows"]:
        assert row["false_negatives"] == expected, row["sampler"]
        assert row["emitted"] == allowed
        assert row["fnr_ci95"] == list(wilson(expected, allowed))
        assert 0.0 <= row["hardness"] <= 1.0
    assert "| hasa |" in render_audit(result)


@pytest.mark.slow
def test_compare_end_to_end(tmp_path: Path) -> None:
    from negmine.kg import load_dataset
    from negmine.kg.compare import compare, paired_p, write_compare

    data = load_dataset("nations")
    result = compare(data, ["uniform", "typed"], seeds=(0, 1), epochs=2, dim=8)
    files = write_compare(result, tmp_path)
    assert {r["sampler"] for r in result["rows"]} == {"uniform", "typed"}
    assert result["rows"][0]["p_value"] is None and 0 < result["rows"][1]["p_value"] <= 1
    assert all(0 < r["mrr"] <= 1 for r in result["runs"])
    assert files["markdown"].read_text().count("\n| ") == 3
    assert paired_p(result, "typed", "uniform") == result["rows"][1]["p_value"]


def test_compare_trains_with_the_live_sampler() -> None:
    """``live-hard`` in kg compare: the sampler scores with the model being trained (PyKEENSampler
    gets that model, not a warm-up's embeddings), in a real PyKEEN loop."""
    from negmine.kg import load_dataset
    from negmine.kg.compare import _sampler_kwargs, compare
    from negmine.kg.kge import LIVE_MODEL

    kw = _sampler_kwargs("live-hasa", None, None, None, {"temperature": 0.5})
    assert kw["sampler"] == "hasa" and kw["model"] == LIVE_MODEL and kw["sampler_kwargs"] == {"temperature": 0.5}
    assert "model" not in _sampler_kwargs("uniform", None, None, None, {})
    data = load_dataset("nations")
    result = compare(data, ["uniform", "live-hard"], seeds=(0,), epochs=1, dim=8)
    assert [r["sampler"] for r in result["rows"]] == ["uniform", "live-hard"]
    assert all(0 < r["mrr"] <= 1 for r in result["runs"])
    assert result["runs"][0]["mrr"] != result["runs"][1]["mrr"]  # other negatives, another model


def test_an_unknown_or_misplaced_live_sampler_is_refused() -> None:
    from negmine.core.errors import ConfigError
    from negmine.kg import load_dataset
    from negmine.kg.compare import compare

    with pytest.raises(ConfigError, match=r"unknown sampler 'live-nope'.*live-hard, live-hasa"):
        compare(load_dataset("nations"), ["uniform", "live-nope"], seeds=(0,), epochs=1, dim=8)
