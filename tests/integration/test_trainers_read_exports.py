"""The exports read back by the trainers that consume them (issue 12, items 9-12).

- FlagEmbedding 1.4.2 (installed from PyPI without touching torch): its own
  ``AbsEmbedderTrainDataset`` and ``AbsEmbedderSameDatasetTrainDataset`` read the ``flag``
  export (scores for distillation, ``prompt``, ``type``). The ``FlagEmbedding`` package itself
  does not import with transformers 5 (its rerankers need ``transformers.modeling_attn_mask_utils``),
  so the dataset module is loaded on its own from the installed files — FlagEmbedding's code, run
  as is.
- Tevatron 0.1.0 (PyPI; Tevatron 1's data layout): its ``TrainPreProcessor`` tokenizes the
  ``tevatron`` export and its ``TrainDataset`` draws training groups from it (its one tokenizer
  call, ``encode_plus``, is gone from transformers 5 and is replaced by the same encoding).
- Tevatron 2's id-based layout (``tevatron-ids``) is not on PyPI: it is read as
  ``texttron/tevatron``'s ``src/tevatron/retriever/dataset.py`` ``TrainDataset`` documents and
  does it — ``datasets.load_dataset('json')`` of the train and corpus files, a ``docid`` ->
  row map of the corpus, the positive and ``train_group_size - 1`` negatives looked up by id.

Each test also shows the failure the export avoids: a query without negatives crashes
FlagEmbedding (ZeroDivisionError) and Tevatron (IndexError) when kept with ``--keep-empty``.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import random
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

datasets = pytest.importorskip("datasets")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, sample_dir: Path) -> Path:
    """BM25 on the bundled sample, 3 negatives from the top 4 raw ranks."""
    from negmine.cli.main import main

    out = tmp_path_factory.mktemp("trainers") / "run"
    assert main(["-q", "mine", "--dataset", str(sample_dir), "--num-negatives", "3", "--range-max", "4",
                 "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def empty_run(tmp_path_factory: pytest.TempPathFactory, sample_dir: Path) -> Path:
    """A run where some queries keep no negative at all (a BM25 max-score of 8 over the top 3
    ranks): the shape the trainers choke on."""
    from negmine.cli.main import main

    out = tmp_path_factory.mktemp("trainers") / "empty"
    assert main(["-q", "mine", "--dataset", str(sample_dir), "--num-negatives", "2", "--range-max", "3",
                 "--max-score", "8", "--out", str(out)]) == 0
    return out


def export(cli_main: Callable[..., int], run: Path, out: Path, fmt: str, *extra: str) -> dict[str, Any]:
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert cli_main(["-q", "export", str(run), "--format", fmt, "--out", str(out), "--json", *extra]) == 0
    return json.loads(buf.getvalue())


@pytest.fixture(scope="module")
def cli_main() -> Callable[..., int]:
    from negmine.cli.main import main

    return main


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# -- FlagEmbedding -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def flag() -> Iterator[Any]:
    """FlagEmbedding's ``abc.finetune.embedder.AbsDataset`` module, loaded from the installed
    package without its ``__init__`` chain (which fails on transformers 5)."""
    spec = importlib.util.find_spec("FlagEmbedding")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("FlagEmbedding is not installed (pip install FlagEmbedding==1.4.2)")
    root = Path(next(iter(spec.submodule_search_locations)))
    parents = ["FlagEmbedding", "FlagEmbedding.abc", "FlagEmbedding.abc.finetune",
               "FlagEmbedding.abc.finetune.embedder"]
    saved = {name: sys.modules.get(name) for name in parents}
    try:
        for name in parents:
            pkg = types.ModuleType(name)
            pkg.__path__ = [str(root.joinpath(*name.split(".")[1:]))]
            sys.modules[name] = pkg
        yield importlib.import_module("FlagEmbedding.abc.finetune.embedder.AbsDataset")
    finally:
        for name in [*parents, "FlagEmbedding.abc.finetune.embedder.AbsDataset",
                     "FlagEmbedding.abc.finetune.embedder.AbsArguments"]:
            sys.modules.pop(name, None)
        sys.modules.update({k: v for k, v in saved.items() if v is not None})


def flag_args(flag: Any, path: Path, tmp: Path, **kw: Any) -> Any:
    from FlagEmbedding.abc.finetune.embedder.AbsArguments import AbsEmbedderDataArguments

    return AbsEmbedderDataArguments(train_data=[str(path)], cache_path=str(tmp / "hf-cache"), train_group_size=3,
                                    **kw)


@pytest.mark.slow
def test_flagembedding_reads_the_flag_export_with_scores_and_prompt(flag: Any, run: Path, tmp_path: Path,
                                                                     cli_main: Callable[..., int]) -> None:
    path = tmp_path / "flag.jsonl"
    counts = export(cli_main, run, path, "flag", "--scores", "retrieval", "--prompt", "Represent: ")
    rows = read_jsonl(path)
    args = flag_args(flag, path, tmp_path, knowledge_distillation=True, query_instruction_for_retrieval="unused: ")
    ds = flag.AbsEmbedderTrainDataset(args, tokenizer=None)
    assert len(ds) == counts["rows"] == len(rows) > 0
    random.seed(0)
    for i in range(len(ds)):
        query, passages, teacher = ds[i]
        assert query == "Represent: " + rows[i]["query"]  # the row's own prompt wins over the default
        assert len(passages) == 3 and passages[0] in rows[i]["pos"]
        assert set(passages[1:]) <= set(rows[i]["neg"])
        assert len(teacher) == 3 and all(isinstance(s, float) for s in teacher)


@pytest.mark.slow
def test_flagembedding_groups_by_type(flag: Any, run: Path, tmp_path: Path, cli_main: Callable[..., int]) -> None:
    path = tmp_path / "typed.jsonl"
    export(cli_main, run, path, "flag", "--type", "only_1neg")
    args = flag_args(flag, path, tmp_path, same_dataset_within_batch=True, small_threshold=0, drop_threshold=0)
    ds = flag.AbsEmbedderSameDatasetTrainDataset(args, default_batch_size=4, seed=0, tokenizer=None)
    queries, passages, _, _ = ds[0]
    assert len(queries) == 4 and len(passages) == 4 * 2  # 'only_1neg': one positive and one negative each


@pytest.mark.slow
def test_flagembedding_crashes_on_an_empty_negative_list_which_the_export_leaves_out(
        flag: Any, empty_run: Path, tmp_path: Path, cli_main: Callable[..., int]) -> None:
    kept, default = tmp_path / "kept.jsonl", tmp_path / "default.jsonl"
    c_kept = export(cli_main, empty_run, kept, "flag", "--keep-empty")
    c_default = export(cli_main, empty_run, default, "flag")
    assert c_default["queries_left_out_no_negatives"] > 0
    assert c_kept["rows"] == c_default["rows"] + c_default["queries_left_out_no_negatives"]
    bad = flag.AbsEmbedderTrainDataset(flag_args(flag, kept, tmp_path), tokenizer=None)
    empty = [i for i in range(len(bad)) if not bad.dataset[i]["neg"]]
    with pytest.raises(ZeroDivisionError):
        bad[empty[0]]
    good = flag.AbsEmbedderTrainDataset(flag_args(flag, default, tmp_path), tokenizer=None)
    for i in range(len(good)):
        good[i]


# -- Tevatron 1 (tevatron 0.1.0) -------------------------------------------------------------------
@pytest.fixture(scope="module")
def tokenizer() -> Any:
    from transformers import AutoTokenizer

    from negmine.text.encoders.st import resolve_model

    return AutoTokenizer.from_pretrained(resolve_model("sentence-transformers/all-MiniLM-L6-v2"))


def tevatron_dataset(path: Path, tokenizer: Any, tmp: Path) -> Any:
    tev_data = pytest.importorskip("tevatron.data")
    from tevatron.arguments import DataArguments
    from tevatron.datasets.preprocessor import TrainPreProcessor

    class TrainDataset(tev_data.TrainDataset):  # type: ignore[misc, name-defined]
        """Tevatron's own group selection; only the tokenizer call is brought to transformers 5,
        which removed ``encode_plus`` (the same encoding: special tokens around the cut ids)."""

        def create_one_example(self, text_encoding: list[int], is_query: bool = False) -> Any:
            limit = (self.data_args.q_max_len if is_query else self.data_args.p_max_len) - 2
            return {"input_ids": [self.tok.cls_token_id, *text_encoding[:limit], self.tok.sep_token_id]}

    raw = datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=str(tmp / "hf-cache"))
    processed = raw.map(TrainPreProcessor(tokenizer, 32, 128), remove_columns=raw.column_names)
    args = DataArguments(train_n_passages=3)
    trainer = SimpleNamespace(state=SimpleNamespace(epoch=0), args=SimpleNamespace(seed=0))  # what it reads
    return raw, TrainDataset(args, processed, tokenizer, trainer)


@pytest.mark.slow
def test_tevatron_reads_the_tevatron_export(run: Path, tmp_path: Path, tokenizer: Any,
                                            cli_main: Callable[..., int]) -> None:
    path = tmp_path / "tev.jsonl"
    counts = export(cli_main, run, path, "tevatron", "--scores", "retrieval")
    raw, ds = tevatron_dataset(path, tokenizer, tmp_path)
    assert len(ds) == counts["rows"] > 0
    assert all("score" in p for p in raw[0]["positive_passages"] + raw[0]["negative_passages"])
    for i in range(len(ds)):
        query, passages = ds[i]
        assert len(passages) == 3 and query["input_ids"]


@pytest.mark.slow
def test_tevatron_crashes_on_empty_negatives_which_the_export_leaves_out(
        empty_run: Path, tmp_path: Path, tokenizer: Any, cli_main: Callable[..., int]) -> None:
    kept, default = tmp_path / "kept.jsonl", tmp_path / "default.jsonl"
    export(cli_main, empty_run, kept, "tevatron", "--keep-empty")
    export(cli_main, empty_run, default, "tevatron")
    raw, bad = tevatron_dataset(kept, tokenizer, tmp_path)
    empty = next(i for i in range(len(raw)) if not raw[i]["negative_passages"])
    with pytest.raises(IndexError):
        bad[empty]
    _, good = tevatron_dataset(default, tokenizer, tmp_path)
    for i in range(len(good)):
        good[i]


# -- Tevatron 2, id-based -----------------------------------------------------------------------------
class Tevatron2Reading:
    """Tevatron 2's ``TrainDataset`` for the id-based layout, as its source reads it: the train
    rows and the corpus through ``load_dataset('json')``, ``docid -> row``, the query text, one
    positive chosen by ``(hash(item + seed) + epoch) % n``, ``train_group_size - 1`` negatives
    (``random.choices`` when fewer), each document's ``text`` looked up by id."""

    def __init__(self, train: Path, corpus: Path, tmp: Path, train_group_size: int = 3) -> None:
        self.train = datasets.load_dataset("json", data_files=str(train), split="train", cache_dir=str(tmp / "c1"))
        self.corpus = datasets.load_dataset("json", data_files=str(corpus), split="train", cache_dir=str(tmp / "c2"))
        self.docid_to_index = {d: i for i, d in enumerate(self.corpus["docid"])}
        self.size = train_group_size

    def doc(self, docid: str) -> str:
        info = self.corpus[self.docid_to_index[docid]]
        assert info["docid"] == docid
        return info.get("text", "") or ""

    def __getitem__(self, item: int) -> tuple[str, list[str]]:
        group = self.train[item]
        query = group.get("query_text", "") or ""
        pos_ids, neg_ids = group["positive_document_ids"], group["negative_document_ids"]
        docs = [self.doc(pos_ids[hash(item) % len(pos_ids)])]
        n = self.size - 1
        chosen = random.choices(neg_ids, k=n) if len(neg_ids) < n else random.Random(item).sample(neg_ids, n)
        return query, docs + [self.doc(d) for d in chosen]


