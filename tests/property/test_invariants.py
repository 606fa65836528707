"""Property tests of DESIGN.md §2 invariants 1–4 on random small corpora, end to end through
``negmine.mine`` with the real BM25 (bm25s) and Dense (HashingEncoder) retrievers.

Corpora are drawn from a small vocabulary with random casing, spacing and title/text splits, and
with planted look-alikes of earlier documents, so exact and near-duplicate positives, score ties
and shortfalls all occur. Every expectation is recomputed here from the inputs (scores from the
encoder or from bm25s directly; normalised texts with this module's own normaliser).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import negmine
from negmine.text.encoders import HashingEncoder
from negmine.text.filters import AbsoluteMargin, MaxScore, MinScore, RankWindow, RelativeMargin
from negmine.text.samplers import Random, SimANS, Softmax, Top

pytest.importorskip("bm25s")
pytest.importorskip("pyarrow")

VOCAB = ["apple", "banana", "cherry", "date", "elder", "fig", "grape", "honey", "kiwi", "lemon"]
SEPS = [" ", "  ", "\t", "\n ", " \r\n"]
CASES = [str.lower, str.upper, str.title]
RETRIEVERS = pytest.mark.parametrize("retriever", ["bm25", "dense"])
# Shrinking a failure of these end-to-end properties can take minutes; it is off unless
# NEGMINE_SHRINK=1 (the failing example is still printed, and replayed first on the next run).
PHASES = tuple(Phase) if os.environ.get("NEGMINE_SHRINK") == "1" else (Phase.explicit, Phase.reuse, Phase.generate)
SETTINGS = settings(max_examples=60, deadline=None, phases=PHASES, suppress_health_check=[HealthCheck.too_slow])


# ------------------------------------------------------------------------------------------ model
@dataclass
class Case:
    titles: list[str]
    texts: list[str]
    doc_ids: list[str]
    queries: list[str]
    query_ids: list[str]
    positives: dict[str, list[str]]
    extra: dict[str, list[str]]  # positives of "other splits": exclude only
    retriever: str
    blocks: tuple[int, int]
    filters: list[tuple[str, Any]]
    sampler: tuple[str, Any]
    num_negatives: int
    seed: int
    depth: int | None
    other_blocks: tuple[int, int] = field(default=(1, 1))

    def data(self, order: list[int] | None = None, make=None) -> negmine.MiningData:
        order = order if order is not None else list(range(len(self.queries)))
        qids = [self.query_ids[i] for i in order]
        return make(
            self.texts, [self.queries[i] for i in order],
            {q: self.positives[q] for q in qids}, {q: self.extra[q] for q in qids if self.extra[q]},
            doc_ids=self.doc_ids, query_ids=qids, titles=self.titles,
        )

    def make_retriever(self, blocks: tuple[int, int]) -> Any:
        if self.retriever == "bm25":
            return negmine.text.retrievers.BM25(query_block=blocks[0])
        return negmine.text.retrievers.Dense(encoder=HashingEncoder(dim=32), query_block=blocks[0],
                                        doc_block=blocks[1])

    def make_filters(self) -> list[Any]:
        return [{"rank": lambda v: RankWindow(*v), "max": MaxScore, "min": MinScore, "abs": AbsoluteMargin,
                 "rel": RelativeMargin}[name](v) for name, v in self.filters]

    def make_sampler(self) -> Any:
        name, v = self.sampler
        return {"top": lambda _: Top(), "random": lambda _: Random(), "softmax": Softmax,
                "simans": lambda ab: SimANS(*ab)}[name](v)

    def mine(self, make, order=None, blocks=None, query_shard=4096) -> negmine.MiningResult:
        return negmine.mine(self.data(order, make), self.make_retriever(blocks or self.blocks),
                            filters=self.make_filters(), sampler=self.make_sampler(),
                            num_negatives=self.num_negatives, seed=self.seed, depth=self.depth,
                            query_shard=query_shard)


def _phrase(draw, min_size=1, max_size=5) -> str:
    words = draw(st.lists(st.sampled_from(VOCAB), min_size=min_size, max_size=max_size))
    out = ""
    for i, w in enumerate(words):
        out += (draw(st.sampled_from(SEPS)) if i else "") + draw(st.sampled_from(CASES))(w)
    return out


def _lookalike(draw, title: str, text: str) -> tuple[str, str]:
    """Same normalised ``title + " " + text``, different raw strings (case, spacing, split)."""
    words = f"{title} {text}".split()
    cut = draw(st.integers(0, len(words) - 1))
    pad = draw(st.sampled_from(["", " ", "\t "]))

    def re_space(ws: list[str]) -> str:
        return "".join((draw(st.sampled_from(SEPS)) if i else "") + draw(st.sampled_from(CASES))(w)
                       for i, w in enumerate(ws))

    return re_space(words[:cut]), pad + re_space(words[cut:]) + pad


@st.composite
def cases(draw, retriever: str) -> Case:
    n_docs = draw(st.integers(3, 18))
    titles: list[str] = []
    texts: list[str] = []
    for i in range(n_docs):
        if i and draw(st.integers(0, 3)) == 0:  # a look-alike of an earlier document
            j = draw(st.integers(0, i - 1))
            t, x = _lookalike(draw, titles[j], texts[j])
        else:
            t = _phrase(draw, 1, 2) if draw(st.booleans()) else ""
            x = _phrase(draw)
        titles.append(t)
        texts.append(x)
    doc_ids = [f"doc-{i}" for i in draw(st.permutations(range(n_docs)))]  # id order != row order
    n_q = draw(st.integers(1, 6))
    query_ids = [f"query-{i}" for i in draw(st.permutations(range(n_q)))]
    positives = {q: [doc_ids[r] for r in draw(st.lists(st.integers(0, n_docs - 1), min_size=1, max_size=3,
                                                           unique=True))] for q in query_ids}
    # A query mostly shares words with its first positive (so s⁺ is usually above zero), and
    # sometimes is unrelated to it.
    queries = []
    for q in query_ids:
        r = doc_ids.index(positives[q][0])
        words = f"{titles[r]} {texts[r]}".split()
        picked = draw(st.lists(st.sampled_from(words), min_size=1, max_size=3))
        queries.append(" ".join(picked) if draw(st.integers(0, 4)) else _phrase(draw, 1, 3))
    extra = {q: [doc_ids[r] for r in draw(st.lists(st.integers(0, n_docs - 1), max_size=2, unique=True))]
             for q in query_ids}
    # thresholds on each retriever's score scale (cosine; BM25 on these tiny corpora: 0 to ~5)
    top, bottom = ((-0.25, 1.0), (-1.0, 0.25)) if retriever == "dense" else ((0.0, 6.0), (0.0, 1.5))
    filters: list[tuple[str, Any]] = []
    depth = draw(st.one_of(st.none(), st.integers(1, 15)))
    if draw(st.booleans()):
        # a window wholly beyond the corpus, or beyond the retrieved depth, is a ConfigError
        r0 = draw(st.integers(0, min(3, n_docs - 1, depth - 1 if depth is not None else 3)))
        filters.append(("rank", (r0, draw(st.one_of(st.none(), st.integers(r0 + 1, r0 + 12))))))
    for name, strat in [("max", st.floats(*top, width=32)), ("min", st.floats(*bottom, width=32)),
                        ("abs", st.floats(-0.25, 0.5, width=32)), ("rel", st.floats(-0.125, 0.25, width=32))]:
        if draw(st.integers(0, 3)) == 0:
            filters.append((name, draw(strat)))
    filters = draw(st.permutations(filters))
    sampler = draw(st.sampled_from([
        ("top", None), ("random", None), ("softmax", 0.05), ("softmax", 1.0), ("simans", (0.5, 0.0)),
        ("simans", (50.0, 0.1)), ("simans", (0.0, 0.0)),
    ]))
    return Case(
        titles=titles, texts=texts, doc_ids=doc_ids, queries=queries, query_ids=query_ids,
        positives=positives, extra=extra, retriever=retriever,
        blocks=(draw(st.integers(1, 7)), draw(st.integers(1, 7))),
        other_blocks=(draw(st.integers(1, 7)), draw(st.integers(1, 7))),
        filters=list(filters), sampler=sampler, num_negatives=draw(st.integers(1, 5)),
        seed=draw(st.integers(0, 2**63 - 1)), depth=depth,
    )


# -------------------------------------------------------------------------------- references
def norm(title: str, text: str) -> str:
    """The spec's near-duplicate key: title + text, case-folded, whitespace collapsed."""
    full = f"{title} {text}" if title else text
    return " ".join(full.casefold().split())


