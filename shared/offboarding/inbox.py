"""The HR receiver's request path: check, authenticate, parse, store once, queue (docs/offboarding.md#the-receiver).

Nothing in the tenant changes here and no Graph call is made: a request is answered once its events are
stored and their queue messages handed to the output binding. The checks run in this order, each with its
documented status: unknown route 404, body over 64 KiB 413, content type 415, secrets setting unusable 503
(fail closed), authentication 401 (generic; the reason is for the log), body 400 (with the field path).

Dedupe: an event's id is derived from the route and the sender's dedupe key (`webhook-id`, or the adapter's
key), and its row is created with the store's conditional `create`. So the same delivery, however often and
however concurrently it comes, stores one row and queues one message; every other copy answers 200 with the
same body. The row is the dedupe record: rows are kept at least `DEDUPE_DAYS` days.

Store first, then queue: a row whose message was lost (the host failed to write the output binding) stays
`received`, and `requeue_stuck` (a timer) queues it again after `REQUEUE_AFTER`. The worker that processes
`hr-events` must take an event out of `received` once it has handled it, and must be idempotent (a queue
delivers at least once).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import msgspec

from shared.errors import (
    AlreadyExistsError,
    ConfigError,
    PayloadTooLargeError,
    StaleVersionError,
    UnknownItemError,
    UnsupportedMediaTypeError,
    cap,
)
from shared.offboarding.adapters.config import AdaptersConfig
from shared.offboarding.adapters.registry import ADAPTERS, receive_from
from shared.offboarding.events import HrEvent, Inbound, Received, parse_event
from shared.offboarding.signatures import SECRETS_SETTING, header, parse_secrets, vendor_keys, verify
from shared.queue_messages import decode_message as decode_queue_message
from shared.store import Store
from shared.store.registry import HR_EVENTS

log = logging.getLogger("guestctl.offboarding.inbox")

NATIVE = "events"  # the route of the native Standard Webhooks event: POST /api/hr/events
QUEUE = "hr-events"
MAX_BODY_BYTES = 64 * 1024
EVENT_PARTITION = "event"
WORKER_PARTITION = "worker"  # index: `<identifier name>:<digest>:<event id>` → the event
DEDUPE_DAYS = 7  # the least time an event row (the dedupe record) is kept
REQUEUE_AFTER = timedelta(minutes=10)  # a row still `received` this long after it came lost its queue message
MAX_REQUEUES = 3  # then a person looks (the worker's own retries and poison queue come before)
RECEIVED = "received"
PENDING = frozenset({RECEIVED, "scheduled"})  # not yet acted on: `guestctl offboard list --pending`
JSON_TYPES = ("application/json",)
XML_TYPES = ("text/xml", "application/soap+xml")  # SOAP 1.1 and 1.2
CONTENT_TYPES = {"successfactors": XML_TYPES}  # every other route reads JSON
MAX_KEY_CHARS = 1_000  # a dedupe key kept in the row for people; the id is a digest of the whole key
TOO_LARGE_HINT = "an HR event is small: send one event (or the vendor's one delivery) per request"


class ReceiverNotConfiguredError(ConfigError):
    """A route's secrets setting is unusable: every delivery is refused until it is fixed (senders retry a 503)."""

    http_status = 503