def test_tevatron2_id_based_export_reads_by_id(run: Path, tmp_path: Path, cli_main: Callable[..., int],
                                               sample: dict[str, Any], fs: SimpleNamespace) -> None:
    train = tmp_path / "tev2" / "train.jsonl"
    counts = export(cli_main, run, train, "tevatron-ids", "--scores", "retrieval")
    corpus = tmp_path / "tev2" / "train.corpus.jsonl"
    assert counts["corpus_out"] == str(corpus) and corpus.is_file()
    reader = Tevatron2Reading(train, corpus, tmp_path)
    rows = read_jsonl(train)
    assert len(rows) == counts["rows"] > 0
    assert set(rows[0]) == {"query_id", "query_text", "positive_document_ids", "negative_document_ids",
                            "positive_scores", "negative_scores"}
    for i, r in enumerate(rows):
        query, docs = reader[i]
        assert query == sample["queries"][r["query_id"]]
        assert docs[0] in {fs.full_text(sample["corpus"][d]) for d in r["positive_document_ids"]}
        assert set(docs[1:]) <= {fs.full_text(sample["corpus"][d]) for d in r["negative_document_ids"]}
        assert len(r["negative_scores"]) == len(r["negative_document_ids"])


def test_tevatron2_would_crash_on_empty_negatives_which_the_export_leaves_out(
        empty_run: Path, tmp_path: Path, cli_main: Callable[..., int]) -> None:
    kept = export(cli_main, empty_run, tmp_path / "k" / "train.jsonl", "tevatron-ids", "--keep-empty")
    default = export(cli_main, empty_run, tmp_path / "d" / "train.jsonl", "tevatron-ids")
    assert default["queries_left_out_no_negatives"] > 0
    bad = Tevatron2Reading(tmp_path / "k" / "train.jsonl", tmp_path / "k" / "train.corpus.jsonl", tmp_path)
    empty = next(i for i in range(kept["rows"]) if not bad.train[i]["negative_document_ids"])
    with pytest.raises(IndexError):
        bad[empty]
    good = Tevatron2Reading(tmp_path / "d" / "train.jsonl", tmp_path / "d" / "train.corpus.jsonl", tmp_path)
    for i in range(default["rows"]):
        good[i]
