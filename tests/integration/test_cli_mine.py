"""``negmine mine`` / ``export`` / ``report`` / ``list`` / ``demo`` end to end, on the bundled
SciFact sample (BM25: seconds) and on a 24-document slice with the real MiniLM model.

Expected values are computed here from the input files and the documented formats, not read back
from negmine's own helpers.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import negmine
from negmine.text import registry

Cli = Callable[..., Any]  # the ``cli`` / ``negmine_exe`` fixtures: argv -> result (code, out, err)

MINED_COLUMNS = ["query_id", "positive_ids", "negative_ids", "negative_scores", "negative_ranks",
                 "negative_sources", "positive_scores"]
N_NEG = 4  # the shared bm25_run: 4 negatives among raw ranks 0..4
WINDOW = 5


def read_rows(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def columns_of(path: Path) -> list[str]:
    if path.suffix == ".parquet":
        return pq.read_schema(path).names
    first = path.read_text(encoding="utf-8").splitlines()[0]
    return list(json.loads(first))


def ok(res: Any) -> Any:
    assert res.code == 0, res
    return res


@pytest.fixture(scope="module")
def mined(bm25_run: Path) -> list[dict[str, Any]]:
    return read_rows(bm25_run / "mined.parquet")


@pytest.fixture(scope="module")
def api_result(sample_dir: Path) -> negmine.MiningResult:
    """The same run as ``bm25_run`` through the Python API, for its candidate arrays."""
    data = negmine.load_beir(sample_dir, "train")
    return negmine.mine(data, negmine.text.retrievers.BM25(), [negmine.text.filters.RankWindow(0, WINDOW)],
                        negmine.text.samplers.Top(), N_NEG, seed=0)


@pytest.fixture(scope="module")
def known_positives(sample: dict[str, Any]) -> dict[str, set[str]]:
    """Every positive of every query, across both splits."""
    out: dict[str, set[str]] = {}
    for rows in sample["qrels"].values():
        for q, d, g in rows:
            if g >= 1:
                out.setdefault(q, set()).add(d)
    return out


# -------------------------------------------------------------------------------- mined.parquet
@pytest.mark.extra("bm25")
def test_mined_parquet_columns_and_types(bm25_run: Path) -> None:
    schema = pq.read_schema(bm25_run / "mined.parquet")
    assert schema.names == MINED_COLUMNS
    t = {f.name: f.type for f in schema}
    assert t["query_id"] == pa.string()
    for c in ("positive_ids", "negative_ids", "negative_sources"):
        assert t[c] == pa.list_(pa.string()), c
    for c in ("negative_scores", "positive_scores"):
        assert pa.types.is_list(t[c]) and t[c].value_type == pa.float32(), c
    assert pa.types.is_list(t["negative_ranks"]) and pa.types.is_integer(t["negative_ranks"].value_type)


@pytest.mark.extra("bm25")
def test_mined_rows_follow_the_qrels(mined: list[dict[str, Any]], sample: dict[str, Any],
                                     known_positives: dict[str, set[str]]) -> None:
    train = sample["qrels"]["train"]
    train_qids = sorted({q for q, _, _ in train})
    assert [r["query_id"] for r in mined] == train_qids  # every train query, sorted by id
    for r in mined:
        q = r["query_id"]
        assert r["positive_ids"] == sorted(d for qq, d, _ in train if qq == q)
        negs = r["negative_ids"]
        assert len(set(negs)) == len(negs) <= N_NEG
        assert not set(negs) & known_positives[q], q  # invariant 1
        assert set(negs) <= set(sample["corpus"])
        assert len(r["negative_scores"]) == len(r["negative_ranks"]) == len(r["negative_sources"]) == len(negs)
        assert r["negative_ranks"] == sorted(set(r["negative_ranks"]))
        assert all(0 <= k < WINDOW for k in r["negative_ranks"])
        assert r["negative_scores"] == sorted(r["negative_scores"], reverse=True)  # top sampler
        assert r["negative_sources"] == ["bm25"] * len(negs)
        assert len(r["positive_scores"]) == len(r["positive_ids"])


@pytest.mark.extra("bm25")
def test_mined_ranks_point_into_the_candidates(mined: list[dict[str, Any]], api_result: negmine.MiningResult,
                                               known_positives: dict[str, set[str]]) -> None:
    """``negative_ranks`` are raw retrieval ranks; every raw rank inside the window that was not
    taken is a known positive (the only filter here), so a short row is short for that reason."""
    data = api_result.data
    q_row = {q: i for i, q in enumerate(data.queries.ids)}
    doc_ids = data.corpus.ids
    for r in mined:
        qi = q_row[r["query_id"]]
        row = api_result.candidates.ids[qi]
        scores = api_result.candidates.scores[qi]
        assert [doc_ids[row[k]] for k in r["negative_ranks"]] == r["negative_ids"]
        np.testing.assert_array_equal(np.float32(r["negative_scores"]), scores[r["negative_ranks"]])
        skipped = [k for k in range(WINDOW) if k not in r["negative_ranks"]]
        if len(r["negative_ids"]) == N_NEG:
            skipped = [k for k in skipped if k < max(r["negative_ranks"])]
        assert all(doc_ids[row[k]] in known_positives[r["query_id"]] for k in skipped), r


@pytest.mark.extra("bm25")
def test_manifest(bm25_run: Path, sample_dir: Path, fs: SimpleNamespace) -> None:
    m = json.loads((bm25_run / "manifest.json").read_text())
    for dist in ("python", "negmine", "numpy", "bm25s", "pyarrow"):
        assert isinstance(m["versions"][dist], str) and m["versions"][dist], dist
    assert m["versions"]["negmine"] == negmine.__version__
    cfg = m["config"]
    assert cfg["retriever"]["name"] == "bm25"
    assert [f["name"] for f in cfg["filters"]] == ["exclude-positives", "rank-window"]
    assert cfg["filters"][1]["range_max"] == WINDOW
    assert cfg["sampler"]["name"] == "top"
    assert cfg["num_negatives"] == m["num_negatives"] == N_NEG
    assert cfg["seed"] == m["seed"] == 0
    inputs = {Path(v["path"]).resolve(): v for v in m["inputs"].values()}
    for rel in ("corpus.jsonl", "queries.jsonl", "qrels/train.tsv", "qrels/test.tsv"):
        p = (sample_dir / rel).resolve()
        assert p in inputs, rel
        assert inputs[p]["sha256"] == fs.sha256(p)
        assert inputs[p]["bytes"] == p.stat().st_size
    for name, digest in m["files"].items():
        assert fs.sha256(bm25_run / name) == digest
    assert "mined.parquet" in m["files"]
    assert m["timings"]["total_s"] >= 0 and all(v >= 0 for v in m["timings"].values())
    assert isinstance(m["run_id"], str) and len(m["run_id"]) >= 16


@pytest.mark.extra("bm25")
def test_report(bm25_run: Path, mined: list[dict[str, Any]], api_result: negmine.MiningResult,
                sample: dict[str, Any]) -> None:
    rep = json.loads((bm25_run / "report.json").read_text())
    n_q = len(mined)
    assert rep["queries"]["mined"] == n_q == 80
    assert rep["queries"]["skipped_no_positive"] == 0 and rep["queries"]["skipped_no_positive_ids"] == []
    assert rep["documents"] == len(sample["corpus"])
    assert rep["qrels_unknown_dropped"] == 0
    assert rep["positives"]["pairs"] == len(sample["qrels"]["train"])

    retrieved = n_q * WINDOW
    assert rep["candidates"] == {"depth": WINDOW, "retrieved": retrieved}
    # exclude-positives removes exactly the known positives found among the candidates
    data = api_result.data
    cand = api_result.candidates.ids
    in_cands = sum(int(np.isin(cand[q], data.exclude.row(q)).sum()) for q in range(len(data.queries)))
    filters = {f["name"]: f for f in rep["filters"]}
    assert list(filters) == ["exclude-positives", "rank-window"]
    assert filters["exclude-positives"]["removed"] == in_cands > 0
    assert filters["rank-window"]["removed"] == 0  # depth == range_max: nothing outside the window
    for f in rep["filters"]:
        assert f["removed_pct"] == pytest.approx(100 * f["removed"] / retrieved, abs=1e-6)

    got = {r["query_id"]: len(r["negative_ids"]) for r in mined}
    short = sorted(q for q, n in got.items() if n < N_NEG)
    assert short, "the window of 5 leaves some queries short: the shared run exercises the shortfall"
    assert rep["shortfall"]["queries"] == len(short)
    assert rep["shortfall"]["pct"] == pytest.approx(100 * len(short) / n_q, abs=1e-6)
    assert rep["shortfall"]["query_ids"] == short
    assert rep["shortfall"]["missing_negatives"] == sum(N_NEG - n for n in got.values())
    assert rep["negatives"]["chosen"] == sum(got.values())
    assert rep["negatives"]["requested_per_query"] == N_NEG

    neg = np.array([s for r in mined for s in r["negative_scores"]], dtype=np.float64)
    pos = np.array([s for r in mined for s in r["positive_scores"]], dtype=np.float64)
    assert rep["scores"]["negative"]["count"] == len(neg)
    assert rep["scores"]["negative"]["max"] == pytest.approx(neg.max(), abs=1e-5)
    assert rep["scores"]["negative"]["min"] == pytest.approx(neg.min(), abs=1e-5)
    assert rep["scores"]["negative"]["mean"] == pytest.approx(neg.mean(), abs=1e-5)
    assert rep["scores"]["positive"]["count"] == len(pos)
    assert rep["scores"]["positive"]["p50"] == pytest.approx(np.median(pos), abs=1e-5)
    ranks = [k for r in mined for k in r["negative_ranks"]]
    assert rep["ranks"]["count"] == len(ranks) and rep["ranks"]["max"] == max(ranks)
    assert rep["encoding"] == {}  # BM25 encodes nothing
    assert {"total_s", "filter_s", "sample_s"} <= set(rep["timings"])


@pytest.mark.extra("bm25")
def test_skipped_queries_are_reported(cli: Cli, tmp_path: Path, fs: SimpleNamespace,
                                      sample: dict[str, Any]) -> None:
    docs = list(sample["corpus"].values())[:12]
    queries = [{"_id": q, "text": t} for q, t in list(sample["queries"].items())[:3]]
    qrels = [(queries[0]["_id"], docs[0]["_id"], 1), (queries[1]["_id"], docs[1]["_id"], 0),
             (queries[2]["_id"], docs[2]["_id"], 2)]
    beir = fs.write_beir(tmp_path / "data", docs, queries, {"train": qrels})
    ok(cli("mine", "--dataset", beir, "--out", tmp_path / "o", "--num-negatives", "2"))
    rep = json.loads((tmp_path / "o" / "report.json").read_text())
    assert rep["queries"]["mined"] == 2
    assert rep["queries"]["skipped_no_positive"] == 1
    assert rep["queries"]["skipped_no_positive_ids"] == [queries[1]["_id"]]
    assert [r["query_id"] for r in read_rows(tmp_path / "o" / "mined.parquet")] == sorted(
        [queries[0]["_id"], queries[2]["_id"]])

    ok(cli("mine", "--dataset", beir, "--out", tmp_path / "o2", "--num-negatives", "2", "--min-relevance", "2"))
    rep = json.loads((tmp_path / "o2" / "report.json").read_text())
    assert rep["queries"]["mined"] == 1 and rep["queries"]["skipped_no_positive"] == 2


@pytest.mark.extra("bm25")
def test_positives_of_other_splits_are_never_negatives(cli: Cli, tmp_path: Path, fs: SimpleNamespace) -> None:
    """q1's test-split positive is the most similar document to q1: mining train excludes it by
    default (every split), and only an explicit ``--exclude-splits train`` lets it through."""
    corpus = [
        {"_id": "d1", "title": "", "text": "aspirin lowers the risk of a heart attack"},
        {"_id": "d5", "title": "", "text": "does aspirin prevent heart attacks in adults"},
        *[{"_id": f"x{i}", "title": "", "text": f"unrelated text number {i} about gardening"} for i in range(8)],
    ]
    queries = [{"_id": "q1", "text": "does aspirin prevent heart attacks"}]
    beir = fs.write_beir(tmp_path / "data", corpus, queries,
                         {"train": [("q1", "d1", 1)], "test": [("q1", "d5", 1)]})
    ok(cli("mine", "--dataset", beir, "--out", tmp_path / "all", "--num-negatives", "3", "--sampler", "top"))
    ok(cli("mine", "--dataset", beir, "--out", tmp_path / "own", "--num-negatives", "3", "--exclude-splits", "train",
           "--sampler", "top"))
    [default] = read_rows(tmp_path / "all" / "mined.parquet")
    [own] = read_rows(tmp_path / "own" / "mined.parquet")
    assert "d5" not in default["negative_ids"]
    assert own["negative_ids"][0] == "d5"
    assert default["positive_ids"] == own["positive_ids"] == ["d1"]


# --------------------------------------------------------------------------- ways in: flags, TOML
@pytest.mark.extra("bm25")
def test_json_report_on_stdout(cli: Cli, sample_dir: Path, tmp_path: Path) -> None:
    res = ok(cli("mine", "--dataset", sample_dir, "--num-negatives", "2", "--out", tmp_path / "o", "--json"))
    assert json.loads(res.out) == json.loads((tmp_path / "o" / "report.json").read_text())
    res = ok(cli("mine", "--dataset", sample_dir, "--num-negatives", "2", "--out", tmp_path / "o2"))
    assert "queries mined: 80" in res.out and "mined.parquet" in res.out


@pytest.mark.extra("bm25")
def test_same_inputs_same_bytes(cli: Cli, sample_dir: Path, tmp_path: Path) -> None:
    args = ["mine", "--dataset", sample_dir, "--sampler", "softmax", "--temperature", "1", "--num-negatives", "3"]
    ok(cli(*args, "--seed", "3", "--out", tmp_path / "a"))
    ok(cli(*args, "--seed", "3", "--out", tmp_path / "b"))
    for name in ("mined.parquet", "texts.parquet"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    ok(cli(*args, "--seed", "4", "--out", tmp_path / "c"))
    assert (tmp_path / "a" / "mined.parquet").read_bytes() != (tmp_path / "c" / "mined.parquet").read_bytes()


@pytest.mark.extra("bm25")
def test_config_gives_the_same_result_as_flags_and_flags_override_it(cli: Cli, sample_dir: Path,
                                                                     tmp_path: Path) -> None:
    cfg = tmp_path / "mine.toml"
    cfg.write_text(
        "[mine]\n"
        f'dataset = "{sample_dir}"\n'
        'sampler = "random"\nseed = 7\nnum-negatives = 3\nrange_max = 20\nrelative-margin = 0.1\n'
        f'out = "{tmp_path / "from_toml"}"\n'
    )
    flags = ["--dataset", sample_dir, "--sampler", "random", "--seed", "7", "--num-negatives", "3",
             "--range-max", "20", "--relative-margin", "0.1"]
    ok(cli("mine", "--config", cfg))
    ok(cli("mine", *flags, "--out", tmp_path / "from_flags"))
    a, b = tmp_path / "from_toml", tmp_path / "from_flags"
    assert (a / "mined.parquet").read_bytes() == (b / "mined.parquet").read_bytes()
    ma, mb = (json.loads((d / "manifest.json").read_text()) for d in (a, b))
    assert ma["config"] == mb["config"] and ma["run_id"] == mb["run_id"]
    assert ma["config"]["sampler"]["name"] == "random"
    assert {"name": "relative-margin", "relative_margin": 0.1} in ma["config"]["filters"]

    # flags win over the file; the rest of the file still applies
    ok(cli("mine", "--config", cfg, "--seed", "8", "--num-negatives", "2", "--out", tmp_path / "override"))
    ok(cli("mine", *flags[:4], "--seed", "8", "--num-negatives", "2", *flags[8:], "--out", tmp_path / "flags2"))
    mo = json.loads((tmp_path / "override" / "manifest.json").read_text())
    assert mo["seed"] == 8 and mo["num_negatives"] == 2
    assert mo["config"]["sampler"]["name"] == "random"
    assert mo["options"]["out"] == str(tmp_path / "override")
    override, flags2 = tmp_path / "override" / "mined.parquet", tmp_path / "flags2" / "mined.parquet"
    assert override.read_bytes() == flags2.read_bytes()
    assert max(len(r["negative_ids"]) for r in read_rows(tmp_path / "override" / "mined.parquet")) == 2


@pytest.mark.extra("bm25")
def test_corpus_queries_qrels_files(cli: Cli, sample_dir: Path, tmp_path: Path) -> None:
    ok(cli("mine", "--corpus", sample_dir / "corpus.jsonl", "--queries", sample_dir / "queries.jsonl",
           "--qrels", sample_dir / "qrels" / "train.tsv", "--num-negatives", "3", "--out", tmp_path / "files"))
    ok(cli("mine", "--dataset", sample_dir, "--exclude-splits", "train", "--num-negatives", "3",
           "--out", tmp_path / "dir"))
    assert (tmp_path / "files" / "mined.parquet").read_bytes() == (tmp_path / "dir" / "mined.parquet").read_bytes()
    m = json.loads((tmp_path / "files" / "manifest.json").read_text())
    assert {Path(v["path"]).name for v in m["inputs"].values()} == {"corpus.jsonl", "queries.jsonl", "train.tsv"}


@pytest.mark.extra("bm25")
def test_parquet_inputs_and_jsonl_output(cli: Cli, sample_dir: Path, tmp_path: Path, fs: SimpleNamespace) -> None:
    for name in ("corpus", "queries"):
        rows = fs.read_jsonl(sample_dir / f"{name}.jsonl")
        pq.write_table(pa.Table.from_pylist(rows), tmp_path / f"{name}.parquet")
    ok(cli("mine", "--corpus", tmp_path / "corpus.parquet", "--queries", tmp_path / "queries.parquet",
           "--qrels", sample_dir / "qrels" / "train.tsv", "--num-negatives", "3", "--format", "jsonl",
           "--out", tmp_path / "pq"))
    ok(cli("mine", "--corpus", sample_dir / "corpus.jsonl", "--queries", sample_dir / "queries.jsonl",
           "--qrels", sample_dir / "qrels" / "train.tsv", "--num-negatives", "3", "--out", tmp_path / "js"))
    assert not (tmp_path / "pq" / "mined.parquet").exists()
    a = read_rows(tmp_path / "pq" / "mined.jsonl")
    b = read_rows(tmp_path / "js" / "mined.parquet")
    assert list(a[0]) == MINED_COLUMNS
    assert [{k: v for k, v in r.items() if "scores" not in k} for r in a] == \
           [{k: v for k, v in r.items() if "scores" not in k} for r in b]
    for ra, rb in zip(a, b):
        np.testing.assert_array_equal(np.float32(ra["negative_scores"]), np.float32(rb["negative_scores"]))
    # a jsonl run exports like a parquet one
    ok(cli("export", tmp_path / "pq", "--format", "flag", "--out", tmp_path / "a.jsonl"))
    ok(cli("export", tmp_path / "js", "--format", "flag", "--out", tmp_path / "b.jsonl"))
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


@pytest.mark.extra("bm25")
def test_overwrite_in_another_format_leaves_no_stale_files(cli: Cli, sample_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    ok(cli("mine", "--dataset", sample_dir, "--num-negatives", "2", "--sampler", "top", "--format", "jsonl",
           "--out", out))
    assert sorted(p.name for p in out.iterdir() if p.name != ".negmine") == ["manifest.json", "mined.jsonl",
                                                                           "report.json", "texts.jsonl"]
    ok(cli("mine", "--dataset", sample_dir, "--num-negatives", "3", "--sampler", "top", "--out", out, "--overwrite"))
    assert sorted(p.name for p in out.iterdir() if p.name != ".negmine") == ["manifest.json", "mined.parquet",
                                                                           "report.json",
                                                    "texts.parquet"]
    assert all(len(r["negative_ids"]) == 3 for r in read_rows(out / "mined.parquet"))


@pytest.fixture(scope="module")
def pairs(sample: dict[str, Any]) -> list[dict[str, str]]:
    """The sample's train qrels as sentence-transformers (anchor, positive) text pairs."""
    corpus = sample["corpus"]
    return [{"anchor": sample["queries"][q], "positive": (corpus[d]["title"] + " " + corpus[d]["text"]).strip()}
            for q, d, _ in sample["qrels"]["train"]]


