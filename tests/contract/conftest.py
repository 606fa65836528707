"""Fixtures of the retriever contract suite: one small dataset with planted structure, and every
retriever backend built the same way."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import negmine
from negmine.text.types import Candidates, MiningData, RunContext

os.environ.setdefault("NEGMINE_PROGRESS", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SAMPLE = Path(__file__).resolve().parents[2] / "src" / "negmine" / "sample"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
N_QUERIES = 8
N_DOCS = 30  # before the planted documents
PLANTED = (0, 3, 5)  # query rows that get a document whose text is exactly the query


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _beir_slice(root: Path, n_queries: int, n_docs: int, max_chars: int | None, planted: tuple[int, ...]) -> Path:
    """A BEIR directory cut from the bundled sample: the first train queries (one with several
    positives among them), their positives and other documents, and for each row in ``planted``
    a document ``planted-<qid>`` whose text equals that query's text (not a positive)."""
    corpus = {d["_id"]: d for d in _read_jsonl(SAMPLE / "corpus.jsonl")}
    queries = {q["_id"]: q["text"] for q in _read_jsonl(SAMPLE / "queries.jsonl")}
    lines = (SAMPLE / "qrels" / "train.tsv").read_text().splitlines()[1:]
    train = [tuple(line.split("\t")) for line in lines if line.strip()]
    qids = list(dict.fromkeys(q for q, _, _ in train))
    multi = next(q for q in qids if sum(1 for qq, _, _ in train if qq == q) > 1)
    qids = [multi, *[q for q in qids if q != multi]][:n_queries]
    pairs = [(q, d) for q in qids for qq, d, _ in train if qq == q]  # qids order = query rows
    doc_ids = list(dict.fromkeys(d for _, d in pairs))
    doc_ids += [d for d in corpus if d not in doc_ids][: n_docs - len(doc_ids)]
    docs = [{"_id": d, "title": corpus[d]["title"], "text": corpus[d]["text"][:max_chars]} for d in doc_ids]
    docs += [{"_id": f"planted-{qids[i]}", "title": "", "text": queries[qids[i]]} for i in planted]
    (root / "qrels").mkdir(parents=True)
    _write_jsonl(root / "corpus.jsonl", docs)
    _write_jsonl(root / "queries.jsonl", [{"_id": q, "text": queries[q]} for q in qids])
    (root / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, d in pairs), encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def contract_data(tmp_path_factory: pytest.TempPathFactory) -> MiningData:
    """8 queries, 30 sample documents (texts cut to 300 characters so the real model is quick)
    plus 3 planted ones: 33 documents."""
    root = _beir_slice(tmp_path_factory.mktemp("contract"), N_QUERIES, N_DOCS, 300, PLANTED)
    data = negmine.load_beir(root, "train")
    assert len(data.corpus) == N_DOCS + len(PLANTED)
    assert int(data.positives.counts().max()) > 1
    return data


@pytest.fixture(scope="session")
def planted(contract_data: MiningData) -> dict[int, int]:
    """``{query row: document row}`` of the planted documents of ``contract_data``."""
    row_of = {d: i for i, d in enumerate(contract_data.corpus.ids)}
    out = {q: row_of.get(f"planted-{qid}", -1) for q, qid in enumerate(contract_data.queries.ids)}
    out = {q: d for q, d in out.items() if d >= 0}
    assert sorted(out) == list(PLANTED)
    return out


@pytest.fixture(scope="session")
def sample_data() -> MiningData:
    """The whole bundled sample (80 queries, 288 documents), for the FAISS comparisons."""
    return negmine.load_beir(SAMPLE, "train")


