"""Apply an offboarding plan through the core applier: each action re-checked against fresh Graph data.

A plan (or a queued HR event) is a request, not an authority: just before each change the target is read
again and the rules asked again — the worker must still be a guest and not exempt (a directory role holder
never), the membership must still be there and not dynamic, the guest must still have the leaver as
sponsor. The core applier (`shared.core.apply`) keeps one record per action in `offboardactions` under the
run id (`offboard-` + 16 hex of the event id), so a redelivered event continues its run and repeats
nothing; every change is audited just before it is made (`RunAudit`). `RESTORABLE` hands the core's
restore the undo of each change (`effects.UNDO`).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Literal

from shared.clock import Clock, utc_now
from shared.config import Policy
from shared.core.apply import ActionResult, Outcome, Progress, apply_actions
from shared.core.audit import RunAudit
from shared.core.restore import Restorable
from shared.graph import Graph
from shared.offboarding.effects import UNDO, Effects
from shared.offboarding.fetch import direct_groups, read_sponsored, read_user
from shared.offboarding.plan import Action, ActionKind, Plan
from shared.offboarding.records import PERSON_SELECT, Person
from shared.offboarding.rules import GUEST, why_keep_membership, why_not_disable
from shared.stale.sweep import exemptions_now
from shared.store import Record, Store
from shared.store.registry import OFFBOARD_ACTIONS

ACTIONS_TABLE = OFFBOARD_ACTIONS
# On the worker's guest account: each needs the worker to be a guest, not exempt, now.
ON_WORKER = frozenset({ActionKind.DISABLE, ActionKind.REMOVE_MEMBER, ActionKind.SCHEDULE_DELETE, ActionKind.DELETE})


def action_key(action: Action) -> str:
    return action.key


async def apply_plan(
    plan: Plan, graph: Graph, store: Store, policy: Policy, *, actor: str, clock: Clock = utc_now
) -> list[ActionResult[Action]]:
    """Carry out the plan's actions in order (sponsors added before any is removed), each re-checked."""
    applier = _Applier(plan, graph, store, policy, actor, clock)
    results = await apply_actions(
        plan.actions,
        applier.carry_out,
        store=store,
        table=ACTIONS_TABLE,
        run_id=plan.run_id,
        clock=clock,
        limit=1,  # in the plan's order; a plan is one person's
        key=action_key,
        unplanned=_made_by_an_interrupted_attempt,
    )
    return results


async def _made_by_an_interrupted_attempt(record: Record) -> tuple[Outcome, str]:
    """A rerun re-plans from fresh data: an action an interrupted attempt started (and made) is not planned
    again. It is closed `done`, as that attempt would have: the change is this run's. (One that failed then,
    with an error, was made by someone else: `already-done`.)"""
    failed = bool(record.data.get("error"))
    made_by = "someone else" if failed else "an interrupted attempt of this run"
    detail = f"nothing left to do on a fresh read ({made_by} made the change)"
    return (Outcome.ALREADY_DONE if failed else Outcome.DONE), detail


async def run_counts(store: Store, run_id: str) -> dict[str, int]:
    """How the run went, counted from its action records: every action of the run, whichever attempt made it
    (a rerun's own results say `already-done` for an earlier attempt's, and leave out what it closed), so a
    redelivered event reports what an uninterrupted one does. A record not done failed in the last attempt."""
    counts: Counter[str] = Counter()
    async for record in store.query(ACTIONS_TABLE, partition=run_id):
        done = record.data.get("state") == "done"
        counts[f"{record.row.split(':', 1)[0]} {record.data['outcome'] if done else Outcome.FAILED.value}"] += 1
    return dict(counts)