@pytest.mark.extra("bm25")
def test_pairs_jsonl_and_parquet(cli: Cli, sample_dir: Path, tmp_path: Path, fs: SimpleNamespace,
                                 pairs: list[dict[str, str]]) -> None:
    fs.write_jsonl(tmp_path / "pairs.jsonl", pairs)
    pq.write_table(pa.Table.from_pylist(pairs), tmp_path / "pairs.parquet")
    for suffix in ("jsonl", "parquet"):
        ok(cli("mine", "--pairs", tmp_path / f"pairs.{suffix}", "--corpus", sample_dir / "corpus.jsonl",
               "--num-negatives", "3", "--sampler", "top", "--out", tmp_path / suffix))
    assert (tmp_path / "jsonl" / "mined.parquet").read_bytes() == (tmp_path / "parquet" / "mined.parquet").read_bytes()
    rep = json.loads((tmp_path / "jsonl" / "report.json").read_text())
    assert rep["queries"]["mined"] == len({p["anchor"] for p in pairs})
    assert rep["documents"] == len(sample_dir.joinpath("corpus.jsonl").read_text().splitlines())  # positives dedup

    ok(cli("export", tmp_path / "jsonl", "--format", "flag", "--out", tmp_path / "flag.jsonl"))
    expected: dict[str, set[str]] = {}
    for p in pairs:
        expected.setdefault(p["anchor"], set()).add(p["positive"])
    rows = read_rows(tmp_path / "flag.jsonl")
    assert {r["query"] for r in rows} == set(expected)
    for r in rows:
        assert set(r["pos"]) == expected[r["query"]]
        assert len(r["neg"]) == 3 and not set(r["neg"]) & expected[r["query"]]