@pytest.fixture(scope="session")
def embedding_cache(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One embedding cache for the session: the real model encodes the contract data once."""
    return str(tmp_path_factory.mktemp("embedding_cache"))


@pytest.fixture(scope="session")
def trec_run(tmp_path_factory: pytest.TempPathFactory, contract_data: MiningData) -> Path:
    """A TREC run over ``contract_data`` listing every document for every query, scored with the
    hashing encoder (so the precomputed backend can be held to the same contract)."""
    enc = negmine.text.encoders.HashingEncoder(dim=256)
    scores = enc.encode(contract_data.queries.texts, "query") @ enc.encode(contract_data.corpus.full_texts(),
                                                                          "document").T
    lines = []
    for qi, qid in enumerate(contract_data.queries.ids):
        for rank, d in enumerate(sorted(range(scores.shape[1]), key=lambda j: (-scores[qi, j], j))):
            lines.append(f"{qid} Q0 {contract_data.corpus.ids[d]} {rank + 1} {float(scores[qi, d])!r} hashing\n")
    path = tmp_path_factory.mktemp("run") / "hashing.trec"
    path.write_text("".join(lines), encoding="utf-8")
    return path


@dataclass(frozen=True)
class Backend:
    """How to build a retriever (from the session's resources) and which parts of the contract
    it is held to where the design deliberately differs."""

    id: str
    make: Callable[[dict[str, Any]], Any]
    exact: bool = True  # exact search: a smaller k gives a prefix of a larger k
    members: int = 1  # retrievers combined; >1: rows hold the union of the members' top k
    pads_to_k: bool = True  # False: fewer than k columns when fewer candidates exist (no padding)


def _hashing() -> Any:
    return negmine.text.encoders.HashingEncoder(dim=256)


BACKENDS = [
    Backend("bm25", lambda r: negmine.text.retrievers.BM25()),
    Backend("dense-hashing", lambda r: negmine.text.retrievers.Dense(encoder=_hashing())),
    Backend("faiss-flat-hashing", lambda r: negmine.text.retrievers.Faiss(encoder=_hashing(), index="flat")),
    Backend("faiss-hnsw-hashing", lambda r: negmine.text.retrievers.Faiss(encoder=_hashing(), index="hnsw"),
            exact=False),
    Backend("dense-minilm", lambda r: negmine.text.retrievers.Dense(MINILM)),
    Backend("faiss-flat-minilm", lambda r: negmine.text.retrievers.Faiss(MINILM, index="flat")),
    Backend("precomputed", lambda r: negmine.text.retrievers.Precomputed(r["run"]), pads_to_k=False),
    Backend("union-bm25-dense", lambda r: negmine.text.retrievers.Union(
        [negmine.text.retrievers.BM25(), negmine.text.retrievers.Dense(encoder=_hashing())], score="dense"),
        exact=False, members=2, pads_to_k=False),
    Backend("hybrid-bm25-dense", lambda r: negmine.text.retrievers.Hybrid(
        [negmine.text.retrievers.BM25(), negmine.text.retrievers.Dense(encoder=_hashing())]),
        exact=False, members=2, pads_to_k=False),
]


#: the pip extras each backend needs (the hashing encoder and the precomputed run are core)
BACKEND_EXTRAS: dict[str, tuple[str, ...]] = {
    "bm25": ("bm25",), "faiss-flat-hashing": ("faiss",), "faiss-hnsw-hashing": ("faiss",),
    "dense-minilm": ("st", "model"), "faiss-flat-minilm": ("faiss", "st", "model"),
    "union-bm25-dense": ("bm25",), "hybrid-bm25-dense": ("bm25",),
}


@pytest.fixture(params=[pytest.param(b, id=b.id, marks=pytest.mark.extra(*BACKEND_EXTRAS.get(b.id, ())))
                        for b in BACKENDS])
def backend(request: pytest.FixtureRequest) -> Backend:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def retrieve(backend: Backend, embedding_cache: str, request: pytest.FixtureRequest) -> Callable[..., Candidates]:
    """``retrieve(data, k)`` with a fresh retriever of the backend (constructors store only, so
    this is cheap), sharing the session's embedding cache."""
    resources = {"run": request.getfixturevalue("trec_run")} if backend.id == "precomputed" else {}

    def run(data: MiningData, k: int) -> Candidates:
        ctx = RunContext(cache_dir=str(embedding_cache) if embedding_cache else None)
        return backend.make(resources).retrieve(data, k, ctx)

    return run
