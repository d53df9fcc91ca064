"""The one applier: a lease, each action claimed and recorded once, carried out by the capability.

Every action has a record (partition = run id, row = the action's key) written before the tenant is
touched and completed after. A rerun of the same plan skips completed actions and hands the capability
each action's `Progress`: whether an interrupted attempt left it half-way (`resumed`), and the
capability's own fields in the record (a stage, ids Graph gave back, what is done so far), which it
saves with conditional updates as it goes. So a multi-step action (invite, then email, then add to
groups) continues at its last saved step instead of repeating one, and two workers that both read the
same record cannot both move it on: the second save loses (`StaleVersionError`) and that action fails
with "another worker is applying it".

The lease: one applier per `lease_scope` of the run at a time (`leased_part`); a second one is refused
(`LeaseHeldError`).
By default it covers the whole run. A capability whose run arrives in parts that may be worked in
parallel (an invitation batch's queue chunks, on several instances at once) names one lease per part
instead, so parts run side by side while a redelivered part waits for, or is refused by, its own first
delivery. The action records' conditional updates keep even overlapping parts from acting twice.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar

from shared.clock import Clock
from shared.concurrency import map_bounded
from shared.errors import AlreadyExistsError, GraphError, GuestctlError, StaleVersionError, StoreError
from shared.store import Record, Store
from shared.store.lease import lease


class Outcome(StrEnum):
    DONE = "done"
    ALREADY_DONE = "already-done"  # finished by an earlier attempt of this run
    SKIPPED = "skipped"  # the re-check found a reason not to act
    FAILED = "failed"


class Keyed(Protocol):
    """What the applier needs of a capability's action: its kind and its target."""

    @property
    def kind(self) -> StrEnum: ...

    @property
    def target_id(self) -> str: ...


A = TypeVar("A", bound=Keyed)


@dataclass(frozen=True, slots=True)
class ActionResult(Generic[A]):
    action: A
    outcome: Outcome
    detail: str
    progress: Mapping[str, Any] = field(default_factory=dict)  # the record as the action left it
    error: GuestctlError | None = None  # why it failed, when it did


def outcome_counts(results: Iterable[ActionResult[A]]) -> dict[str, int]:
    """How a run went, for people: {"disable done": 12, "disable skipped": 1, ...} in first-seen order."""
    return dict(Counter(f"{r.action.kind.value} {r.outcome.value}" for r in results))


class Progress:
    """One action's record as its capability sees it: `resumed`, its fields (`data`), a conditional `save`."""

    def __init__(self, store: Store, record: Record, clock: Clock) -> None:
        self._store = store
        self.record = record
        self._clock = clock
        self.resumed = record.data.get("attempts", 1) > 1  # an earlier attempt of this run started it
        self._noted: dict[str, Any] = {}

    @property
    def data(self) -> Mapping[str, Any]:
        return self.record.data

    async def save(self, **changes: Any) -> None:
        """Write `changes` (and anything noted) only over the version read: a lost race raises StaleVersionError."""
        data = {**self.record.data, **self._noted, **changes, "updated_at": self._clock().isoformat()}
        self.record = await self._store.update(self.record, data)
        self._noted = {}

    def note(self, **changes: Any) -> None:
        """Keep `changes` with the next save (the action's completion at the latest): one write fewer."""
        self._noted.update(changes)


# carries out one action, given its record's progress
CarryOut = Callable[[A, Progress], Awaitable[tuple[Outcome, str]]]
# how an action an interrupted attempt started, and that the fresh plan no longer holds, ended
Unplanned = Callable[[Record], Awaitable[tuple[Outcome, str]]]


def kind_and_target(action: Keyed) -> str:
    return f"{action.kind.value}:{action.target_id}"


async def apply_actions(
    actions: Sequence[A],
    carry_out: CarryOut[A],
    *,
    store: Store,
    table: str,
    run_id: str,
    clock: Clock,
    failures: tuple[type[GuestctlError], ...] = (GraphError,),
    limit: int = 32,
    on_done: Callable[[ActionResult[A]], None] | None = None,
    key: Callable[[A], str] = kind_and_target,
    initial: Callable[[A], dict[str, Any]] | None = None,
    lease_scope: str | None = None,
    unplanned: Unplanned | None = None,
) -> list[ActionResult[A]]:
    """Carry out every action once under the lease; one result per action, in order.

    `key` names an action's record under the run; `initial` gives the capability's fields of a new record.
    An error of a type in `failures` fails that action only (its message is the result's detail and is
    kept on the record); any other error stops the run (the lease is let go, the rest is cancelled) and a
    rerun continues it. `unplanned` closes the run's records left `started` whose action the plan no longer
    holds (a rerun re-plans from fresh data, and an interrupted attempt may have made the change).
    """

    async def one(action: A) -> ActionResult[A]:
        progress: Progress | None = None
        try:
            extra = initial(action) if initial is not None else {}
            progress = Progress(store, await _claim(store, table, run_id, key(action), extra, clock), clock)
            if progress.data.get("state") == "done":
                return ActionResult(action, Outcome.ALREADY_DONE, progress.data["detail"], progress.data)
            outcome, detail = await carry_out(action, progress)
            finished = {"state": "done", "outcome": outcome.value, "detail": detail, "finished_at": clock().isoformat()}
            await progress.save(**finished, error=None)
            return ActionResult(action, outcome, detail, progress.data)
        except StaleVersionError as error:
            detail = "another worker is applying this action; run again to check"
            return ActionResult(action, Outcome.FAILED, detail, progress.data if progress else {}, error)
        except failures as error:  # this action only: the others go on
            if progress is not None:  # kept on the record; losing a race here only loses the note
                with contextlib.suppress(StoreError):
                    await progress.save(error=error.one_line())
            return ActionResult(action, Outcome.FAILED, error.one_line(), progress.data if progress else {}, error)

    async with lease(store, table, leased_part(run_id, lease_scope), what=f"applying {run_id}"):
        results = await map_bounded(actions, one, limit=limit, on_done=on_done)
        if unplanned is not None:
            await _close_unplanned(store, table, run_id, {key(a) for a in actions}, unplanned, clock)
        return results


async def _close_unplanned(
    store: Store, table: str, run_id: str, planned: set[str], unplanned: Unplanned, clock: Clock
) -> None:
    """Without this, such a record would say `started` forever; under the lease, so no live run's record."""
    left = [r async for r in store.query(table, run_id) if r.data.get("state") == "started" and r.row not in planned]
    for record in left:
        outcome, detail = await unplanned(record)
        now = clock().isoformat()
        finished = {"state": "done", "outcome": outcome.value, "detail": detail, "error": None}
        await store.update(record, {**record.data, **finished, "finished_at": now, "updated_at": now})


def leased_part(run_id: str, scope: str | None = None) -> str:
    """What the applier's lease covers: the whole run, or one part of it (`scope`)."""
    return run_id if scope is None else f"{run_id}/{scope}"


async def _claim(store: Store, table: str, run_id: str, key: str, extra: dict[str, Any], clock: Clock) -> Record:
    """The action's record: created before the tenant is touched, counting attempts."""
    data = {**extra, "state": "started", "attempts": 1, "detail": "", "started_at": clock().isoformat()}
    try:
        return await store.create(table, run_id, key, data)
    except AlreadyExistsError:
        record = await store.get(table, run_id, key)
        assert record is not None
        if record.data.get("state") == "done":
            return record
        return await store.update(record, {**record.data, "attempts": record.data.get("attempts", 1) + 1})