@pytest.mark.extra("bm25")
def test_pairs_without_a_corpus_mine_among_the_positives(cli: Cli, tmp_path: Path, fs: SimpleNamespace,
                                                         pairs: list[dict[str, str]]) -> None:
    fs.write_jsonl(tmp_path / "pairs.jsonl", pairs)
    ok(cli("mine", "--pairs", tmp_path / "pairs.jsonl", "--num-negatives", "2", "--sampler", "top",
           "--out", tmp_path / "o"))
    rows = read_rows(tmp_path / "o" / "mined.parquet")
    all_pos = {d for r in rows for d in r["positive_ids"]}
    for r in rows:
        assert r["query_id"].startswith("q") and len(r["negative_ids"]) == 2
        assert set(r["negative_ids"]) <= all_pos - set(r["positive_ids"])


# ------------------------------------------------------------------------------------------ export
def expected_export(fmt: str, mined: list[dict[str, Any]], sample: dict[str, Any], with_scores: bool,
                    full_text: Callable[[dict[str, Any]], str]) -> list[dict[str, Any]]:
    """The documented shape of each format, built from the mined rows and the *input* files."""
    qt = sample["queries"]
    docs = sample["corpus"]

    def d(i: str) -> str:
        return full_text(docs[i])

    out: list[dict[str, Any]] = []
    for r in mined:
        q, P, N = qt[r["query_id"]], r["positive_ids"], r["negative_ids"]
        ps, ns = r["positive_scores"], r["negative_scores"]
        if fmt == "triplet":
            for p, s in zip(P, ps):
                for n, t in zip(N, ns):
                    out.append({"anchor": q, "positive": d(p), "negative": d(n),
                                **({"scores": [s, t]} if with_scores else {})})
        elif fmt == "n-tuple":
            if len(N) < N_NEG:
                continue
            for p, s in zip(P, ps):
                out.append({"anchor": q, "positive": d(p), **{f"negative_{i + 1}": d(n) for i, n in enumerate(N)},
                            **({"scores": [s, *ns]} if with_scores else {})})
        elif fmt == "labeled-pair":
            for ids, scores, label in ((P, ps, 1), (N, ns, 0)):
                for i, s in zip(ids, scores):
                    out.append({"anchor": q, "document": d(i), **({"score": s} if with_scores else {"label": label})})
        elif fmt == "labeled-list":
            extra = {"scores": [*ps, *ns]} if with_scores else {"labels": [1] * len(P) + [0] * len(N)}
            out.append({"anchor": q, "documents": [d(i) for i in P + N], **extra})
        elif not N:  # flag and tevatron leave out (and count) queries with no negatives: trainers crash on them
            continue
        elif fmt == "flag":
            out.append({"query": q, "pos": [d(i) for i in P], "neg": [d(i) for i in N],
                        **({"pos_scores": ps, "neg_scores": ns} if with_scores else {})})
        elif fmt == "tevatron":
            def passage(i: str, s: float) -> dict[str, Any]:
                return {"docid": i, "title": docs[i]["title"], "text": docs[i]["text"],
                        **({"score": s} if with_scores else {})}

            out.append({"query_id": r["query_id"], "query": q,
                        "positive_passages": [passage(i, s) for i, s in zip(P, ps)],
                        "negative_passages": [passage(i, s) for i, s in zip(N, ns)]})
        else:
            out.append({"query_id": r["query_id"], "query_text": q, "positive_document_ids": P,
                        "negative_document_ids": N,
                        **({"positive_scores": ps, "negative_scores": ns} if with_scores else {})})
    return out


