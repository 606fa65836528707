"""The ``ray`` engine against a real local Ray cluster (one per module: Ray starts slowly):
``mined.parquet`` equals the local engine's byte for byte for BM25, dense and a union, with 1, 2
and 3 query shards, and for dense search split into 1, 2 and 3 document shards; the workers get
no corpus texts and memory-map the embedding files; a worker killed mid-run does not change it;
a driver killed mid-run resumes from its stored shards; a missing extra, an unreachable address,
a device the workers lack and ``doc_shard`` with BM25 are one-line errors."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")

import negmine  # noqa: E402
import negmine.core.errors  # noqa: E402
from negmine.text.encoders import HashingEncoder  # noqa: E402
from negmine.text.engines.ray import RayEngine  # noqa: E402
from negmine.text.retrievers import BM25, Dense, Union  # noqa: E402

N_DOCS = 9000  # three embedding-cache chunks (4096 + 4096 + 808)
N_QUERIES = 30
WORDS = ("cat dog bird fish tree house river sea sky sun moon star rain snow cold warm fast slow red blue green "
         "protein gene cell cancer vitamin drug dose risk trial study effect patients").split()
NEGMINE = Path(sys.executable).with_name("negmine")


def _words(seed: str, n: int) -> str:
    h = hashlib.sha256(seed.encode()).digest()
    return " ".join(WORDS[b % len(WORDS)] for b in h[:n])


@pytest.fixture(scope="module")
def cluster() -> Any:
    """A real two-CPU Ray cluster for the module; yields its address (for subprocess drivers)."""
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the fault-injecting classes below
    ray.init(address="local", num_cpus=2, log_to_driver=False, include_dashboard=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def beir(tmp_path_factory: pytest.TempPathFactory, fs: Any) -> Path:
    corpus = [{"_id": f"d{i}", "title": "", "text": _words(f"doc{i}", 12)} for i in range(N_DOCS)]
    queries = [{"_id": f"q{i}", "text": _words(f"doc{i * 97}", 6)} for i in range(N_QUERIES)]
    qrels = [(f"q{i}", f"d{i * 97}", 1) for i in range(N_QUERIES)]
    return fs.write_beir(tmp_path_factory.mktemp("ray_beir"), corpus, queries, {"train": qrels})


@pytest.fixture(scope="module")
def data(beir: Path) -> Any:
    return negmine.load_beir(beir, split="train")


def _retriever(kind: str, encoder: Any = None) -> Any:
    enc = encoder or HashingEncoder(dim=64)
    if kind == "bm25":
        return BM25()
    if kind == "dense":
        return Dense(encoder=enc)
    return Union([BM25(), Dense(encoder=enc)], score="dense")


def _mine(data: Any, retriever: Any, out: Path, engine: Any, shards: int, cache: Path) -> Any:
    return negmine.mine(data, retriever, num_negatives=4, seed=3, out=out, engine=engine, cache_dir=cache,
                        query_shard=-(-N_QUERIES // shards))


@pytest.mark.parametrize("kind", ["bm25", "dense", "union"])
@pytest.mark.parametrize("shards", [3, 2, 1])
def test_same_bytes_as_local(cluster: str, data: Any, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory,
                             kind: str, shards: int) -> None:
    # one ray cache per module: the first dense run (3 shards) encodes the corpus through Ray Data
    ray_cache = tmp_path_factory.getbasetemp() / "ray_cache"
    local = _mine(data, _retriever(kind), tmp_path / "local", "local", shards, tmp_path / "local_cache")
    got = _mine(data, _retriever(kind), tmp_path / "ray", "ray", shards, ray_cache)
    assert (tmp_path / "ray" / "mined.parquet").read_bytes() == (tmp_path / "local" / "mined.parquet").read_bytes()
    assert got.stats["engine"] == "ray" and local.stats["engine"] == "local"
    assert got.stats["retrieval_shards"] == shards and got.stats["ray_workers"] == 2
    assert got.stats["ray_retrieve_queries_per_s"] > 0 and got.timings["ray_retrieve_s"] > 0
    # the workers memory-map the cache's whole-corpus entry; no corpus texts leave the driver
    assert got.stats["ray_corpus_texts_shipped"] is False
    assert got.stats["ray_mapped_files"] == (0 if kind == "bm25" else 1)


def test_document_shards_same_bytes(cluster: str, data: Any, tmp_path: Path) -> None:
    """Exact dense search as tasks over (query shard x document shard), merged: the local
    engine's bytes with 1, 2 and 3 document shards x 1, 2 and 3 query shards."""
    def dense() -> Dense:
        return Dense(encoder=HashingEncoder(dim=64), doc_block=1500)

    cache = tmp_path / "cache"
    _mine(data, dense(), tmp_path / "local", "local", 1, cache)
    want = (tmp_path / "local" / "mined.parquet").read_bytes()
    for n_docs_shards, doc_shard in ((1, 9000), (2, 4500), (3, 2000)):  # 2000 is rounded up to 3000 (doc_block)
        for shards in (1, 2, 3):
            out = tmp_path / f"ray_{doc_shard}_{shards}"
            got = _mine(data, dense(), out, RayEngine(doc_shard=doc_shard), shards, cache)
            assert (out / "mined.parquet").read_bytes() == want, (doc_shard, shards)
            assert got.stats["ray_doc_shards"] == n_docs_shards and got.stats["retrieval_shards"] == shards


