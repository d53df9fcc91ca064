"""Graph error responses → our typed exceptions, with Graph's code, message and request-id kept.

Graph's error body is `{"error": {"code", "message", "innerError": {"request-id", "date", ...}}}`. The
request-id is what Microsoft support asks for, so it is in every message and log line.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import unquote

import httpx

from shared.errors import GraphError, NotFoundError, PermissionDeniedError, ThrottledError
from shared.graph.retry import retry_after_seconds

log = logging.getLogger("guestctl.graph")

_HINTS = {
    401: "the token was refused: check GUESTCTL_TENANT_ID / GUESTCTL_CLIENT_ID and the credential",
    403: "the app lacks a permission or licence for this call: see docs/permissions.md",
    429: "Graph is throttling this app; the retry budget ran out — try again later or lower concurrency",
}


def graph_error_from_response(response: httpx.Response, method: str, url: str) -> GraphError:
    code = message = request_id = None
    try:
        error = json.loads(response.content or b"{}").get("error") or {}
        code = error.get("code")
        message = error.get("message")
        inner = error.get("innerError") or error.get("innererror") or {}
        request_id = inner.get("request-id")
    except (ValueError, AttributeError):
        pass
    request_id = response.headers.get("request-id") or request_id
    status = response.status_code
    kind: type[GraphError] = GraphError
    if status == 404:
        kind = NotFoundError
    elif status in (401, 403):
        kind = PermissionDeniedError
    elif status == 429:
        kind = ThrottledError
    error_obj = kind(
        message or response.reason_phrase or f"HTTP {status}",
        status=status,
        code=code,
        request_id=request_id,
        method=method,
        url=redact_url(url),
        retry_after=retry_after_seconds(response.headers),
        hint=_HINTS.get(status),
    )
    # Client errors are often expected (404 when checking, "already exist" when ensuring): the caller decides
    # whether they matter. Throttling and server errors are always worth a warning.
    log.log(
        logging.INFO if 400 <= status < 500 and status != 429 else logging.WARNING,
        "graph error %s %s: %s %s: %s (request-id %s)",
        method,
        error_obj.url,
        status,
        code,
        error_obj.message,
        request_id,
    )
    return error_obj


CURSOR_PARAMETERS = frozenset({"$skiptoken", "$deltatoken", "$skip_token", "$skip"})
CURSOR_CHARS_SHOWN = 8


def redact_url(url: str) -> str:
    """Shorten skip/delta tokens in URLs we log or print: they are bearer-like cursors into the tenant.

    The first few characters stay, so two log lines can still be told apart; the rest of the URL is kept
    as it was sent (not re-encoded).
    """
    base, separator, query = url.partition("?")
    if not separator:
        return url
    parts = []
    for part in query.split("&"):
        name, equals, value = part.partition("=")
        if equals and unquote(name).lower() in CURSOR_PARAMETERS and len(value) > CURSOR_CHARS_SHOWN:
            part = f"{name}={value[:CURSOR_CHARS_SHOWN]}…"
        parts.append(part)
    return f"{base}?{'&'.join(parts)}"


class RedactedRequest:
    """`GET https://…` with cursors redacted, worked out only when printed: logging formats lazily, and
    parsing every long nextLink just in case would cost more than the request itself."""

    __slots__ = ("method", "url")

    def __init__(self, method: str, url: str) -> None:
        self.method = method
        self.url = url

    def __str__(self) -> str:
        return f"{self.method} {redact_url(self.url)}"
