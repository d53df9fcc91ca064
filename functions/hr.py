"""HR offboarding webhooks: signed HR events in, stored once and queued (docs/offboarding.md#the-receiver).

POST /api/hr/events        the native event (Standard Webhooks v1) → 202 {id, status, statusUrl} + Location;
                           a repeated webhook-id → 200, the same body. 400 with the field path, 401 generic,
                           413 over 64 KiB, 415 not application/json, 503 the secrets setting is unusable
POST /api/hr/{system}      an HR system's own webhook through its adapter (bamboohr, hibob, deel,
                           successfactors); the same answers, 404 for a system guestctl has no adapter for
GET  /api/hr/events/{id}   the stored event's status: type, worker, effective date, due time, outcome
timer hr_events_requeue    events still `received` 10 minutes on lost their queue message: queued again
                           (GUESTCTL_HR_REQUEUE_SCHEDULE)
queue hr-events            the worker: the engine plans and applies each event (shared/offboarding/worker.py)
timer hr_events_due        scheduled events whose effective date has come are queued; due soft deletions run
                           (GUESTCTL_HR_DUE_SCHEDULE)

Nothing in the tenant changes inside a request: the `hr-events` queue's worker plans and applies.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

import azure.functions as func

from functions.http import error_response, json_response, public_line, read_body
from functions.pause import hold_message, skip_timer
from functions.queues import POISON_SUFFIX, is_transient, to_poison
from functions.telemetry import run_ids
from shared.errors import ConfigError, GuestctlError, PolicyError

if TYPE_CHECKING:
    from shared.config import Settings
    from shared.offboarding.adapters.config import AdaptersConfig

bp = func.Blueprint()
log = logging.getLogger("guestctl.functions.hr")

QUEUE = "hr-events"  # shared.offboarding.inbox.QUEUE (not imported here: it loads pydantic)
STORAGE = "AzureWebJobsStorage"
NATIVE = "events"
MAX_BODY_BYTES = 64 * 1024
# App settings the host resolves (defaults: shared/config.py Settings, set by infra/main.bicep)
REQUEUE_SCHEDULE = "%GUESTCTL_HR_REQUEUE_SCHEDULE%"
DUE_SCHEDULE = "%GUESTCTL_HR_DUE_SCHEDULE%"


@bp.route(route="hr/events", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.queue_output(arg_name="queue", queue_name=QUEUE, connection=STORAGE)
async def hr_events(req: func.HttpRequest, queue: func.Out[list[str]]) -> func.HttpResponse:
    return await _receive(req, queue, NATIVE)


@bp.route(route="hr/{system}", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.queue_output(arg_name="queue", queue_name=QUEUE, connection=STORAGE)
async def hr_adapter(req: func.HttpRequest, queue: func.Out[list[str]]) -> func.HttpResponse:
    return await _receive(req, queue, req.route_params.get("system", ""))


async def _receive(req: func.HttpRequest, queue: func.Out[list[str]], route: str) -> func.HttpResponse:
    from shared.clock import utc_now
    from shared.offboarding.inbox import TOO_LARGE_HINT, accept, check_route, ignored, record
    from shared.offboarding.signatures import Unauthenticated
    from shared.store import open_state

    try:
        check_route(route)
        body = read_body(req, MAX_BODY_BYTES, hint=TOO_LARGE_HINT)
        now = utc_now()
        received = accept(route, req.headers, body, now, _adapters() if route != NATIVE else None)
        if received.events:
            async with open_state(_settings()) as store:
                answer = await record(store, route, received, now)
        else:
            answer = ignored(received)
    except Unauthenticated as error:
        # The reason (which check failed) is for the operator only; the sender learns nothing from the answer.
        log.warning("HR delivery on /api/hr/%s refused (401): %s", route, error.reason)
        return json_response({"error": error.message}, error.http_status)
    except GuestctlError as error:
        return error_response(error)
    if answer.messages:
        queue.set(answer.messages)
    log.info("HR delivery on /api/hr/%s: %d event(s), %d new", route, len(received.events), len(answer.messages))
    headers = {"Location": answer.location} if answer.location else None
    return func.HttpResponse(
        json.dumps(answer.body), status_code=answer.status, mimetype="application/json", headers=headers
    )


@bp.route(route="hr/events/{event_id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
async def hr_event_status(req: func.HttpRequest) -> func.HttpResponse:
    from shared.offboarding.inbox import event_status
    from shared.store import open_state

    try:
        async with open_state(_settings()) as store:
            found = await event_status(store, req.route_params.get("event_id", ""))
    except GuestctlError as error:
        return error_response(error)
    return json_response(found.to_json())


@bp.timer_trigger(arg_name="timer", schedule=REQUEUE_SCHEDULE, run_on_startup=False)
@bp.queue_output(arg_name="queue", queue_name=QUEUE, connection=STORAGE)
async def hr_events_requeue(timer: func.TimerRequest, queue: func.Out[list[str]]) -> None:
    if skip_timer("hr_events_requeue"):
        return
    from shared.clock import utc_now
    from shared.offboarding.inbox import requeue_stuck
    from shared.store import open_state

    async with open_state(_settings()) as store:
        messages = await requeue_stuck(store, utc_now())
    if messages:
        queue.set(messages)
        log.warning("HR events queued again (their message was lost): %d", len(messages))


@bp.queue_trigger(arg_name="message", queue_name=QUEUE, connection=STORAGE)
@bp.queue_output(arg_name="poison", queue_name=QUEUE + POISON_SUFFIX, connection=STORAGE)
async def hr_events_worker(message: func.QueueMessage, poison: func.Out[str]) -> None:
    hold_message("hr_events_worker", message.id)
    from shared.config import load_settings
    from shared.offboarding.worker import handle_message

    try:
        processed = await handle_message(load_settings(), message.get_body())
    except GuestctlError as error:
        if is_transient(error):
            raise
        to_poison(poison, message, public_line(error.one_line()), log)
        return
    log.info("HR event processed: %s", processed.to_json(), extra=run_ids(processed.to_json()))


@bp.timer_trigger(arg_name="timer", schedule=DUE_SCHEDULE, run_on_startup=False)
@bp.queue_output(arg_name="queue", queue_name=QUEUE, connection=STORAGE)
async def hr_events_due(timer: func.TimerRequest, queue: func.Out[list[str]]) -> None:
    if skip_timer("hr_events_due"):
        return
    from shared.clock import utc_now
    from shared.config import load_settings
    from shared.offboarding.service import run_due
    from shared.offboarding.worker import due_messages
    from shared.store import open_state

    settings = load_settings()
    deletions = await run_due(settings, runs=False)  # the due runs fan out over the queue instead
    async with open_state(settings) as store:
        messages = await due_messages(store, utc_now())
    if messages:
        queue.set(messages)
    log.info("HR events due: %d queued; scheduled deletions carried out: %d", len(messages), len(deletions))


def _settings() -> Settings:
    """The app's settings; unusable → 503, so a sender retries instead of dropping a genuine event."""
    from shared.config import load_settings
    from shared.offboarding.inbox import ReceiverNotConfiguredError

    try:
        return load_settings()
    except ConfigError as error:
        raise ReceiverNotConfiguredError(error.message, hint=error.hint) from None


def _adapters() -> AdaptersConfig:
    """The adapters' field mappings from the policy (the vendors' defaults without one); unusable → 503."""
    from shared.config import load_policy
    from shared.offboarding.inbox import ReceiverNotConfiguredError, adapters_of

    try:
        return adapters_of(load_policy(_settings().policy))
    except PolicyError as error:
        raise ReceiverNotConfiguredError(error.message, hint=error.hint) from None
