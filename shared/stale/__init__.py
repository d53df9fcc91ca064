"""Stale-guest detection and staged removal: fetch (scan) → plan (pure) → apply (guarded) → report."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from shared.config import Policy
from shared.errors import RefusedError
from shared.graph import Graph
from shared.stale.apply import ActionResult, Outcome, apply_plan, load_lifecycle, restore, run_id_for
from shared.stale.fetch import (
    SignInActivityUnavailable,
    directory_role_holders,
    resolve_groups,
    scan_guests,
    transitive_group_members,
)
from shared.stale.plan import Action, ActionKind, Exemptions, Plan, Planner
from shared.stale.rules import Category
from shared.store import Store

log = logging.getLogger("guestctl.stale")

__all__ = [
    "Action",
    "ActionKind",
    "ActionResult",
    "Category",
    "Outcome",
    "Plan",
    "apply_plan",
    "check_saved_plan",
    "exemptions_now",
    "load_plan",
    "plan_id_for",
    "plan_sweep",
    "restore",
    "run_id_for",
    "save_plan",
]


async def exemptions_now(graph: Graph, policy: Policy) -> Exemptions:
    """The policy's exemptions resolved against the directory as it is now (at plan time and at apply)."""
    holders = await directory_role_holders(graph)
    group_ids = await resolve_groups(graph, policy.exemptions.groups)
    members: dict[str, str] = {}
    for name, group_id in group_ids.items():
        for member in await transitive_group_members(graph, [group_id]):
            members.setdefault(member, name)
    return Exemptions.from_policy(policy, role_holders=holders, group_members=members)


async def plan_sweep(
    graph: Graph, store: Store, policy: Policy, *, now: datetime, scan_id: str, tenant_id: str | None
) -> Plan:
    """Scan every guest and plan the next stage for each, within the policy's caps. No tenant changes."""
    exemptions = await exemptions_now(graph, policy)
    lifecycle = await load_lifecycle(store)
    available = True
    planner = Planner(policy, now, lifecycle=lifecycle, exemptions=exemptions, tenant_id=tenant_id)
    try:
        async for page in scan_guests(graph, store, scan_id=scan_id):
            planner.add(page)
    except SignInActivityUnavailable as missing:
        log.warning("%s", missing.one_line())
        available = False
        planner = Planner(
            policy,
            now,
            lifecycle=lifecycle,
            exemptions=exemptions,
            tenant_id=tenant_id,
            sign_in_activity_available=False,
        )
        async for page in scan_guests(graph, store, scan_id=scan_id + "-no-sign-in", sign_in_activity=False):
            planner.add(page)
    plan = planner.finish()
    assert plan.sign_in_activity_available is available
    return plan


def check_saved_plan(plan: Plan, policy: Policy, *, tenant_id: str | None, now: datetime) -> None:
    """A saved plan is applied only if it is recent, for this tenant, and made under this exact policy."""
    age = now - plan.created_at
    if age > timedelta(hours=policy.safety.plan_max_age_hours):
        raise RefusedError(
            f"the plan is {age.total_seconds() / 3600:.0f} hours old, over safety.plan_max_age_hours "
            f"({policy.safety.plan_max_age_hours})",
            hint="make a new plan; nothing was changed",
        )
    if plan.tenant_id != tenant_id:
        raise RefusedError(f"the plan is for tenant {plan.tenant_id}, not {tenant_id}", hint="nothing was changed")
    if plan.policy_digest != policy.digest():
        raise RefusedError(
            "the plan was made under another policy (its digest differs)",
            hint="make a new plan with the current policy; nothing was changed",
        )


PLANS_TABLE = "staleplans"
PLAN_CHUNK_CHARS = 25_000  # each stored part stays under the store's 30,000-character record limit


def plan_id_for(plan: Plan) -> str:
    return plan.digest().removeprefix("sha256:")[:16]


async def save_plan(store: Store, plan: Plan) -> str:
    """Keep a plan in the store (split into parts) so it can be approved later; returns its id."""
    import json

    plan_id = plan_id_for(plan)
    text = json.dumps(plan.to_json())
    parts = [text[i : i + PLAN_CHUNK_CHARS] for i in range(0, len(text), PLAN_CHUNK_CHARS)]
    for index, part in enumerate(parts):
        await store.upsert(PLANS_TABLE, plan_id, f"part-{index:05d}", {"text": part})
    await store.upsert(
        PLANS_TABLE,
        plan_id,
        "meta",
        {
            "parts": len(parts),
            "created_at": plan.created_at.isoformat(),
            "guests": plan.guests,
            "actions": len(plan.actions),
            "refused": plan.refused,
            "counts": plan.counts,
        },
    )
    return plan_id


async def load_plan(store: Store, plan_id: str) -> Plan:
    import json

    from shared.errors import UnknownItemError

    meta = await store.get(PLANS_TABLE, plan_id, "meta")
    if meta is None:
        raise UnknownItemError(f"no saved sweep plan {plan_id!r}", hint="use the plan id the sweep reported")
    parts = [record.data["text"] async for record in store.query(PLANS_TABLE, plan_id, row_prefix="part-")]
    if len(parts) != meta.data["parts"]:
        raise UnknownItemError(f"sweep plan {plan_id!r} is incomplete ({len(parts)} of {meta.data['parts']} parts)")
    return Plan.from_json(json.loads("".join(parts)))
