"""What the CLI, the Functions triggers and the demo call: typed results, one way to apply a plan.

Planning and applying are separate steps, each resumable: a plan is kept in the store under its id, and
applying it is keyed by the plan (its run id), so an invocation that times out and is delivered again
continues the same run instead of planning anew.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from shared.clock import Clock, utc_now
from shared.config import Policy, Settings, load_policy, load_settings
from shared.errors import UnknownItemError
from shared.graph import Graph, get_graph
from shared.stale.apply import (
    ACTIONS_TABLE,
    ActionResult,
    Outcome,
    apply_plan,
    check_applicable,
    outcome_counts,
    run_id_for,
    run_id_of,
)
from shared.stale.notify import Notice, notify_sponsors
from shared.stale.plan import Plan
from shared.stale.plans import PLANS_TABLE, load_plan, save_plan
from shared.stale.sweep import exemptions_now, plan_sweep, plan_tenant
from shared.store import Store, open_state
from shared.store.lease import held_by


@dataclass(frozen=True, slots=True)
class SweepRun:
    """What applying a plan did: one result per action, and the sponsor notices of the guests it flagged."""

    plan_id: str
    run_id: str
    results: list[ActionResult]
    notices: list[Notice]
    unsponsored: list[str]  # flagged guests with no sponsor to tell (display strings)

    def outcomes(self) -> dict[str, int]:
        return outcome_counts(self.results)

    def not_done(self) -> list[ActionResult]:
        """Every action that was skipped (with why) or failed (with Graph's error)."""
        return [r for r in self.results if r.outcome in (Outcome.SKIPPED, Outcome.FAILED)]

    def notices_json(self, *, count_unsponsored: bool = True) -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = [
            {"sponsor": n.sponsor, "guests": n.guests, "outcome": n.outcome} for n in self.notices
        ]
        if self.unsponsored and count_unsponsored:
            listed.append({"sponsor": None, "guests": len(self.unsponsored), "outcome": "no sponsor to notify"})
        return listed

    def to_json(self) -> dict[str, Any]:
        return {
            "plan_id": self.plan_id,
            "run_id": self.run_id,
            "outcomes": self.outcomes(),
            "sponsor_notices": self.notices_json(),
            # no names or addresses in what the Functions app logs: the ids say who
            "not_done": [{k: v for k, v in result_json(r).items() if k != "guest"} for r in self.not_done()],
        }


def result_json(result: ActionResult) -> dict[str, Any]:
    action = result.action
    return {
        "action": action.kind.value,
        "target_id": action.target_id,
        "guest": action.display,
        "outcome": result.outcome.value,
        "detail": result.detail,
    }


async def run_plan(
    plan: Plan,
    graph: Graph,
    store: Store,
    policy: Policy,
    *,
    tenant_id: str | None,
    actor: str,
    clock: Clock = utc_now,
    on_action_done: Callable[[ActionResult], None] | None = None,
) -> SweepRun:
    """Apply a plan (checked whole, then each action derived again) and notify the sponsors of the guests
    it flagged: the one way the CLI, the Functions app and the demo apply a sweep."""
    exemptions = await exemptions_now(graph, policy, store)
    results = await apply_plan(
        plan,
        graph,
        store,
        policy,
        exemptions,
        actor=actor,
        tenant_id=tenant_id,
        clock=clock,
        on_action_done=on_action_done,
    )
    notices, unsponsored = await notify_sponsors(plan, results, graph, store, policy, now=clock())
    return SweepRun(plan.plan_id(), run_id_for(plan), results, notices, unsponsored)


@dataclass(frozen=True, slots=True)
class SweepPlanned:
    """A scheduled sweep's step: either more pages to plan (`continue_scan`) or a plan kept for approval."""

    continue_scan: str | None = None
    plan: Plan | None = None
    plan_id: str | None = None
    apply: bool = False  # apply mode and a plan within the caps with something to do: queue its apply
    scan_id: str | None = None  # logged with the plan: one query then finds the scan's steps and the apply
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        if self.plan is None:
            return {"continue": self.continue_scan}
        plan = self.plan
        summary: dict[str, Any] = {
            "scan_id": self.scan_id,
            "plan_id": self.plan_id,
            "run_id": run_id_for(plan),
            "guests": plan.guests,
            "counts": plan.counts,
            "actions": len(plan.actions),
            "refused": plan.refused,
            "notes": list(plan.notes),
            "unsponsored": [msgspec.to_builtins(u) for u in plan.unsponsored],
        }
        if self.apply:
            summary["apply"] = self.plan_id
        return summary


async def scheduled_sweep(*, scan_id: str | None = None, settings: Settings | None = None) -> SweepPlanned:
    """Plan a sweep and keep the plan in the store for approval (or, with GUESTCTL_SWEEP_MODE=apply, for the
    apply step).

    Within GUESTCTL_SWEEP_TIME_BUDGET the sweep may stop early: the result then names the scan to continue
    in the next invocation (the queue), which resumes the same sweep.
    """
    settings = settings or load_settings()
    time_budget = settings.sweep_time_budget
    policy = load_policy(settings.policy)
    tenant_id = plan_tenant(settings)
    graph = get_graph(settings)
    now = utc_now()
    scan_id = scan_id or f"timer-{now:%Y%m%dT%H%M%S}"
    async with open_state(settings) as store:
        plan = await plan_sweep(
            graph, store, policy, now=now, scan_id=scan_id, tenant_id=tenant_id, time_budget=time_budget
        )
        if plan is None:
            return SweepPlanned(continue_scan=scan_id)
        plan_id = await save_plan(store, plan)
    apply = settings.sweep_mode == "apply" and not plan.refused and bool(plan.actions)
    return SweepPlanned(plan=plan, plan_id=plan_id, apply=apply, scan_id=scan_id)


async def check_approval(plan_id: str, *, settings: Settings | None = None) -> dict[str, Any]:
    """Whether a kept plan may be applied now (recent, this tenant, this policy, consistent, within caps).

    Raises the refusal (404 unknown, 409 refused) so that an approval is answered at once; the apply
    itself runs as a queue step (`apply_kept_plan`), not inside the HTTP request.
    """
    settings = settings or load_settings()
    policy = load_policy(settings.policy)
    async with open_state(settings) as store:
        plan = await load_plan(store, plan_id)
    await check_applicable(plan, get_graph(settings), policy, tenant_id=plan_tenant(settings), now=utc_now())
    return {"plan_id": plan_id, "run_id": run_id_for(plan), "actions": len(plan.actions)}


async def apply_kept_plan(plan_id: str, *, actor: str, settings: Settings | None = None) -> SweepRun:
    """Apply a kept plan (checked again) and send the sponsor notices; a rerun continues the run."""
    settings = settings or load_settings()
    policy = load_policy(settings.policy)
    graph = get_graph(settings)
    async with open_state(settings) as store:
        plan = await load_plan(store, plan_id)
        return await run_plan(plan, graph, store, policy, tenant_id=plan_tenant(settings), actor=actor)


async def sweep_status(plan_id: str, *, settings: Settings | None = None) -> dict[str, Any]:
    """A kept plan's summary and how far applying it has got (action records by state and outcome)."""
    settings = settings or load_settings()
    async with open_state(settings) as store:
        meta = await store.get(PLANS_TABLE, plan_id, "meta")
        if meta is None:
            raise UnknownItemError(f"no saved sweep plan {plan_id!r}", hint="use the plan id the sweep reported")
        run_id = run_id_of(plan_id)
        progress: dict[str, int] = {}
        applying = await held_by(store, ACTIONS_TABLE, run_id) is not None
        async for record in store.query(ACTIONS_TABLE, run_id):
            kind = record.row.split(":", 1)[0]
            state = record.data.get("outcome") or record.data.get("state", "?")
            key = f"{kind} {state}"
            progress[key] = progress.get(key, 0) + 1
    fields = ("created_at", "guests", "actions", "refused", "counts")
    return {
        "plan_id": plan_id,
        "run_id": run_id,
        **{k: meta.data.get(k) for k in fields},
        "applying": applying,
        "progress": progress,
    }