class EventMessage(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The `hr-events` queue message: which stored event to process (the row holds everything else)."""

    event_id: str


@dataclass(frozen=True, slots=True)
class Answer:
    """What the receiver answers and what it queues (the queue messages are sent only with this answer)."""

    status: int  # 202: something new was stored; 200: all of it was seen before, or nothing to do
    body: dict[str, Any]
    location: str | None = None
    messages: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class EventStatus:
    """One stored event as `GET /api/hr/events/{id}` and `guestctl offboard status` show it (no raw body)."""

    id: str
    status: str
    type: str
    system: str
    worker: dict[str, str]
    effective_date: str | None
    effective_time_zone: str | None
    due_at: str
    received_at: str
    replayable: bool
    run_id: str | None = None
    outcome: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "type": self.type,
            "system": self.system,
            "worker": self.worker,
            "effectiveDate": self.effective_date,
            "effectiveTimeZone": self.effective_time_zone,
            "dueAt": self.due_at,
            "receivedAt": self.received_at,
            "replayable": self.replayable,
            "runId": self.run_id,
            "outcome": self.outcome,
        }


def routes() -> tuple[str, ...]:
    """Every route the receiver answers on: the native one and one per adapter."""
    return (NATIVE, *ADAPTERS)


def secrets_setting(route: str) -> str:
    return SECRETS_SETTING if route == NATIVE else ADAPTERS[route].secrets_setting


def check_route(route: str) -> None:
    """UnknownItemError (404) unless guestctl has a receiver on `route`."""
    if route != NATIVE and route not in ADAPTERS:
        raise UnknownItemError(
            f"no HR receiver /api/hr/{cap(route, 64)}",
            hint=f"use one of: {', '.join(f'/api/hr/{r}' for r in routes())}",
        )


def route_keys(route: str, environ: Mapping[str, str] = os.environ) -> tuple[bytes, ...]:
    """The keys of `route`, read from its setting on every call (a rotated secret needs no restart);
    ReceiverNotConfiguredError (503) naming the setting, never its value, when it is unusable."""
    setting = secrets_setting(route)
    value = environ.get(setting)
    try:
        return parse_secrets(value) if route == NATIVE else vendor_keys(value, setting)
    except ConfigError as error:
        raise ReceiverNotConfiguredError(
            f"the HR receiver /api/hr/{route} is refused: {error.message}", hint=error.hint
        ) from None


def receivers(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Each route's state for `GET /api/health`: `ready`, `off` (its setting is not set) or `refused: <why>`."""
    states = {}
    for route in routes():
        if not (environ.get(secrets_setting(route)) or "").strip():
            states[route] = "off"
            continue
        try:
            route_keys(route, environ)
            states[route] = "ready"
        except ReceiverNotConfiguredError as error:
            states[route] = f"refused: {error.message}"
    return states


def adapters_of(policy: object) -> AdaptersConfig:
    """The adapters' configuration: the policy's `offboarding.adapters`, or the vendors' defaults without it."""
    offboarding = getattr(policy, "offboarding", None)
    return getattr(offboarding, "adapters", None) or AdaptersConfig()


def accept(
    route: str,
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
    adapters: AdaptersConfig | None = None,
    environ: Mapping[str, str] = os.environ,
) -> Received:
    """The events one request carries, or the GuestctlError that answers it (pure: no store, no Graph)."""
    check_route(route)
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLargeError.of(len(body), MAX_BODY_BYTES, TOO_LARGE_HINT)
    expected = CONTENT_TYPES.get(route, JSON_TYPES)
    given = (header(headers, "Content-Type") or "").split(";")[0].strip().lower()
    if given not in expected:
        raise UnsupportedMediaTypeError(
            f"Content-Type {cap(given, 80)!r} is not read on /api/hr/{route}", hint=f"send {' or '.join(expected)}"
        )
    keys = route_keys(route, environ)
    if route != NATIVE:
        return receive_from(route, headers, body, adapters or AdaptersConfig(), keys, now)
    msg_id = verify(keys, headers, body, now)
    return Received((Inbound(parse_event(body), msg_id, replayable=False),))


def event_id(route: str, dedupe_key: str) -> str:
    """The stored event's id: the same route and dedupe key always give the same id (that is the dedupe)."""
    digest = hashlib.sha256(f"{route}\n{dedupe_key}".encode("utf-8", "surrogatepass")).hexdigest()
    return f"hr-{digest[:16]}"


async def record(store: Store, route: str, received: Received, now: datetime) -> Answer:
    """Store each event once (conditional create), and answer: 202 with the queue messages of the new ones,
    or 200 with the same body when every one was stored before (by an earlier or a concurrent delivery)."""
    if not received.events:
        return ignored(received)
    receipts, messages = [], []
    for inbound in received.events:
        identifier = event_id(route, inbound.dedupe_key)
        try:
            await store.create(HR_EVENTS, EVENT_PARTITION, identifier, _row(route, inbound, now))
            await index_worker(store, inbound.event, identifier)
            messages.append(msgspec.json.encode(EventMessage(identifier)).decode())
        except AlreadyExistsError:
            log.info("HR event %s on /api/hr/%s was received before: answered again", identifier, route)
        receipts.append({"id": identifier, "status": RECEIVED, "statusUrl": status_url(identifier)})
    body = dict(receipts[0])
    if len(receipts) > 1:
        body["events"] = receipts
    return Answer(202 if messages else 200, body, receipts[0]["statusUrl"], messages)


def worker_keys(event: HrEvent) -> list[str]:
    """The index rows' prefixes of the event's worker, one per identifier: `<name>:<digest of the value>:` (a
    digest, so the keys hold no address; lower case, as Entra compares them)."""
    return [
        f"{name}:{hashlib.sha256(value.lower().encode()).hexdigest()[:24]}:"
        for name, value in event.data.worker.identifiers()
    ]


async def index_worker(store: Store, event: HrEvent, identifier: str) -> None:
    """Index the event by its worker (partition `worker`), so a cancellation finds the worker's terminations
    without reading every event. Safe to repeat: the worker indexes again before it acts."""
    for prefix in worker_keys(event):
        await store.upsert(HR_EVENTS, WORKER_PARTITION, prefix + identifier, {"event": identifier})


async def events_of_worker(store: Store, event: HrEvent) -> set[str]:
    """The ids of every stored event about the same worker (sharing an identifier), `event`'s own included."""
    found: set[str] = set()
    for prefix in worker_keys(event):
        found |= {row.data["event"] async for row in store.query(HR_EVENTS, WORKER_PARTITION, row_prefix=prefix)}
    return found


def ignored(received: Received) -> Answer:
    """The 200 for a delivery with nothing to store: a vendor's ping, or an event type not mapped."""
    return Answer(200, {"status": "ignored", "reason": received.ignored or "nothing to do"})


def status_url(identifier: str) -> str:
    return f"/api/hr/events/{identifier}"


def _row(route: str, inbound: Inbound, now: datetime) -> dict[str, Any]:
    event = inbound.event
    return {
        "event": event.model_dump(mode="json", by_alias=True, exclude_none=True),
        "system": event.data.source.system,
        "route": route,
        "dedupe_key": cap(inbound.dedupe_key.encode("utf-8", "replace").decode(), MAX_KEY_CHARS),
        "replayable": inbound.replayable,
        "received_at": now.isoformat(),
        "status": RECEIVED,
        "due_at": event.due_at.isoformat(),
    }


def decode_message(text: str | bytes) -> EventMessage:
    """An `hr-events` message, or InputError (the worker sends it to the poison queue at once)."""
    return decode_queue_message(text, EventMessage, QUEUE)


async def event_status(store: Store, identifier: str) -> EventStatus:
    """The stored event `identifier`, or UnknownItemError (404)."""
    record_ = await store.get(HR_EVENTS, EVENT_PARTITION, identifier) if _is_event_id(identifier) else None
    if record_ is None:
        raise UnknownItemError(f"no HR event {cap(identifier, 64)!r}", hint="use the id a 202 or 200 answer gave")
    return _status(record_.row, record_.data)


async def list_events(store: Store, *, pending_only: bool = False) -> list[EventStatus]:
    """Every stored event (or those not yet acted on), earliest due first."""
    found = [_status(r.row, r.data) async for r in store.query(HR_EVENTS, EVENT_PARTITION)]
    if pending_only:
        found = [event for event in found if event.status in PENDING]
    return sorted(found, key=lambda event: (event.due_at, event.id))


async def requeue_stuck(store: Store, now: datetime) -> list[str]:
    """Queue messages for events still `received` `REQUEUE_AFTER` after they came: their message was lost.
    Each event is queued again at most `MAX_REQUEUES` times (recorded in its row); then it is logged."""
    messages = []
    async for row in store.query(HR_EVENTS, EVENT_PARTITION):
        data = row.data
        if data.get("status") != RECEIVED or datetime.fromisoformat(data["received_at"]) > now - REQUEUE_AFTER:
            continue
        requeues = int(data.get("requeues", 0))
        if requeues >= MAX_REQUEUES:
            log.error("HR event %s is still received after %d re-queues: check the hr-events worker", row.row, requeues)
            continue
        try:
            await store.update(row, {**data, "requeues": requeues + 1, "requeued_at": now.isoformat()})
        except StaleVersionError:
            continue  # the worker (or another timer) changed it meanwhile
        messages.append(msgspec.json.encode(EventMessage(row.row)).decode())
    return messages


def _is_event_id(identifier: str) -> bool:
    digits = identifier.removeprefix("hr-")
    return identifier.startswith("hr-") and len(digits) == 16 and all(c in "0123456789abcdef" for c in digits)


def _status(identifier: str, data: dict[str, Any]) -> EventStatus:
    event = data["event"]
    details = event.get("data", {})
    return EventStatus(
        id=identifier,
        status=data["status"],
        type=event["type"],
        system=data["system"],
        worker=details.get("worker", {}),
        effective_date=details.get("effectiveDate"),
        effective_time_zone=details.get("effectiveTimeZone"),
        due_at=data["due_at"],
        received_at=data["received_at"],
        replayable=data["replayable"],
        run_id=data.get("run_id"),
        outcome=data.get("outcome"),
    )