def reference_scores(case: Case, data: negmine.MiningData, retriever_config: dict[str, Any]) -> np.ndarray:
    """``float32[n_queries, n_docs]`` scores computed here, without negmine's retrieval code."""
    docs = [f"{t} {x}".strip() if t else x for t, x in zip(data.corpus.titles, data.corpus.texts)]
    if case.retriever == "dense":
        enc = HashingEncoder(dim=32)
        q = enc.encode(data.queries.texts, "query").astype(np.float64)
        d = enc.encode(docs, "document").astype(np.float64)
        return (q[:, None, :] * d[None, :, :]).sum(-1).astype(np.float32)
    import bm25s
    import Stemmer

    cfg = retriever_config
    stemmer = Stemmer.Stemmer("english") if cfg["stemmer"] else None
    index = bm25s.BM25(k1=cfg["k1"], b=cfg["b"], method=cfg["method"])
    index.index(bm25s.tokenize(docs, stopwords=cfg["stopwords"], stemmer=stemmer, return_ids=False,
                               show_progress=False), show_progress=False)
    toks = bm25s.tokenize(data.queries.texts, stopwords=cfg["stopwords"], stemmer=stemmer, return_ids=False,
                          show_progress=False)
    out = np.zeros((len(data.queries), len(docs)), np.float32)
    for i, tq in enumerate(toks):
        tq = [t for t in tq if t in index.vocab_dict]
        if tq:
            out[i] = index.get_scores(tq)
    return out


