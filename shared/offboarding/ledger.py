"""What the engine keeps in its table `offboardings`, so later events and the sweep can find it.

Partitions:
- `runs`: one row per offboarding run (keyed by run id): the worker (object id and identifiers), the HR
  event (and its id, which the due timer queues) while it waits for its date — the only record that it
  waits — the event's provenance and the run's state —
  `scheduled` → `started` → `done` | `partial` | `review`; `scheduled` → `cancelled`; carried out →
  `restored`. `worker.termination_cancelled` / `worker.rehired` find a worker's runs here.
- `deletions`: one row per guest whose soft deletion is scheduled (`effects.schedule_delete`).
- `unsponsored`: one row per guest a leaver left with no sponsor (`effects.flag`); the sweep lists them.

Every state change is a conditional update of the version read, so a cancellation and the timer that
carries out the same run cannot both win: the loser raises `StaleVersionError` and is retried.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any

from shared.errors import AlreadyExistsError
from shared.store import Record, Store
from shared.store.registry import OFFBOARDINGS

TABLE = OFFBOARDINGS
RUNS, DELETIONS, UNSPONSORED = "runs", "deletions", "unsponsored"


class RunState(StrEnum):
    SCHEDULED = "scheduled"  # the effective date is ahead: nothing has been changed
    STARTED = "started"  # being carried out (or interrupted: the next delivery continues it)
    DONE = "done"
    PARTIAL = "partial"  # some action failed; a redelivery continues
    REVIEW = "review"  # when due, nobody could be acted on (ambiguous, unknown, exempt)
    CANCELLED = "cancelled"  # cancelled before it was carried out: nothing was changed
    RESTORED = "restored"  # carried out, then undone through the core restore


CARRIED_OUT = frozenset({RunState.STARTED, RunState.DONE, RunState.PARTIAL})
UNDONE = frozenset({RunState.CANCELLED, RunState.RESTORED})


def identifier_keys(identifiers: Iterable[tuple[str, str]]) -> list[str]:
    """`name:value` (value lowercased) of each identifier: what a later event about the worker is matched on."""
    return [f"{name}:{value.lower()}" for name, value in identifiers]


async def run_of(store: Store, run_id: str) -> Record | None:
    return await store.get(TABLE, RUNS, run_id)


async def put_run(store: Store, run_id: str, record: Record | None, state: RunState, **fields: Any) -> Record:
    """Create the run's row, or move `record` (the version read) to `state`: conditional either way."""
    if record is None:
        return await store.create(TABLE, RUNS, run_id, {**fields, "state": state.value})
    return await store.update(record, {**record.data, **fields, "state": state.value})


async def schedule_run(store: Store, run_id: str, **fields: Any) -> Record:
    """The run's row as `scheduled` (an event redelivered before its date finds the row it made)."""
    try:
        return await put_run(store, run_id, None, RunState.SCHEDULED, **fields)
    except AlreadyExistsError:
        found = await run_of(store, run_id)
        assert found is not None
        return found


async def runs_of(store: Store, worker_id: str | None, identifiers: Iterable[str]) -> list[Record]:
    """The runs about a worker: the same object id, or (where either side has none) a shared identifier."""
    wanted = {key.lower() for key in identifiers}
    found = []
    async for record in store.query(TABLE, RUNS):
        known = str(record.data.get("worker_id") or "").lower()
        if worker_id and known:
            same = known == worker_id.lower()
        else:
            same = not wanted.isdisjoint(record.data.get("identifiers") or [])
        if same:
            found.append(record)
    return found


async def withdraw(store: Store, run_id: str, *, why: str, now: datetime) -> int:
    """What a run left for later, withdrawn: its scheduled deletions cancelled, its unsponsored flags removed
    (the restore puts the leaver back as sponsor). How many records changed."""
    changed = 0
    async for record in store.query(TABLE, DELETIONS):
        if record.data.get("run_id") == run_id and record.data.get("state") == "scheduled":
            cancelled = {"state": "cancelled", "detail": why, "finished_at": now.isoformat()}
            await store.update(record, {**record.data, **cancelled})
            changed += 1
    for record in [r async for r in store.query(TABLE, UNSPONSORED) if r.data.get("run_id") == run_id]:
        await store.delete(record)
        changed += 1
    return changed


async def unsponsored_guests(store: Store) -> dict[str, str]:
    """Guests a leaver left with no sponsor (lowercased id → why, for people), for the sweep to list."""
    return {
        record.row.lower(): str(record.data.get("summary") or record.data.get("reason") or "no sponsor left")
        async for record in store.query(TABLE, UNSPONSORED)
    }