def test_precomputed_embeddings_are_mapped(cluster: str, data: Any, tmp_path: Path) -> None:
    """--doc-embeddings / --query-embeddings .npy: each worker memory-maps both files."""
    import numpy as np

    rng = np.random.default_rng(0)
    np.save(tmp_path / "d.npy", rng.standard_normal((N_DOCS, 16), dtype=np.float32))
    np.save(tmp_path / "q.npy", rng.standard_normal((N_QUERIES, 16), dtype=np.float32))

    def dense() -> Dense:
        return Dense(doc_embeddings=str(tmp_path / "d.npy"), query_embeddings=str(tmp_path / "q.npy"), doc_block=4096)

    _mine(data, dense(), tmp_path / "local", "local", 1, tmp_path / "c")
    for name, engine in (("ray", RayEngine()), ("ray_docs", RayEngine(doc_shard=4096))):
        got = _mine(data, dense(), tmp_path / name, engine, 2, tmp_path / "c")
        assert (tmp_path / name / "mined.parquet").read_bytes() == (tmp_path / "local" / "mined.parquet").read_bytes()
        assert got.stats["ray_mapped_files"] == 2 and got.stats["ray_corpus_texts_shipped"] is False
        assert got.encoding["query_precomputed"] == N_QUERIES


def test_precomputed_run(cluster: str, data: Any, tmp_path: Path) -> None:
    """A TREC run (document ids mapped on the workers: the corpus ids are shipped, not the texts);
    queries the run does not list are counted over every shard."""
    from negmine.text.retrievers import Precomputed

    lines = [f"q{q} Q0 d{(q * 31 + j * 7) % N_DOCS} {j + 1} {10 - j * 0.5} t" for q in range(0, N_QUERIES, 2)
             for j in range(12)]
    (tmp_path / "run.trec").write_text("\n".join(lines) + "\n")
    local = _mine(data, Precomputed(tmp_path / "run.trec"), tmp_path / "local", "local", 3, tmp_path / "c")
    got = _mine(data, Precomputed(tmp_path / "run.trec"), tmp_path / "ray", "ray", 3, tmp_path / "c")
    assert (tmp_path / "ray" / "mined.parquet").read_bytes() == (tmp_path / "local" / "mined.parquet").read_bytes()
    assert got.stats["ray_corpus_texts_shipped"] is False
    assert got.stats["run_queries_missing"] == local.stats["run_queries_missing"] == N_QUERIES // 2


