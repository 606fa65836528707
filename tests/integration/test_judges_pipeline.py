"""Judges inside the mining pipeline, end to end through the CLI: the real LLM-judge client
against a local OpenAI-compatible server started here, and a real (tiny, built in code)
cross-encoder. Pins DESIGN.md invariant 5: a judge that errors never makes a negative."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from negmine.cli.main import main

SAMPLE = Path(__file__).resolve().parents[2] / "src" / "negmine" / "sample"
MARKER = "cell"  # candidates whose text mentions it are judged "better" than the positive


class _Judge(BaseHTTPRequestHandler):
    mode = "ok"  # "ok" | "fail" | "garbage"

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.server.mode == "fail":  # type: ignore[attr-defined]
            self.send_response(500)
            self.end_headers()
            return
        prompt = body["messages"][-1]["content"]
        cands = re.findall(r"^\[(\d+)\] (.*)$", prompt.split("Candidate passages:")[1], flags=re.M)
        verdicts = [{"id": int(i), "label": "better" if MARKER in t.lower() else "irrelevant"} for i, t in cands]
        content = "no json here" if self.server.mode == "garbage" else json.dumps({"verdicts": verdicts})  # type: ignore[attr-defined]
        out = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}],
                          "usage": {"prompt_tokens": 10, "completion_tokens": 5}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


@pytest.fixture
def judge_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ThreadingHTTPServer]:
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Judge)
    server.mode = "ok"  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _mine(tmp: Path, server: ThreadingHTTPServer, *extra: str) -> int:
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    return main(["mine", "--dataset", str(SAMPLE), "--retriever", "bm25", "--num-negatives", "3",
                 "--llm-base-url", url, "--llm-model", "cheap", "--llm-max-flagged", "100",
                 "--llm-timeout", "5", "--out", str(tmp), *extra])


def _rows(out: Path) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(out / "mined.parquet").to_pylist()


def _texts(out: Path) -> dict[str, str]:
    import pyarrow.parquet as pq

    return {r["id"]: f"{r['title']} {r['text']}" for r in pq.read_table(out / "texts.parquet").to_pylist()
            if r["kind"] == "doc"}


@pytest.mark.extra("bm25")
def test_judged_false_negatives_are_dropped_and_relabeled(tmp_path: Path, judge_server: ThreadingHTTPServer) -> None:
    out = tmp_path / "out"
    assert _mine(out, judge_server, "--judge-action", "relabel") == 0
    texts = _texts(out)
    rows = _rows(out)
    assert sum(len(r["negative_ids"]) for r in rows) > 0
    for r in rows:
        for d in r["negative_ids"]:
            seen_by_judge = " ".join(texts[d].split())[:1900].lower()  # the judge sees passages cut at 2000 chars
            assert MARKER not in seen_by_judge, f"flagged document {d} became a negative"
    relabeled = (out / "relabeled-qrels.tsv").read_text().splitlines()
    assert relabeled[0].split("\t") == ["query-id", "corpus-id", "score", "verdict", "judge"]
    assert len(relabeled) > 1 and all(line.split("\t")[3] == "better" for line in relabeled[1:])
    report = json.loads((out / "report.json").read_text())
    assert report["judge"]["flagged"] == len(relabeled) - 1
    stats = report["scorers"]["llm-judge"]["stats"]
    assert stats["calls"] > 0 and stats["prompt_tokens"] == 10 * stats["calls"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["scorers"][0]["name"] == "llm-judge"


@pytest.mark.extra("bm25")
@pytest.mark.parametrize("mode", ["fail", "garbage"])
def test_a_failing_judge_never_makes_a_negative(tmp_path: Path, judge_server: ThreadingHTTPServer,
                                                mode: str) -> None:
    judge_server.mode = mode  # type: ignore[attr-defined]
    out = tmp_path / "out"
    assert _mine(out, judge_server, "--llm-batch-size", "20", "--llm-retries", "0") == 0
    assert all(r["negative_ids"] == [] for r in _rows(out))
    report = json.loads((out / "report.json").read_text())
    assert report["shortfall"]["queries"] == report["queries"]["mined"]
    removed = {f["name"]: f["removed"] for f in report["filters"]}
    assert removed["llm-judge"] > 0


@pytest.mark.extra("bm25", "st")
def test_cross_encoder_scores_are_kept_beside_retrieval_scores(tmp_path: Path) -> None:
    from tests.unit.tiny_models import build_tiny_cross_encoder

    model = build_tiny_cross_encoder(tmp_path / "ce")
    out = tmp_path / "out"
    code = main(["mine", "--dataset", str(SAMPLE), "--retriever", "bm25", "--num-negatives", "3",
                 "--cross-encoder", str(model), "--ce-max-score", "0.5", "--out", str(out)])
    assert code == 0
    rows = _rows(out)
    for r in rows:
        assert len(r["negative_ce_scores"]) == len(r["negative_ids"])
        assert all(s < 0.5 for s in r["negative_ce_scores"])
        assert len(r["positive_ce_scores"]) == len(r["positive_ids"])
        assert r["negative_scores"] != r["negative_ce_scores"]  # retrieval scores are not replaced
    report = json.loads((out / "report.json").read_text())
    assert report["scorers"]["cross-encoder"]["positive"]["count"] == sum(len(r["positive_ids"]) for r in rows)


def test_ce_filter_without_cross_encoder_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["mine", "--dataset", str(SAMPLE), "--ce-max-score", "0.1", "--out", str(tmp_path / "o")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--cross-encoder" in err[0]
    assert not (tmp_path / "o").exists()


@pytest.mark.extra("bm25", "st", "detect")
def test_target_fnr_with_a_cross_encoder_filter(tmp_path: Path) -> None:
    """Regression (issue "One machine, any corpus"): ``--target-fnr`` with ``--cross-encoder X
    --ce-max-score S`` exited 2 asking for --cross-encoder; calibration and scorers now share the
    one orchestration path: calibration picks the retrieval-score policy, the cross-encoder filter
    runs on top of it."""
    from tests.unit.tiny_models import build_tiny_cross_encoder

    model = build_tiny_cross_encoder(tmp_path / "ce")
    out = tmp_path / "out"
    code = main(["mine", "--dataset", str(SAMPLE), "--num-negatives", "3", "--target-fnr", "0.1",
                 "--range-max", "10", "--cross-encoder", str(model), "--ce-max-score", "0.5", "--out", str(out)])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["calibration"]["target_fnr"] == 0.1
    assert "cross-encoder" in report["scorers"]
    names = [f["name"] for f in report["filters"]]
    assert names[0] == "exclude-positives" and names[-1] == "ce-max-score"
    assert all(s < 0.5 for r in _rows(out) for s in r["negative_ce_scores"])


@pytest.mark.extra("bm25", "train")
def test_remining_during_training_keeps_the_judges(tmp_path: Path) -> None:
    """Regression: ``train --remine-every`` on an output filtered by a cross-encoder rebuilt its
    filters without the scorers. Re-mining now goes through ``mine_from_options`` with the mining
    run's options: the cross-encoder scores the re-mined candidates too."""
    from sentence_transformers import SentenceTransformer

    from negmine.text.train.trainer import LiveEncoder, Remining
    from tests.unit.tiny_models import WORDS, build_tiny_cross_encoder, build_tiny_sentence_transformer

    ce = build_tiny_cross_encoder(tmp_path / "ce")
    out = tmp_path / "out"
    assert main(["mine", "--dataset", str(SAMPLE), "--num-negatives", "2", "--range-max", "10",
                 "--cross-encoder", str(ce), "--ce-max-score", "0.5", "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    st_path = build_tiny_sentence_transformer(tmp_path / "st", WORDS)
    remining = Remining(manifest, LiveEncoder(SentenceTransformer(str(st_path), device="cpu")), 2)
    remining.prepare()
    rows, _, _ = remining.remine()
    assert rows and all("negative_ce_scores" in r for r in rows)
    assert all(s < 0.5 for r in rows for s in r["negative_ce_scores"])


@pytest.mark.extra("bm25")
def test_credentials_in_the_judge_url_never_reach_the_manifest_or_report(
        tmp_path: Path, judge_server: ThreadingHTTPServer) -> None:
    """Issue "Trustworthy in daily use", item 1: user-info and key-like query parameters of
    ``--llm-base-url`` are redacted wherever the run records them."""
    from negmine.text.report.html import render_html

    port = judge_server.server_address[1]
    url = f"http://alice:SECRET1@127.0.0.1:{port}/v1?api_key=SECRET2&region=eu"
    out = tmp_path / "out"
    code = main(["mine", "--dataset", str(SAMPLE), "--num-negatives", "2", "--range-max", "5",
                 "--llm-base-url", url, "--llm-model", "cheap", "--llm-timeout", "5", "--out", str(out)])
    assert code == 0
    for name in ("manifest.json", "report.json"):
        text = (out / name).read_text()
        assert "SECRET1" not in text and "SECRET2" not in text, name
    assert "region=eu" in (out / "manifest.json").read_text()  # only the secrets are redacted
    page = render_html(out)
    assert "SECRET1" not in page and "SECRET2" not in page