class _Applier:
    def __init__(self, plan: Plan, graph: Graph, store: Store, policy: Policy, actor: str, clock: Clock) -> None:
        self.plan, self.graph, self.policy, self.clock = plan, graph, policy, clock
        self.audit = RunAudit(store, plan.run_id, actor, None, clock)
        self.effects = Effects(graph, store, self.audit, clock, plan, policy.invitations.sender_mailbox)
        self._worker: Person | Literal[False] | None = False  # False: not read yet; None: no such user
        self._worker_ok: str | bool | None = False  # False: not checked yet; None: fine; text: why not
        self._groups: dict[str, bool] | None = None  # group id → dynamic, as Graph has them now

    async def carry_out(self, action: Action, progress: Progress) -> tuple[Outcome, str]:
        resumed = progress.resumed
        if action.kind in ON_WORKER and (refused := await self._worker_refused(action)):
            return refused
        match action.kind:
            case ActionKind.DISABLE:
                return await self.effects.disable(action, resumed)
            case ActionKind.REMOVE_MEMBER:
                groups = await self._fresh_groups(action.other_id)
                if action.target_id.lower() not in groups:
                    return Outcome.ALREADY_DONE, "not a member (any more)"
                if groups[action.target_id.lower()]:
                    return Outcome.SKIPPED, "the group is dynamic now: its rule decides membership"
                return await self.effects.remove_member(action, resumed)
            case ActionKind.ADD_SPONSOR | ActionKind.REMOVE_SPONSOR | ActionKind.FLAG:
                return await self._sponsorship(action, resumed)
            case ActionKind.SCHEDULE_DELETE:
                return await self.effects.schedule_delete(action, resumed)
            case ActionKind.DELETE:
                return await self.effects.delete(action, resumed)
            case ActionKind.NOTIFY:
                return await self.effects.notify(action, progress)
            case ActionKind.REMOVE_CHANNEL_MEMBER:
                return await self.effects.remove_channel_member(action, resumed)
        raise AssertionError(action.kind)

    async def _worker_refused(self, action: Action) -> tuple[Outcome, str] | None:
        """The worker's account as Graph has it now: a guest, not exempt, in the state the action expects.
        Read once per apply (its actions follow each other within moments), before the first change."""
        if self._worker is False:
            worker_id = action.target_id if action.kind is not ActionKind.REMOVE_MEMBER else action.other_id
            self._worker = await read_user(self.graph, worker_id, PERSON_SELECT)
        current = self._worker
        if current is None:
            if action.kind is ActionKind.DELETE and await self.audit.has(action.target_id, "guest.delete"):
                return Outcome.ALREADY_DONE, "deleted by the interrupted run"
            return Outcome.SKIPPED, "the user no longer exists"
        if self._worker_ok is False:
            exemptions = await exemptions_now(self.graph, self.policy)
            self._worker_ok = why_not_disable(current, exemptions.reason(current, self.clock().date()))
        if self._worker_ok:
            return Outcome.SKIPPED, str(self._worker_ok)
        if action.kind is ActionKind.DISABLE and current.enabled is False:
            return Outcome.ALREADY_DONE, "already disabled"
        if action.kind is ActionKind.DELETE and current.enabled is not False:
            return Outcome.SKIPPED, "re-enabled since it was disabled: the deletion is cancelled"
        return None

    async def _fresh_groups(self, user_id: str) -> dict[str, bool]:
        if self._groups is None:
            groups = await direct_groups(self.graph, user_id)
            self._groups = {g.id.lower(): why_keep_membership(g) is not None for g in groups}
        return self._groups

    async def _sponsorship(self, action: Action, resumed: bool) -> tuple[Outcome, str]:
        guest = await read_sponsored(self.graph, action.target_id)
        if guest is None or guest.user_type != GUEST:
            return Outcome.SKIPPED, "no such guest any more"
        sponsors = guest.sponsor_ids
        if action.kind is ActionKind.ADD_SPONSOR:
            if action.other_id.lower() in sponsors:
                return Outcome.ALREADY_DONE, "already a sponsor"
            return await self.effects.add_sponsor(action, resumed)
        if action.kind is ActionKind.REMOVE_SPONSOR:
            if action.other_id.lower() not in sponsors:
                return Outcome.ALREADY_DONE, "the leaver is not a sponsor (any more)"
            return await self.effects.remove_sponsor(action, resumed)
        if sponsors:
            return Outcome.SKIPPED, f"has {len(sponsors)} sponsor(s) now: not flagged"
        return await self.effects.flag(action, resumed)


RESTORABLE = Restorable(
    noun="offboarding",
    run_id=re.compile(r"offboard-[0-9a-f]{16}"),
    example="offboard-0123456789abcdef (guestctl offboard --apply prints it)",
    printed_by="`guestctl offboard --apply`",
    actions_table=ACTIONS_TABLE,
    undo=UNDO,
)
