"""What the CLI and the Functions app call to retire migrated guests' accounts: typed results.

Planning reads every guest, keeps those of the partners the policy names, and gives each its next stage
(retire.py); nothing changes. A plan is applied from a file guestctl signed (`partners retire --apply
--plan FILE`), at once after planning (`partners retire --apply`), or, in the Functions app, after it was
kept in the store and approved (`POST /api/partners/plans/{plan_id}/approve`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.clock import Clock, utc_now
from shared.config import Policy, Settings, load_policy
from shared.core.apply import Outcome, outcome_counts
from shared.core.plan_files import read_signed_plan, signed_plan_json
from shared.errors import RefusedError, UnknownItemError
from shared.graph import Graph, get_graph
from shared.partners.retire import RetirePlan, make_plan
from shared.partners.retire_apply import (
    RETIRE_PARTITION,
    ActionResult,
    RetireFacts,
    apply_retirement,
    check_applicable,
    run_id_for,
)
from shared.partners.trust_service import plan_tenant
from shared.partners.verify import configured_partners
from shared.stale.effects import load_lifecycle
from shared.stale.plan import Exemptions
from shared.stale.records import Guest, decode_page
from shared.stale.sweep import exemptions_now
from shared.store import Store, open_state
from shared.store.registry import PARTNER_RETIRE_PLANS
from shared.store.text import put_text, read_text

PLANS_TABLE = PARTNER_RETIRE_PLANS
GUESTS_PAGE = 999
GUEST_SELECT = "id,displayName,mail,userPrincipalName,userType,externalUserState,createdDateTime,accountEnabled"


async def all_guests(graph: Graph) -> list[Guest]:
    """Every guest (the filter's answer checked), without signInActivity: retirement does not judge activity."""
    params = {"$filter": "userType eq 'Guest'", "$select": GUEST_SELECT, "$top": GUESTS_PAGE}
    url: str | None = graph.url("/users", params)
    guests: list[Guest] = []
    while url:
        page = decode_page((await graph.request("GET", url)).content)
        guests += [g for g in page.value if g.user_type == "Guest"]
        url = page.next_link
    return guests


async def plan_with(
    graph: Graph, store: Store, policy: Policy, named: dict[str, str], *, tenant_id: str | None, now: datetime
) -> RetirePlan:
    """The retirement plan of the tenant as it is now (reads only)."""
    exemptions = await exemptions_now(graph, policy, store)  # a guest a sponsor kept is not retired either
    guests = await all_guests(graph)
    notes: tuple[str, ...] = ()
    if not named:
        notes = ("the policy names no partners (partners.tenants): nobody to retire",)
    facts = RetireFacts(graph, store, named, now)
    await facts.prepare()
    candidates = await facts.candidates(guests, exemptions.role_holders) if named else []
    lifecycle = await load_lifecycle(store, RETIRE_PARTITION)
    return make_plan(
        candidates, lifecycle, policy, exemptions, now=now, tenant_id=tenant_id, guests=len(guests), notes=notes
    )


async def plan_file(store: Store, plan: RetirePlan) -> dict[str, Any]:
    return await signed_plan_json(store, plan)


async def read_plan_file(store: Store, text: str, *, name: str) -> RetirePlan:
    """A retirement plan from a file guestctl wrote with this store; an edited one is refused whole."""
    return await read_signed_plan(
        store, text, RetirePlan.from_json, name=name, made_by="guestctl partners retire --plan FILE"
    )


async def keep_plan(store: Store, plan: RetirePlan) -> str:
    """Keep a plan in the store for approval; returns its id."""
    plan_id = plan.plan_id()
    parts = await put_text(store, PLANS_TABLE, plan_id, "plan", json.dumps(plan.to_json()))
    summary = {"parts": parts, "created_at": plan.created_at.isoformat(), "actions": len(plan.actions)}
    await store.upsert(PLANS_TABLE, plan_id, "meta", {**summary, "refused": plan.refused})
    return plan_id


async def kept_plan(store: Store, plan_id: str) -> RetirePlan:
    text = await read_text(store, PLANS_TABLE, plan_id, "plan") if len(plan_id) == 16 else None
    if text is None:
        raise UnknownItemError(f"no kept retirement plan {plan_id[:40]!r}", hint="use the plan id the timer logged")
    plan = RetirePlan.from_json(json.loads(text))
    if plan.plan_id() != plan_id:
        raise RefusedError(f"retirement plan {plan_id!r} was replaced in the store", hint="make a new plan")
    return plan


@dataclass(frozen=True, slots=True)
class Retirement:
    """A plan, and what applying it did (empty when only planned)."""

    plan: RetirePlan
    results: list[ActionResult]
    applied: bool

    def to_json(self) -> dict[str, Any]:
        plan = self.plan
        return {
            "plan_id": plan.plan_id(),
            "run_id": run_id_for(plan),
            "guests": plan.guests,
            "candidates": plan.candidates,
            "kept": plan.kept,
            "refused": plan.refused,
            "notes": list(plan.notes),
            "actions": [
                {"action": a.kind.value, "target_id": a.target_id, "guest": a.display, "reason": a.reason}
                for a in plan.actions
            ],
            "applied": self.applied,
            "outcomes": outcome_counts(self.results),
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

    def failed(self) -> bool:
        return any(r.outcome is Outcome.FAILED for r in self.results)


async def _apply(
    plan: RetirePlan, graph: Graph, store: Store, policy: Policy, named: dict[str, str], *, tenant_id: str | None,
    actor: str, clock: Clock,
) -> Retirement:  # fmt: skip
    exemptions: Exemptions = await exemptions_now(graph, policy, store)
    results = await apply_retirement(
        plan, graph, store, policy, named, exemptions, actor=actor, tenant_id=tenant_id, clock=clock
    )
    return Retirement(plan, results, True)


async def retire(
    settings: Settings,
    *,
    apply: bool = False,
    plan_text: str | None = None,
    plan_name: str = "",
    clock: Clock = utc_now,
) -> Retirement:
    """`guestctl partners retire`: plan (default), apply a new plan (`apply`), or apply a saved one."""
    policy = load_policy(settings.policy)
    tenant_id = plan_tenant(settings)
    graph = get_graph(settings)
    async with open_state(settings) as store:
        return await retire_with(
            graph, store, policy, tenant_id=tenant_id, apply=apply, plan_text=plan_text, plan_name=plan_name,
            clock=clock,
        )  # fmt: skip


async def retire_with(
    graph: Graph, store: Store, policy: Policy, *, tenant_id: str | None, apply: bool = False,
    plan_text: str | None = None, plan_name: str = "", clock: Clock = utc_now, actor: str = "guestctl partners retire",
) -> Retirement:  # fmt: skip
    """`retire` with a Graph client and a store at hand (the tests)."""
    named = await configured_partners(graph, policy)
    if plan_text is not None:
        plan = await read_plan_file(store, plan_text, name=plan_name)
    else:
        plan = await plan_with(graph, store, policy, named, tenant_id=tenant_id, now=clock())
    if not apply:
        return Retirement(plan, [], False)
    return await _apply(plan, graph, store, policy, named, tenant_id=tenant_id, actor=actor, clock=clock)


async def plan_for_approval(settings: Settings, *, clock: Clock = utc_now) -> Retirement:
    """The daily timer's step: plan, and keep the plan for approval when it has something to do."""
    policy = load_policy(settings.policy)
    graph = get_graph(settings)
    async with open_state(settings) as store:
        named = await configured_partners(graph, policy)
        plan = await plan_with(graph, store, policy, named, tenant_id=plan_tenant(settings), now=clock())
        if plan.actions and not plan.refused:
            await keep_plan(store, plan)
    return Retirement(plan, [], False)


async def check_approval(plan_id: str, *, settings: Settings) -> dict[str, Any]:
    """Whether a kept plan may be applied now; raises the refusal (404 unknown, 409 refused) at once."""
    policy = load_policy(settings.policy)
    async with open_state(settings) as store:
        plan = await kept_plan(store, plan_id)
    await check_applicable(plan, get_graph(settings), policy, tenant_id=plan_tenant(settings), now=utc_now())
    return {"plan_id": plan_id, "run_id": run_id_for(plan), "actions": len(plan.actions)}


async def apply_kept(plan_id: str, *, actor: str, settings: Settings) -> Retirement:
    """Apply a kept, approved plan (checked again); a rerun continues the same run."""
    policy = load_policy(settings.policy)
    graph = get_graph(settings)
    async with open_state(settings) as store:
        plan = await kept_plan(store, plan_id)
        named = await configured_partners(graph, policy)
        return await _apply(
            plan, graph, store, policy, named, tenant_id=plan_tenant(settings), actor=actor, clock=utc_now
        )
