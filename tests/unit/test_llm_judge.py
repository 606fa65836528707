"""The LLM judge against a real local HTTP server (the real client code, no stubs).

The server implements ``POST /chat/completions`` and answers from the prompt: a candidate whose
text contains ``GOLD`` is "better", one containing ``NEAR`` is "worse", anything else
"irrelevant". Per-test hooks make it slow, fail, or answer malformed JSON for prompts containing
a chosen word, and it records every request (model, Authorization header, prompt) and the
maximum number of requests in flight.

Data (3 queries, k = 4, ``-1`` = padding):

    q0 "what cures scurvy"       positive d0; candidates d1 (GOLD), d2 (NEAR), d3, d4
    q1 "why is the sky blue"     positive d5; candidates d6, d7, -1, -1
    q2 "how do magnets work"     positive d8; candidates d9 (NEAR), d1 (GOLD), d3, -1
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from negmine.core.errors import ConfigError
from negmine.text.scorers.base import VERDICT_BETTER, VERDICT_FAILED, VERDICT_IRRELEVANT, VERDICT_WORSE
from negmine.text.scorers.llm_judge import (
    PROMPT_VERSION,
    VERDICT_UNJUDGED,
    LLMJudge,
    build_prompt,
    parse_verdicts,
    redact_url,
)
from negmine.text.types import Candidates, Corpus, MiningData, Qrels, Queries

B, W, N, X, U = VERDICT_BETTER, VERDICT_WORSE, VERDICT_IRRELEVANT, VERDICT_FAILED, VERDICT_UNJUDGED
FAST = {"backoff_s": 0.01, "backoff_max_s": 0.05}

DOCS = [
    "Vitamin C cures scurvy.",  # d0  positive of q0
    "GOLD citrus fruit prevents and cures scurvy",  # d1
    "NEAR sailors suffered from scurvy on long voyages",  # d2
    "The stock market closed higher today.",  # d3
    "Penguins live in Antarctica.",  # d4
    "Rayleigh scattering makes the sky blue.",  # d5  positive of q1
    "Football results from the weekend.",  # d6
    "A recipe for banana bread.",  # d7
    "Magnetic domains align in ferromagnets.",  # d8  positive of q2
    "NEAR electrons have spin",  # d9
]
TITLES = ["", "", "", "", "", "", "", "", "", "Physics"]
QUERIES = ["what cures scurvy", "why is the sky blue", "how do magnets work"]
IDS = np.array([[1, 2, 3, 4], [6, 7, -1, -1], [9, 1, 3, -1]], dtype=np.int64)
#: the verdicts the marker rule gives every cell of IDS
EXPECTED = np.array([[B, W, N, N], [N, N, U, U], [W, B, N, U]], dtype=np.int8)


def make_data() -> tuple[MiningData, Candidates]:
    pos = Qrels.from_pairs(3, np.array([0, 1, 2]), np.array([0, 5, 8]))
    data = MiningData(
        Corpus([f"d{i}" for i in range(len(DOCS))], DOCS, TITLES), Queries(["q0", "q1", "q2"], QUERIES), pos, pos
    )
    k = IDS.shape[1]
    scores = np.where(IDS >= 0, np.linspace(1.0, 0.5, k, dtype=np.float32), -np.inf).astype(np.float32)
    cand = Candidates(IDS, scores, np.ones_like(IDS, dtype=np.uint8), ["test"], np.ones(3, np.float32))
    return data, cand


# -- the server -------------------------------------------------------------------------------------

_CAND = re.compile(r"^\[(\d+)\] (.*)$", re.M)


def marker_labels(prompt: str) -> list[dict[str, Any]]:
    section = prompt.split("Candidate passages:\n", 1)[1].split("\n\n", 1)[0]
    out = []
    for num, text in _CAND.findall(section):
        label = "better" if "GOLD" in text else "worse" if "NEAR" in text else "irrelevant"
        out.append({"id": int(num), "label": label})
    return out


class JudgeServer:
    """A ThreadingHTTPServer on 127.0.0.1 that answers chat completions deterministically.

    ``hook(model, prompt, n_seen)`` may return ``None`` (answer normally), ``("status", code)``,
    ``("sleep", seconds)`` (then answer normally), ``("content", text)`` (the assistant message) or
    ``("raw", bytes)`` (the whole HTTP body).
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.redirected: list[str | None] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.delay = 0.0
        self.hook: Callable[[str, str, int], tuple[str, Any] | None] = lambda model, prompt, n: None
        self.usage: dict[str, int] | None = {"prompt_tokens": 100, "completion_tokens": 7}
        self.verify_rule: Callable[[dict[str, Any]], dict[str, Any]] | None = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # silence the default stderr log
                pass

            def do_POST(self) -> None:
                with server.lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                self.counted = True
                try:
                    self._answer()
                except OSError:  # the client timed out and went away
                    pass
                finally:
                    self._done()

            def _done(self) -> None:
                # a request stops being in flight *before* its answer is written: once the client has
                # the answer it may send the next request before this thread gets to run again
                if self.counted:
                    self.counted = False
                    with server.lock:
                        server.in_flight -= 1

            def _answer(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path.startswith("/old/"):  # a same-host redirect to /v1/...
                    with server.lock:
                        server.redirected.append(self.headers.get("Authorization"))
                    self._done()
                    self.send_response(307)
                    self.send_header("Location", "/v1/" + self.path.removeprefix("/old/"))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                prompt = body["messages"][-1]["content"]
                with server.lock:
                    n_seen = len(server.requests)
                    server.requests.append(
                        {"path": self.path, "model": body["model"], "auth": self.headers.get("Authorization"),
                         "prompt": prompt, "body": body}
                    )
                if server.delay:
                    time.sleep(server.delay)
                action = server.hook(body["model"], prompt, n_seen)
                if action is not None and action[0] == "status":
                    self._send(action[1], b'{"error": {"message": "try again"}}')
                    return
                if action is not None and action[0] == "raw":
                    self._send(200, action[1])
                    return
                if action is not None and action[0] == "sleep":
                    time.sleep(action[1])
                if action is not None and action[0] == "content":
                    content = action[1]
                else:
                    verdicts = marker_labels(prompt)
                    if server.verify_rule is not None and body["model"] == "big":
                        verdicts = [server.verify_rule(v) for v in verdicts]
                    content = json.dumps({"verdicts": verdicts})
                reply: dict[str, Any] = {
                    "id": "x", "object": "chat.completion", "model": body["model"],
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                 "finish_reason": "stop"}],
                }
                if server.usage is not None:
                    reply["usage"] = server.usage
                self._send(200, json.dumps(reply).encode())

            def _send(self, code: int, payload: bytes) -> None:
                self._done()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.watchdog = threading.Timer(60.0, self.httpd.shutdown)  # never outlive a stuck test
        self.watchdog.daemon = True

    def models(self) -> list[str]:
        return [r["model"] for r in self.requests]

    def __enter__(self) -> JudgeServer:
        self.thread.start()
        self.watchdog.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.watchdog.cancel()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[JudgeServer]:
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with JudgeServer() as srv:
        yield srv


