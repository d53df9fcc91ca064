"""Apply a stale-guest plan: checked whole, each action derived again, once per action, audited, restorable.

- The plan is refused whole (nothing read or written) when it is not applicable: refused at plan time,
  too old or dated in the future, for another tenant or policy, inconsistent with itself, or over the
  blast-radius cap counted against Graph's guests now (`check_applicable`).
- A saved plan is a request, not an authority: just before each action the guest is read again and the
  rules, with guestctl's own lifecycle record and fresh exemptions, must give exactly that action now
  (`why_not`); otherwise it is skipped and says why.
- The core applier (`shared.core.apply`) holds the run's lease and keeps one record per action (table
  `staleactions`, partition = run id, row = kind:target), written before the tenant is touched and
  completed after; a rerun finishes an interrupted run and repeats nothing.
- Each guest's stage lives in table `staleguests` (`effects.py`); every tenant change is audited just
  before it is made (`RunAudit`), which is what `restore` undoes.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.clock import Clock, utc_now
from shared.config import Policy
from shared.core.apply import ActionResult as CoreResult
from shared.core.apply import Outcome, apply_actions, outcome_counts
from shared.core.audit import RunAudit
from shared.errors import (
    GraphError,
    InputError,
    NotFoundError,
    RefusedError,
    StaleVersionError,
    UnknownItemError,
)
from shared.graph import Graph
from shared.graph.odata import is_object_id
from shared.stale.effects import (
    GUESTS_PARTITION,
    GUESTS_TABLE,
    GuestEffects,
    lifecycle_of,
    load_lifecycle,
)
from shared.stale.fetch import GUEST_SELECT_WITHOUT_SIGN_IN, count_guests
from shared.stale.plan import (
    DESTRUCTIVE,
    Action,
    ActionKind,
    Exemptions,
    GuestStage,
    Plan,
    cap_refusal,
    plan_problems,
    why_not,
)
from shared.stale.records import GUEST_SELECT, Guest, UnreadableUserError, decode_guest
from shared.store import AuditEntry, Record, Store
from shared.store.registry import STALE_ACTIONS

ACTIONS_TABLE = STALE_ACTIONS
ACTIONS_IN_FLIGHT = 32


ActionResult = CoreResult[Action]


def run_id_for(plan: Plan) -> str:
    """The same plan is the same run: its actions' records repeat, so a rerun finishes it, never redoes it."""
    return run_id_of(plan.plan_id())


def run_id_of(plan_id: str) -> str:
    """The run that applies the kept plan `plan_id` (a plan's id is the start of its digest)."""
    return "sweep-" + plan_id


async def apply_plan(
    plan: Plan,
    graph: Graph,
    store: Store,
    policy: Policy,
    exemptions: Exemptions,
    *,
    actor: str,
    tenant_id: str | None = None,
    clock: Clock = utc_now,
    on_action_done: Callable[[ActionResult], None] | None = None,
) -> list[ActionResult]:
    """Carry out a plan's actions, each only if the rules give it now (see `why_not`).

    Refused whole, before anything is read or written, when the plan is not applicable: refused at plan
    time, too old, dated in the future, for another tenant or policy, inconsistent with itself, or over the
    blast-radius cap (counted against the guests Graph has now, not only the plan's own figure).
    """
    await check_applicable(plan, graph, policy, tenant_id=tenant_id, now=clock())
    applier = _Applier(plan, graph, store, policy, exemptions, actor, clock)
    return await apply_actions(
        plan.actions,
        applier.carry_out,
        store=store,
        table=ACTIONS_TABLE,
        run_id=applier.run_id,
        clock=clock,
        failures=(GraphError, UnreadableUserError),  # this guest only: the others go on
        limit=ACTIONS_IN_FLIGHT,
        on_done=on_action_done,
    )


