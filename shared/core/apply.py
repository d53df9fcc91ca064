"""The one applier: a run's lease, each action claimed and recorded once, carried out by the capability.

Every action has a record (partition = run id, row = the action's key) written before the tenant is
touched and completed after. A rerun of the same plan skips completed actions and tells the capability
which ones an interrupted attempt left half-way (`resumed`), so it can look at the tenant first instead
of acting twice. One applier per run at a time: a second one is refused (`LeaseHeldError`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, Protocol, TypeVar

from shared.clock import Clock
from shared.concurrency import map_bounded
from shared.errors import AlreadyExistsError, GraphError, GuestctlError, StaleVersionError
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


def outcome_counts(results: Iterable[ActionResult[A]]) -> dict[str, int]:
    """How a run went, for people: {"disable done": 12, "disable skipped": 1, ...} in first-seen order."""
    return dict(Counter(f"{r.action.kind.value} {r.outcome.value}" for r in results))


# carries out one action; `resumed`: an earlier attempt of this run started it and did not finish
CarryOut = Callable[[A, bool], Awaitable[tuple[Outcome, str]]]


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
) -> list[ActionResult[A]]:
    """Carry out every action once under the run's lease; one result per action, in order.

    An error of a type in `failures` fails that action only (its message is the result's detail); any
    other error stops the run (the lease is let go, the rest is cancelled) and a rerun continues it.
    """

    async def one(action: A) -> ActionResult[A]:
        try:
            record = await _claim(store, table, run_id, f"{action.kind.value}:{action.target_id}", clock)
            if record.data["state"] == "done":
                return ActionResult(action, Outcome.ALREADY_DONE, record.data["detail"])
            outcome, detail = await carry_out(action, record.data["attempts"] > 1)
            finished = {"state": "done", "outcome": outcome.value, "detail": detail, "finished_at": clock().isoformat()}
            await store.update(record, {**record.data, **finished})
            return ActionResult(action, outcome, detail)
        except StaleVersionError:
            return ActionResult(action, Outcome.FAILED, "another worker is applying this action; run again to check")
        except failures as error:  # this action only: the others go on
            return ActionResult(action, Outcome.FAILED, error.one_line())

    async with lease(store, table, run_id, what=f"applying {run_id}"):
        return await map_bounded(actions, one, limit=limit, on_done=on_done)


async def _claim(store: Store, table: str, run_id: str, key: str, clock: Clock) -> Record:
    """The action's record: created before the tenant is touched, counting attempts."""
    data = {"state": "started", "attempts": 1, "detail": "", "started_at": clock().isoformat()}
    try:
        return await store.create(table, run_id, key, data)
    except AlreadyExistsError:
        record = await store.get(table, run_id, key)
        assert record is not None
        if record.data["state"] == "done":
            return record
        return await store.update(record, {**record.data, "attempts": record.data["attempts"] + 1})
