"""An LLM judge over an OpenAI-compatible chat completions endpoint, with a two-stage cascade.

The judge sees a query, its known positive passage(s) and a numbered batch of candidate passages,
and labels each candidate ``better`` (at least as relevant as the positive: a likely false
negative), ``worse`` (relevant but less so: a good hard negative) or ``irrelevant``. It talks to
``POST {base_url}/chat/completions`` as served by vLLM, Ollama, llama.cpp's server or OpenAI, with
the standard library only (``urllib`` + a thread pool), so no extra dependency is needed.

Cells of the returned ``verdicts int8[n_queries, k]``:

- :data:`~negmine.text.scorers.base.VERDICT_BETTER` (2), ``VERDICT_WORSE`` (1),
  ``VERDICT_IRRELEVANT`` (0): the judge's answer;
- :data:`~negmine.text.scorers.base.VERDICT_FAILED` (-1): the call failed after its retries (HTTP 5xx,
  429, timeout, connection error, another HTTP error) or the answer for that candidate could not
  be parsed. Fail closed: the pipeline never makes such a candidate a negative;
- :data:`VERDICT_UNJUDGED` (-2): padding, or a cell outside ``mask``.

The prompt, the parsing, the HTTP client and the call records live in ``llm_prompt``,
``llm_parse``, ``llm_client`` and ``llm_calls``; this module is the judge itself (its options, the
cascade, one call), a little over 400 lines because its options are documented where they are declared.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import urllib.parse
import urllib.request
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

from negmine.core.errors import ConfigError
from negmine.core.progress import progress
from negmine.text.scorers.base import VERDICT_FAILED, VERDICT_IRRELEVANT, ScoreMatrix
from negmine.text.scorers.llm_calls import VERDICT_UNJUDGED as VERDICT_UNJUDGED
from negmine.text.scorers.llm_calls import Batch, Call, judge_stats
from negmine.text.scorers.llm_client import REDACTED as REDACTED
from negmine.text.scorers.llm_client import RETRY_STATUS as RETRY_STATUS
from negmine.text.scorers.llm_client import (
    AnswerCache,
    CallFailed,
    SameHostRedirects,
    basic_auth,
    chat_endpoint,
    post_with_retries,
    redact_url,
)
from negmine.text.scorers.llm_parse import LABELS as LABELS
from negmine.text.scorers.llm_parse import parse_verdicts, token_count
from negmine.text.scorers.llm_prompt import PROMPT_VERSION, SYSTEM_PROMPT, build_prompt
from negmine.text.types import Candidates, MiningData

log = logging.getLogger(__name__)


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
    parsed from the answer, get :data:`~negmine.text.scorers.base.VERDICT_FAILED` (-1): fail closed,
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
    :class:`~negmine.text.scorers.base.ScoreMatrix` with ``verdicts`` and ``stats`` (calls, retries,
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
        return chat_endpoint(self.base_url)

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
        opener = urllib.request.build_opener(SameHostRedirects())
        log.info(
            "llm-judge: %d candidates in %d batches to %s (model %s, verify %s, prompt %s)",
            int(todo.sum()), len(batches), redact_url(self.endpoint), self.model, self.verify_model, PROMPT_VERSION,
        )

        verdicts = np.full((n_q, k), VERDICT_UNJUDGED, dtype=np.int8)
        if batches:
            self._judge_all(batches, verdicts, opener, key, cache)

        stats = judge_stats(batches, verdicts)
        # the model whose verdicts stand for flagged cells (provenance of relabeled positives)
        stats.update(model=self.verify_model or self.model, prompt_version=PROMPT_VERSION)
        _log_stats(stats)
        scores = np.where(verdicts >= 0, verdicts, np.nan).astype(np.float32)
        positive_scores = np.full(len(data.positives.indices), np.nan, dtype=np.float32)
        return ScoreMatrix(name=self.name, scores=scores, positive_scores=positive_scores, verdicts=verdicts,
                           stats=stats)

    def _judge_all(self, batches: list[Batch], verdicts: np.ndarray, opener: urllib.request.OpenerDirector,
                   key: str | None, cache: AnswerCache | None) -> None:
        """Judge every batch on a pool of ``max_concurrency`` threads, writing each batch's last
        verdicts into ``verdicts`` as it completes; an error cancels the batches not yet started."""
        workers = min(self.max_concurrency, len(batches))
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="negmine-llm-judge")
        try:
            futures: list[Future[Batch]] = [
                pool.submit(self._judge_batch, b, opener, key, cache) for b in batches
            ]
            for fut in progress(as_completed(futures), desc="llm-judge", total=len(futures), unit="batch"):
                b = fut.result()
                verdicts[b.q, b.cols] = b.calls[-1].verdicts
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)

    def _api_key(self) -> str | None:
        key = (os.environ.get(self.api_key_env) or "").strip() if self.api_key_env else ""
        if not key.isascii() or not key.isprintable():
            raise ConfigError(
                f"the API key in ${self.api_key_env} has non-ASCII or control characters; set it to the plain key"
            )
        return key or None

    def _batches(self, data: MiningData, ids: np.ndarray, todo: np.ndarray) -> list[Batch]:
        if not todo.any():
            return []
        docs = data.corpus.full_texts()
        out: list[Batch] = []
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
                out.append(Batch(int(q), chunk.astype(np.int64), prompt))
        return out

    def _cache(self, shared: str | None) -> AnswerCache | None:
        if self.cache_dir is not None:
            return AnswerCache(self.cache_dir)
        return AnswerCache(Path(shared) / "llm-judge") if shared else None

    def _judge_batch(
        self, batch: Batch, opener: urllib.request.OpenerDirector, key: str | None, cache: AnswerCache | None
    ) -> Batch:
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
        cache: AnswerCache | None,
    ) -> Call:
        cache_key = self._cache_key(model, prompt) if cache is not None else ""
        if cache is not None:
            content = cache.load(cache_key)
            if content is not None:
                parsed = parse_verdicts(content, n)
                if VERDICT_FAILED not in parsed:
                    return Call(parsed, cached=True)

        body: dict[str, Any] = {"model": model, "messages": self._messages(prompt), "temperature": self.temperature}
        if self.json_mode:
            body["response_format"] = {"type": "json_object"}
        try:
            raw, retries = self._post(opener, json.dumps(body).encode("utf-8"), key)
        except CallFailed as exc:
            log.debug("llm-judge: call to %s failed after %d retries: %s", model, exc.retries, exc.kind)
            return Call([VERDICT_FAILED] * n, failed=True, retries=exc.retries, error=exc.kind)

        try:
            reply = json.loads(raw)
            content = reply["choices"][0]["message"].get("content") or ""
            usage = reply.get("usage") or {}
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            log.debug("llm-judge: %s sent a response that is not a chat completion", model)
            return Call([VERDICT_FAILED] * n, retries=retries, parse_failures=n, error="bad response")
        if not isinstance(content, str):
            content = ""
        parsed = parse_verdicts(content, n)
        bad = parsed.count(VERDICT_FAILED)
        call = Call(
            parsed, retries=retries, parse_failures=bad, prompt_tokens=token_count(usage, "prompt_tokens"),
            completion_tokens=token_count(usage, "completion_tokens"),
        )
        if bad:
            log.debug("llm-judge: %d of %d verdicts unparsable in the answer of %s", bad, n, model)
        elif cache is not None:
            cache.save(cache_key, {"model": model, "prompt_version": PROMPT_VERSION, "content": content})
        return call

    def _post(self, opener: urllib.request.OpenerDirector, payload: bytes, key: str | None) -> tuple[bytes, int]:
        """POST ``payload`` with retries; returns ``(body, retries)`` or raises :class:`CallFailed`."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        auth = f"Bearer {key}" if key else basic_auth(self.base_url)
        if auth:
            headers["Authorization"] = auth
        return post_with_retries(opener, self.endpoint, payload, headers, timeout_s=self.timeout_s,
                                 max_retries=self.max_retries, backoff_s=self.backoff_s,
                                 backoff_max_s=self.backoff_max_s)


def _log_stats(stats: dict[str, Any]) -> None:
    """The judge's narration: failures at WARNING (they are never negatives), the counts at INFO."""
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