async def check_applicable(plan: Plan, graph: Graph, policy: Policy, *, tenant_id: str | None, now: datetime) -> None:
    """Whether a plan may be applied now, as a whole; raises the RefusedError that says why not."""
    if problems := plan_problems(plan, now):
        raise RefusedError(
            "the plan is not one guestctl made: " + "; ".join(problems[:3]),
            hint="make a new plan with `guestctl sweep`; nothing was changed",
        )
    check_saved_plan(plan, policy, tenant_id=tenant_id, now=now)
    if plan.refused:
        raise RefusedError(
            f"the plan was refused: {plan.refused}",
            hint="raise the safety caps in the policy after review, or narrow the plan; nothing was changed",
        )
    await _check_cap(plan, graph, policy)


def check_saved_plan(plan: Plan, policy: Policy, *, tenant_id: str | None, now: datetime) -> None:
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


async def _check_cap(plan: Plan, graph: Graph, policy: Policy) -> None:
    """The blast-radius cap, checked here and not taken from the plan: a plan file is only as trustworthy
    as its last editor, and its guest count (the base of max_percent) is checked against Graph's."""
    destructive = plan.destructive()
    if not destructive:
        return
    counted = await count_guests(graph)
    # the plan's own deletes may have been done by an interrupted attempt: they still count as guests
    deletes = sum(1 for action in plan.actions if action.kind is ActionKind.DELETE)
    guests = plan.guests if counted is None else min(plan.guests, counted + deletes)
    if over_cap := cap_refusal(policy, destructive=destructive, guests=guests):
        raise RefusedError(f"the plan is over the blast-radius cap: {over_cap}", hint="nothing was changed")


class _Applier:
    def __init__(
        self, plan: Plan, graph: Graph, store: Store, policy: Policy, exemptions: Exemptions, actor: str, clock: Clock
    ) -> None:
        self.plan = plan
        self.graph = graph
        self.store = store
        self.policy = policy
        self.exemptions = exemptions
        self.actor = actor
        self.clock = clock
        self.run_id = run_id_for(plan)
        self.audit = RunAudit(store, self.run_id, actor, plan.digest(), clock)
        # read as the scan read them: a tenant without signInActivity is re-checked without it, too
        self.select = GUEST_SELECT if plan.sign_in_activity_available else GUEST_SELECT_WITHOUT_SIGN_IN
        self.guests = GuestEffects(graph, store, self.audit, clock, self.run_id)

    async def carry_out(self, action: Action, resumed: bool) -> tuple[Outcome, str]:
        """Re-derive the action from the guest as Graph has them now and guestctl's own record, then do it."""
        user_id = action.target_id
        current = await self._read_guest(user_id)
        if current is None:
            if action.kind is ActionKind.DELETE and resumed and await self.audit.has(action.target_id, "guest.delete"):
                await self.guests.set_stage(user_id, GuestStage.DELETED, deleted_at=self.clock().isoformat())
                return Outcome.DONE, "found deleted by the interrupted run"
            return Outcome.SKIPPED, "the user no longer exists"
        if current.user_type != "Guest":
            return Outcome.SKIPPED, f"not a guest (userType {current.user_type}): guestctl acts on guests only"
        record = await self.store.get(GUESTS_TABLE, GUESTS_PARTITION, user_id)
        if resumed and (finished := await self._finished_before(action, current, record)):
            return Outcome.DONE, finished
        stage = lifecycle_of(record.data) if record is not None else None
        if reason := why_not(
            action.kind,
            current,
            stage,
            self.policy,
            self.clock(),
            self.exemptions,
            sign_in_activity_available=self.plan.sign_in_activity_available,
        ):
            return Outcome.SKIPPED, reason
        return await self.guests.by_kind[action.kind](action, current, resumed)

    async def _finished_before(self, action: Action, current: Guest, record: Record | None) -> str | None:
        """What an interrupted attempt of this run already did to the guest, if it did it all."""
        ours = record is not None and record.data.get("run_id") == self.run_id
        stage = record.data.get("stage") if record is not None else None
        if action.kind is ActionKind.FLAG and ours and stage == GuestStage.FLAGGED:
            return "flagged by the interrupted run"
        if action.kind is ActionKind.UNFLAG and record is None:
            return "un-flagged by the interrupted run"
        enabled_by_us = action.kind is ActionKind.ENABLE and current.enabled is True
        if enabled_by_us and await self.audit.has(action.target_id, "guest.enable"):
            await self.guests.forget(action.target_id)
            return "re-enabled by the interrupted run"
        disabled_by_us = action.kind is ActionKind.DISABLE and current.enabled is False
        if disabled_by_us and await self.audit.has(action.target_id, "guest.disable"):
            await self.guests.set_stage(action.target_id, GuestStage.DISABLED, disabled_at=self.clock().isoformat())
            return "disabled by the interrupted run"
        return None

    async def _read_guest(self, user_id: str) -> Guest | None:
        try:
            response = await self.graph.request("GET", f"/users/{user_id}", params={"$select": self.select})
        except NotFoundError:
            return None
        return decode_guest(response.content)