def judge(server: JudgeServer, model: str = "small", **kw: Any) -> LLMJudge:
    return LLMJudge(server.url, model, **{"batch_size": 10, "timeout_s": 5.0, **FAST, **kw})


# -- end to end ---------------------------------------------------------------------------------------


def test_verdicts_end_to_end(server: JudgeServer) -> None:
    data, cand = make_data()
    out = judge(server, batch_size=2).score(data, cand)

    assert out.name == "llm-judge"
    assert out.verdicts is not None and out.verdicts.dtype == np.int8
    np.testing.assert_array_equal(out.verdicts, EXPECTED)
    assert out.scores.dtype == np.float32
    np.testing.assert_array_equal(out.scores, np.where(EXPECTED >= 0, EXPECTED, np.nan).astype(np.float32))
    assert out.positive_scores.shape == (3,) and np.isnan(out.positive_scores).all()
    # batches of 2 over 4 + 2 + 3 valid cells -> 2 + 1 + 2 calls
    s = out.stats
    assert (s["calls"], s["calls_verify"], s["failed_calls"], s["retries"], s["cache_hits"]) == (5, 0, 0, 0, 0)
    assert (s["judged"], s["better"], s["worse"], s["irrelevant"], s["failed"]) == (9, 2, 2, 5, 0)
    assert all(r["path"] == "/v1/chat/completions" for r in server.requests)
    # the prompt holds the query, the positive and the numbered candidates (title + text)
    q2 = sorted((r["prompt"] for r in server.requests if "how do magnets work" in r["prompt"]), key=len)
    assert len(q2) == 2  # [d9 d1] and [d3], in whichever order the threads sent them
    prompt = q2[-1]
    assert "[P1] Magnetic domains align in ferromagnets." in prompt
    assert "[1] Physics NEAR electrons have spin\n[2] GOLD citrus fruit prevents and cures scurvy\n" in prompt
    assert '{"verdicts": [{"id": 1, "label": "better" | "worse" | "irrelevant"}, ...]}' in prompt
    assert "[1] The stock market closed higher today.\n\n" in q2[0]
    assert all(r["body"]["temperature"] == 0 for r in server.requests)
    assert s["model"] == "small" and json.loads(json.dumps(s)) == s  # serialisable for the report


