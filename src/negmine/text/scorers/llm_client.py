"""The HTTP side of the LLM judge (:mod:`negmine.text.scorers.llm_judge`), standard library only: the
chat endpoint and its authentication, redirects kept on the configured host, URLs fit to log,
POST with retries and backoff, and the on-disk answer cache."""

from __future__ import annotations

import base64
import http.client
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from negmine.core.atomic import write_text
from negmine.core.errors import ConfigError
from negmine.core.redact import REDACTED as REDACTED  # re-exported: the judge imports them from here
from negmine.core.redact import redact_url as redact_url

log = logging.getLogger(__name__)

#: HTTP statuses worth retrying (with backoff); any other HTTP error fails the call at once.
RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


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


class SameHostRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects only within the configured scheme, host and port (307/308 keep the POST
    and its body); a redirect anywhere else is a :class:`~negmine.core.errors.ConfigError` naming both
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


class CallFailed(Exception):
    """A call that failed for good: ``kind`` (``"http 404"``, ``"timeout"``...) after ``retries``."""

    def __init__(self, kind: str, retries: int) -> None:
        super().__init__(kind)
        self.kind = kind
        self.retries = retries


class AnswerCache:
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
        write_text(self._path(key), json.dumps(entry, ensure_ascii=False))


def chat_endpoint(base_url: str) -> str:
    """``{base_url}/chat/completions`` without any ``user:password@`` (sent as Basic auth
    instead, when no API key is set)."""
    parts = urllib.parse.urlsplit(base_url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    netloc = f"{host}:{parts.port}" if parts.port else host
    path = parts.path.rstrip("/")
    path = path if path.endswith("/chat/completions") else path + "/chat/completions"
    return urllib.parse.urlunsplit((parts.scheme, netloc, path, parts.query, ""))


def basic_auth(base_url: str) -> str | None:
    """The ``Authorization: Basic ...`` value of the ``user:password@`` in ``base_url``, if any."""
    parts = urllib.parse.urlsplit(base_url)
    if parts.username is None:
        return None
    user = urllib.parse.unquote(parts.username)
    password = urllib.parse.unquote(parts.password or "")
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def post_with_retries(opener: urllib.request.OpenerDirector, url: str, payload: bytes, headers: dict[str, str], *,
                      timeout_s: float, max_retries: int, backoff_s: float, backoff_max_s: float) -> tuple[bytes, int]:
    """POST ``payload`` to ``url`` with retries; returns ``(body, retries)`` or raises :class:`CallFailed`.

    A timeout, a connection error or an HTTP status in :data:`RETRY_STATUS` is retried up to
    ``max_retries`` times; retry ``r`` (1-based) waits ``min(backoff_max_s, backoff_s * 2 ** (r - 1))``
    seconds, or the server's ``Retry-After`` when longer (also capped). Any other HTTP error
    fails at once.
    """
    kind = "no attempt"
    for attempt in range(max_retries + 1):
        retry_after = 0.0
        try:
            req = urllib.request.Request(url, data=payload, headers=headers, method="POST")
            with opener.open(req, timeout=timeout_s) as resp:
                return resp.read(), attempt
        except urllib.error.HTTPError as exc:
            kind = f"http {exc.code}"
            retry_after = _retry_after(exc.headers.get("Retry-After") if exc.headers else None)
            exc.close()
            if exc.code not in RETRY_STATUS:
                raise CallFailed(kind, attempt) from None
        except TimeoutError:
            kind = "timeout"
        except urllib.error.URLError as exc:
            kind = "timeout" if isinstance(exc.reason, TimeoutError) else "connection error"
        except (http.client.HTTPException, OSError):
            kind = "connection error"
        if attempt < max_retries:
            delay = min(backoff_max_s, max(backoff_s * 2**attempt, retry_after))
            log.debug("llm-judge: %s; retry %d of %d in %.2f s", kind, attempt + 1, max_retries, delay)
            time.sleep(delay)
    raise CallFailed(kind, max_retries)


def _retry_after(value: str | None) -> float:
    """Seconds from a ``Retry-After`` header given in seconds (HTTP dates are ignored)."""
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0
