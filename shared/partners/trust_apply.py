"""Apply a partners plan: checked whole, each partner read again, changed once, audited, restorable.

- The plan is refused whole (nothing written) when it was refused at plan time, is too old, is for another
  tenant or another policy, or when the policy as Graph holds it now would grow past 25 KB with it.
- A saved plan is a request, not an authority: just before each change the partner's configuration is read
  again; if it is not exactly what the plan saw, that partner is skipped and says which properties moved.
  The change is also derived again from the policy and the configuration now and must be the plan's.
- The core applier (`shared.core.apply`) keeps one record per partner (table `partnertrustactions`,
  partition = run id), so a rerun finishes an interrupted run and repeats nothing. `RESTORABLE` hands the
  core's restore this capability's run ids and the undo of each change (`trust_effects.UNDO`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Final

from shared.clock import Clock, utc_now
from shared.config import PartnerTrust, Policy
from shared.core.apply import ActionResult, Outcome, Progress, apply_actions
from shared.core.audit import RunAudit
from shared.core.plan_files import check_saved_plan
from shared.core.restore import Restorable
from shared.errors import RefusedError
from shared.graph import Graph
from shared.partners.trust import ActionKind, PartnerPlan, Plan, plan_partner, same
from shared.partners.trust_effects import CREATED, EFFECTS, UNDO, UPDATED, read_partner
from shared.store import Store
from shared.store.registry import PARTNER_TRUST_ACTIONS

ACTIONS_TABLE: Final = PARTNER_TRUST_ACTIONS
RUN_PREFIX: Final = "partners-"


def run_id_for(plan: Plan) -> str:
    """The same plan is the same run: a rerun finishes it, never redoes it."""
    return RUN_PREFIX + plan.plan_id()


def check_trust_plan(plan: Plan, policy: Policy, *, tenant_id: str | None, now: datetime) -> None:
    """A trust plan is applied only if it was not refused, is not dated in the future, and passes the checks
    every saved plan passes (`shared.core.plan_files.check_saved_plan`)."""
    if plan.refused:
        raise RefusedError(f"the plan was refused: {plan.refused}", hint="nothing was changed")
    if plan.created_at > now + timedelta(minutes=5):
        raise RefusedError("the plan is dated in the future", hint="make a new plan; nothing was changed")
    check_saved_plan(plan, policy, tenant_id=tenant_id, now=now)


def moved(before: dict[str, Any] | None, current: dict[str, Any] | None) -> str:
    """Which properties differ between the configuration the plan saw and the one Graph has now."""
    if before is None or current is None:
        return "it was created since" if before is None else "it was deleted since"
    names = sorted({*before, *current})
    return ", ".join(name for name in names if not same(before.get(name), current.get(name))) or "its form"


class Applier:
    def __init__(
        self, graph: Graph, store: Store, plan: Plan, entries: dict[str, PartnerTrust], actor: str, clock: Clock
    ) -> None:
        self.graph = graph
        self.plan = plan
        self.entries = entries  # tenant id → the policy's entry, resolved now
        self.run_id = run_id_for(plan)
        self.audit = RunAudit(store, self.run_id, actor, plan.digest(), clock)

    async def carry_out(self, action: PartnerPlan, progress: Progress) -> tuple[Outcome, str]:
        """Read the partner again; act only if it is as planned and the policy still gives this change."""
        assert action.kind is not None
        current = await read_partner(self.graph, action.tenant_id)
        name = CREATED if action.kind is ActionKind.CREATE else UPDATED
        if progress.resumed and same(current, action.after()) and await self.audit.has(action.tenant_id, name):
            return Outcome.DONE, "done by the interrupted run"
        if not same(current, action.before):
            return Outcome.SKIPPED, f"changed since the plan ({moved(action.before, current)}): plan again"
        entry = self.entries.get(action.tenant_id)
        if entry is None:
            return Outcome.SKIPPED, "the policy no longer names this partner"
        fresh = plan_partner(action.tenant_id, action.label, current, entry)
        if not same(fresh.body, action.body):
            return Outcome.SKIPPED, "the policy gives another change now: plan again"
        return await EFFECTS[action.kind](self.graph, self.audit, action, progress.resumed)


async def apply_plan(
    plan: Plan,
    graph: Graph,
    store: Store,
    entries: dict[str, PartnerTrust],
    *,
    actor: str,
    clock: Clock = utc_now,
    on_done: Callable[[ActionResult[PartnerPlan]], None] | None = None,
) -> list[ActionResult[PartnerPlan]]:
    """Carry out the plan's changes (the whole-plan checks are the caller's: `check_trust_plan`, size)."""
    applier = Applier(graph, store, plan, entries, actor, clock)
    return await apply_actions(
        plan.actions,
        applier.carry_out,
        store=store,
        table=ACTIONS_TABLE,
        run_id=applier.run_id,
        clock=clock,
        limit=4,
        on_done=on_done,
    )


RESTORABLE = Restorable(
    noun="partners",
    run_id=re.compile(r"partners-[0-9a-f]{16}"),
    example="partners-0123456789abcdef (partners apply prints it)",
    printed_by="`guestctl partners apply`",
    actions_table=ACTIONS_TABLE,
    undo=UNDO,
)
