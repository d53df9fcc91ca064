"""What happens to a stored HR event: the `hr-events` queue worker and the due timer (docs/offboarding.md#processing).

The receiver stores each event once (table `hrevents`) and queues its id. The worker reads the row — the row,
not the message, says what arrived — hands the event to the engine (`service.process_event`) and records the
engine's answer on the row, for people (`GET /api/hr/events/{id}`, `guestctl offboard status`). A settled row
is never processed again, so a redelivered or re-queued message changes nothing.

The engine's ledger (`ledger.py`, partition `runs`) is the one record of what waits: an event due later is a
`scheduled` run there, the due timer queues the scheduled runs whose time has come, and a cancellation or
rehire cancels (or restores) the worker's runs there; the row only copies the answer (the rows of the runs a
cancellation cancelled are settled with it). A termination that arrives after a cancellation HR sent at the
same time or later (senders do not promise order) is cancelled before the engine sees it.
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
        event = event_from(record.data["event"])
        now = clock()
        await index_worker(store, event, event_id)  # the receiver did; again in case it stopped in between
        if event.type in ENDING and (later := await _cancelled_by_later(store, event, event_id)) is not None:
            outcome = f"cancelled by HR event {later} (sent no earlier than this one)"
            await _settle(store, event_id, {"status": CANCELLED, "outcome": outcome, "processed_at": now.isoformat()})
            return Processed(event_id, CANCELLED, True, outcome)
    result = await process_event(settings, event, event_id=event_id, replayable=record.data["replayable"], clock=clock)
    update = {
        "status": result.status,
        "run_id": result.run_id,
        "outcome": outcome_of(result),
        "processed_at": now.isoformat(),
    }
    async with open_state(settings) as store:
        cancelled = await _settle_cancelled(store, event, event_id, result.undone, now) if result.undone else ()
        if cancelled:
            update["cancelled"] = list(cancelled)
        await _settle(store, event_id, update)
    log.info("HR event %s: %s (%s)", event_id, result.status, update["outcome"])
    return Processed(event_id, result.status, True, update["outcome"], result.run_id, cancelled)


async def due_messages(store: Store, now: datetime) -> list[str]:
    """Queue messages for the scheduled runs (the engine's ledger) whose time has come (the due timer)."""
    messages = []
    async for run in store.query(ledger.TABLE, ledger.RUNS):
        if run.data.get("state") != ledger.RunState.SCHEDULED or datetime.fromisoformat(run.data["due_at"]) > now:
            continue
        if not run.data.get("event_id"):  # every scheduled run names its event (`service.handle_event`)
            log.error("scheduled offboarding run %s names no HR event: it cannot be queued", run.row)
            continue
        messages.append(msgspec.json.encode(EventMessage(run.data["event_id"])).decode())
    return messages


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


async def _settle_cancelled(
    store: Store, event: HrEvent, event_id: str, undone: tuple[str, ...], now: datetime
) -> tuple[str, ...]:
    """The rows of the worker's scheduled terminations whose runs the engine just cancelled (`undone`) say so."""
    cancelled = []
    for row, _ in await _related(store, event, event_id):
        if row.data.get("status") == SCHEDULED and row.data.get("run_id") in undone:
            outcome = f"cancelled by HR event {event_id} ({event.type.value})"
            await _settle(store, row.row, {"status": CANCELLED, "outcome": outcome, "processed_at": now.isoformat()})
            cancelled.append(row.row)
    return tuple(cancelled)


async def _cancelled_by_later(store: Store, event: HrEvent, event_id: str) -> str | None:
    """A cancellation or rehire of the same worker that HR sent with or after `event`, if one was stored already
    (the same second counts: when in doubt, nobody is disabled)."""
    for row, other in await _related(store, event, event_id):
        if other.type not in ENDING and other.timestamp >= event.timestamp:
            return row.row
    return None
