"""Holdout protocols: random, grade and pool as one concept; the audit CLI's flags keep their meaning."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from negmine.core.errors import ConfigError
from negmine.text import audit
from negmine.text.holdout import Holdout, hide_fraction, hide_pool, pool_split
from negmine.text.types import Candidates, Corpus, MiningData, Qrels, Queries


def _pairs(q: Qrels, data: MiningData) -> set[tuple[str, str]]:
    return {(data.queries.ids[int(a)], data.corpus.ids[int(b)]) for a, b in zip(q.query_of_pair(), q.indices)}


def hand_built() -> tuple[MiningData, Candidates]:
    """3 queries over 8 documents; the labelling retriever's list (depth 3) is written out by hand.

    q0: positives d1, d4, d6; pool [d1, d2, d4] -> d1, d4 visible, d6 hidden.
    q1: positives d0, d5; pool [d3, d7, d2] -> none pooled: the best-scored positive stays
        (scores d0 1.0, d5 2.5 -> d5 visible, d0 hidden).
    q2: positives d2, d3; pool [d3, d2, d0] -> both visible.
    """
    corpus = Corpus(ids=[f"d{i}" for i in range(8)], texts=[f"text {i}" for i in range(8)])
    queries = Queries(ids=["q0", "q1", "q2"], texts=["a", "b", "c"])
    pos = Qrels.from_pairs(3, np.array([0, 0, 0, 1, 1, 2, 2]), np.array([1, 4, 6, 0, 5, 2, 3]))
    data = MiningData(corpus, queries, pos, pos)
    ids = np.array([[1, 2, 4, 6], [3, 7, 2, 0], [3, 2, 0, -1]], np.int64)
    scores = np.array([[9, 8, 7, 6], [9, 8, 7, 1], [9, 8, 7, -np.inf]], np.float32)
    # aligned with pos (sorted per query): q0 d1 d4 d6, q1 d0 d5, q2 d2 d3
    ps = np.array([9, 7, 6, 1.0, 2.5, 8, 9], np.float32)
    return data, Candidates(ids, scores, (ids >= 0).astype(np.uint8), ["labeller"], ps)


def test_pool_split_by_hand():
    data, pool = hand_built()
    split = pool_split(data, pool, depth=3)
    assert _pairs(split.visible.positives, data) == {("q0", "d1"), ("q0", "d4"), ("q1", "d5"), ("q2", "d2"),
                                                     ("q2", "d3")}
    assert _pairs(split.hidden, data) == {("q0", "d6"), ("q1", "d0")}
    # hidden positives leave the miner's exclude set too (it must not know them)
    assert _pairs(split.visible.exclude, data) == _pairs(split.visible.positives, data)
    # a deeper pool sees d6 (4th) for q0 and d0 (4th) for q1, whose d5 is now the hidden one
    deeper = pool_split(data, pool, depth=4)
    assert _pairs(deeper.hidden, data) == {("q1", "d5")}
    # ties in the labelling score go to the lower corpus row; unscored positives come last
    tied = Candidates(pool.ids, pool.scores, pool.sources, pool.source_names,
                      np.array([9, 7, 6, 2.5, 2.5, 8, 9], np.float32))
    assert ("q1", "d0") in _pairs(pool_split(data, tied, 3).visible.positives, data)
    nan = Candidates(pool.ids, pool.scores, pool.sources, pool.source_names,
                     np.array([9, 7, 6, 1.0, np.nan, 8, 9], np.float32))
    assert ("q1", "d0") in _pairs(pool_split(data, nan, 3).visible.positives, data)
    with pytest.raises(ConfigError, match="pool depth"):
        pool_split(data, pool, depth=0)


def test_pool_with_bm25_by_hand():
    pytest.importorskip("bm25s")
    from negmine.text.retrievers import BM25

    # one query "apple"; documents with 3, 2, 1 and 0 mentions; BM25 ranks them in that order
    texts = ["apple apple apple pie", "apple apple tart", "apple juice", "pear juice", "plum jam", "fig jam"]
    corpus = Corpus(ids=[f"d{i}" for i in range(6)], texts=texts)
    queries = Queries(ids=["q0", "q1"], texts=["apple", "jam"])
    # q0's positives: d0 (rank 1), d2 (rank 3), d3 (no apple: BM25 0); q1: d3 (no jam) only
    pos = Qrels.from_pairs(2, np.array([0, 0, 0, 1]), np.array([0, 2, 3, 3]))
    data = MiningData(corpus, queries, pos, pos)
    split = hide_pool(data, BM25(), depth=2)  # top 2 of "apple": d0, d1
    assert _pairs(split.visible.positives, data) == {("q0", "d0"), ("q1", "d3")}  # q1: its only positive stays
    assert _pairs(split.hidden, data) == {("q0", "d2"), ("q0", "d3")}
    split3 = Holdout("pool", pool_depth=3).split(data, retriever=BM25())
    assert _pairs(split3.hidden, data) == {("q0", "d3")}


def test_old_protocols_keep_their_meaning():
    data, _ = hand_built()
    pos = data.positives
    graded = Qrels(pos.indptr, pos.indices, np.array([3, 1, 2, 1, 1, 4, 2], np.float32))
    data = MiningData(data.corpus, data.queries, graded, graded)
    a = Holdout("random", fraction=0.5, seed=7).split(data)
    b = hide_fraction(data, 0.5, 7)
    c = audit.hide_fraction(data, 0.5, 7)
    for s in (b, c):
        np.testing.assert_array_equal(a.hidden.indices, s.hidden.indices)
        np.testing.assert_array_equal(a.hidden.indptr, s.hidden.indptr)
    g = Holdout("grade", min_grade=2).split(data)
    h = audit.hide_below_grade(data, 2)
    np.testing.assert_array_equal(g.hidden.indices, h.hidden.indices)
    # grade >= 2 visible; q1 (grades 1, 1) keeps its first best-graded positive, d0
    assert _pairs(g.hidden, data) == {("q0", "d4"), ("q1", "d5")}
    assert "pool holdout" in Holdout("pool", pool_retriever="dense", pool_depth=10).describe()
    assert Holdout("pool", pool_depth=10).as_dict()["depth"] == 10
    with pytest.raises(ConfigError, match="unknown holdout protocol"):
        Holdout("sometimes")
    with pytest.raises(ConfigError, match="--visible-min-grade"):
        Holdout("grade")
    with pytest.raises(ConfigError, match="pool"):
        Holdout("pool").split(data)


def test_audit_cli_protocol_flags_and_out_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    pytest.importorskip("bm25s")
    import negmine
    from negmine.cli.main import main

    sample_dir = Path(negmine.__file__).parent / "sample"

    base = ["audit", "--dataset", str(sample_dir), "--retriever", "bm25", "--num-negatives", "2"]
    assert main([*base, "--pool-depth", "5"]) == 2
    assert "--pool-depth needs --hide pool" in capsys.readouterr().err
    assert main([*base, "--hide", "pool", "--hide-fraction", "0.5"]) == 2
    assert "belongs to --hide random" in capsys.readouterr().err
    existing = tmp_path / "taken"
    existing.write_text("keep me")
    assert main([*base, "--out", str(existing)]) == 2
    err = capsys.readouterr().err
    assert "existing file" in err and len(err.strip().splitlines()) == 1 and existing.read_text() == "keep me"
    out = tmp_path / "audit"
    assert main([*base, "--hide", "pool", "--pool-depth", "3", "--out", str(out)]) == 0
    assert "pool holdout: only the positives bm25 ranks in its top 3" in capsys.readouterr().out
    got = json.loads((out / "audit.json").read_text())
    assert got["holdout"]["protocol"] == "pool" and got["holdout"]["depth"] == 3
    assert all(r["holdout"] == "pool" for r in got["settings"])
    assert main([*base, "--hide-fraction", "0.5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["holdout"]["protocol"] == "random"


def _signature_data(known: list[list[float]], cands: list[list[float]]) -> tuple[MiningData, Candidates]:
    """Queries with the given known-positive and candidate scores (candidates are documents that
    are not positives; -inf pads)."""
    n_q = len(known)
    width = max(len(c) for c in cands)
    ids = np.full((n_q, width), -1, np.int64)
    scores = np.full((n_q, width), -np.inf, np.float32)
    q_of, rows, ps = [], [], []
    row = 0
    for q, (kn, cs) in enumerate(zip(known, cands)):
        for s in kn:
            q_of.append(q)
            rows.append(row)
            ps.append(s)
            row += 1
        ids[q, : len(cs)] = np.arange(row, row + len(cs))
        scores[q, : len(cs)] = cs
        row += len(cs)
    corpus = Corpus(ids=[f"d{i}" for i in range(row)], texts=["x"] * row)
    queries = Queries(ids=[f"q{i}" for i in range(n_q)], texts=["x"] * n_q)
    pos = Qrels.from_pairs(n_q, np.array(q_of), np.array(rows))
    return MiningData(corpus, queries, pos, pos), Candidates(ids, scores, (ids >= 0).astype(np.uint8), ["m"],
                                                             np.array(ps, np.float32))


def test_pool_signature_by_hand():
    """Known positives 0.9 and 0.5 among candidates 0.8, 0.7, 0.6, 0.4: the merged list is
    K C | C C K C (top third = 2 of 6), density 1/2 above and 1/4 below: ratio 2, not pooled. Known
    positives at the very top of every list (what a pool leaves): no known one below the top third,
    the ratio is capped, pooled. A query with one positive is left out; a second view is read from
    the arrays given."""
    from negmine.text.holdout import POOL_SIGNATURE_RATIO, RATIO_CAP, pool_signature

    data, cand = _signature_data([[0.9, 0.5], [0.3]], [[0.8, 0.7, 0.6, 0.4], [0.9, 0.8]])
    sig = pool_signature(data, cand)
    assert sig["miner"] == pytest.approx(2.0) and sig["view"] is None and sig["by"] == "miner" and not sig["pooled"]
    data, cand = _signature_data([[0.99, 0.98]] * 3, [[0.5, 0.4, 0.3, 0.2]] * 3)
    sig = pool_signature(data, cand)
    assert sig["miner"] == RATIO_CAP and sig["ratio"] == RATIO_CAP and sig["pooled"]
    # the same lists under a second view that interleaves them: the view's ratio, the larger decides
    view_cells = np.tile(np.array([[0.8, 0.7, 0.6, 0.4]], np.float32), (3, 1))
    view_pos = np.tile(np.array([0.9, 0.5], np.float32), 3)
    sig = pool_signature(data, cand, view_cells, view_pos)
    assert sig["view"] == pytest.approx(2.0) and sig["ratio"] == RATIO_CAP and sig["by"] == "miner" and sig["pooled"]
    sig = pool_signature(data, cand, np.full_like(view_cells, 0.1), np.ones_like(view_pos))
    assert sig["view"] == RATIO_CAP and sig["by"] == "miner"  # a tie goes to the miner
    sig = pool_signature(data, dataclasses.replace(cand, scores=cand.scores * 0 + 1.0), view_cells * 0 + 0.1,
                         np.ones_like(view_pos))
    assert sig["miner"] == pytest.approx(0.0) and sig["by"] == "view" and sig["pooled"]
    # ties put the candidates first: nothing is denser anywhere
    data, cand = _signature_data([[0.5, 0.5]], [[0.5, 0.5, 0.5, 0.5]])
    assert pool_signature(data, cand)["miner"] == pytest.approx(0.0)
    assert POOL_SIGNATURE_RATIO > 2.0


def test_judged_depth_by_hand():
    """Known positives at raw ranks 0, 1 and 3 of a six-long list (candidate rows placed among
    them): 90% of them lie within rank 3, so the labellers are taken to have seen ranks 0-3
    (depth 4). A known positive the miner did not retrieve counts as beyond the list: when the
    quantile falls there, nothing is judged (``None``). Queries with one positive are left out."""
    from negmine.text.holdout import judged_depth

    corpus = Corpus(ids=[f"d{i}" for i in range(12)], texts=["x"] * 12)
    queries = Queries(ids=["q0", "q1"], texts=["x", "x"])
    ids = np.array([[5, 2, 1, 7, 0, 3], [9, 10, 11, 4, 6, 8]], np.int64)
    scores = np.tile(-np.arange(6, dtype=np.float32), (2, 1))

    def depth(q_of: list[int], rows: list[int], quantile: float = 0.9) -> int | None:
        pos = Qrels.from_pairs(2, np.array(q_of), np.array(rows))
        data = MiningData(corpus, queries, pos, pos)
        cand = Candidates(ids, scores, np.ones(ids.shape, np.uint8), ["m"], np.zeros(len(rows), np.float32))
        return judged_depth(data, cand, quantile)

    assert depth([0, 0, 0, 1], [5, 2, 7, 11]) == 4  # q1 has one positive: left out
    assert depth([0, 0, 0], [5, 2, 7], quantile=0.5) == 2  # the median rank is 1
    assert depth([0, 0, 1, 1], [5, 2, 9, 4]) == 4  # q1's at ranks 0 and 3
    assert depth([0, 0, 0], [5, 2, 8]) is None  # 8 is not retrieved for q0: beyond the list
    assert depth([0, 1], [5, 9]) is None  # no query with two positives