def test_cache_shared_both_ways(cluster: str, data: Any, tmp_path: Path) -> None:
    """A cluster run warms a later local run (same chunk keys), and the reverse."""
    cache = tmp_path / "cache"
    ray_first = _mine(data, _retriever("dense"), tmp_path / "r1", "ray", 2, cache)
    assert ray_first.stats["ray_encode_dense_chunks"] == 3
    assert ray_first.stats["ray_encode_dense_workers"] >= 1
    local_after = _mine(data, _retriever("dense"), tmp_path / "l1", "local", 2, cache)
    assert local_after.encoding.get("document_encoded", 0) == 0
    assert local_after.encoding["document_cached"] == N_DOCS

    cache2 = tmp_path / "cache2"
    _mine(data, _retriever("dense"), tmp_path / "l2", "local", 2, cache2)
    ray_after = _mine(data, _retriever("dense"), tmp_path / "r2", "ray", 2, cache2)
    assert ray_after.stats["ray_encode_dense_chunks"] == 0
    assert (tmp_path / "r2" / "mined.parquet").read_bytes() == (tmp_path / "l1" / "mined.parquet").read_bytes()


class KillOnceBM25(BM25):
    """BM25 whose first shard retrieval on a worker kills that worker process (SIGKILL)."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker

    def retrieve(self, data: Any, k: int, ctx: Any = None) -> Any:
        if os.getpid() != self.driver_pid and not os.path.exists(self.marker):
            Path(self.marker).write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return super().retrieve(data, k, ctx)

    driver_pid = os.getpid()


class KillOnceEncoder(HashingEncoder):
    """A hashing encoder whose first encode on a worker kills that worker process (SIGKILL)."""

    def __init__(self, marker: str) -> None:
        super().__init__(dim=64)
        self.marker = marker

    def encode(self, texts: Any, kind: Any) -> Any:
        if os.getpid() != self.driver_pid and not os.path.exists(self.marker):
            Path(self.marker).write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return super().encode(texts, kind)

    driver_pid = os.getpid()


def test_worker_killed_during_search(cluster: str, data: Any, tmp_path: Path) -> None:
    marker = tmp_path / "killed"
    local = tmp_path / "local"
    _mine(data, BM25(), local, "local", 3, tmp_path / "c")
    _mine(data, KillOnceBM25(str(marker)), tmp_path / "ray", "ray", 3, tmp_path / "c")
    assert marker.is_file(), "a worker was killed"
    assert (tmp_path / "ray" / "mined.parquet").read_bytes() == (local / "mined.parquet").read_bytes()


class KillOnceDense(Dense):
    """Dense search whose first document shard on a worker kills that worker process (SIGKILL)."""

    def __init__(self, marker: str) -> None:
        super().__init__(encoder=HashingEncoder(dim=64), doc_block=1500)
        self.marker = marker

    def search(self, q: Any, d: Any, k: int) -> Any:
        if os.getpid() != self.driver_pid and not os.path.exists(self.marker):
            Path(self.marker).write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return super().search(q, d, k)

    driver_pid = os.getpid()


def test_worker_killed_during_document_shard(cluster: str, data: Any, tmp_path: Path) -> None:
    marker = tmp_path / "killed"
    _mine(data, Dense(encoder=HashingEncoder(dim=64)), tmp_path / "local", "local", 2, tmp_path / "c")
    got = _mine(data, KillOnceDense(str(marker)), tmp_path / "ray", RayEngine(doc_shard=3000), 2, tmp_path / "c")
    assert marker.is_file(), "a worker was killed"
    assert got.stats["ray_doc_shards"] == 3
    assert (tmp_path / "ray" / "mined.parquet").read_bytes() == (tmp_path / "local" / "mined.parquet").read_bytes()


@pytest.mark.slow  # ~20 s: Ray Data restarts the actor
def test_worker_killed_during_encoding(cluster: str, data: Any, tmp_path: Path) -> None:
    marker = tmp_path / "killed"
    _mine(data, Dense(encoder=HashingEncoder(dim=64)), tmp_path / "local", "local", 2, tmp_path / "lc")
    got = _mine(data, Dense(encoder=KillOnceEncoder(str(marker))), tmp_path / "ray", "ray", 2, tmp_path / "rc")
    assert marker.is_file(), "an encoding actor was killed"
    assert got.stats["ray_encode_dense_chunks"] == 3
    assert (tmp_path / "ray" / "mined.parquet").read_bytes() == (tmp_path / "local" / "mined.parquet").read_bytes()


def _cli(*args: Any, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "NEGMINE_PROGRESS": "0", **(env or {})}
    return subprocess.run([str(NEGMINE), *map(str, args)], capture_output=True, text=True, env=full, timeout=300)


def test_driver_killed_then_resumed(cluster: str, beir: Path, tmp_path: Path) -> None:
    """A real ``negmine mine --engine ray`` killed after its second shard is stored; the same
    command again reuses the two shards and writes the local engine's bytes."""
    common = ["mine", "--dataset", beir, "--num-negatives", "4", "--query-shard", "8", "--engine", "ray",
              "--ray-address", cluster, "--workers", "2"]
    killed = _cli(*common, "--out", tmp_path / "run", env={"NEGMINE_FAULT": "retrieve-shard-2"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not (tmp_path / "run" / "mined.parquet").exists()
    again = _cli(*common, "--out", tmp_path / "run")
    assert again.returncode == 0, again.stderr[-2000:]
    local = _cli(*common[:-6], "--out", tmp_path / "local")
    assert local.returncode == 0, local.stderr[-2000:]
    assert (tmp_path / "run" / "mined.parquet").read_bytes() == (tmp_path / "local" / "mined.parquet").read_bytes()
    run = json.loads((tmp_path / "run" / "report.json").read_text())["run"]
    assert run["retrieval_shards"] == 4 and run["retrieval_shards_reused"] == 2
    assert ray.is_initialized(), "a driver that joined the cluster does not shut it down"


@pytest.mark.parametrize("address", ["127.0.0.1:1", "ray://127.0.0.1:1"])
def test_unreachable_address_is_exit_2(tmp_path: Path, fs: Any, address: str) -> None:
    got = _cli("mine", "--dataset", fs.sample, "--out", tmp_path / "o", "--engine", "ray", "--ray-address", address)
    assert got.returncode == 2, got.stderr[-2000:]
    last = got.stderr.strip().splitlines()[-1]
    assert last.startswith("negmine: error: cannot reach the Ray cluster at") and "--ray-address" in last
    assert not (tmp_path / "o" / "mined.parquet").exists()


def test_missing_extra_is_exit_2(tmp_path: Path, fs: Any) -> None:
    code = ("import sys; sys.modules['ray'] = None\n"
            "from negmine.cli.main import main; sys.exit(main(sys.argv[1:]))")
    got = subprocess.run([sys.executable, "-c", code, "mine", "--dataset", str(fs.sample), "--out",
                          str(tmp_path / "o"), "--engine", "ray"], capture_output=True, text=True,
                         env={**os.environ, "NEGMINE_PROGRESS": "0"}, timeout=120)
    assert got.returncode == 2, got.stderr[-2000:]
    assert got.stderr.strip().splitlines()[-1].endswith("pip install 'negmine[ray]'")


def test_dense_needs_a_cache_dir(cluster: str, data: Any, tmp_path: Path) -> None:
    with pytest.raises(negmine.core.errors.ConfigError, match="--cache-dir"):
        negmine.mine(data, Dense(encoder=HashingEncoder(dim=64)), out=tmp_path / "o", engine="ray")
    assert ray.is_initialized()


def test_device_is_checked_on_the_workers(cluster: str, data: Any, tmp_path: Path) -> None:
    """--device cuda is asked of a worker holding the tasks' resources (here: one CPU, no GPU)."""
    r = Dense(encoder=HashingEncoder(dim=64))
    r.device = "cuda"  # as built where the driver's own check is left to the engine
    with pytest.raises(negmine.core.errors.ConfigError, match=r"device 'cuda' is not available on the Ray workers "
                       r"\(available there: cpu\); pass --gpus-per-worker 1 \(or more\)"):
        _mine(data, r, tmp_path / "o", "ray", 1, tmp_path / "c")
    assert not list((tmp_path / "c").glob("*.npy")), "refused before any encoding"


def _embedding_files(tmp_path: Path) -> list[Any]:
    import numpy as np

    rng = np.random.default_rng(1)
    np.save(tmp_path / "d.npy", rng.standard_normal((N_DOCS, 8), dtype=np.float32))
    np.save(tmp_path / "q.npy", rng.standard_normal((N_QUERIES, 8), dtype=np.float32))
    return ["--retriever", "dense", "--doc-embeddings", tmp_path / "d.npy", "--query-embeddings", tmp_path / "q.npy"]


def test_cli_device_checked_on_the_workers(cluster: str, beir: Path, tmp_path: Path) -> None:
    """``negmine mine --device cuda --engine ray`` on a driver without a GPU: the workers are asked
    (here they have none either, so the run stops there, exit 2)."""
    got = _cli("mine", "--dataset", beir, *_embedding_files(tmp_path), "--device", "cuda", "--engine", "ray",
               "--ray-address", cluster, "--workers", "1", "--out", tmp_path / "o")
    assert got.returncode == 2, got.stderr[-2000:]
    assert "device 'cuda' is not available on the Ray workers" in got.stderr.strip().splitlines()[-1]


def test_cli_doc_shard(cluster: str, beir: Path, tmp_path: Path) -> None:
    """``--doc-shard`` through the CLI: the local engine's bytes, three document shards reported."""
    common = ["mine", "--dataset", beir, *_embedding_files(tmp_path), "--num-negatives", "4", "--doc-block", "3000"]
    assert _cli(*common, "--out", tmp_path / "local").returncode == 0
    got = _cli(*common, "--engine", "ray", "--ray-address", cluster, "--doc-shard", "3000", "--out", tmp_path / "ray")
    assert got.returncode == 0, got.stderr[-2000:]
    assert (tmp_path / "ray" / "mined.parquet").read_bytes() == (tmp_path / "local" / "mined.parquet").read_bytes()
    assert json.loads((tmp_path / "ray" / "report.json").read_text())["run"]["ray_doc_shards"] == 3


def test_doc_shard_refused_for_bm25(cluster: str, data: Any, tmp_path: Path) -> None:
    with pytest.raises(negmine.core.errors.ConfigError,
                       match=r"--doc-shard splits exact dense search.*drop --doc-shard"):
        _mine(data, BM25(), tmp_path / "o", RayEngine(doc_shard=1000), 1, tmp_path / "c")
    with pytest.raises(negmine.core.errors.ConfigError, match="doc_shard must be an integer >= 1"):
        RayEngine(doc_shard=0)


@pytest.mark.slow  # ~25 s: a second Ray cluster, started and stopped by the engine itself
def test_engine_starts_its_own_cluster(beir: Path, tmp_path: Path) -> None:
    common = ["mine", "--dataset", beir, "--num-negatives", "4", "--query-shard", "8"]
    got = _cli(*common, "--engine", "ray", "--workers", "2", "--out", tmp_path / "ray")
    assert got.returncode == 0, got.stderr[-2000:]
    assert _cli(*common, "--out", tmp_path / "local").returncode == 0
    assert (tmp_path / "ray" / "mined.parquet").read_bytes() == (tmp_path / "local" / "mined.parquet").read_bytes()
    report = json.loads((tmp_path / "ray" / "report.json").read_text())
    assert report["run"]["engine"] == "ray" and report["run"]["ray_address"] == "local"
    assert report["timings"]["ray_init_s"] > 0


@pytest.mark.slow  # ~2 min: a real (tiny) sentence-transformers model encodes 9,000 documents twice
def test_tiny_model_same_bytes(cluster: str, data: Any, tmp_path: Path) -> None:
    """A real transformer encoding in Ray Data actors (documents) and Ray tasks (queries) gives the
    bytes the local engine gives."""
    from tests.unit.tiny_models import build_tiny_sentence_transformer

    model = str(build_tiny_sentence_transformer(tmp_path / "model", WORDS))
    _mine(data, Dense(model), tmp_path / "local", "local", 2, tmp_path / "lc")
    got = _mine(data, Dense(model), tmp_path / "ray", "ray", 2, tmp_path / "rc")
    assert got.stats["ray_encode_dense_chunks"] == 3
    assert (tmp_path / "ray" / "mined.parquet").read_bytes() == (tmp_path / "local" / "mined.parquet").read_bytes()
    # document shards, with the model's retriever (its query embeddings are in the cache by now)
    docs = _mine(data, Dense(model), tmp_path / "docs", RayEngine(doc_shard=4096), 2, tmp_path / "rc")
    assert docs.stats["ray_doc_shards"] == 2 and docs.encoding["query_cached"] == N_QUERIES
    assert (tmp_path / "docs" / "mined.parquet").read_bytes() == (tmp_path / "local" / "mined.parquet").read_bytes()
