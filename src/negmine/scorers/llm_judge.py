"""An LLM judge over an OpenAI-compatible chat completions endpoint, with a two-stage cascade.

The judge sees a query, its known positive passage(s) and a numbered batch of candidate passages,
and labels each candidate ``better`` (at least as relevant as the positive: a likely false
negative), ``worse`` (relevant but less so: a good hard negative) or ``irrelevant``. It talks to
``POST {base_url}/chat/completions`` as served by vLLM, Ollama, llama.cpp's server or OpenAI, with
the standard library only (``urllib`` + a thread pool), so no extra dependency is needed.

Cells of the returned ``verdicts int8[n_queries, k]``:

- :data:`~negmine.scorers.base.VERDICT_BETTER` (2), ``VERDICT_WORSE`` (1),
  ``VERDICT_IRRELEVANT`` (0): the judge's answer;
- :data:`~negmine.scorers.base.VERDICT_FAILED` (-1): the call failed after its retries (HTTP 5xx,
  429, timeout, connection error, another HTTP error) or the answer for that candidate could not
  be parsed. Fail closed: the pipeline never makes such a candidate a negative;
- :data:`VERDICT_UNJUDGED` (-2): padding, or a cell outside ``mask``.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import logging
import os
import re
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from negmine._progress import progress
from negmine.errors import ConfigError
from negmine.scorers.base import (
    VERDICT_BETTER,
    VERDICT_FAILED,
    VERDICT_IRRELEVANT,
    VERDICT_WORSE,
    ScoreMatrix,
)
from negmine.types import Candidates, MiningData

log = logging.getLogger(__name__)

#: Version of the prompt and answer schema; recorded in ``config()`` (and so in the manifest) and
#: part of every cache key. Change it whenever :data:`SYSTEM_PROMPT` or the user prompt changes.
PROMPT_VERSION = "judge-v1"

#: Verdict of a cell that was not judged: padding (``ids == -1``) or outside the judge mask.
VERDICT_UNJUDGED = -2

#: Answer label -> verdict code.
LABELS: dict[str, int] = {"better": VERDICT_BETTER, "worse": VERDICT_WORSE, "irrelevant": VERDICT_IRRELEVANT}

#: HTTP statuses worth retrying (with backoff); any other HTTP error fails the call at once.
RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})

SYSTEM_PROMPT = (
    "You are a careful relevance judge for search training data. You compare candidate passages "
    "with the passages already known to answer a query, and you reply with JSON only."
)

_INSTRUCTIONS = """\
For each candidate, compare it with the known relevant passage(s) and choose exactly one label:
- "better": it answers the query at least as well as the known relevant passage(s).
- "worse": it is on the query's topic, but answers it less well than the known relevant passage(s).
- "irrelevant": it does not answer the query.

