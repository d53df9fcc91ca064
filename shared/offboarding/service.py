"""What the CLI, the queue worker and the timer call: plan and apply an offboarding, process one HR event
(a termination: scheduled or carried out; a cancellation or rehire: cancelled or restored), carry out what
is due. Typed results."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from shared.clock import Clock, utc_now
from shared.config import Policy, Settings, load_policy
from shared.core.apply import ActionResult, Outcome, outcome_counts
from shared.core.restore import Restored, restore
from shared.errors import InputError, UnknownItemError, cap
from shared.graph import Graph, get_graph
from shared.offboarding import ledger
from shared.offboarding.apply import apply_plan, run_counts
from shared.offboarding.events import ENDING, HrEvent, Worker, event_from
from shared.offboarding.fetch import find_worker, gather_facts
from shared.offboarding.ledger import CARRIED_OUT, UNDONE, RunState
from shared.offboarding.plan import Action, ActionKind, Plan, plan_offboarding, provenance_text, run_id_for
from shared.store import Record, Store, open_state

Status = Literal["review", "scheduled", "done", "partial", "cancelled", "restored"]
ACTOR = "guestctl offboard"


@dataclass(frozen=True, slots=True)
class Offboarded:
    """What processing one HR event (or one manual request) came to."""

    status: Status
    run_id: str
    counts: dict[str, int] = field(default_factory=dict)  # "disable done": 1, ...
    review: str | None = None  # why nobody was acted on
    due_at: datetime | None = None  # scheduled: when it becomes due
    plan: Plan | None = None
    results: list[ActionResult[Action]] = field(default_factory=list)
    undone: tuple[str, ...] = ()  # a cancellation or rehire: the runs it cancelled or restored
    restored: list[Restored] = field(default_factory=list)  # ... and each change the restore undid

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "run_id": self.run_id,
            "counts": self.counts,
            "review": self.review,
            "due_at": self.due_at.isoformat() if self.due_at else None,
            "results": [
                {
                    "action": r.action.kind.value,
                    "target_id": r.action.target_id,
                    "outcome": r.outcome.value,
                    "detail": r.detail,
                }
                for r in self.results
            ],
            "undone": list(self.undone),
            "restored": [
                {"target_id": r.target_id, "outcome": r.outcome.value, "detail": r.detail} for r in self.restored
            ],
        }


def worker_of(identifier: str) -> Worker:
    """A worker named on the command line: an object id, a UPN or an email address (tried as given)."""
    from pydantic import ValidationError

    from shared.graph.odata import is_object_id

    try:
        if is_object_id(identifier):
            return Worker(entraObjectId=identifier)
        if "@" in identifier and "#EXT#" not in identifier:
            return Worker(email=identifier)
        return Worker(userPrincipalName=identifier)
    except ValidationError:
        raise InputError(
            f"{cap(repr(identifier), 100)} is not an object id, a userPrincipalName or an email address",
            hint="name the worker by one of those, e.g. guestctl offboard jane@fabrikam.com",
        ) from None


def provenance_of(event: HrEvent | None, event_id: str | None) -> dict[str, Any]:
    if event is None:
        return {"system": "manual", "event": event_id}
    source = event.data.source
    return {
        "system": source.system,
        "tenant": source.tenant,
        "event": source.event_id or event_id,
        "type": event.type.value,
    }


async def make_plan(
    graph: Graph,
    store: Store,
    policy: Policy,
    worker: Worker,
    *,
    effective: datetime,
    run_id: str,
    provenance: dict[str, Any],
) -> Plan:
    facts = await gather_facts(graph, store, policy, worker, effective.date())
    return plan_offboarding(facts, policy, run_id=run_id, effective=effective, provenance=provenance)


async def plan_offboarding_for(
    settings: Settings, identifier: str | Worker, effective: datetime, *, store: Store | None = None
) -> Plan:
    """The plan for a worker named by hand (`guestctl offboard`); no tenant changes."""
    worker = worker_of(identifier) if isinstance(identifier, str) else identifier
    name, value = worker.identifiers()[0]
    run_id = run_id_for(f"manual:{name}:{value.lower()}:{effective.date().isoformat()}")
    policy = load_policy(settings.policy)
    async with open_state(settings) as opened:
        return await make_plan(
            get_graph(settings),
            store or opened,
            policy,
            worker,
            effective=effective,
            run_id=run_id,
            provenance=provenance_of(None, run_id),
        )


def result_of(plan: Plan, results: list[ActionResult[Action]], counts: dict[str, int] | None = None) -> Offboarded:
    """`counts`: the whole run's (`run_counts`); without them, these results'."""
    failed = any(r.outcome is Outcome.FAILED for r in results)
    counts = outcome_counts(results) if counts is None else counts
    return Offboarded("partial" if failed else "done", plan.run_id, counts, plan=plan, results=results)


async def apply_offboarding(
    settings: Settings, plan: Plan, *, clock: Clock = utc_now, actor: str = ACTOR
) -> Offboarded:
    """Apply a plan (each action re-checked against Graph now); a plan for review changes nothing."""
    if plan.review:
        return Offboarded("review", plan.run_id, review=plan.review, plan=plan)
    policy = load_policy(settings.policy)
    async with open_state(settings) as store:
        return await carry_out(get_graph(settings), store, policy, plan, [plan.identifier], actor=actor, clock=clock)


async def carry_out(
    graph: Graph,
    store: Store,
    policy: Policy,
    plan: Plan,
    identifiers: Iterable[tuple[str, str]],
    *,
    clock: Clock,
    actor: str = ACTOR,
) -> Offboarded:
    """Apply a plan under its run's row in the ledger: nothing is done when the run was cancelled or restored
    meanwhile; the row says `started` before the first change, so a cancellation from now on restores."""
    record = await ledger.run_of(store, plan.run_id)
    if (undone := _undone(record)) is not None:
        return undone
    fields = {
        "worker_id": plan.worker_id,
        "worker": plan.worker,
        "identifiers": ledger.identifier_keys(identifiers),
        "provenance": plan.provenance,
        "effective": plan.effective.isoformat(),
        "started_at": clock().isoformat(),
    }
    record = await ledger.put_run(store, plan.run_id, record, RunState.STARTED, **fields)
    results = await apply_plan(plan, graph, store, policy, actor=actor, clock=clock)
    result = result_of(plan, results, await run_counts(store, plan.run_id))  # a rerun counts the earlier attempts'
    await ledger.put_run(store, plan.run_id, record, RunState(result.status), finished_at=clock().isoformat())
    return result


def _undone(record: Record | None) -> Offboarded | None:
    """A run cancelled or restored by a later HR event: its own event, delivered again, changes nothing."""
    if record is None or record.data.get("state") not in UNDONE:
        return None
    state, by = record.data["state"], record.data.get("undone_by") or {}
    return Offboarded(state, record.row, review=f"{state} by {provenance_text(by)}", undone=(record.row,))


async def process_event(
    settings: Settings, event: HrEvent, *, event_id: str, replayable: bool, clock: Clock = utc_now
) -> Offboarded:
    """The queue worker's one call (see `handle_event`)."""
    policy = load_policy(settings.policy)
    async with open_state(settings) as store:
        return await handle_event(
            get_graph(settings), store, policy, event, event_id=event_id, replayable=replayable, clock=clock
        )