EXPECTED_COLUMNS = {
    "triplet": ["anchor", "positive", "negative"],
    "n-tuple": ["anchor", "positive", *[f"negative_{i}" for i in range(1, N_NEG + 1)]],
    "labeled-pair": ["anchor", "document", "label"],
    "labeled-list": ["anchor", "documents", "labels"],
    "flag": ["query", "pos", "neg"],
    "tevatron": ["query_id", "query", "positive_passages", "negative_passages"],
    "tevatron-ids": ["query_id", "query_text", "positive_document_ids", "negative_document_ids"],
}
SCORE_COLUMNS = {"triplet": ["scores"], "n-tuple": ["scores"], "labeled-pair": ["score"],
                 "labeled-list": ["scores"], "flag": ["pos_scores", "neg_scores"], "tevatron": [],
                 "tevatron-ids": ["positive_scores", "negative_scores"]}


def test_every_registered_format_is_covered() -> None:
    assert sorted(registry.formats.names()) == sorted(EXPECTED_COLUMNS)


@pytest.mark.extra("bm25")
@pytest.mark.parametrize("with_scores", [False, True], ids=["plain", "scores"])
@pytest.mark.parametrize("suffix", ["jsonl", "parquet"])
@pytest.mark.parametrize("fmt", list(EXPECTED_COLUMNS))
def test_export(cli: Cli, bm25_run: Path, mined: list[dict[str, Any]], sample: dict[str, Any], tmp_path: Path,
                fs: SimpleNamespace, fmt: str, suffix: str, with_scores: bool) -> None:
    target = tmp_path / f"train.{suffix}"
    if fmt == "flag" and suffix == "parquet":  # FlagEmbedding reads only .json/.jsonl: refused, nothing written
        res = cli("export", bm25_run, "--format", fmt, "--out", target)
        assert res.code == 2 and "FlagEmbedding reads only" in res.err and not target.exists()
        return
    res = ok(cli("export", bm25_run, "--format", fmt, "--out", target, "--json",
                 *(["--with-scores"] if with_scores else [])))
    expected = expected_export(fmt, mined, sample, with_scores, fs.full_text)
    cols = EXPECTED_COLUMNS[fmt]
    if with_scores:
        cols = [c for c in cols if c != "label" and c != "labels"] + SCORE_COLUMNS[fmt]
    assert columns_of(target) == cols  # sentence-transformers reads columns by position
    rows = read_rows(target)
    assert len(rows) == len(expected)
    for got, want in zip(rows, expected):
        assert list(got) == list(want)
        for k, v in want.items():
            if "score" in k:
                assert got[k] == pytest.approx(v, rel=1e-6), k
            else:
                assert got[k] == v, k
    counts = json.loads(res.out)
    assert counts["rows"] == len(expected) and counts["queries"] == len(mined)
    short = sum(len(r["negative_ids"]) < N_NEG for r in mined)
    assert counts["queries_left_out_short"] == (short if fmt == "n-tuple" else 0)
    empty = sum(not r["negative_ids"] for r in mined)
    assert counts["queries_left_out_no_negatives"] == (empty if fmt in ("flag", "tevatron", "tevatron-ids") else 0)