def test_judge_mask_limits_the_cells(server: JudgeServer) -> None:
    data, cand = make_data()
    mask = np.zeros(IDS.shape, dtype=bool)
    mask[0, [1, 3]] = True
    mask[1, 3] = True  # padding: never judged, even when masked in
    out = judge(server).score(data, cand, mask=mask)

    expected = np.full(IDS.shape, U, np.int8)
    expected[0, [1, 3]] = [W, N]
    np.testing.assert_array_equal(out.verdicts, expected)
    assert np.isnan(out.scores[expected == U]).all()
    assert out.stats["calls"] == 1 and out.stats["judged"] == 2
    assert "GOLD" not in server.requests[0]["prompt"]


def test_judge_mask_of_the_wrong_shape_is_a_config_error(server: JudgeServer) -> None:
    data, cand = make_data()
    with pytest.raises(ConfigError, match="mask must be"):
        judge(server).score(data, cand, mask=np.ones((3, 3), bool))
    assert server.requests == []


def test_nothing_to_judge_makes_no_call(server: JudgeServer) -> None:
    data, cand = make_data()
    out = judge(server).score(data, cand, mask=np.zeros(IDS.shape, bool))
    assert (out.verdicts == U).all() and out.stats["calls"] == 0 and server.requests == []


# -- concurrency, timeouts, retries ------------------------------------------------------------------


@pytest.mark.parametrize("max_concurrency", [1, 3])
def test_concurrency_is_bounded(server: JudgeServer, max_concurrency: int) -> None:
    data, cand = make_data()
    server.delay = 0.05
    out = judge(server, batch_size=1, max_concurrency=max_concurrency).score(data, cand)
    np.testing.assert_array_equal(out.verdicts, EXPECTED)
    assert len(server.requests) == 9
    assert server.max_in_flight <= max_concurrency
    assert server.max_in_flight >= min(max_concurrency, 2)  # the requests really ran in parallel


def test_timeouts_are_retried_then_fail_closed(server: JudgeServer) -> None:
    data, cand = make_data()
    server.hook = lambda model, prompt, n: ("sleep", 0.6) if "sky" in prompt else None
    t0 = time.perf_counter()
    out = judge(server, timeout_s=0.15, max_retries=2).score(data, cand)
    assert time.perf_counter() - t0 < 3

    expected = EXPECTED.copy()
    expected[1, :2] = X  # only q1's batch timed out
    np.testing.assert_array_equal(out.verdicts, expected)
    assert np.isnan(out.scores[1]).all()
    assert sum("sky" in r["prompt"] for r in server.requests) == 3  # 1 try + 2 retries
    s = out.stats
    assert (s["calls"], s["failed_calls"], s["retries"], s["failed"]) == (3, 1, 2, 2)
    assert s["errors"] == {"timeout": 1}


def test_server_error_then_success_is_retried(server: JudgeServer) -> None:
    data, cand = make_data()
    server.hook = lambda model, prompt, n: ("status", 500) if n < 2 else None
    out = judge(server, max_concurrency=1).score(data, cand)
    np.testing.assert_array_equal(out.verdicts, EXPECTED)
    assert len(server.requests) == 5  # the first batch was tried 3 times
    assert (out.stats["calls"], out.stats["retries"], out.stats["failed_calls"]) == (3, 2, 0)


