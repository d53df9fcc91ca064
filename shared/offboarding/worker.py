"""What happens to a stored HR event: the `hr-events` queue worker and the due timer (docs/offboarding.md#processing).

The receiver stores each event once (table `hrevents`) and queues its id. The worker reads the row — the row,
not the message, says what arrived — hands the event to the engine (`service.process_event`) and records the
outcome on the row. A settled row is never processed again, so a redelivered or re-queued message changes
nothing. An event due later is `scheduled`; the due timer queues it again once its time has come.

A cancellation or rehire settles the same worker's termination events that are still waiting (`cancelled`,
nothing changed in the tenant); a termination carried out already is restored by the engine. A termination
that arrives after a cancellation HR sent later (senders do not promise order) is cancelled too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from shared.clock import Clock, utc_now
from shared.config import Settings
from shared.errors import RetryLaterError, StaleVersionError, UnknownItemError, cap
from shared.offboarding import ledger
from shared.offboarding.events import ENDING, HrEvent, event_from
from shared.offboarding.inbox import (
    EVENT_PARTITION,
    RECEIVED,
    EventMessage,
    decode_message,
    events_of_worker,
    index_worker,
)
from shared.offboarding.service import Offboarded, process_event
from shared.store import Store, open_state
from shared.store.lease import LeaseHeldError
from shared.store.protocol import Record
from shared.store.registry import HR_EVENTS

log = logging.getLogger("guestctl.offboarding.worker")

SCHEDULED = "scheduled"
CANCELLED = "cancelled"
WAITING = frozenset({RECEIVED, SCHEDULED})  # not settled: the worker (again) or the due timer takes it
MAX_OUTCOME_CHARS = 500


@dataclass(frozen=True, slots=True)
class Processed:
    """What the worker did with one message: the event's status now, and whether this delivery acted."""

    event_id: str
    status: str
    acted: bool
    outcome: str | None
    run_id: str | None = None
    cancelled: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "status": self.status,
            "acted": self.acted,
            "outcome": self.outcome,
            "run_id": self.run_id,
            "cancelled": list(self.cancelled),
        }


def outcome_of(result: Offboarded) -> str:
    """One line for the row (`GET /api/hr/events/{id}`, `guestctl offboard status`)."""
    if result.review:
        return cap(result.review, MAX_OUTCOME_CHARS)
    if result.status == SCHEDULED and result.due_at is not None:
        return f"due {result.due_at.isoformat()}"
    counts = ", ".join(f"{name}: {count}" for name, count in sorted(result.counts.items()))
    return cap(counts or "nothing to do", MAX_OUTCOME_CHARS)


async def handle_message(settings: Settings, text: str | bytes, *, clock: Clock = utc_now) -> Processed:
    """The queue worker's one call. A malformed message or an unknown event id is an InputError /
    UnknownItemError (the poison queue at once); Graph or store trouble raises for the host to retry."""
    event_id = decode_message(text).event_id
    try:
        return await process_stored(settings, event_id, clock=clock)
    except LeaseHeldError:  # a second delivery while the first is still applying: after it, this one is a no-op
        raise RetryLaterError(f"HR event {event_id} is being processed by another worker") from None


async def process_stored(settings: Settings, event_id: str, *, clock: Clock = utc_now) -> Processed:
    async with open_state(settings) as store:
        record = await _row(store, event_id)
        if record.data["status"] not in WAITING:
            data = record.data
            return Processed(event_id, data["status"], False, data.get("outcome"), data.get("run_id"))
        settled = await _settled_elsewhere(store, record)
        if settled is not None:
            await _settle(store, event_id, settled)
            return Processed(event_id, settled["status"], False, settled["outcome"], record.data.get("run_id"))
        event = event_from(record.data["event"])
        now = clock()
        await index_worker(store, event, event_id)  # the receiver did; again in case it stopped in between
        if event.type in ENDING:
            later = await _cancelled_by_later(store, event, event_id)
            if later is not None:
                outcome = f"cancelled by HR event {later} (sent after this one)"
                await _settle(
                    store, event_id, {"status": CANCELLED, "outcome": outcome, "processed_at": now.isoformat()}
                )
                return Processed(event_id, CANCELLED, True, outcome)
            cancelled: tuple[str, ...] = ()
        else:
            cancelled = await _cancel_waiting(store, event, event_id, now)
    result = await process_event(settings, event, event_id=event_id, replayable=record.data["replayable"], clock=clock)
    update = {
        "status": result.status,
        "run_id": result.run_id,
        "outcome": outcome_of(result),
        "processed_at": now.isoformat(),
    }
    if cancelled:
        update["cancelled"] = list(cancelled)
    async with open_state(settings) as store:
        await _settle(store, event_id, update)
    log.info("HR event %s: %s (%s)", event_id, result.status, update["outcome"])
    return Processed(event_id, result.status, True, update["outcome"], result.run_id, cancelled)


