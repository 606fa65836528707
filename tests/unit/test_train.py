"""``negmine train`` and its losses, on a tiny SentenceTransformer built in code (the tiny BERT
of ``tiny_models`` with mean pooling, vocabulary = the words of the bundled sample) and the
bundled SciFact sample mined with BM25 (80 training queries, 3 negatives each).

The debiased loss is checked against values computed here by hand from Chuang et al.'s formula,
and against sentence-transformers' ``MultipleNegativesRankingLoss`` at ``tau_plus = 0``; the
n-negative GIST loss against MNRL when the guide masks nothing.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tiny_models import build_tiny_sentence_transformer

from negmine.cli.main import main
from negmine.core.errors import ConfigError, DataError

for _module in ("sentence_transformers", "accelerate", "datasets", "bm25s", "pyarrow"):
    pytest.importorskip(_module)

import torch  # noqa: E402

os.environ.setdefault("NEGMINE_PROGRESS", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SAMPLE = Path(__file__).resolve().parents[2] / "src" / "negmine" / "sample"
FAST = {"max_steps": 2, "batch_size": 8}


# ------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    words: set[str] = set()
    for name in ("corpus.jsonl", "queries.jsonl"):
        for line in (SAMPLE / name).read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            words.update(re.findall(r"\w+", f"{r.get('title', '')} {r['text']}".lower()))
    return build_tiny_sentence_transformer(tmp_path_factory.mktemp("tiny") / "st", sorted(words))


@pytest.fixture(scope="session")
def mined(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mined") / "bm25"
    code = main(["mine", "--dataset", str(SAMPLE), "--retriever", "bm25", "--num-negatives", "3", "--sampler", "top",
                 "--out", str(out)])
    assert code == 0
    return out


def manifest_of(d: Path) -> dict[str, Any]:
    return json.loads((d / "manifest.json").read_text())


def weights(model_dir: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(model_dir / "model.safetensors"))


def encode(model_dir: Path, texts: list[str]) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    return np.asarray(SentenceTransformer(str(model_dir), device="cpu").encode(texts, convert_to_numpy=True))


# ------------------------------------------------------------------------- debiased loss: by hand
def debiased_by_hand(s_pos: float, s_neg: list[float], t: float, tau: float) -> float:
    """Chuang et al. 2020, eq. for one anchor, straight from RESEARCH.md."""
    n = len(s_neg)
    total = sum(math.exp(s / t) for s in s_neg)
    ng = max((total - tau * n * math.exp(s_pos / t)) / (1 - tau), n * math.exp(-1 / t))
    return -math.log(math.exp(s_pos / t) / (math.exp(s_pos / t) + ng))


def loss_of(columns: list[list[list[float]]], tau_plus: float, temperature: float) -> float:
    from negmine.text.train.losses import DebiasedMultipleNegativesLoss

    loss = DebiasedMultipleNegativesLoss(model=None, tau_plus=tau_plus, temperature=temperature)
    emb = [torch.tensor(c, dtype=torch.float64) for c in columns]
    return float(loss.compute_loss_from_embeddings(emb))


# anchors a1, a2; positives p1, p2; one mined negative each (n1, n2). Unnormalised on purpose.
A = [[2.0, 0.0], [0.0, 1.0]]
P = [[0.8, 0.6], [0.6, 0.8]]
NEG = [[0.0, 3.0], [1.0, 0.0]]
# cosines: a1·p1 = 0.8 (its positive), a1·p2 = 0.6, a1·n1 = 0, a1·n2 = 1.0 (a false negative)
#          a2·p2 = 0.8 (its positive), a2·p1 = 0.6, a2·n1 = 1.0, a2·n2 = 0


def test_debiased_loss_matches_the_hand_computed_formula() -> None:
    t, tau = 0.5, 0.1
    # anchor 1: N = 3 negatives (p2, n1, n2); Σ e^{s/t} = e^{1.2} + e^0 + e^{2} = 11.7092;
    # τ⁺ N e^{s⁺/t} = 0.3 e^{1.6} = 1.4859; Ng = (11.7092 - 1.4859) / 0.9 = 11.3592 > 3 e^{-2};
    # L = -log(e^{1.6} / (e^{1.6} + 11.3592)) = 1.19191. Anchor 2 is the mirror image.
    expected = (debiased_by_hand(0.8, [0.6, 0.0, 1.0], t, tau) + debiased_by_hand(0.8, [0.6, 1.0, 0.0], t, tau)) / 2
    assert expected == pytest.approx(1.1919141, abs=1e-6)
    assert loss_of([A, P, NEG], tau, t) == pytest.approx(expected, rel=1e-9)


def test_debiased_loss_uses_the_lower_bound_when_the_estimate_goes_negative() -> None:
    t, tau = 0.5, 0.9
    # Σ = 11.7092 < τ⁺ N e^{s⁺/t} = 2.7 e^{1.6} = 13.373: Ng = N e^{-1/t} = 3 e^{-2} = 0.40601;
    # L = -log(e^{1.6} / (e^{1.6} + 0.40601)) = 0.078785
    assert debiased_by_hand(0.8, [0.6, 0.0, 1.0], t, tau) == pytest.approx(0.0787845, abs=1e-6)
    assert loss_of([A, P, NEG], tau, t) == pytest.approx(0.0787845325, rel=1e-8)


def test_debiased_loss_with_tau_zero_is_infonce_and_mnrl() -> None:
    from negmine.text.train.losses import _st_losses

    MultipleNegativesRankingLoss = _st_losses().MultipleNegativesRankingLoss
    t = 0.5
    by_hand = (debiased_by_hand(0.8, [0.6, 0.0, 1.0], t, 0.0) + debiased_by_hand(0.8, [0.6, 1.0, 0.0], t, 0.0)) / 2
    # InfoNCE with scale 1/t: -log softmax of the positive among all 4 documents of the batch
    info_nce = np.mean([-(0.8 / t) + math.log(sum(math.exp(s / t) for s in row))
                        for row in ([0.8, 0.6, 0.0, 1.0], [0.8, 0.6, 1.0, 0.0])])
    assert by_hand == pytest.approx(info_nce, rel=1e-12)
    assert loss_of([A, P, NEG], 0.0, t) == pytest.approx(info_nce, rel=1e-9)

    rng = np.random.default_rng(0)
    cols = [torch.tensor(rng.normal(size=(3, 4))) for _ in range(4)]  # 3 anchors, positives, 2 negative columns
    mnrl = MultipleNegativesRankingLoss(None, scale=1 / 0.05)  # type: ignore[arg-type]
    from negmine.text.train.losses import DebiasedMultipleNegativesLoss

    ours = DebiasedMultipleNegativesLoss(None, tau_plus=0.0, temperature=0.05).compute_loss_from_embeddings(cols)
    assert float(ours) == pytest.approx(float(mnrl.compute_loss_from_embeddings(cols, None)), rel=1e-9)


def test_debiased_loss_is_finite_with_gradients_at_small_temperature() -> None:
    from negmine.text.train.losses import DebiasedMultipleNegativesLoss

    emb = [torch.tensor(c, dtype=torch.float32, requires_grad=True) for c in (A, P, NEG)]
    for tau in (0.0, 0.1, 0.9):
        value = DebiasedMultipleNegativesLoss(None, tau_plus=tau, temperature=0.01).compute_loss_from_embeddings(emb)
        grads = torch.autograd.grad(value, emb)
        assert math.isfinite(float(value.detach()))
        assert all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("kwargs", [{"tau_plus": 1.0}, {"tau_plus": -0.1}, {"temperature": 0.0}])
def test_debiased_loss_rejects_bad_parameters(kwargs: dict[str, float]) -> None:
    from negmine.text.train.losses import DebiasedMultipleNegativesLoss

    with pytest.raises(ConfigError):
        DebiasedMultipleNegativesLoss(None, **kwargs)


# ------------------------------------------------------------------------------- GIST, n negatives
def test_merge_columns_pads_and_stacks() -> None:
    from negmine.text.train.losses import merge_columns

    a = {"input_ids": torch.tensor([[5, 6, 7]]), "attention_mask": torch.tensor([[1, 1, 1]]), "modality": "text"}
    b = {"input_ids": torch.tensor([[8]]), "attention_mask": torch.tensor([[1]]), "modality": "text"}
    m = merge_columns([a, b], pad_token_id=9)
    assert m["input_ids"].tolist() == [[5, 6, 7], [8, 9, 9]]
    assert m["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert m["modality"] == "text"
    left = merge_columns([a, b], pad_token_id=9, padding_side="left")
    assert left["input_ids"].tolist() == [[5, 6, 7], [9, 9, 8]]


def test_gist_with_n_negatives_equals_mnrl_when_the_guide_masks_nothing(tiny_model: Path) -> None:
    from sentence_transformers import SentenceTransformer

    from negmine.text.train.losses import MultiNegativeGISTEmbedLoss, _st_losses

    model = SentenceTransformer(str(tiny_model), device="cpu").eval()
    columns = [["cancer risk study", "vitamin dose trial", "gene expression in cells"],
               ["risk of cancer in a study", "a trial of vitamin dose", "cells and gene expression"],
               ["protein effect", "drug patients", "the study of a drug"],
               ["cells of the patients", "dose of protein", "trial risk effect"]]
    tokenize = getattr(model, "preprocess", None) or model.tokenize
    features = [tokenize(c) for c in columns]
    gist = MultiNegativeGISTEmbedLoss(model, model, temperature=0.05, margin=-10.0,  # margin: nothing masked
                                      contrast_anchors=False, contrast_positives=False)
    mnrl = _st_losses().MultipleNegativesRankingLoss(model, scale=20.0)
    with torch.no_grad():
        a = float(gist([dict(f) for f in features], None))
        b = float(mnrl([dict(f) for f in features], None))
    assert a == pytest.approx(b, rel=1e-5)


# ------------------------------------------------------------------------------ data and helpers
def test_training_rows_trim_and_leave_out_short_queries() -> None:
    from negmine.text.train.trainer import training_rows

    texts = {("query", "q1"): {"title": "", "text": "Q1"}, ("query", "q2"): {"title": "", "text": "Q2"},
             **{("doc", d): {"title": "", "text": d.upper()} for d in ("p1", "p2", "n1", "n2", "n3")}}
    rows = [{"query_id": "q1", "positive_ids": ["p1"], "positive_scores": [1.0],
             "negative_ids": ["n1", "n2", "n3"], "negative_scores": [0.9, 0.8, 0.7]},
            {"query_id": "q2", "positive_ids": ["p2"], "positive_scores": [1.0],
             "negative_ids": ["n3"], "negative_scores": [0.5]}]
    out, counts = training_rows(rows, texts, 2)
    assert out == [{"anchor": "Q1", "positive": "P1", "negative_1": "N1", "negative_2": "N2"}]
    assert counts == {"rows": 1, "queries": 2, "queries_used": 1, "queries_left_out_short": 1}
    pairs, counts = training_rows(rows, texts, 0)
    assert pairs == [{"anchor": "Q1", "positive": "P1"}, {"anchor": "Q2", "positive": "P2"}]
    assert counts["queries_left_out_short"] == 0


def test_negative_change_by_hand() -> None:
    from negmine.text.train.trainer import negative_change

    old = [{"query_id": "a", "negative_ids": ["x", "y"]}, {"query_id": "b", "negative_ids": ["z"]}]
    new = [{"query_id": "a", "negative_ids": ["y", "w"]}, {"query_id": "b", "negative_ids": ["z"]}]
    c = negative_change(old, new)
    # new pairs: (a, w) of 3; Jaccard a = |{y}| / |{x, y, w}| = 1/3, b = 1
    assert c["new_pairs"] == 1 and c["new_pair_share"] == pytest.approx(1 / 3)
    assert c["mean_jaccard"] == pytest.approx((1 / 3 + 1) / 2)


def test_mining_model_is_the_dense_retrievers_model() -> None:
    from negmine.text.train.trainer import mining_model

    assert mining_model({"config": {"retriever": {"name": "bm25"}}}) is None
    assert mining_model({"config": {"retriever": {"name": "dense", "model": "org/m"}}}) == "org/m"
    union = {"name": "union", "members": [{"name": "bm25"}, {"name": "faiss", "model": "/models/x"}]}
    assert mining_model({"config": {"retriever": union}}) == "/models/x"
    assert mining_model({"config": {"retriever": {"name": "dense", "model": "hashing:dim=8"}}}) is None


def test_import_negmine_train_is_light() -> None:
    code = ("import sys, negmine.text.train; "
            "print(sorted(m for m in ('torch', 'sentence_transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --------------------------------------------------------------------------------- end to end
@pytest.mark.parametrize("loss", ["mnrl", "cached-mnrl", "gist", "debiased"])
def test_each_loss_trains_and_saves_a_loadable_model(loss: str, tiny_model: Path, mined: Path,
                                                     tmp_path: Path) -> None:
    from negmine.text.train import train

    out = tmp_path / "model"
    result = train(mined, out, model=str(tiny_model), loss=loss, mini_batch_size=3, **FAST)
    rec = json.loads((out / "negmine-train.json").read_text())
    assert rec == json.loads(json.dumps(result.record))
    assert rec["steps"] == 2 and rec["loss"]["name"] == loss
    assert rec["mined_run_id"] == manifest_of(mined)["run_id"]
    assert rec["dataset"]["rows"] == 93 and rec["dataset"]["num_negatives"] == 3  # 93 train qrels, 80 queries
    assert all(math.isfinite(h["loss"]) for h in rec["loss_history"])
    if loss == "gist":
        assert rec["guide"]["source"] == "starting model"  # mined with BM25: no mining model
    emb = encode(out, ["cancer risk", "vitamin dose trial"])
    assert emb.shape == (2, 32) and np.isfinite(emb).all()
    assert not np.array_equal(emb, encode(tiny_model, ["cancer risk", "vitamin dose trial"]))  # it trained


def test_same_seed_same_weights_other_seed_other_weights(tiny_model: Path, mined: Path, tmp_path: Path) -> None:
    from negmine.text.train import train

    runs = {}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        train(mined, tmp_path / name, model=str(tiny_model), loss="debiased", seed=seed, lr=1e-3, **FAST)
        runs[name] = weights(tmp_path / name)
    assert runs["a"].keys() == runs["b"].keys()
    assert all(np.array_equal(runs["a"][k], runs["b"][k]) for k in runs["a"])
    assert any(not np.array_equal(runs["a"][k], runs["c"][k]) for k in runs["a"])


def test_num_negatives_zero_trains_on_pairs(tiny_model: Path, mined: Path, tmp_path: Path) -> None:
    from negmine.text.train import train

    rec = train(mined, tmp_path / "m", model=str(tiny_model), num_negatives=0, **FAST).record
    assert rec["dataset"]["columns"] == ["anchor", "positive"]


def test_remine_every_records_refresh_stats(tiny_model: Path, mined: Path, tmp_path: Path) -> None:
    from negmine.text.train import train

    kwargs: dict[str, Any] = {"model": str(tiny_model), "remine_every": 2, "max_steps": 5, "batch_size": 8, "lr": 1e-3}
    rec = train(mined, tmp_path / "m", **kwargs).record
    assert [s["steps"] for s in rec["segments"]] == [2, 2, 1]
    assert [s["seed"] for s in rec["segments"]] == [0, 1, 2]
    assert [r["step"] for r in rec["refreshes"]] == [2, 4]
    for r in rec["refreshes"]:
        assert r["retriever"] == "dense"  # BM25 mining: re-mined with the live model
        assert 0.0 <= r["new_pair_share"] <= 1.0 and 0.0 <= r["mean_jaccard"] <= 1.0
        assert r["pairs_after"] == 240 and r["queries"] == 80  # 3 negatives for each of the 80 queries
    # the first refresh replaces BM25 negatives with the tiny model's own: most pairs are new
    assert rec["refreshes"][0]["new_pair_share"] > 0.5
    # one learning-rate schedule across the segments: linear decay, never restarted
    lrs = [h["learning_rate"] for h in rec["loss_history"]]
    assert len(lrs) == 5 and all(x > y for x, y in itertools.pairwise(lrs[1:]))  # lrs[0]: warm-up
    # re-mining is seeded and position-free too: a second run gives the same negatives and weights
    again = train(mined, tmp_path / "again", **kwargs).record
    assert [{k: v for k, v in r.items() if k not in ("seconds", "timings")} for r in again["refreshes"]] == [
        {k: v for k, v in r.items() if k not in ("seconds", "timings")} for r in rec["refreshes"]]
    first, second = weights(tmp_path / "m"), weights(tmp_path / "again")
    assert all(np.array_equal(first[k], second[k]) for k in first)


def test_a_live_model_is_never_read_from_or_written_to_the_embedding_cache(tiny_model: Path, tmp_path: Path) -> None:
    """Regression (SciFact, issue 20): a second seed re-mined at the same step read the first
    seed's cached embeddings ("live-model:step=26" for both) and got its negatives. Two live
    models with different weights at the same step, one cache directory: each is encoded, nothing
    is cached, and the embeddings differ."""
    from sentence_transformers import SentenceTransformer

    import negmine
    from negmine.text.train.models import LiveEncoder
    from negmine.text.types import RunContext

    data = negmine.load_beir(str(SAMPLE))
    a = SentenceTransformer(str(tiny_model), device="cpu")
    b = SentenceTransformer(str(tiny_model), device="cpu")
    with torch.no_grad():
        for p in b.parameters():
            p.add_(0.05 * torch.randn_like(p, generator=torch.Generator().manual_seed(1)))
    cache = tmp_path / "cache"
    out = []
    for model in (a, b):
        enc = LiveEncoder(model)
        enc.step = 26
        ctx = RunContext(cache_dir=str(cache))
        retriever = negmine.text.retrievers.Dense(encoder=enc)
        retriever.retrieve(data, 5, ctx)
        assert ctx.encoding.get("document_encoded") == len(data.corpus) and not ctx.encoding.get("document_cached")
        out.append(retriever.docs_[1])
    assert not np.allclose(out[0], out[1])
    assert not cache.exists() or not any(cache.rglob("*.npy"))


def test_remine_needs_the_mining_options(tiny_model: Path, mined: Path, tmp_path: Path) -> None:
    import shutil

    from negmine.text.train import train

    copy = tmp_path / "mined"
    shutil.copytree(mined, copy)
    man = manifest_of(copy)
    del man["options"]
    (copy / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(DataError, match="options"):
        train(copy, tmp_path / "m", model=str(tiny_model), remine_every=1, **FAST)


def test_periodic_evaluation_is_recorded(tiny_model: Path, mined: Path, tmp_path: Path) -> None:
    from negmine.text.train import train

    rec = train(mined, tmp_path / "m", model=str(tiny_model), max_steps=4, batch_size=8, eval_dataset=str(SAMPLE),
                eval_split="test", eval_steps=2).record
    assert [e["step"] for e in rec["evaluations"]] == [0, 2, 4]
    for e in rec["evaluations"]:
        assert set(e["metrics"]) == {"ndcg@10", "recall@100", "mrr@10", "map@100"}
        assert all(0.0 <= v <= 1.0 for v in e["metrics"].values())


def test_mined_sampler_masking_and_remining_together(tiny_model: Path, mined: Path, tmp_path: Path) -> None:
    """``--batch-sampler mined --mask-false-negatives --remine-every`` (issue 20) in one run: every
    training step masked and counted, the sampler's index rebuilt from each re-mining, seeded."""
    from negmine.text.train import train

    kwargs: dict[str, Any] = {"model": str(tiny_model), "batch_sampler": "mined", "hardness": 0.5,
                              "mask_false_negatives": True, "mask_target": 0.1, "remine_every": 2, "max_steps": 4,
                              "batch_size": 8, "lr": 1e-3}
    rec = train(mined, tmp_path / "m", **kwargs).record
    assert rec["loss"]["class"] == "FalseNegativeMasking" and rec["steps"] == 4
    m = rec["masking"]
    assert m["steps"] == 4 and len(m["masked_per_step"]) == 4 and m["masked_per_step"][0] == 0  # no bound yet
    # at most 8 anchors x 7 other rows x (positive + 3 negatives) per step (one batch of the epoch has 5 rows)
    assert 0 < m["scored_cells"] <= 4 * 8 * 7 * 4
    assert 0 <= m["masked_cells"] <= m["scored_cells"]
    bs = rec["batch_sampler"]
    assert bs["name"] == "mined" and bs["index"]["queries"] == 80 and bs["forced_rows"] == 0
    assert [r["step"] for r in rec["refreshes"]] == [2]
    again = train(mined, tmp_path / "again", **kwargs).record
    assert again["masking"]["masked_per_step"] == m["masked_per_step"]
    first, second = weights(tmp_path / "m"), weights(tmp_path / "again")
    assert all(np.array_equal(first[k], second[k]) for k in first)