def test_rate_limit_429_is_retried_and_fails_closed_when_it_persists(server: JudgeServer) -> None:
    data, cand = make_data()
    q0 = "Query: what cures scurvy"
    server.hook = lambda model, prompt, n: ("status", 429) if prompt.startswith(q0) else None
    out = judge(server, max_retries=3).score(data, cand)
    expected = EXPECTED.copy()
    expected[0] = X
    np.testing.assert_array_equal(out.verdicts, expected)
    assert sum(r["prompt"].startswith(q0) for r in server.requests) == 4
    assert out.stats["errors"] == {"http 429": 1} and out.stats["retries"] == 3


def test_client_errors_are_not_retried(server: JudgeServer) -> None:
    data, cand = make_data()
    server.hook = lambda model, prompt, n: ("status", 404)
    out = judge(server, max_retries=3).score(data, cand)
    assert (out.verdicts[EXPECTED != U] == X).all() and (out.verdicts[EXPECTED == U] == U).all()
    assert len(server.requests) == 3 and out.stats["retries"] == 0
    assert out.stats["errors"] == {"http 404": 3} and out.stats["failed"] == 9


def test_connection_refused_fails_closed() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data, cand = make_data()
    out = LLMJudge(f"http://127.0.0.1:{port}/v1", "small", max_retries=1, timeout_s=2, **FAST).score(data, cand)
    assert (out.verdicts[EXPECTED != U] == X).all()
    assert out.stats["errors"] == {"connection error": 3} and out.stats["retries"] == 3


# -- malformed answers -------------------------------------------------------------------------------

MALFORMED = {
    # query word -> (answer, verdicts of that query's valid cells)
    "scurvy": ("Sorry, I cannot help with that.", [X, X, X, X]),
    "sky": ('{"verdicts": [{"id": 1, "label": "irrelevant"}, {"id": 2, "label": "maybe"}]}', [N, X]),
    "magnets": (
        '{"verdicts": [{"id": 1, "label": "worse"}, {"id": 2, "label": "better"},'
        ' {"id": 2, "label": "worse"}, {"id": 7, "label": "better"}]}',
        [W, X, X],  # id 2 duplicated, id 3 missing (the out-of-range 7 does not stand in for it)
    ),
}


def test_malformed_answers_fail_only_the_affected_candidates(server: JudgeServer) -> None:
    data, cand = make_data()

    def hook(model: str, prompt: str, n: int) -> tuple[str, Any] | None:
        word = next(w for w in MALFORMED if w in prompt.split("\n", 1)[0])
        return ("content", MALFORMED[word][0])

    server.hook = hook
    out = judge(server, max_retries=3).score(data, cand)
    expected = np.full(IDS.shape, U, np.int8)
    for q, word in enumerate(["scurvy", "sky", "magnets"]):
        row = MALFORMED[word][1]
        expected[q, : len(row)] = row
    np.testing.assert_array_equal(out.verdicts, expected)
    s = out.stats
    assert (s["calls"], s["retries"], s["failed_calls"]) == (3, 0, 0)  # a bad answer is not retried
    assert (s["parse_failures"], s["failed"]) == (7, 7)


def test_an_answer_that_is_not_a_chat_completion_fails_closed(server: JudgeServer) -> None:
    data, cand = make_data()
    server.usage = None
    bodies = {"sky": b"<html>502 Bad Gateway</html>", "magnets": b'{"choices": []}'}
    server.hook = lambda model, prompt, n: next((("raw", v) for w, v in bodies.items() if w in prompt), None)
    out = judge(server).score(data, cand)
    expected = EXPECTED.copy()
    expected[1:][EXPECTED[1:] != U] = X
    np.testing.assert_array_equal(out.verdicts, expected)
    assert out.stats["errors"] == {"bad response": 2} and out.stats["parse_failures"] == 5
    assert out.stats["prompt_tokens"] == 0  # no usage sent


