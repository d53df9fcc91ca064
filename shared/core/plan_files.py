"""Plan files: a plan written by guestctl carries its digest and a signature by the state store's key.

A plan file is a request, not an authority: applying re-derives every action from fresh data. The
signature only makes an edit fail loudly and whole: a file whose content no longer matches its digest, or
whose signature is not this store's, is refused (RefusedError, exit 3) before anything is read or changed.
One implementation for every capability's plans (sweeps, partner trust, retirements).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from shared.errors import InputError, RefusedError

if TYPE_CHECKING:  # the pure plan modules import EditedPlanError: no store for them
    from shared.config import Policy
    from shared.store import Store

PLAN_SIGNING_KEY = "plans"


class EditedPlanError(ValueError):
    """The plan's content does not match the digest written with it."""


class SignedPlan(Protocol):
    def digest(self) -> str: ...

    def to_json(self) -> dict[str, Any]: ...


P = TypeVar("P", bound=SignedPlan)


class SavedPlan(Protocol):
    @property
    def created_at(self) -> datetime: ...

    @property
    def tenant_id(self) -> str | None: ...

    @property
    def policy_digest(self) -> str: ...


def check_saved_plan(plan: SavedPlan, policy: Policy, *, tenant_id: str | None, now: datetime) -> None:
    """A plan is applied only if it is recent, for this tenant, and made under this exact policy."""
    age = now - plan.created_at
    if age > timedelta(hours=policy.safety.plan_max_age_hours):
        raise RefusedError(
            f"the plan is {age.total_seconds() / 3600:.0f} hours old, over safety.plan_max_age_hours "
            f"({policy.safety.plan_max_age_hours})",
            hint="make a new plan; nothing was changed",
        )
    if plan.tenant_id != tenant_id:
        raise RefusedError(
            f"the plan is for tenant {str(plan.tenant_id)[:40]}, not {tenant_id}", hint="nothing was changed"
        )
    if plan.policy_digest != policy.digest():
        raise RefusedError(
            "the plan was made under another policy (its digest differs)",
            hint="make a new plan with the current policy; nothing was changed",
        )


async def signed_plan_json(store: Store, plan: SignedPlan) -> dict[str, Any]:
    """The plan as guestctl writes it to a file: its JSON, its digest and a signature by the store's key."""
    from shared.store.signing import sign, signing_key

    body = plan.to_json()
    body["signature"] = sign(await signing_key(store, PLAN_SIGNING_KEY), body["digest"])
    return body


async def read_signed_plan(
    store: Store, text: str, parse: Callable[[dict[str, Any]], P], *, name: str, made_by: str
) -> P:
    """The plan in `text`, which `made_by` (e.g. "guestctl sweep --out FILE") wrote with this store.

    Not a plan → InputError (exit 2); edited, or signed by another store → RefusedError (exit 3).
    `parse` raises EditedPlanError when the content does not match its digest.
    """
    from shared.store.signing import signed_by, signing_key

    try:
        body = json.loads(text)
        if not isinstance(body, dict):
            raise TypeError("a plan file holds a JSON object")
        plan = parse(body)
    except EditedPlanError:
        raise RefusedError(
            f"{name}: the plan was changed after guestctl made it (its content does not match its digest)",
            hint=f"make a new plan with `{made_by}`; nothing was changed",
        ) from None
    except (ValueError, TypeError, KeyError) as error:  # msgspec's errors are ValueErrors
        raise InputError(
            f"{name}: not a usable plan: {str(error)[:200]}", hint=f"give a file `{made_by}` wrote"
        ) from None
    if not signed_by(await signing_key(store, PLAN_SIGNING_KEY), plan.digest(), body.get("signature")):
        raise RefusedError(
            f"{name}: the plan is not signed by this state store: it was edited after guestctl wrote it, "
            "or written by guestctl with another state store",
            hint=f"make a new plan with this state store (`{made_by}`); nothing was changed",
        )
    return plan
