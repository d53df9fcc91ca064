"""Plans kept for later: in the store (approved by id) and in files (signed by the store's key)."""

from __future__ import annotations

import json

from shared.errors import InputError, RefusedError, UnknownItemError
from shared.stale.plan import EditedPlanError, Plan
from shared.store import Store
from shared.store.registry import STALE_PLANS
from shared.store.signing import sign, signed_by, signing_key
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


PLAN_SIGNING_KEY = "plans"


async def plan_file_json(store: Store, plan: Plan) -> dict[str, object]:
    """A plan as guestctl writes it to a file: its JSON, its digest and a signature by the store's key."""
    body = plan.to_json()
    body["signature"] = sign(await signing_key(store, PLAN_SIGNING_KEY), body["digest"])
    return body


async def read_plan_file(store: Store, text: str, *, name: str) -> Plan:
    """A plan from a file that guestctl wrote with this store.

    Not a plan → InputError (exit 2). A plan whose content no longer matches its digest, or whose signature
    is not this store's → RefusedError (exit 3): it was edited after guestctl wrote it. Applying still
    re-derives every action; this only makes an edit fail loudly and whole.
    """
    try:
        body = json.loads(text)
        plan = Plan.from_json(body)
    except EditedPlanError:
        raise RefusedError(
            f"{name}: the plan was changed after guestctl made it (its content does not match its digest)",
            hint="make a new plan with `guestctl sweep --out FILE`; nothing was changed",
        ) from None
    except (ValueError, TypeError) as error:
        raise InputError(
            f"{name}: not a usable plan: {str(error)[:200]}", hint="give a file `guestctl sweep --out` wrote"
        ) from None
    if not signed_by(await signing_key(store, PLAN_SIGNING_KEY), plan.digest(), body.get("signature")):
        raise RefusedError(
            f"{name}: the plan is not signed by this state store: it was edited after guestctl wrote it, "
            "or written by guestctl with another state store",
            hint="make a new plan with this state store (`guestctl sweep --out FILE`); nothing was changed",
        )
    return plan