# ---------------------------------------------------------------------------------------- CLI
def test_cli_train_end_to_end(tiny_model: Path, mined: Path, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "model"
    argv = ["train", str(mined), "--model", str(tiny_model), "--loss", "mnrl", "--max-steps", "2",
            "--batch-size", "8", "--out", str(out)]
    assert main(argv) == 0
    assert "trained" in capsys.readouterr().out
    assert main(argv) == 2  # occupied output
    assert "--overwrite" in capsys.readouterr().err
    assert main([*argv, "--overwrite", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 2
    assert main([*argv, "--overwrite", "--batch-sampler", "mined", "--mask-false-negatives"]) == 0
    out = capsys.readouterr().out
    assert "mined batch sampler" in out and "in-batch cells" in out


@pytest.mark.parametrize(("argv", "needle"), [
    (["MISSING", "--out", "OUT"], "not a negmine output directory"),
    (["MINED", "--loss", "triplet", "--out", "OUT"], "unknown loss function 'triplet'"),
    (["MINED", "--num-negatives", "4", "--out", "OUT"], "at most 3 negatives"),
    (["MINED", "--tau-plus", "1", "--out", "OUT"], "tau_plus"),
    (["MINED", "--batch-size", "0", "--out", "OUT"], "--batch-size"),
    (["MINED", "--model", "./no/such/model", "--out", "OUT"], "does not exist"),
    (["MINED", "--batch-sampler", "clusters", "--out", "OUT"], "unknown batch sampler 'clusters'"),
    (["MINED", "--hardness", "2", "--out", "OUT"], "--hardness"),
    (["MINED", "--mask-false-negatives", "--loss", "gist", "--out", "OUT"], "--loss mnrl"),
    (["MINED", "--mask-false-negatives", "--mask-target", "0", "--out", "OUT"], "--mask-target"),
    (["MINED"], "--out is required"),
])
def test_cli_bad_inputs_exit_2_with_one_line(argv: list[str], needle: str, mined: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    sub = {"MISSING": str(tmp_path / "missing"), "MINED": str(mined), "OUT": str(tmp_path / "out")}
    assert main(["train", *[sub.get(a, a) for a in argv]]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_api_bad_inputs_raise(mined: Path, tmp_path: Path) -> None:
    from negmine.text.train import train

    with pytest.raises(DataError):
        train(tmp_path / "missing", tmp_path / "out")
    with pytest.raises(ConfigError, match="unknown loss function"):
        train(mined, tmp_path / "out", loss="nope")
    with pytest.raises(ConfigError, match="unknown training option"):
        train(mined, tmp_path / "out", learning_rate=1e-3)
    (tmp_path / "occupied").mkdir()
    (tmp_path / "occupied" / "x.txt").write_text("x")
    with pytest.raises(ConfigError, match="not a negmine-trained model"):
        train(mined, tmp_path / "occupied", overwrite=True)