def passes(case: Case, score: np.float32, rank: int, s_plus: np.float32) -> dict[str, bool]:
    """Each configured filter's verdict for one candidate, from the formulas in RESEARCH.md."""
    s, p = float(score), float(s_plus)
    out = {}
    for name, v in case.filters:
        if name == "rank":
            out[name] = v[0] <= rank < (v[1] if v[1] is not None else 10**9)
        elif name == "max":
            out[name] = score <= np.float32(v)
        elif name == "min":
            out[name] = score >= np.float32(v)
        elif name == "abs":
            out[name] = s < p - v
        else:
            out[name] = s < p - abs(p) * v
    return out


# ------------------------------------------------------------------------------------- invariants
@RETRIEVERS
@SETTINGS
@given(draw=st.data())
def test_no_known_positive_or_lookalike_is_ever_a_negative(retriever, draw, make_data):
    """Invariant 1: positives of the mined split, of the other splits, and any document whose
    normalised title + text equals one of theirs."""
    case = draw.draw(cases(retriever), label="case")
    result = case.mine(make_data)
    data = result.data
    key = {d: norm(t, x) for d, t, x in zip(data.corpus.ids, data.corpus.titles, data.corpus.texts)}
    for row in result.to_rows():
        q = row["query_id"]
        known = set(case.positives[q]) | set(case.extra[q])
        known_texts = {key[d] for d in known}
        for d in row["negative_ids"]:
            assert d not in known, (q, d)
            assert key[d] not in known_texts, (q, d, key[d])