Reply with one JSON object and nothing else, with exactly one entry for each candidate id from 1 to {n}:
{{"verdicts": [{{"id": 1, "label": "better" | "worse" | "irrelevant"}}, ...]}}"""

_NO_POSITIVE = '(none known: label a candidate "better" if it fully answers the query)'

_WS = re.compile(r"\s+")
_THINK = re.compile(r"<think>.*?</think>", re.S | re.I)
_FENCE = re.compile(r"```[a-zA-Z]*\s*(.*?)```", re.S)


def build_prompt(query: str, positives: Sequence[str], candidates: Sequence[str], max_chars: int | None) -> str:
    """The user message for one batch: the query, the known positives (``[P1]``, ``[P2]``...) and the
    candidates numbered ``[1]..[n]``, one passage per line (whitespace collapsed, cut at
    ``max_chars`` characters), then the labels and the JSON answer schema."""

    def clip(text: str) -> str:
        text = _WS.sub(" ", text).strip()
        return text if max_chars is None or len(text) <= max_chars else text[:max_chars].rstrip() + " …"

    pos = "\n".join(f"[P{i}] {clip(t)}" for i, t in enumerate(positives, 1)) or _NO_POSITIVE
    cands = "\n".join(f"[{i}] {clip(t)}" for i, t in enumerate(candidates, 1))
    return (
        f"Query: {clip(query)}\n\n"
        f"Known relevant passage(s):\n{pos}\n\n"
        f"Candidate passages:\n{cands}\n\n"
        f"{_INSTRUCTIONS.format(n=len(candidates))}"
    )


def _extract_json(content: str) -> Any:
    """The answer's JSON value, tolerating ``<think>`` blocks, code fences and surrounding prose;
    ``None`` when there is none."""
    text = _THINK.sub("", content).strip()
    chunks = [m.group(1).strip() for m in _FENCE.finditer(text)] + [text]
    decoder = json.JSONDecoder()
    for chunk in chunks:
        try:
            return json.loads(chunk)
        except ValueError:
            pass
        for start in (i for i, ch in enumerate(chunk) if ch == "{"):
            try:
                obj, _ = decoder.raw_decode(chunk, start)
            except ValueError:
                continue
            if isinstance(obj, dict) and "verdicts" in obj:
                return obj
    return None


def _as_id(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def parse_verdicts(content: str, n: int) -> list[int]:
    """Verdict codes for candidates ``1..n`` from an answer ``{"verdicts": [{"id", "label"}...]}``.

    Code fences, ``<think>`` blocks and prose around the JSON are tolerated, as is a bare list of
    entries. A candidate gets :data:`VERDICT_FAILED` when its id is missing or appears more than
    once, or its label is not one of ``better``/``worse``/``irrelevant`` (case-insensitive); every
    candidate fails when no JSON answer is found. Entries with out-of-range ids are ignored (the
    candidate they were meant for is then missing).
    """
    obj = _extract_json(content)
    items = obj.get("verdicts") if isinstance(obj, dict) else obj
    if not isinstance(items, list):
        return [VERDICT_FAILED] * n
    found: dict[int, int] = {}
    duplicated: set[int] = set()
    for item in items:
        if not isinstance(item, dict):
            continue
        i = _as_id(item.get("id"))
        if i is None or not 1 <= i <= n:
            continue
        label = item.get("label")
        verdict = LABELS.get(label.strip().lower(), VERDICT_FAILED) if isinstance(label, str) else VERDICT_FAILED
        if i in found:
            duplicated.add(i)
        found[i] = verdict
    return [VERDICT_FAILED if i in duplicated else found.get(i, VERDICT_FAILED) for i in range(1, n + 1)]


#: Query parameters whose value is redacted by :func:`redact_url` (matched case-insensitively
#: anywhere in the parameter name).
_SECRET_PARAM = re.compile(r"key|token|secret|passw|pwd|auth|sig|credential|session|cookie|jwt|bearer", re.I)
REDACTED = "REDACTED"


def redact_url(url: str) -> str:
    """``url`` fit to record or log: the ``user:password@`` part removed and the value of every
    secret-looking query parameter (a name containing ``key``, ``token``, ``secret``, ``pass``,
    ``auth``, ``sig``...) replaced by ``REDACTED``. Anything that is not a URL is returned as is.

    >>> redact_url("https://bob:hunter2@api.example.com/v1?api_key=sk-1&model=m")
    'https://api.example.com/v1?api_key=REDACTED&model=m'
    """
    if not isinstance(url, str):
        return url
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:  # e.g. a non-numeric port: keep only what is certainly not user-info
        return url.rsplit("@", 1)[-1] if "@" in url else url
    netloc = parts.netloc
    if "@" in netloc:
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        netloc = f"{host}:{port}" if port else host
    query = parts.query
    if query:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
        if any(_SECRET_PARAM.search(k) for k, _ in pairs):
            query = urllib.parse.urlencode(
                [(k, REDACTED if _SECRET_PARAM.search(k) else v) for k, v in pairs], safe=":/,"
            )
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _origin(url: str) -> tuple[str, str]:
    """``(scheme, host[:port])`` of ``url``, the port spelled out; the key is only sent there."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        port = 0
    host = (parts.hostname or "").lower()
    return scheme, f"{host}:{port}"


