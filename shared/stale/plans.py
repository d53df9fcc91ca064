"""Plans kept for later: in the store (approved by id) and in files (signed by the store's key)."""

from __future__ import annotations

import json

from shared.core.plan_files import read_signed_plan, signed_plan_json
from shared.errors import RefusedError, UnknownItemError
from shared.stale.plan import Plan
from shared.store import Store
from shared.store.registry import STALE_PLANS
from shared.store.text import put_text, read_text

PLANS_TABLE = STALE_PLANS


async def save_plan(store: Store, plan: Plan) -> str:
    """Keep a plan in the store so it can be approved later; returns its id."""
    plan_id = plan.plan_id()
    parts = await put_text(store, PLANS_TABLE, plan_id, "plan", json.dumps(plan.to_json()))
    await store.upsert(
        PLANS_TABLE,
        plan_id,
        "meta",
        {
            "parts": parts,
            "created_at": plan.created_at.isoformat(),
            "guests": plan.guests,
            "actions": len(plan.actions),
            "refused": plan.refused,
            "counts": plan.counts,
        },
    )
    return plan_id


async def load_plan(store: Store, plan_id: str) -> Plan:
    meta = await store.get(PLANS_TABLE, plan_id, "meta")
    if meta is None:
        raise UnknownItemError(f"no saved sweep plan {plan_id!r}", hint="use the plan id the sweep reported")
    text = await read_text(store, PLANS_TABLE, plan_id, "plan")
    if text is None:
        raise UnknownItemError(
            f"sweep plan {plan_id!r} is incomplete (saving it was interrupted)", hint="make a new plan"
        )
    try:
        plan = Plan.from_json(json.loads(text))
    except ValueError as error:
        raise RefusedError(
            f"sweep plan {plan_id!r} cannot be used: {str(error)[:200]}", hint="make a new plan"
        ) from None
    if plan.plan_id() != plan_id:
        raise RefusedError(
            f"sweep plan {plan_id!r} was replaced in the store by another plan ({plan.plan_id()})",
            hint="make a new plan; nothing was changed",
        )
    return plan


async def plan_file_json(store: Store, plan: Plan) -> dict[str, object]:
    """A plan as guestctl writes it to a file: its JSON, its digest and a signature by the store's key."""
    return await signed_plan_json(store, plan)


async def read_plan_file(store: Store, text: str, *, name: str) -> Plan:
    """A sweep plan from a file that guestctl wrote with this store (`shared.core.plan_files`): not a plan →
    exit 2; edited, or signed by another store → exit 3. Applying still re-derives every action."""
    return await read_signed_plan(store, text, Plan.from_json, name=name, made_by="guestctl sweep --out FILE")