@dataclass(frozen=True, slots=True)
class Restored:
    target_id: str
    outcome: Outcome  # DONE, ALREADY_DONE (a rerun), SKIPPED (cannot be undone) or FAILED (try again)
    detail: str

    def line(self) -> str:
        return f"{self.target_id}: {self.outcome.value}: {self.detail}"


async def restore(
    graph: Graph,
    store: Store,
    *,
    actor: str,
    run_id: str | None = None,
    user_id: str | None = None,
    clock: Clock = utc_now,
) -> list[Restored]:
    """Undo a run's (or one user's) disables and deletes, newest first, one result per change.

    Safe to run again: a guest already restored and enabled is reported, not changed or audited twice. A
    Graph failure on one guest is reported and the others are still restored. Only accounts guestctl
    itself disabled are ever re-enabled.
    """
    if not run_id and not user_id:
        raise InputError("restore needs a run id or a user id")
    if run_id is not None and not RUN_ID.fullmatch(run_id):
        raise InputError(
            f"{run_id[:80]!r} is not a sweep run id", hint="run ids look like sweep-0123456789abcdef (sweep prints it)"
        )
    if user_id is not None and not is_object_id(user_id):
        raise InputError(f"{user_id[:80]!r} is not a user id", hint="give the user's object id (a GUID)")
    changes = [
        entry
        async for entry in store.read_audit(run_id=run_id, target_id=user_id)
        if entry.action in ("guest.delete", "guest.disable")
    ]
    if not changes:
        await _check_nothing_to_undo(graph, store, run_id=run_id, user_id=user_id)
    results = []
    for entry in reversed(changes):
        try:
            results.append(await _undo(graph, store, entry, actor=actor, clock=clock))
        except GraphError as error:
            results.append(Restored(entry.target_id, Outcome.FAILED, error.one_line()))
    return results


RUN_ID = re.compile(r"sweep-[0-9a-f]{16}")


async def _check_nothing_to_undo(graph: Graph, store: Store, *, run_id: str | None, user_id: str | None) -> None:
    """With nothing to undo, say why when it is a mistake: a run this store never saw, or a non-guest."""
    if run_id is not None:
        known = False
        async for _ in store.query(ACTIONS_TABLE, run_id):
            known = True
            break
        if not known:
            raise UnknownItemError(
                f"no sweep run {run_id} is known to this state store",
                hint="use a run id that `guestctl sweep --apply` printed, with the same GUESTCTL_STATE",
            )
    if user_id is not None:
        user = await _read(graph, f"/users/{user_id}", {"$select": "id,userType"})
        if user is not None and user.get("userType") != "Guest":
            raise InputError(
                f"user {user_id} is not a guest (userType {user.get('userType')}): guestctl never changes "
                "members, so there is nothing to restore",
                hint="give the id of a guest that a sweep disabled or deleted",
            )
        if user is None and not [e async for e in store.read_audit(target_id=user_id)]:
            raise UnknownItemError(
                f"no user {user_id} exists, and guestctl has no record of it", hint="check the id; nothing was changed"
            )