@pytest.mark.extra("bm25")
def test_export_overwrite(cli: Cli, bm25_run: Path, tmp_path: Path) -> None:
    target = tmp_path / "t.jsonl"
    target.write_text("old\n")
    res = ok(cli("export", bm25_run, "--format", "n-tuple", "--out", target, "--overwrite"))
    assert "left out" in res.out  # the short queries are announced
    assert target.read_text() != "old\n"


@pytest.mark.extra("bm25")
def test_export_never_re_mines(cli: Cli, sample_dir: Path, tmp_path: Path) -> None:
    """Exports read only the mining output: they work with the dataset deleted, and import no
    retrieval backend."""
    data = tmp_path / "data"
    shutil.copytree(sample_dir, data)
    ok(cli("mine", "--dataset", data, "--num-negatives", "3", "--out", tmp_path / "run"))
    shutil.rmtree(data)
    code = (
        "import sys\n"
        "from negmine.cli.main import main\n"
        f"for fmt in {list(EXPECTED_COLUMNS)!r}:\n"
        f"    assert main(['export', {str(tmp_path / 'run')!r}, '--format', fmt, '--out',\n"
        f"                 {str(tmp_path)!r} + '/' + fmt + '.jsonl']) == 0\n"
        "heavy = sorted(m for m in ('bm25s', 'faiss', 'torch', 'sentence_transformers') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    for fmt in EXPECTED_COLUMNS:
        assert read_rows(tmp_path / f"{fmt}.jsonl"), fmt


# ----------------------------------------------------------------------------- list, report, demo
@pytest.mark.parametrize(
    ("family", "names"),
    [
        pytest.param("retrievers", {"bm25", "dense", "faiss"}, marks=pytest.mark.extra("bm25", "st", "faiss")),
        pytest.param("filters", {"exclude-positives", "rank-window", "max-score", "min-score", "absolute-margin",
                                 "relative-margin"}, marks=pytest.mark.extra("detect")),
        ("samplers", {"top", "random", "softmax", "simans"}),
        ("formats", set(EXPECTED_COLUMNS)),
    ],
)
def test_list(cli: Cli, family: str, names: set[str]) -> None:
    """Every registered component is listed (at least the core ones), with a summary."""
    registered = set(registry.FAMILIES[family].names())
    assert names <= registered
    res = ok(cli("list", family))
    listed = {line.split()[0] for line in res.out.splitlines() if line.strip() and not line.startswith(" ")}
    assert listed == registered
    rows = json.loads(ok(cli("list", family, "--json")).out)
    assert {r["name"] for r in rows} == registered
    for r in rows:  # each component's options, as declared in its registry entry
        assert [o["flag"] for o in r["options"]] == [o.flag for o in registry.FAMILIES[family].get(r["name"]).options]
        for o in r["options"]:
            assert f"    {o['flag']}: " in res.out
    assert all(r["available"] for r in rows)  # every extra is installed here
    assert all(r["summary"] for r in rows)


@pytest.mark.extra("bm25")
def test_report_command(cli: Cli, bm25_run: Path) -> None:
    report = json.loads((bm25_run / "report.json").read_text())
    assert json.loads(ok(cli("report", bm25_run, "--json")).out) == report
    text = ok(cli("report", bm25_run)).out
    assert "queries mined: 80" in text
    assert "exclude-positives" in text
    short = report["shortfall"]
    assert f"shortfall: {short['queries']} queries" in text and short["query_ids"][0] in text


@pytest.mark.extra("bm25", "hf")
def test_to_dataset(api_result: negmine.MiningResult) -> None:
    import datasets

    ds = api_result.to_dataset("n-tuple")
    assert isinstance(ds, datasets.Dataset)
    assert ds.column_names == EXPECTED_COLUMNS["n-tuple"]
    full = [q for q in range(len(api_result.data.queries)) if (api_result.columns[q] >= 0).all()]
    assert ds.num_rows == sum(len(api_result.data.positives.row(q)) for q in full)
    with_scores = api_result.to_dataset("n-tuple", with_scores=True)
    assert with_scores.column_names[-1] == "scores"
    assert all(len(s) == 1 + N_NEG for s in with_scores["scores"])
    flag = api_result.to_dataset("flag")
    assert flag.column_names == ["query", "pos", "neg"] and flag.num_rows == len(api_result.data.queries)


@pytest.mark.extra("bm25")
def test_demo_bm25(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    res = ok(cli("demo", "--retrievers", "bm25", "--out", out))
    assert "=== bm25" in res.out and "example query" in res.out and "negmine export" in res.out
    rows = read_rows(out / "bm25" / "mined.parquet")
    assert len(rows) == 80 and all(len(r["negative_ids"]) == 5 for r in rows)
    assert ok(cli("demo", "--retrievers", "bm25", "--out", out)).code == 0  # re-running is fine


@pytest.mark.extra("bm25")
def test_a_successful_run_is_quiet_on_stderr(negmine_exe: Cli, sample_dir: Path, tmp_path: Path) -> None:
    """Without ``-v`` and with progress bars off, nothing but results is written: no library's
    debug logging leaks onto stderr (bm25s sets its own logger to DEBUG)."""
    res = ok(negmine_exe("mine", "--dataset", sample_dir, "--num-negatives", "2", "--out", tmp_path / "o"))
    assert res.err == ""
    assert "queries mined: 80" in res.out


# ------------------------------------------------------------------- dense with the real MiniLM
@pytest.mark.extra("st", "model", "faiss")
def test_dense_cache_second_run_encodes_nothing(cli: Cli, tiny_beir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    base = ["mine", "--dataset", tiny_beir, "--num-negatives", "3", "--cache-dir", cache]
    n_docs = len((tiny_beir / "corpus.jsonl").read_text().splitlines())
    n_q = len((tiny_beir / "queries.jsonl").read_text().splitlines())

    ok(cli(*base, "--retriever", "dense", "--out", tmp_path / "first"))
    first = json.loads((tmp_path / "first" / "report.json").read_text())
    assert first["encoding"] == {"document_encoded": n_docs, "query_encoded": n_q}

    ok(cli(*base, "--retriever", "dense", "--out", tmp_path / "second"))
    second = json.loads((tmp_path / "second" / "report.json").read_text())
    assert second["encoding"] == {"document_cached": n_docs, "query_cached": n_q}
    assert (tmp_path / "first" / "mined.parquet").read_bytes() == (tmp_path / "second" / "mined.parquet").read_bytes()

    # the bfloat16 screen (forced: the sample is far too small for auto to take it) writes the
    # same bytes; the option is not part of the run's configuration
    ok(cli(*base, "--retriever", "dense", "--screen-dtype", "bfloat16", "--out", tmp_path / "bf16"))
    assert (tmp_path / "first" / "mined.parquet").read_bytes() == (tmp_path / "bf16" / "mined.parquet").read_bytes()

    # FAISS (flat, exact) shares the embeddings and finds the same negatives with the same scores
    ok(cli(*base, "--retriever", "faiss", "--out", tmp_path / "faiss"))
    third = json.loads((tmp_path / "faiss" / "report.json").read_text())
    assert "document_encoded" not in third["encoding"]
    dense_rows = read_rows(tmp_path / "first" / "mined.parquet")
    faiss_rows = read_rows(tmp_path / "faiss" / "mined.parquet")
    assert [r["negative_ids"] for r in dense_rows] == [r["negative_ids"] for r in faiss_rows]
    assert [r["negative_scores"] for r in dense_rows] == [r["negative_scores"] for r in faiss_rows]
    assert all(r["negative_sources"] == ["faiss"] * 3 for r in faiss_rows)
    # cosine scores of a normalised model
    assert all(-1.0 <= s <= 1.0 + 1e-6 for r in dense_rows for s in r["negative_scores"] + r["positive_scores"])


@pytest.mark.extra("bm25", "detect")
def test_the_spline_detector_is_chosen_on_the_command_line(sample_dir: Path, tmp_path: Path) -> None:
    """``--fn-detector spline`` (the opt-in detector of docs/QUALITY.md §8) reaches the filter and
    the manifest; the default stays ``logistic``."""
    from negmine.cli.main import main

    def detector(*extra: str) -> dict[str, Any]:
        out = tmp_path / "-".join(extra or ("default",))
        assert main(["mine", "--dataset", str(sample_dir), "--retriever", "bm25", "--num-negatives", "2",
                     "--fn-max-prob", "0.1", *extra, "--out", str(out)]) == 0
        filters = json.loads((out / "manifest.json").read_text())["config"]["filters"]
        return next(f for f in filters if f["name"] == "fn-max-prob")["detector"]

    assert detector("--fn-detector", "spline")["model"] == "spline"
    assert detector()["model"] == "logistic"