async def due_messages(store: Store, now: datetime) -> list[str]:
    """Queue messages for scheduled events whose time has come (the due timer)."""
    return [
        msgspec.json.encode(EventMessage(row.row)).decode()
        async for row in store.query(HR_EVENTS, EVENT_PARTITION)
        if row.data.get("status") == SCHEDULED and datetime.fromisoformat(row.data["due_at"]) <= now
    ]


async def _settled_elsewhere(store: Store, record: Record) -> dict[str, Any] | None:
    """A scheduled event whose run the engine settled meanwhile (`run_due`, a cancellation): the row takes the
    run's state, and the engine is not asked again."""
    run_id = record.data.get("run_id")
    run = await ledger.run_of(store, run_id) if record.data["status"] == SCHEDULED and run_id else None
    if run is None or run.data.get("state") in (ledger.RunState.SCHEDULED, ledger.RunState.STARTED):
        return None
    state = str(run.data["state"])
    return {"status": state, "outcome": cap(str(run.data.get("review") or f"run {state}"), MAX_OUTCOME_CHARS)}


async def _row(store: Store, event_id: str) -> Record:
    record = await store.get(HR_EVENTS, EVENT_PARTITION, event_id)
    if record is None:
        raise UnknownItemError(f"no HR event {cap(event_id, 64)!r} in table {HR_EVENTS}", hint="the message is stale")
    return record


async def _settle(store: Store, event_id: str, update: dict[str, Any]) -> None:
    """Write the outcome on the row, reading it again if someone (the requeue timer) changed it meanwhile."""
    for _ in range(5):
        record = await _row(store, event_id)
        try:
            await store.update(record, {**record.data, **update})
            return
        except StaleVersionError:
            continue
    raise StaleVersionError(f"HR event {event_id}: the row kept changing while its outcome was written")


async def _related(store: Store, event: HrEvent, event_id: str) -> list[tuple[Record, HrEvent]]:
    """The other stored events about the same worker (through the receiver's index), with their rows."""
    found = []
    for other_id in sorted(await events_of_worker(store, event) - {event_id}):
        row = await store.get(HR_EVENTS, EVENT_PARTITION, other_id)
        if row is not None:
            found.append((row, event_from(row.data["event"])))
    return found


async def _cancel_waiting(store: Store, event: HrEvent, event_id: str, now: datetime) -> tuple[str, ...]:
    """Settle the worker's terminations not carried out yet as cancelled by `event` (nothing in the tenant)."""
    cancelled = []
    for row, other in await _related(store, event, event_id):
        if other.type not in ENDING or row.data.get("status") not in WAITING:
            continue
        outcome = f"cancelled by HR event {event_id} ({event.type.value})"
        try:
            await store.update(
                row, {**row.data, "status": CANCELLED, "outcome": outcome, "processed_at": now.isoformat()}
            )
        except StaleVersionError:
            continue  # the worker took it meanwhile: the engine restores what it carried out
        cancelled.append(row.row)
    return tuple(cancelled)


async def _cancelled_by_later(store: Store, event: HrEvent, event_id: str) -> str | None:
    """A cancellation or rehire of the same worker that HR sent after `event`, if one was stored already."""
    for row, other in await _related(store, event, event_id):
        if other.type not in ENDING and other.timestamp > event.timestamp:
            return row.row
    return None