@pytest.mark.parametrize(
    "content",
    [
        '```json\n{"verdicts": [{"id": 2, "label": "worse"}, {"id": 1, "label": "Better"}]}\n```',
        'Here is my judgement:\n{"verdicts": [{"id": 1, "label": "better"}, {"id": "2", "label": "worse"}]}\nDone.',
        '<think>{"verdicts": []} hmm</think>{"verdicts": [{"id": 1, "label": "better"}, {"id": 2, "label": "worse"}]}',
        '[{"id": 1, "label": "better"}, {"id": 2, "label": " worse "}]',
    ],
)
def test_parser_tolerates_fences_prose_and_think_blocks(content: str) -> None:
    assert parse_verdicts(content, 2) == [B, W]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", [X, X]),
        ('{"verdicts": [{"id": 1, "label": "better"}', [X, X]),  # truncated
        ('{"verdicts": {"1": "better"}}', [X, X]),
        ('{"verdicts": [{"id": true, "label": "better"}, {"id": 2, "label": 3}]}', [X, X]),
        ('{"verdicts": [{"id": 1.5, "label": "better"}, {"id": 2, "label": "irrelevant"}]}', [X, N]),
        ('{"verdicts": [{"id": 0, "label": "better"}, {"id": 2, "label": "better"}]}', [X, B]),
    ],
)
def test_parser_fails_what_it_cannot_read(content: str, expected: list[int]) -> None:
    assert parse_verdicts(content, 2) == expected


# -- the cascade -------------------------------------------------------------------------------------


def test_cascade_sends_only_flagged_batches_to_the_verify_model(server: JudgeServer) -> None:
    data, cand = make_data()
    # the big model disagrees: GOLD is only "worse", NEAR is "irrelevant"
    server.verify_rule = lambda v: {
        **v, "label": {"better": "worse", "worse": "irrelevant"}.get(v["label"], v["label"])
    }
    out = judge(server, batch_size=2, verify_model="big", max_concurrency=2).score(data, cand)

    # batches: q0 [d1 d2] flagged, q0 [d3 d4] clean, q1 [d6 d7] clean, q2 [d9 d1] flagged, q2 [d3] clean
    assert server.models().count("small") == 5 and server.models().count("big") == 2
    big_prompts = [r["prompt"] for r in server.requests if r["model"] == "big"]
    assert all("GOLD" in p for p in big_prompts)
    expected = np.array([[W, N, N, N], [N, N, U, U], [N, W, N, U]], np.int8)
    np.testing.assert_array_equal(out.verdicts, expected)  # the verify verdict wins
    assert (out.stats["calls"], out.stats["calls_verify"]) == (5, 2)
    assert out.stats["model"] == "big" and out.stats["prompt_version"] == PROMPT_VERSION
    assert out.stats["prompt_tokens"] == 7 * 100 and out.stats["completion_tokens"] == 7 * 7


def test_cascade_sends_failed_batches_to_the_verify_model(server: JudgeServer) -> None:
    data, cand = make_data()
    server.hook = lambda model, prompt, n: ("status", 503) if model == "small" and "sky" in prompt else None
    out = judge(server, verify_model="big", max_retries=1).score(data, cand)
    np.testing.assert_array_equal(out.verdicts, EXPECTED)  # the big model rescued q1
    big = [r["prompt"] for r in server.requests if r["model"] == "big"]
    assert len(big) == 3  # q0 and q2 were flagged (GOLD/NEAR), q1 failed
    assert (out.stats["failed_calls"], out.stats["calls_verify"], out.stats["failed"]) == (1, 3, 0)


# -- the API key -------------------------------------------------------------------------------------

SECRET = "sk-test-5ecret-do-not-log"