async def handle_event(
    graph: Graph, store: Store, policy: Policy, event: HrEvent, *, event_id: str, replayable: bool, clock: Clock
) -> Offboarded:
    """One HR event. A termination due in the future is recorded as scheduled and nothing changes (the timer's
    `carry_out_due` carries it out once due); due now, it is planned and applied. A cancellation or rehire
    cancels or restores the worker's runs (`cancel_or_restore`).

    Deletion is never immediate, replayable or not: it is scheduled `offboarding.delete_after_days` (≥ 1)
    after the effective date and carried out by `carry_out_due`.
    """
    run_id = run_id_for(f"event:{event_id}")
    provenance = {**provenance_of(event, event_id), "replayable": replayable}
    if event.type not in ENDING:
        return await cancel_or_restore(
            graph, store, event.data.worker, run_id=run_id, provenance=provenance, clock=clock
        )
    record = await ledger.run_of(store, run_id)
    if (undone := _undone(record)) is not None:
        return undone
    if event.due_at > clock():
        if record is None:
            _, users = await find_worker(graph, event.data.worker)  # to match a later cancellation by object id
            await ledger.schedule_run(
                store,
                run_id,
                event_id=event_id,  # what the due timer queues
                event=event.model_dump(mode="json", by_alias=True, exclude_none=True),
                due_at=event.due_at.isoformat(),
                worker_id=users[0].id if len(users) == 1 else None,
                identifiers=ledger.identifier_keys(event.data.worker.identifiers()),
                provenance=provenance,
                scheduled_at=clock().isoformat(),
            )
        return Offboarded("scheduled", run_id, due_at=event.due_at)
    return await _carry_out_event(graph, store, policy, event, run_id=run_id, provenance=provenance, clock=clock)


async def _carry_out_event(
    graph: Graph, store: Store, policy: Policy, event: HrEvent, *, run_id: str, provenance: dict[str, Any], clock: Clock
) -> Offboarded:
    worker = event.data.worker
    plan = await make_plan(graph, store, policy, worker, effective=event.due_at, run_id=run_id, provenance=provenance)
    if plan.review:
        record = await ledger.run_of(store, run_id)
        if record is not None and record.data.get("state") == RunState.SCHEDULED:  # not again at every timer tick
            await ledger.put_run(store, run_id, record, RunState.REVIEW, review=plan.review)
        return Offboarded("review", run_id, review=plan.review, plan=plan)
    return await carry_out(graph, store, policy, plan, worker.identifiers(), clock=clock)