@RETRIEVERS
@SETTINGS
@given(draw=st.data())
def test_every_negative_is_a_surviving_unique_candidate_of_its_query(retriever, draw, make_data):
    """Invariant 2, recomputed: the negative's score is the query's own score for that document,
    its column is its raw rank among all documents (score desc, row asc) inside the retrieved
    depth, it passes every configured filter by the formulas, and it is unique in its row."""
    case = draw.draw(cases(retriever), label="case")
    result = case.mine(make_data)
    data, cand = result.data, result.candidates
    ref = reference_scores(case, data, result.config["retriever"])
    n_docs = len(data.corpus)
    rows, scores = result.negatives()
    for q in range(len(data.queries)):
        pos_rows = data.positives.row(q)
        s_plus = ref[q, pos_rows].min()  # the lowest (hardest) positive's score
        assert cand.positive_scores[data.positives.indptr[q]: data.positives.indptr[q + 1]].min() == s_plus
        chosen = [(j, int(c), int(rows[q, j])) for j, c in enumerate(result.columns[q]) if c >= 0]
        assert len({d for _, _, d in chosen}) == len(chosen), "duplicate negative in a row"
        for j, c, d in chosen:
            assert cand.ids[q, c] == d and result.keep[q, c]
            s = ref[q, d]
            assert scores[q, j] == s, "score is not this query's score for that document"
            raw_rank = int(((ref[q] > s) | ((ref[q] == s) & (np.arange(n_docs) < d))).sum())
            assert c == raw_rank < cand.ids.shape[1]
            verdicts = passes(case, s, c, s_plus)
            assert all(verdicts.values()), (verdicts, float(s), float(s_plus))


@RETRIEVERS
@SETTINGS
@given(draw=st.data(), perm_seed=st.integers(0, 2**32 - 1))
def test_same_seed_same_bytes_whatever_blocks_and_query_order(retriever, draw, perm_seed, make_data):
    """Invariant 3: mined.parquet (and texts.parquet) are byte-identical for the same inputs and
    seed whatever the search block sizes, the retrieval's query-shard size and the order of the
    queries in the input."""
    case = draw.draw(cases(retriever), label="case")
    order = np.random.default_rng(perm_seed).permutation(len(case.queries)).tolist()
    shard = draw.draw(st.integers(1, 4), label="query_shard")
    a = case.mine(make_data)
    b = case.mine(make_data, order=order, blocks=case.other_blocks, query_shard=shard)
    with tempfile.TemporaryDirectory() as tmp:
        pa, pb = a.save(Path(tmp) / "a"), b.save(Path(tmp) / "b")
        for name in ("mined.parquet", "texts.parquet"):
            assert (pa / name).read_bytes() == (pb / name).read_bytes(), name
    assert a.to_rows() == b.to_rows()


@RETRIEVERS
@SETTINGS
@given(draw=st.data())
def test_shortfalls_are_reported_and_rows_never_padded(retriever, draw, make_data):
    """Invariant 4: a query gets min(num_negatives, surviving candidates) negatives; those with
    fewer than asked are listed in the report; saved rows hold only real negatives."""
    import pyarrow.parquet as pq

    case = draw.draw(cases(retriever), label="case")
    result = case.mine(make_data)
    data = result.data
    survivors = {data.queries.ids[q]: int(result.keep[q].sum()) for q in range(len(data.queries))}
    rows = {r["query_id"]: r for r in result.to_rows()}
    got = {q: len(r["negative_ids"]) for q, r in rows.items()}
    assert got == {q: min(case.num_negatives, n) for q, n in survivors.items()}
    short = sorted(q for q, n in got.items() if n < case.num_negatives)
    report = result.report["shortfall"]
    assert report["query_ids"] == short
    assert report["queries"] == len(short)
    assert report["missing_negatives"] == sum(case.num_negatives - n for n in got.values())
    cols = result.columns
    assert cols.shape == (len(data.queries), case.num_negatives)
    for r in cols.tolist():  # chosen columns first, in rank order, then -1 only
        n = sum(c >= 0 for c in r)
        assert r[:n] == sorted(set(r[:n])) and all(c >= 0 for c in r[:n]) and r[n:] == [-1] * (len(r) - n)
    for r in rows.values():
        n = len(r["negative_ids"])
        assert len(r["negative_scores"]) == len(r["negative_ranks"]) == len(r["negative_sources"]) == n
        assert all(isinstance(d, str) and d in data.corpus.ids for d in r["negative_ids"])
        assert all(np.isfinite(r["negative_scores"]))
    with tempfile.TemporaryDirectory() as tmp:
        saved = pq.read_table(result.save(tmp) / "mined.parquet").to_pylist()
    assert {r["query_id"]: len(r["negative_ids"]) for r in saved} == got