def test_api_key_is_sent_but_never_logged_or_configured(
    server: JudgeServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("NEGMINE_TEST_KEY", SECRET)
    data, cand = make_data()
    server.hook = lambda model, prompt, n: ("status", 500) if n == 0 else ("status", 401) if "sky" in prompt else None
    j = judge(server, api_key_env="NEGMINE_TEST_KEY", max_concurrency=1, verify_model="big")
    with caplog.at_level(logging.DEBUG, logger="negmine"):
        out = j.score(data, cand)

    assert {r["auth"] for r in server.requests} == {f"Bearer {SECRET}"}
    assert out.stats["retries"] == 1 and out.stats["failed_calls"] == 2  # both models got 401 for q1
    assert caplog.records  # the paths that log did run
    assert SECRET not in caplog.text
    assert SECRET not in json.dumps(j.config())
    assert SECRET not in repr(vars(j)) and SECRET not in json.dumps(out.stats)
    assert j.config()["api_key_env"] == "NEGMINE_TEST_KEY"
    assert j.config()["prompt_version"] == PROMPT_VERSION


def test_without_a_key_no_authorization_header_is_sent(server: JudgeServer) -> None:
    data, cand = make_data()
    out = judge(server).score(data, cand)  # OPENAI_API_KEY is unset by the fixture
    assert out.stats["failed"] == 0
    assert {r["auth"] for r in server.requests} == {None}


def test_credentials_in_the_url_stay_out_of_config() -> None:
    j = LLMJudge("https://user:pa55word@api.example.com/v1", "m")
    assert j.config()["base_url"] == "https://api.example.com/v1"


# -- tokens and the cache ----------------------------------------------------------------------------


def test_usage_tokens_are_summed(server: JudgeServer) -> None:
    data, cand = make_data()
    server.usage = {"prompt_tokens": 123, "completion_tokens": 4, "total_tokens": 127}
    out = judge(server, batch_size=3).score(data, cand)
    assert out.stats["calls"] == 4  # 2 + 1 + 1
    assert (out.stats["prompt_tokens"], out.stats["completion_tokens"]) == (4 * 123, 4 * 4)


def test_cache_makes_a_second_run_free(server: JudgeServer, tmp_path: Any) -> None:
    data, cand = make_data()
    first = judge(server, batch_size=2, verify_model="big", cache_dir=tmp_path).score(data, cand)
    n = len(server.requests)
    assert n == 7 and first.stats["cache_hits"] == 0

    second = judge(server, batch_size=2, verify_model="big", cache_dir=tmp_path).score(data, cand)
    assert len(server.requests) == n  # zero calls
    assert (second.stats["calls"], second.stats["calls_verify"], second.stats["cache_hits"]) == (0, 0, 7)
    assert second.stats["prompt_tokens"] == 0
    np.testing.assert_array_equal(second.verdicts, first.verdicts)
    assert not list(tmp_path.rglob("*.tmp"))  # atomic writes leave no temp files

    # another model is another key
    judge(server, batch_size=2, model="other", cache_dir=tmp_path).score(data, cand)
    assert len(server.requests) == n + 5


def test_cache_does_not_keep_failures_and_uses_the_pipeline_cache_dir(server: JudgeServer, tmp_path: Any) -> None:
    data, cand = make_data()
    server.hook = lambda model, prompt, n: ("content", "no idea") if n == 0 else None
    j = judge(server, max_concurrency=1)
    first = j.score(data, cand, cache_dir=str(tmp_path))
    assert first.stats["failed"] > 0 and (tmp_path / "llm-judge").is_dir()
    second = j.score(data, cand, cache_dir=str(tmp_path))
    assert second.stats["calls"] == 1 and second.stats["cache_hits"] == 2  # only the failure is asked again
    np.testing.assert_array_equal(second.verdicts, EXPECTED)


# -- options -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["ftp://example.com/v1", "localhost:8000/v1", "", "127.0.0.1:8000", "http:///v1"])
def test_base_url_must_be_http(url: str) -> None:
    with pytest.raises(ConfigError, match="http:// or https://") as info:
        LLMJudge(url, "m")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "kw", [{"batch_size": 0}, {"max_concurrency": 0}, {"max_retries": -1}, {"timeout_s": 0}, {"max_chars": 0}]
)
def test_bad_options_are_config_errors(kw: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        LLMJudge("http://localhost:8000/v1", "m", **kw)


def test_endpoint_and_config() -> None:
    j = LLMJudge("http://localhost:11434/v1/", "llama3", verify_model="llama3:70b", api_key_env=None)
    assert j.endpoint == "http://localhost:11434/v1/chat/completions"
    assert LLMJudge("http://h/v1/chat/completions", "m").endpoint == "http://h/v1/chat/completions"
    cfg = j.config()
    assert cfg["name"] == "llm-judge" and cfg["model"] == "llama3" and cfg["verify_model"] == "llama3:70b"
    assert cfg["prompt_version"] == PROMPT_VERSION == "judge-v1" and cfg["temperature"] == 0.0


def test_json_mode_is_requested_when_asked(server: JudgeServer) -> None:
    data, cand = make_data()
    judge(server, json_mode=True).score(data, cand)
    judge(server, model="plain").score(data, cand)
    formats = {r["model"]: r["body"].get("response_format") for r in server.requests}
    assert formats == {"small": {"type": "json_object"}, "plain": None}


def test_prompt_without_positives_and_with_long_passages() -> None:
    prompt = build_prompt("q?", [], ["a  b\n c", "x" * 50], max_chars=10)
    assert "Known relevant passage(s):\n(none known" in prompt
    assert "[1] a b c\n[2] xxxxxxxxxx …\n" in prompt
    assert "from 1 to 2:" in prompt


def test_a_key_with_control_characters_is_refused_without_echoing_it(
    server: JudgeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-abc\r\nX-Evil: 1")
    data, cand = make_data()
    with pytest.raises(ConfigError, match=r"\$OPENAI_API_KEY") as info:
        judge(server).score(data, cand)
    assert "sk-abc" not in str(info.value) and server.requests == []


# -- secrets in URLs and redirects (issue 12, items 1-2) ---------------------------------------------


@pytest.mark.parametrize(("url", "expected"), [
    ("http://user:SECRET@host:8000/v1", "http://host:8000/v1"),
    ("https://SECRET@api.example.com/v1", "https://api.example.com/v1"),
    ("http://h/v1?api_key=SECRET&model=m", "http://h/v1?api_key=REDACTED&model=m"),
    ("http://h/v1?Token=SECRET&x-api-key=SECRET&sig=SECRET",
     "http://h/v1?Token=REDACTED&x-api-key=REDACTED&sig=REDACTED"),
    ("http://u:SECRET@[::1]:9/v1?access_token=SECRET", "http://[::1]:9/v1?access_token=REDACTED"),
    ("http://localhost:8000/v1", "http://localhost:8000/v1"),
    ("http://u:SECRET@host:notaport/v1", "host:notaport/v1"),
])
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected
    assert "SECRET" not in redact_url(url)


def test_credentials_in_the_url_are_never_logged_or_configured(
    server: JudgeServer, caplog: pytest.LogCaptureFixture
) -> None:
    host = server.url.split("//", 1)[1]
    j = judge(server, max_concurrency=1)
    j.base_url = f"http://bob:SECRET-PW@{host}?api_key=SECRET-Q"
    data, cand = make_data()
    with caplog.at_level(logging.DEBUG, logger="negmine"):
        out = j.score(data, cand)
    assert out.stats["failed"] == 0
    assert "SECRET" not in caplog.text and "SECRET" not in json.dumps(j.config())
    assert caplog.text.count("api_key=REDACTED") >= 1
    # user-info is sent as Basic auth to the configured host, never as part of the URL
    assert {r["auth"] for r in server.requests} == {"Basic Ym9iOlNFQ1JFVC1QVw=="}
    with pytest.raises(ConfigError) as err:
        LLMJudge("ftp://bob:SECRET@h/v1", "m")
    assert "SECRET" not in str(err.value)


class Redirector:
    """A second local server that answers every POST with a redirect to ``target`` and records the
    headers it received."""

    def __init__(self, target: str, code: int) -> None:
        self.requests: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.requests.append({"path": self.path, "auth": self.headers.get("Authorization")})
                self.send_response(code)
                self.send_header("Location", target + self.path.removeprefix("/v1"))
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> Redirector:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_a_redirect_to_another_host_is_an_error_and_never_carries_the_key(
    server: JudgeServer, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    monkeypatch.setenv("NEGMINE_TEST_KEY", SECRET)
    data, cand = make_data()
    with Redirector(server.url, code) as first:
        j = LLMJudge(first.url, "small", api_key_env="NEGMINE_TEST_KEY", max_retries=0, timeout_s=5.0, **FAST)
        with pytest.raises(ConfigError) as err:
            j.score(data, cand)
    first_host = first.url.split("//")[1].split("/")[0]
    second_host = server.url.split("//")[1].split("/")[0]
    msg = str(err.value)
    assert first_host in msg and second_host in msg and "\n" not in msg
    assert first.requests and {r["auth"] for r in first.requests} == {f"Bearer {SECRET}"}
    assert server.requests == []  # the second host never saw a request, let alone the key


def test_a_same_host_307_redirect_is_followed_as_a_post_with_the_key(
    server: JudgeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEGMINE_TEST_KEY", SECRET)
    data, cand = make_data()
    old = server.url.removesuffix("/v1") + "/old"
    out = LLMJudge(old, "small", api_key_env="NEGMINE_TEST_KEY", timeout_s=5.0, **FAST).score(data, cand)
    np.testing.assert_array_equal(out.verdicts, EXPECTED)
    assert len(server.redirected) == len(server.requests) == 3
    assert {r["path"] for r in server.requests} == {"/v1/chat/completions"}
    assert {r["auth"] for r in server.requests} == {f"Bearer {SECRET}"}