class _SameHostRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects only within the configured scheme, host and port (307/308 keep the POST
    and its body); a redirect anywhere else is a :class:`~negmine.errors.ConfigError` naming both
    hosts, raised before anything — the ``Authorization`` header above all — is sent there."""

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> urllib.request.Request | None:
        old, new = _origin(req.full_url), _origin(newurl)
        if old != new:
            fp.close()
            raise ConfigError(
                f"llm-judge: {old[0]}://{old[1]} redirected (HTTP {code}) to another host, {new[0]}://{new[1]}; "
                "the API key is only ever sent to the configured host: if you trust the new one, set "
                f"--llm-base-url to it ({redact_url(newurl)})"
            )
        if code in (307, 308) and req.get_method() == "POST":
            return urllib.request.Request(newurl, data=req.data, headers=dict(req.header_items()),
                                          origin_req_host=req.origin_req_host, unverifiable=True, method="POST")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class _CallFailed(Exception):
    def __init__(self, kind: str, retries: int) -> None:
        super().__init__(kind)
        self.kind = kind
        self.retries = retries


@dataclass
class _Call:
    """The outcome of one logical call (one prompt to one model, retries included)."""

    verdicts: list[int]
    cached: bool = False
    failed: bool = False
    retries: int = 0
    parse_failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None


@dataclass
class _Batch:
    q: int
    cols: np.ndarray  # int64 column positions in the candidate row
    prompt: str
    calls: list[_Call] = field(default_factory=list)  # [cheap] or [cheap, verify]


class _AnswerCache:
    """Answers stored as ``<dir>/<key[:2]>/<key>.json``; the key hashes the model, the prompt
    version, the temperature, the JSON mode and the exact messages. Writes are atomic."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def load(self, key: str) -> str | None:
        try:
            entry = json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # absent or corrupt: a miss (rewritten after the call)
        content = entry.get("content") if isinstance(entry, dict) else None
        return content if isinstance(content, str) else None

    def save(self, key: str, entry: dict[str, Any]) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".json.tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(entry, fh, ensure_ascii=False)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class LLMJudge:
    """Judge candidates with an LLM behind an OpenAI-compatible chat endpoint (RLHN cascade).

    Follows RLHN (Thakur et al., 2025, "Fixing Data That Hurts Performance: Cascading LLMs to
    Relabel Hard Negatives for Robust Information Retrieval"): a cheap model judges every batch of
    (query, positive, numbered candidates); only the batches it flags — at least one candidate
    ``better`` or ``worse``, or a failure — go to a stronger ``verify_model``, whose verdicts
    replace the cheap ones for that batch. Unlike ``cross-encoder``, which returns a calibrated-ish
    score per pair that filters threshold, this scorer returns a categorical verdict per candidate
    (``verdicts``); ``scores`` holds the verdict code as a float for convenience.

    A call that still fails after ``max_retries`` retries, and a candidate whose verdict cannot be
    parsed from the answer, get :data:`~negmine.scorers.base.VERDICT_FAILED` (-1): fail closed,
    such a candidate never becomes a negative. Padding and cells outside the optional
    ``mask`` (``bool[n_queries, k]``, e.g. the cells that survived the other
    filters) get :data:`VERDICT_UNJUDGED` (-2).

    Parameters
    ----------
    base_url
        ``http(s)://`` root of the API, e.g. ``http://localhost:8000/v1`` (vLLM),
        ``http://localhost:11434/v1`` (Ollama), ``https://api.openai.com/v1``. Requests go to
        ``{base_url}/chat/completions`` (a ``base_url`` that already ends so is used as is).
    model
        The model that judges every batch (the cheap stage).
    verify_model
        Optional stronger model for the flagged batches; ``None`` disables the cascade.
    api_key_env
        Name of the environment variable holding the API key, read at call time and sent as
        ``Authorization: Bearer ...``. When unset or empty (local servers), no header is sent.
        The key is never stored on the object, logged, or written to ``config()``.
    batch_size
        Candidates per prompt.
    max_concurrency
        Requests in flight at once (a batch's verify call reuses its worker).
    timeout_s
        Socket timeout of one request, in seconds.
    max_retries
        Retries of a request after a timeout, a connection error or an HTTP status in
        :data:`RETRY_STATUS` (429, 5xx...); other HTTP errors (400, 401, 404...) are not retried.
    backoff_s, backoff_max_s
        Delay before retry ``r`` (1-based) is ``min(backoff_max_s, backoff_s * 2 ** (r - 1))``, or
        the server's ``Retry-After`` when longer (also capped at ``backoff_max_s``).
    temperature
        Sampling temperature (0: as deterministic as the server allows).
    max_positives
        Known positives shown per query (the first ones by document row); ``None`` shows all.
    max_chars
        Each passage is cut to this many characters (``None``: never cut).
    json_mode
        Also send ``response_format={"type": "json_object"}`` (supported by OpenAI, vLLM, Ollama and
        llama.cpp; leave off for servers that reject unknown fields).
    cache_dir
        Directory of the on-disk answer cache; when ``None``, ``<the run's cache_dir>/llm-judge``
        is used if the pipeline gives one, else nothing is cached. Only answers that parse
        completely are cached, so failures are asked again on the next run.

    Examples
    --------
    >>> judge = LLMJudge("http://localhost:8000/v1", "Qwen/Qwen2.5-7B-Instruct",
    ...                  verify_model="Qwen/Qwen2.5-72B-Instruct", api_key_env=None)
    >>> judge.config()["prompt_version"]
    'judge-v1'

    ``judge.score(data, candidates, mask=keep)`` returns a
    :class:`~negmine.scorers.base.ScoreMatrix` with ``verdicts`` and ``stats`` (calls, retries,
    failures, tokens, cache hits and verdict counts).
    """

    name = "llm-judge"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        verify_model: str | None = None,
        api_key_env: str | None = "OPENAI_API_KEY",
        batch_size: int = 10,
        max_concurrency: int = 4,
        timeout_s: float = 60.0,
        max_retries: int = 3,
        backoff_s: float = 1.0,
        backoff_max_s: float = 30.0,
        temperature: float = 0.0,
        max_positives: int | None = 3,
        max_chars: int | None = 2000,
        json_mode: bool = False,
        cache_dir: str | Path | None = None,
    ) -> None:
        try:
            parts = urllib.parse.urlsplit(base_url) if isinstance(base_url, str) else None
            _ = parts and parts.port
        except ValueError:  # a bad port or IPv6 literal
            parts = None
        if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"llm-judge base_url must start with http:// or https://, got {redact_url(base_url)!r}; "
                "e.g. http://localhost:8000/v1"
            )
        if not model:
            raise ConfigError("llm-judge needs a model name (--llm-model), e.g. 'Qwen/Qwen2.5-7B-Instruct'")
        for opt, value, low in (("batch_size", batch_size, 1), ("max_concurrency", max_concurrency, 1),
                                ("max_retries", max_retries, 0)):
            if not isinstance(value, int) or value < low:
                raise ConfigError(f"llm-judge {opt} must be an integer >= {low}, got {value!r}")
        for opt, num in (("timeout_s", timeout_s), ("backoff_s", backoff_s), ("backoff_max_s", backoff_max_s)):
            if not num >= 0 or (opt == "timeout_s" and num == 0):
                raise ConfigError(f"llm-judge {opt} must be a positive number of seconds, got {num!r}")
        for opt, lim in (("max_positives", max_positives), ("max_chars", max_chars)):
            if lim is not None and (not isinstance(lim, int) or lim < 1):
                raise ConfigError(f"llm-judge {opt} must be None or an integer >= 1, got {lim!r}")
        self.base_url = base_url
        self.model = model
        self.verify_model = verify_model or None
        self.api_key_env = api_key_env or None
        self.batch_size = batch_size
        self.max_concurrency = max_concurrency
        self.timeout_s = float(timeout_s)
        self.max_retries = max_retries
        self.backoff_s = float(backoff_s)
        self.backoff_max_s = float(backoff_max_s)
        self.temperature = float(temperature)
        self.max_positives = max_positives
        self.max_chars = max_chars
        self.json_mode = bool(json_mode)
        self.cache_dir = None if cache_dir is None else Path(cache_dir)

    # -- identity ---------------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """Everything that determines the verdicts (for the manifest); never the API key."""
        return {
            "name": self.name,
            "base_url": redact_url(self.base_url),
            "model": self.model,
            "verify_model": self.verify_model,
            "prompt_version": PROMPT_VERSION,
            "api_key_env": self.api_key_env,
            "batch_size": self.batch_size,
            "temperature": self.temperature,
            "max_positives": self.max_positives,
            "max_chars": self.max_chars,
            "json_mode": self.json_mode,
            "max_concurrency": self.max_concurrency,
            "timeout_s": self.timeout_s,
            "max_retries": self.max_retries,
        }

    @property
    def endpoint(self) -> str:
        """``{base_url}/chat/completions`` without any ``user:password@`` (sent as Basic auth
        instead, when no API key is set)."""
        parts = urllib.parse.urlsplit(self.base_url)
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        netloc = f"{host}:{parts.port}" if parts.port else host
        path = parts.path.rstrip("/")
        path = path if path.endswith("/chat/completions") else path + "/chat/completions"
        return urllib.parse.urlunsplit((parts.scheme, netloc, path, parts.query, ""))

    def _basic_auth(self) -> str | None:
        parts = urllib.parse.urlsplit(self.base_url)
        if parts.username is None:
            return None
        user = urllib.parse.unquote(parts.username)
        password = urllib.parse.unquote(parts.password or "")
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")

    # -- scoring ----------------------------------------------------------------------------------

    def score(self, data: MiningData, candidates: Candidates, *, mask: np.ndarray | None = None,
              cache_dir: str | None = None) -> ScoreMatrix:
        """Judge the candidate cells; see the class docstring for the verdict codes.

        Parameters
        ----------
        data
            Query texts (``data.queries.texts``), documents (``data.corpus.full_texts()``) and the
            positives shown to the judge (``data.positives``).
        candidates
            ``ids int64[n_queries, k]``; ``-1`` cells are padding and never judged.
        mask
            Optional ``bool[n_queries, k]``: judge only these cells.
        cache_dir
            The run's cache directory: answers are cached under ``cache_dir/llm-judge`` when the
            judge has no ``cache_dir`` of its own.

        Returns
        -------
        ScoreMatrix
            ``name="llm-judge"``; ``verdicts int8[n_queries, k]``; ``scores float32[n_queries, k]``
            (the verdict as a float, ``NaN`` where failed or unjudged); ``positive_scores`` all
            ``NaN`` (positives are not judged); ``stats`` with ``calls``, ``calls_verify``,
            ``failed_calls``, ``retries``, ``parse_failures``, ``prompt_tokens``,
            ``completion_tokens``, ``cache_hits``, ``judged``, ``better``, ``worse``,
            ``irrelevant``, ``failed``, ``errors`` (failure kind -> count), ``model`` (the model
            whose verdicts stand for flagged cells: ``verify_model`` if set, else ``model``) and
            ``prompt_version``.
        """
        ids = np.asarray(candidates.ids)
        n_q, k = ids.shape
        todo = ids >= 0
        if mask is not None:
            mask = np.asarray(mask)
            if mask.shape != ids.shape or mask.dtype != np.bool_:
                raise ConfigError(
                    f"llm-judge mask must be bool[{n_q}, {k}] like the candidates, "
                    f"got {mask.dtype}{list(mask.shape)}"
                )
            todo &= mask

        batches = self._batches(data, ids, todo)
        cache = self._cache(cache_dir)
        key = self._api_key()
        # honours the *_proxy environment variables; redirects only within the configured host
        opener = urllib.request.build_opener(_SameHostRedirects())
        log.info(
            "llm-judge: %d candidates in %d batches to %s (model %s, verify %s, prompt %s)",
            int(todo.sum()), len(batches), redact_url(self.endpoint), self.model, self.verify_model, PROMPT_VERSION,
        )

        verdicts = np.full((n_q, k), VERDICT_UNJUDGED, dtype=np.int8)
        if batches:
            workers = min(self.max_concurrency, len(batches))
            pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="negmine-llm-judge")
            try:
                futures: list[Future[_Batch]] = [
                    pool.submit(self._judge_batch, b, opener, key, cache) for b in batches
                ]
                for fut in progress(as_completed(futures), desc="llm-judge", total=len(futures), unit="batch"):
                    b = fut.result()
                    verdicts[b.q, b.cols] = b.calls[-1].verdicts
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
            pool.shutdown(wait=True)

        stats = self._stats(batches, verdicts)
        # the model whose verdicts stand for flagged cells (provenance of relabeled positives)
        stats.update(model=self.verify_model or self.model, prompt_version=PROMPT_VERSION)
        if stats["failed"]:
            log.warning(
                "llm-judge: %d of %d candidates failed (%d failed calls, %d unparsed answers; %s); "
                "they are never used as negatives",
                stats["failed"], stats["judged"], stats["failed_calls"], stats["parse_failures"],
                ", ".join(f"{k_}: {v}" for k_, v in sorted(stats["errors"].items())) or "no call errors",
            )
        log.info(
            "llm-judge: %d calls (+%d verify), %d cache hits, %d retries; better %d, worse %d, irrelevant %d",
            stats["calls"], stats["calls_verify"], stats["cache_hits"], stats["retries"],
            stats["better"], stats["worse"], stats["irrelevant"],
        )
        scores = np.where(verdicts >= 0, verdicts, np.nan).astype(np.float32)
        positive_scores = np.full(len(data.positives.indices), np.nan, dtype=np.float32)
        return ScoreMatrix(name=self.name, scores=scores, positive_scores=positive_scores, verdicts=verdicts,
                           stats=stats)

    def _api_key(self) -> str | None:
        key = (os.environ.get(self.api_key_env) or "").strip() if self.api_key_env else ""
        if not key.isascii() or not key.isprintable():
            raise ConfigError(
                f"the API key in ${self.api_key_env} has non-ASCII or control characters; set it to the plain key"
            )
        return key or None

    def _batches(self, data: MiningData, ids: np.ndarray, todo: np.ndarray) -> list[_Batch]:
        if not todo.any():
            return []
        docs = data.corpus.full_texts()
        out: list[_Batch] = []
        for q in np.flatnonzero(todo.any(axis=1)):
            pos_rows = data.positives.row(int(q))
            if self.max_positives is not None:
                pos_rows = pos_rows[: self.max_positives]
            positives = [docs[int(d)] for d in pos_rows]
            cols = np.flatnonzero(todo[q])
            for start in range(0, len(cols), self.batch_size):
                chunk = cols[start : start + self.batch_size]
                prompt = build_prompt(
                    data.queries.texts[int(q)], positives, [docs[int(ids[q, c])] for c in chunk], self.max_chars
                )
                out.append(_Batch(int(q), chunk.astype(np.int64), prompt))
        return out

    def _cache(self, shared: str | None) -> _AnswerCache | None:
        if self.cache_dir is not None:
            return _AnswerCache(self.cache_dir)
        return _AnswerCache(Path(shared) / "llm-judge") if shared else None

    def _judge_batch(
        self, batch: _Batch, opener: urllib.request.OpenerDirector, key: str | None, cache: _AnswerCache | None
    ) -> _Batch:
        n = len(batch.cols)
        first = self._ask(self.model, batch.prompt, n, opener, key, cache)
        batch.calls.append(first)
        if self.verify_model is not None and any(v != VERDICT_IRRELEVANT for v in first.verdicts):
            batch.calls.append(self._ask(self.verify_model, batch.prompt, n, opener, key, cache))
        return batch

    def _messages(self, prompt: str) -> list[dict[str, str]]:
        return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": prompt}]

    def _cache_key(self, model: str, prompt: str) -> str:
        raw = json.dumps(
            [model, PROMPT_VERSION, self.temperature, self.json_mode, self._messages(prompt)], ensure_ascii=False
        )
        return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()

    def _ask(
        self,
        model: str,
        prompt: str,
        n: int,
        opener: urllib.request.OpenerDirector,
        key: str | None,
        cache: _AnswerCache | None,
    ) -> _Call:
        cache_key = self._cache_key(model, prompt) if cache is not None else ""
        if cache is not None:
            content = cache.load(cache_key)
            if content is not None:
                parsed = parse_verdicts(content, n)
                if VERDICT_FAILED not in parsed:
                    return _Call(parsed, cached=True)

        body: dict[str, Any] = {"model": model, "messages": self._messages(prompt), "temperature": self.temperature}
        if self.json_mode:
            body["response_format"] = {"type": "json_object"}
        try:
            raw, retries = self._post(opener, json.dumps(body).encode("utf-8"), key)
        except _CallFailed as exc:
            log.debug("llm-judge: call to %s failed after %d retries: %s", model, exc.retries, exc.kind)
            return _Call([VERDICT_FAILED] * n, failed=True, retries=exc.retries, error=exc.kind)

        try:
            reply = json.loads(raw)
            content = reply["choices"][0]["message"].get("content") or ""
            usage = reply.get("usage") or {}
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            log.debug("llm-judge: %s sent a response that is not a chat completion", model)
            return _Call([VERDICT_FAILED] * n, retries=retries, parse_failures=n, error="bad response")
        if not isinstance(content, str):
            content = ""
        parsed = parse_verdicts(content, n)
        bad = parsed.count(VERDICT_FAILED)
        call = _Call(
            parsed, retries=retries, parse_failures=bad,
            prompt_tokens=_count(usage, "prompt_tokens"), completion_tokens=_count(usage, "completion_tokens"),
        )
        if bad:
            log.debug("llm-judge: %d of %d verdicts unparsable in the answer of %s", bad, n, model)
        elif cache is not None:
            cache.save(cache_key, {"model": model, "prompt_version": PROMPT_VERSION, "content": content})
        return call

    def _post(self, opener: urllib.request.OpenerDirector, payload: bytes, key: str | None) -> tuple[bytes, int]:
        """POST ``payload`` with retries; returns ``(body, retries)`` or raises :class:`_CallFailed`."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        auth = f"Bearer {key}" if key else self._basic_auth()
        if auth:
            headers["Authorization"] = auth
        kind = "no attempt"
        for attempt in range(self.max_retries + 1):
            retry_after = 0.0
            try:
                req = urllib.request.Request(self.endpoint, data=payload, headers=headers, method="POST")
                with opener.open(req, timeout=self.timeout_s) as resp:
                    return resp.read(), attempt
            except urllib.error.HTTPError as exc:
                kind = f"http {exc.code}"
                retry_after = _retry_after(exc.headers.get("Retry-After") if exc.headers else None)
                exc.close()
                if exc.code not in RETRY_STATUS:
                    raise _CallFailed(kind, attempt) from None
            except TimeoutError:
                kind = "timeout"
            except urllib.error.URLError as exc:
                kind = "timeout" if isinstance(exc.reason, TimeoutError) else "connection error"
            except (http.client.HTTPException, OSError):
                kind = "connection error"
            if attempt < self.max_retries:
                delay = min(self.backoff_max_s, max(self.backoff_s * 2**attempt, retry_after))
                log.debug("llm-judge: %s; retry %d of %d in %.2f s", kind, attempt + 1, self.max_retries, delay)
                time.sleep(delay)
        raise _CallFailed(kind, self.max_retries)

    @staticmethod
    def _stats(batches: list[_Batch], verdicts: np.ndarray) -> dict[str, Any]:
        errors: dict[str, int] = {}
        stats: dict[str, Any] = dict.fromkeys(
            ("calls", "calls_verify", "failed_calls", "retries", "parse_failures", "prompt_tokens",
             "completion_tokens", "cache_hits"), 0,
        )
        for b in batches:
            for stage, call in enumerate(b.calls):
                if call.cached:
                    stats["cache_hits"] += 1
                    continue
                stats["calls_verify" if stage else "calls"] += 1
                stats["failed_calls"] += int(call.failed)
                stats["retries"] += call.retries
                stats["parse_failures"] += call.parse_failures
                stats["prompt_tokens"] += call.prompt_tokens
                stats["completion_tokens"] += call.completion_tokens
                if call.error is not None:
                    errors[call.error] = errors.get(call.error, 0) + 1
        stats.update(
            judged=int((verdicts != VERDICT_UNJUDGED).sum()),
            better=int((verdicts == VERDICT_BETTER).sum()),
            worse=int((verdicts == VERDICT_WORSE).sum()),
            irrelevant=int((verdicts == VERDICT_IRRELEVANT).sum()),
            failed=int((verdicts == VERDICT_FAILED).sum()),
            errors=errors,
        )
        return stats


def _count(usage: Any, name: str) -> int:
    value = usage.get(name) if isinstance(usage, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _retry_after(value: str | None) -> float:
    """Seconds from a ``Retry-After`` header given in seconds (HTTP dates are ignored)."""
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0