async def cancel_or_restore(
    graph: Graph, store: Store, worker: Worker, *, run_id: str, provenance: dict[str, Any], clock: Clock
) -> Offboarded:
    """`worker.termination_cancelled` / `worker.rehired`: the worker's scheduled runs are cancelled (nothing in
    the tenant changes), the carried-out ones restored through the core restore (re-enabled, memberships and
    sponsors back) and their scheduled deletions cancelled, all recorded with the event's provenance. The
    worker is found as a termination finds them: ambiguous, or no run known → review."""
    (name, value), users = await find_worker(graph, worker)
    if len(users) > 1:
        return Offboarded("review", run_id, review=f"ambiguous: {len(users)} users have {name} {value}")
    why, now = provenance_text(provenance), clock()
    mark = {"undone_by": provenance, "undone_at": now.isoformat()}
    undone: list[str] = []
    restored: list[Restored] = []
    counts: Counter[str] = Counter()
    keys = ledger.identifier_keys(worker.identifiers())
    for record in await ledger.runs_of(store, users[0].id if users else None, keys):
        state = record.data.get("state")
        if state in UNDONE:
            if (record.data.get("undone_by") or {}).get("event") == provenance.get("event"):  # this event again
                counts[state] += 1
                undone.append(record.row)
            continue
        if state == RunState.SCHEDULED:
            now_state = RunState.CANCELLED
        elif state in CARRIED_OUT:
            await ledger.withdraw(store, record.row, why=f"{why}: cancelled", now=now)
            try:
                results = await restore(graph, store, actor=ACTOR, run_id=record.row, clock=clock, because=why)
            except UnknownItemError:
                results = []  # the run made no change to undo
            restored += results
            counts.update(f"restore {r.outcome.value}" for r in results)
            # a failed undo leaves the row carried out: this event delivered again restores the rest
            now_state = None if any(r.outcome is Outcome.FAILED for r in results) else RunState.RESTORED
        else:
            continue  # for review: it never changed anything
        if now_state is not None:
            await ledger.put_run(store, record.row, record, now_state, **mark)
        counts[now_state.value if now_state else "partial"] += 1
        undone.append(record.row)
    if not undone:
        return Offboarded("review", run_id, review=f"no scheduled or carried-out offboarding of {name} {value}")
    status: Status = "partial" if counts["partial"] else "restored" if counts["restored"] else "cancelled"
    return Offboarded(status, run_id, counts=dict(counts), undone=tuple(undone), restored=restored)


async def run_due(
    settings: Settings, *, clock: Clock = utc_now, store: Store | None = None, runs: bool = True
) -> list[Offboarded]:
    """Carry out what is due: see `carry_out_due`. The Functions timer passes `runs=False`: it queues the due
    HR events instead (shared/offboarding/worker.py), so many due at once fan out over the queue."""
    policy = load_policy(settings.policy)
    graph = get_graph(settings)
    async with open_state(settings) as opened:
        return await carry_out_due(graph, store or opened, policy, now=clock(), clock=clock, runs=runs)


async def carry_out_due(
    graph: Graph, store: Store, policy: Policy, *, now: datetime, clock: Clock, runs: bool = True
) -> list[Offboarded]:
    """Every scheduled soft deletion whose date has passed, each under the run that scheduled it (so `guestctl
    restore --run` undoes it with the rest of that run); then (`runs`) every scheduled run whose effective date
    has passed. Deletions first: a deletion is never made in the call that carried out its run."""
    done = []
    due = [r async for r in store.query(ledger.TABLE, ledger.DELETIONS) if r.data.get("state") == "scheduled"]
    for record in due:
        if datetime.fromisoformat(record.data["due_at"]) > now:
            continue
        reason = f"{record.data.get('reason')}; due {record.data['due_at']}"
        action = Action(kind=ActionKind.DELETE, target_id=record.row, reason=reason)
        plan = Plan(
            run_id=record.data["run_id"],
            identifier=("entraObjectId", record.row),
            effective=now,
            provenance=record.data.get("provenance") or {},
            worker_id=record.row,
            worker=record.data.get("worker"),
            actions=[action],
        )
        results = await apply_plan(plan, graph, store, policy, actor=ACTOR, clock=clock)
        outcome = results[0].outcome
        state = (
            "done"
            if outcome in (Outcome.DONE, Outcome.ALREADY_DONE)
            else "cancelled"
            if outcome is Outcome.SKIPPED
            else "scheduled"
        )
        if state != "scheduled":
            await store.update(
                record, {**record.data, "state": state, "detail": results[0].detail, "finished_at": now.isoformat()}
            )
        done.append(result_of(plan, results))
    if not runs:
        return done
    scheduled = [r async for r in store.query(ledger.TABLE, ledger.RUNS) if r.data.get("state") == RunState.SCHEDULED]
    for record in scheduled:
        if datetime.fromisoformat(record.data["due_at"]) > now:
            continue
        event = event_from(record.data["event"])
        provenance = record.data.get("provenance") or {}
        done.append(
            await _carry_out_event(graph, store, policy, event, run_id=record.row, provenance=provenance, clock=clock)
        )
    return done
