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
  before it is made (`RunAudit`). `RESTORABLE` hands the core's restore (`shared.core.restore`) this
  capability's run ids and the undo of each change (`effects.UNDO`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

from shared.clock import Clock, utc_now
from shared.config import Policy
from shared.core.apply import ActionResult as CoreResult
from shared.core.apply import Outcome, Progress, apply_actions, outcome_counts
from shared.core.audit import RunAudit
from shared.core.plan_files import check_saved_plan
from shared.core.restore import Restorable
from shared.errors import GraphError, NotFoundError, RefusedError
from shared.graph import Graph
from shared.stale.effects import (
    GUESTS_PARTITION,
    GUESTS_TABLE,
    UNDO,
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
from shared.store import Record, Store
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

    async def carry_out(self, action: Action, progress: Progress) -> tuple[Outcome, str]:
        """Re-derive the action from the guest as Graph has them now and guestctl's own record, then do it."""
        user_id, resumed = action.target_id, progress.resumed
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


RESTORABLE = Restorable(
    noun="sweep",
    run_id=re.compile(r"sweep-[0-9a-f]{16}"),
    example="sweep-0123456789abcdef (sweep prints it)",
    printed_by="`guestctl sweep --apply`",
    actions_table=ACTIONS_TABLE,
    undo=UNDO,
)


__all__ = [
    "DESTRUCTIVE",
    "ActionResult",
    "Outcome",
    "apply_plan",
    "check_applicable",
    "check_saved_plan",
    "load_lifecycle",
    "outcome_counts",
    "run_id_for",
]
