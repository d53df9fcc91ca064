"""The one mapping from engine results and errors to HTTP responses, shared by every HTTP adapter."""

from __future__ import annotations

import json
import logging
from typing import Any

import azure.functions as func

from shared.errors import GuestctlError

log = logging.getLogger("guestctl.functions")


def json_response(body: Any, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json")


def error_response(error: GuestctlError) -> func.HttpResponse:
    """A person-caused error: its status and one actionable line; never a stack trace."""
    log.warning("request refused: %s", error.one_line())
    return json_response({"error": error.one_line()}, error.http_status)
