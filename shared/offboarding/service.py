"""What the CLI, the queue worker and the timer call: plan and apply an offboarding, process one HR event,
carry out the scheduled deletions that are due. Typed results."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from shared.clock import Clock, utc_now
from shared.config import Policy, Settings, load_policy
from shared.core.apply import ActionResult, Outcome, outcome_counts
from shared.graph import Graph, get_graph
from shared.offboarding.apply import apply_plan
from shared.offboarding.effects import DELETIONS, RECORDS_TABLE
from shared.offboarding.events import ENDING, HrEvent, Worker
from shared.offboarding.fetch import gather_facts
from shared.offboarding.plan import Action, ActionKind, Plan, plan_offboarding, run_id_for
from shared.store import Store, open_state

Status = Literal["review", "scheduled", "done", "partial"]
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
        }


def worker_of(identifier: str) -> Worker:
    """A worker named on the command line: an object id, a UPN or an email address (tried as given)."""
    from shared.graph.odata import is_object_id

    if is_object_id(identifier):
        return Worker(entraObjectId=identifier)
    return (
        Worker(email=identifier)
        if "@" in identifier and "#EXT#" not in identifier
        else Worker(userPrincipalName=identifier)
    )


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


def result_of(plan: Plan, results: list[ActionResult[Action]]) -> Offboarded:
    failed = any(r.outcome is Outcome.FAILED for r in results)
    return Offboarded("partial" if failed else "done", plan.run_id, outcome_counts(results), plan=plan, results=results)


async def apply_offboarding(
    settings: Settings, plan: Plan, *, clock: Clock = utc_now, actor: str = ACTOR
) -> Offboarded:
    """Apply a plan (each action re-checked against Graph now); a plan for review changes nothing."""
    if plan.review:
        return Offboarded("review", plan.run_id, review=plan.review, plan=plan)
    policy = load_policy(settings.policy)
    async with open_state(settings) as store:
        results = await apply_plan(plan, get_graph(settings), store, policy, actor=actor, clock=clock)
    return result_of(plan, results)


async def process_event(
    settings: Settings, event: HrEvent, *, event_id: str, replayable: bool, clock: Clock = utc_now
) -> Offboarded:
    """The queue worker's one call: due in the future → nothing changes ("scheduled"); due now → plan and apply.

    Deletion is never immediate, replayable or not: it is scheduled `offboarding.delete_after_days` (≥ 1)
    after the effective date and carried out by `run_due`. Cancellations and rehires are the orchestration's
    (cancel a scheduled event; `restore --run` for one already done): here they are recorded for review.
    """
    run_id = run_id_for(f"event:{event_id}")
    if event.type not in ENDING:
        return Offboarded("review", run_id, review=f"{event.type.value}: cancel the pending event or restore its run")
    now = clock()
    if event.due_at > now:
        return Offboarded("scheduled", run_id, due_at=event.due_at)
    policy = load_policy(settings.policy)
    graph = get_graph(settings)
    async with open_state(settings) as store:
        provenance = {**provenance_of(event, event_id), "replayable": replayable}
        plan = await make_plan(
            graph, store, policy, event.data.worker, effective=event.due_at, run_id=run_id, provenance=provenance
        )
        if plan.review:
            return Offboarded("review", run_id, review=plan.review, plan=plan)
        results = await apply_plan(plan, graph, store, policy, actor=ACTOR, clock=clock)
    return result_of(plan, results)


async def run_due(settings: Settings, *, clock: Clock = utc_now, store: Store | None = None) -> list[Offboarded]:
    """Carry out every scheduled soft deletion whose date has passed (the timer calls this), each under the run
    that scheduled it, so `guestctl restore --run` undoes the deletion with the rest of that run."""
    policy = load_policy(settings.policy)
    graph = get_graph(settings)
    async with open_state(settings) as opened:
        return await carry_out_due(graph, store or opened, policy, now=clock(), clock=clock)


async def carry_out_due(graph: Graph, store: Store, policy: Policy, *, now: datetime, clock: Clock) -> list[Offboarded]:
    done = []
    due = [r async for r in store.query(RECORDS_TABLE, DELETIONS) if r.data.get("state") == "scheduled"]
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
    return done
