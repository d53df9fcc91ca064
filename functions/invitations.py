"""Invitation batches over HTTP, a storage queue and a blob drop folder (docs/invitations.md).

POST /api/invitations/batches      CSV or JSON-lines body → 202 {batch_id, status_url}; rows are queued
GET  /api/invitations/batches/{id} per-outcome counts and the rows that did not succeed
queue invitations-rows             one chunk of rows per message, planned and applied idempotently
blob  invitations-inbox/{name}     a dropped file is submitted like a POST
"""

from __future__ import annotations

import logging

import azure.functions as func

from functions.http import error_response, json_response
from shared.errors import GuestctlError

bp = func.Blueprint()
log = logging.getLogger("guestctl.functions.invitations")

QUEUE = "invitations-rows"
INBOX = "invitations-inbox"
STORAGE = "AzureWebJobsStorage"
JSON_TYPES = ("application/json", "application/x-ndjson", "application/jsonl")


async def _submit(content: bytes, *, name: str, json_lines: bool) -> tuple[str, list[str], int]:
    from shared.config import load_policy, load_settings
    from shared.invitations import batch_id_for
    from shared.invitations.batches import check_upload, submit_batch
    from shared.store import open_state

    settings = load_settings()
    policy = load_policy(settings.policy)
    rows = check_upload(content, name=name, json_lines=json_lines, policy=policy)
    batch_id = batch_id_for(content)
    async with open_state(settings) as store:
        messages = await submit_batch(store, rows, batch_id=batch_id, source=name)
    return batch_id, messages, len(rows)


@bp.route(route="invitations/batches", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.queue_output(arg_name="queue", queue_name=QUEUE, connection=STORAGE)
async def submit_invitation_batch(req: func.HttpRequest, queue: func.Out[list[str]]) -> func.HttpResponse:
    content_type = (req.headers.get("Content-Type") or "text/csv").split(";")[0].strip().lower()
    try:
        batch_id, messages, rows = await _submit(
            req.get_body(), name="request body", json_lines=content_type in JSON_TYPES
        )
    except GuestctlError as error:
        return error_response(error)
    queue.set(messages)
    status_url = f"/api/invitations/batches/{batch_id}"
    return json_response({"batch_id": batch_id, "rows": rows, "status_url": status_url}, 202)


@bp.route(route="invitations/batches/{batch_id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
async def invitation_batch_status(req: func.HttpRequest) -> func.HttpResponse:
    from shared.config import load_settings
    from shared.invitations.batches import batch_status
    from shared.store import open_state

    try:
        async with open_state(load_settings()) as store:
            return json_response(await batch_status(store, req.route_params["batch_id"]))
    except GuestctlError as error:
        return error_response(error)


@bp.queue_trigger(arg_name="message", queue_name=QUEUE, connection=STORAGE)
async def invite_rows(message: func.QueueMessage) -> None:
    """At-least-once: a failure raises, the message returns, and after 5 tries goes to the poison queue."""
    from shared.config import load_policy, load_settings
    from shared.graph import get_graph
    from shared.invitations.batches import process_chunk
    from shared.store import open_state

    settings = load_settings()
    async with open_state(settings) as store:
        await process_chunk(
            message.get_body().decode("utf-8"),
            get_graph(settings),
            store,
            load_policy(settings.policy),
            actor=f"function invite_rows (message {message.id}, try {message.dequeue_count})",
        )


# Event Grid source: the Flex Consumption plan has no polling blob trigger, and it is faster everywhere.
@bp.blob_trigger(arg_name="blob", path=INBOX + "/{name}", connection=STORAGE, source=func.BlobSource.EVENT_GRID)
@bp.queue_output(arg_name="queue", queue_name=QUEUE, connection=STORAGE)
async def invitation_file_dropped(blob: func.InputStream, queue: func.Out[list[str]]) -> None:
    name = blob.name or "dropped file"
    try:
        batch_id, messages, rows = await _submit(blob.read(), name=name, json_lines=name.endswith((".jsonl", ".json")))
    except GuestctlError as error:
        log.error("invitation file %s refused: %s", name, error.one_line())
        return
    queue.set(messages)
    log.info("invitation file %s accepted as batch %s (%d rows)", name, batch_id, rows)