async def _undo(graph: Graph, store: Store, entry: AuditEntry, *, actor: str, clock: Clock) -> Restored:
    user_path = f"/users/{entry.target_id}"
    select = {"$select": "id,userType,accountEnabled"}
    current = await _read(graph, user_path, select)
    restored = False
    if entry.action == "guest.delete" and current is None:
        restore_path = f"/directory/deletedItems/{entry.target_id}/restore"
        try:
            await _undo_change(
                store,
                entry,
                "guest.restore",
                actor,
                clock,
                lambda: graph.request("POST", restore_path, idempotent=True),
            )
        except NotFoundError:
            return Restored(entry.target_id, Outcome.SKIPPED, "not in deleted items (purged after 30 days?)")
        restored = True
        current = await _read(graph, user_path, select)
    if current is None:
        return Restored(entry.target_id, Outcome.SKIPPED, "not found (deleted since?)")
    if current.get("userType") != "Guest":
        return Restored(entry.target_id, Outcome.SKIPPED, f"not a guest now (userType {current.get('userType')})")
    # guestctl re-enables only while its own last word on the account is a disable that went through
    history = [e async for e in store.read_audit(target_id=entry.target_id) if e.action in ENABLING_HISTORY]
    enabled = False
    if current.get("accountEnabled") is False and history and history[-1].action == "guest.disable":
        await _undo_change(
            store,
            history[-1],
            "guest.enable",
            actor,
            clock,
            lambda: graph.request("PATCH", user_path, json_body={"accountEnabled": True}, idempotent=True),
        )
        enabled = True
    record = await store.get(GUESTS_TABLE, GUESTS_PARTITION, entry.target_id)
    if record is not None:
        with contextlib.suppress(StaleVersionError):
            await store.delete(record)
    if restored or enabled:
        what = " and ".join(
            w for w, done in (("restored from deleted items", restored), ("re-enabled", enabled)) if done
        )
        return Restored(entry.target_id, Outcome.DONE, what)
    if current.get("accountEnabled") is False:
        return Restored(entry.target_id, Outcome.SKIPPED, "disabled, but not by guestctl: left as it is")
    return Restored(entry.target_id, Outcome.ALREADY_DONE, "already restored and enabled")


ENABLING_HISTORY = frozenset({"guest.disable", "guest.disable.failed", "guest.enable", "guest.enable.failed"})


async def _read(graph: Graph, path: str, params: dict[str, str]) -> dict[str, Any] | None:
    try:
        return await graph.get_json(path, params=params)
    except NotFoundError:
        return None


async def _undo_change(
    store: Store, entry: AuditEntry, action: str, actor: str, clock: Clock, send: Callable[[], Awaitable[object]]
) -> None:
    """Audit an undo, then make it (as every change is); a refusal by Graph is audited as `.failed`.

    Written once: after a crash between the entry and the change, the rerun finds the entry (the newest
    of this kind for the guest, after what it undoes) and sends the change without a second one.
    """
    related = {entry.action, action, f"{action}.failed"}
    history = [e async for e in store.read_audit(target_id=entry.target_id) if e.action in related]
    if not (history and history[-1].action == action and history[-1].at >= entry.at):
        await store.append_audit(
            AuditEntry(
                action=action,
                target_id=entry.target_id,
                actor=actor,
                reason=f"restore of {entry.action} from run {entry.run_id}",
                before=entry.after,
                after=entry.before,
                run_id=entry.run_id,
                at=clock(),
            )
        )
    try:
        await send()
    except GraphError as error:
        await store.append_audit(
            AuditEntry(
                action=f"{action}.failed",
                target_id=entry.target_id,
                actor=actor,
                reason=f"Graph refused the restore of {entry.action}",
                before=entry.after,
                after={**entry.after, "error": error.one_line()},
                run_id=entry.run_id,
                at=clock(),
            )
        )
        raise


__all__ = [
    "DESTRUCTIVE",
    "ActionResult",
    "Outcome",
    "Restored",
    "apply_plan",
    "check_applicable",
    "check_saved_plan",
    "load_lifecycle",
    "outcome_counts",
    "restore",
    "run_id_for",
]
