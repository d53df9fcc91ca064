"""Invitation batches over HTTP, a storage queue and a blob drop folder (docs/invitations.md).

POST /api/invitations/batches      CSV or JSON-lines body (≤ MAX_BODY_BYTES) → 202 {batch_id, status_url};
                                   rows are queued. 413 too large, 415 another content type, 400 bad rows
GET  /api/invitations/batches/{id} per-outcome counts and the rows that did not succeed
queue invitations-rows             one chunk of rows per message, planned and applied idempotently; a
                                   malformed message or a configuration error goes to the poison queue at once
blob  invitations-inbox/{name}     a dropped file is submitted like a POST
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import azure.functions as func

from functions.http import (
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
    error_response,
    json_response,
    public_line,
    read_body,
)
from functions.pause import hold_message
from functions.queues import POISON_SUFFIX, is_transient, to_poison
from functions.telemetry import run_ids
from shared.errors import GuestctlError

if TYPE_CHECKING:
    from shared.invitations.service import SubmittedBatch

bp = func.Blueprint()
log = logging.getLogger("guestctl.functions.invitations")

QUEUE = "invitations-rows"
INBOX = "invitations-inbox"
STORAGE = "AzureWebJobsStorage"
CSV_TYPES = ("text/csv", "application/csv", "text/plain")
JSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/json")
MAX_BODY_BYTES = 4 * 1024 * 1024  # an invitation file: ~20,000 typical rows; larger files are split


async def _submit(content: bytes, *, name: str, json_lines: bool) -> SubmittedBatch:
    from shared.config import load_settings
    from shared.invitations.service import submit_file

    return await submit_file(load_settings(), content, name=name, json_lines=json_lines)


@bp.route(route="invitations/batches", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.queue_output(arg_name="queue", queue_name=QUEUE, connection=STORAGE)
async def submit_invitation_batch(req: func.HttpRequest, queue: func.Out[list[str]]) -> func.HttpResponse:
    content_type = (req.headers.get("Content-Type") or CSV_TYPES[0]).split(";")[0].strip().lower()
    try:
        if content_type not in (*CSV_TYPES, *JSON_TYPES):
            raise UnsupportedMediaTypeError(
                f"Content-Type {content_type[:80]!r} is not read here",
                hint=f"send CSV ({', '.join(CSV_TYPES)}) or JSON lines ({', '.join(JSON_TYPES)})",
            )
        body = read_body(req, MAX_BODY_BYTES)
        submitted = await _submit(body, name="request body", json_lines=content_type in JSON_TYPES)
    except GuestctlError as error:
        return error_response(error)
    queue.set(submitted.messages)
    status_url = f"/api/invitations/batches/{submitted.batch_id}"
    return json_response({"batch_id": submitted.batch_id, "rows": submitted.rows, "status_url": status_url}, 202)


@bp.route(route="invitations/batches/{batch_id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
async def invitation_batch_status(req: func.HttpRequest) -> func.HttpResponse:
    from shared.config import load_settings
    from shared.invitations.service import status_of_batch

    try:
        return json_response(await status_of_batch(load_settings(), req.route_params["batch_id"]))
    except GuestctlError as error:
        return error_response(error)


@bp.queue_trigger(arg_name="message", queue_name=QUEUE, connection=STORAGE)
@bp.queue_output(arg_name="poison", queue_name=QUEUE + POISON_SUFFIX, connection=STORAGE)
async def invite_rows(message: func.QueueMessage, poison: func.Out[str]) -> None:
    """At-least-once: a transient failure raises, the message returns, and after 5 tries goes to the poison
    queue. A malformed message or a configuration error goes there at once (retrying cannot fix it)."""
    hold_message("invite_rows", message.id)
    from shared.config import load_settings
    from shared.invitations.service import work_chunk

    try:
        actor = f"function invite_rows (message {message.id}, try {message.dequeue_count})"
        await work_chunk(load_settings(), message.get_body(), actor=actor)
    except GuestctlError as error:
        if is_transient(error):
            raise
        to_poison(poison, message, public_line(error.one_line()), log)


# Event Grid source: the Flex Consumption plan has no polling blob trigger, and it is faster everywhere.
@bp.blob_trigger(arg_name="blob", path=INBOX + "/{name}", connection=STORAGE, source=func.BlobSource.EVENT_GRID)
@bp.queue_output(arg_name="queue", queue_name=QUEUE, connection=STORAGE)
async def invitation_file_dropped(blob: func.InputStream, queue: func.Out[list[str]]) -> None:
    name = blob.name or "dropped file"
    try:
        if (blob.length or 0) > MAX_BODY_BYTES:
            raise PayloadTooLargeError(f"{name}: {blob.length:,} bytes, the limit is {MAX_BODY_BYTES:,}")
        content = blob.read()
        if len(content) > MAX_BODY_BYTES:
            raise PayloadTooLargeError(f"{name}: {len(content):,} bytes, the limit is {MAX_BODY_BYTES:,}")
        submitted = await _submit(content, name=name, json_lines=name.endswith((".jsonl", ".json")))
    except GuestctlError as error:
        log.error("invitation file %s refused: %s", name, public_line(error.one_line()))
        return
    queue.set(submitted.messages)
    log.info(
        "invitation file %s accepted as batch %s (%d rows)",
        name,
        submitted.batch_id,
        submitted.rows,
        extra=run_ids(batch_id=submitted.batch_id),
    )
