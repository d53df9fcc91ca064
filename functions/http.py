"""The one mapping from engine results and errors to HTTP responses, shared by every HTTP adapter.

Error bodies are short and safe to show: one line, at most MAX_ERROR_CHARS, with the server's own file
paths (the policy file, the state database) replaced by the setting that names them.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import azure.functions as func

from shared.errors import GuestctlError, InputError, PayloadTooLargeError, UnsupportedMediaTypeError
from shared.redaction import without_server_paths

log = logging.getLogger("guestctl.functions")

MAX_ERROR_CHARS = 2_000  # an error body's message; longer ones are cut (a huge bad policy value, say)


__all__ = ["PayloadTooLargeError", "UnsupportedMediaTypeError", "error_response", "json_response", "read_body"]

SPLIT_HINT = "split the file and send the parts as separate batches"


def json_response(body: Any, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json")


def error_response(error: GuestctlError) -> func.HttpResponse:
    """A person-caused error: its status and one actionable line; never a stack trace or a server path."""
    line = public_line(error.one_line())
    log.warning("request refused: %s", line)
    return json_response({"error": line}, error.http_status)


def public_line(line: str) -> str:
    """`line` without the server's file paths, cut to MAX_ERROR_CHARS."""
    line = without_server_paths(line)
    if len(line) > MAX_ERROR_CHARS:
        line = f"{line[: MAX_ERROR_CHARS - 40]}… ({len(line):,} characters, cut)"
    return line


def read_body(req: func.HttpRequest, limit: int, *, hint: str = SPLIT_HINT) -> bytes:
    """The request body, or PayloadTooLargeError (with `hint`): Content-Length is checked first, then the body."""
    declared = req.headers.get("Content-Length")
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            raise InputError("the Content-Length header is not a number") from None
        if length > limit:
            raise PayloadTooLargeError.of(length, limit, hint)
    body = req.get_body()
    if len(body) > limit:
        raise PayloadTooLargeError.of(len(body), limit, hint)
    return body
