"""Secrets kept out of everything negmine writes or prints: URLs with their user-info and
secret-looking query parameters redacted, and the value of the API-key variable replaced.

One place for every writer of records (the run lock, manifests, reports, logs, error lines), in
every domain: :func:`redact_url` for one URL, :func:`redact_text` for free text (a command line,
an error message) and :func:`secret_values` for the key variables' current values.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Iterable, Sequence

#: Query parameters whose value is redacted by :func:`redact_url` (matched case-insensitively
#: anywhere in the parameter name).
_SECRET_PARAM = re.compile(r"key|token|secret|passw|pwd|auth|sig|credential|session|cookie|jwt|bearer", re.I)
REDACTED = "REDACTED"
#: a URL inside free text: a scheme, ``://`` and everything up to white space or a quote
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")
#: the environment variable that holds the judge's API key unless ``--llm-api-key-env`` names another
DEFAULT_KEY_ENV = "OPENAI_API_KEY"
#: shorter values are not treated as secrets in free text (they would redact ordinary words)
_MIN_SECRET = 6


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


def secret_values(argv: Sequence[str] = ()) -> list[str]:
    """The current values of the API-key variables: ``OPENAI_API_KEY`` and any variable that
    ``--llm-api-key-env NAME`` in ``argv`` names (values shorter than six characters are left
    out: they cannot be told from ordinary words)."""
    names = {DEFAULT_KEY_ENV}
    args = list(argv)
    for i, a in enumerate(args):
        if a == "--llm-api-key-env" and i + 1 < len(args):
            names.add(args[i + 1])
        elif a.startswith("--llm-api-key-env="):
            names.add(a.split("=", 1)[1])
    values = [(os.environ.get(n) or "").strip() for n in names if n]
    return sorted({v for v in values if len(v) >= _MIN_SECRET}, key=len, reverse=True)


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every URL in it passed through :func:`redact_url` and every value of
    ``secrets`` (e.g. :func:`secret_values`) replaced by ``REDACTED``.

    >>> redact_text("negmine mine --llm-base-url http://u:pw@h/v1?token=t --out x")
    'negmine mine --llm-base-url http://h/v1?token=REDACTED --out x'
    """
    out = _URL.sub(lambda m: redact_url(m.group(0)), text)
    for s in secrets:
        if s:
            out = out.replace(s, REDACTED)
    return out


def redact_command(argv: Sequence[str]) -> str:
    """A command line (``sys.argv``) fit to record: joined with spaces, URLs and key values redacted."""
    return redact_text(" ".join(argv), secret_values(argv))
