"""A saved plan is a request, not an authority: every kind of hand edit changes nothing in the tenant.

The edits are made the way someone who can write the plan (and even read the state store's signing key)
would: the forged plan is consistent with itself and carries a fresh digest, so only the re-derivation at
apply time — fresh data from Graph and guestctl's own lifecycle records — stands between it and the
tenant. Unedited actions of the same plan still go through.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import msgspec
import pytest

from emulator.seed import seed_tenant
from emulator.testing import EmulatorServer
from shared.errors import RefusedError
from shared.graph import Graph
from shared.stale import Action, ActionKind, Outcome, apply_plan, exemptions_now, plan_sweep, run_id_for
from shared.stale.apply import GUESTS_PARTITION, GUESTS_TABLE
from shared.stale.plan import Plan
from shared.stale.records import GUEST_SELECT, decode_guest
from shared.store import Store
from tests.support.stale import NOW, POLICY

LATER = NOW + timedelta(days=15)  # the guests flagged at NOW are due to be disabled


@dataclass
class Scene:
    """The tenant fifteen days after a first sweep flagged its inactive guests, and the honest plan now."""

    tenant: EmulatorServer
    graph: Graph
    store: Store
    plan: Plan

    def first(self, kind: ActionKind) -> Action:
        return next(a for a in self.plan.actions if a.kind is kind)

    def user(self, predicate: Callable[[Any], bool]) -> str:
        planned = {a.target_id for a in self.plan.actions}
        roles = self.tenant.tenant.all_role_principals(expand_groups=True)
        return next(
            u.id
            for u in self.tenant.tenant.users.values()
            if u.id not in planned and u.id not in roles and predicate(u)
        )

    async def action(self, kind: ActionKind, user_id: str) -> Action:
        """An action on `user_id` with the user's real facts as its evidence (as a careful forger would)."""
        response = await self.graph.request("GET", f"/users/{user_id}", params={"$select": GUEST_SELECT})
        return Action(kind, user_id, "forged", "edited by hand", decode_guest(response.content))

    async def flag_record(self, user_id: str, days_ago: float) -> None:
        at = (LATER - timedelta(days=days_ago)).isoformat()
        await self.store.upsert(
            GUESTS_TABLE, GUESTS_PARTITION, user_id, {"stage": "flagged", "flagged_at": at, "run_id": "sweep-x"}
        )


def forged(plan: Plan, actions: list[Action]) -> Plan:
    """`plan` with `actions` instead, its counts made to agree with them: nothing in the file gives it away."""
    kinds = [a.kind for a in actions]
    inactive = sum(k in (ActionKind.FLAG, ActionKind.DISABLE) for k in kinds)
    counts = {
        **plan.counts,
        "stale": max(plan.counts["stale"], inactive - plan.counts["never-redeemed"]),
        "disabled-long": max(plan.counts["disabled-long"], kinds.count(ActionKind.DELETE)),
    }
    extra = sum(counts.values()) - sum(plan.counts.values())
    return msgspec.structs.replace(plan, actions=tuple(actions), counts=counts, guests=plan.guests + extra)


async def replace(scene: Scene, kind: ActionKind, new: Action) -> tuple[Plan, str]:
    """The honest plan with its first action of `kind` replaced by `new`."""
    old = scene.first(kind)
    return forged(scene.plan, [new if a is old else a for a in scene.plan.actions]), new.target_id


async def flag_changed_to_disable(scene: Scene) -> tuple[Plan, str]:
    flag = scene.first(ActionKind.FLAG)
    return await replace(scene, ActionKind.FLAG, msgspec.structs.replace(flag, kind=ActionKind.DISABLE))


async def flagged_seconds_ago_changed_to_disable(scene: Scene) -> tuple[Plan, str]:
    flag = scene.first(ActionKind.FLAG)
    await scene.flag_record(flag.target_id, days_ago=0.0001)
    return await replace(scene, ActionKind.FLAG, msgspec.structs.replace(flag, kind=ActionKind.DISABLE))


async def disable_changed_to_delete(scene: Scene) -> tuple[Plan, str]:
    disable = scene.first(ActionKind.DISABLE)
    return await replace(scene, ActionKind.DISABLE, msgspec.structs.replace(disable, kind=ActionKind.DELETE))


async def disabled_by_someone_else_to_delete(scene: Scene) -> tuple[Plan, str]:
    theirs = scene.user(lambda u: u.userType == "Guest" and u.accountEnabled)
    await scene.graph.request("PATCH", f"/users/{theirs}", json_body={"accountEnabled": False}, idempotent=True)
    return forged(scene.plan, [*scene.plan.actions, await scene.action(ActionKind.DELETE, theirs)]), theirs


async def target_swapped_to_an_active_guest(scene: Scene) -> tuple[Plan, str]:
    truth = scene.tenant.control.ground_truth()["guest_kinds"]
    active = scene.user(lambda u: truth.get(u.id) == "active")
    return await replace(scene, ActionKind.DISABLE, await scene.action(ActionKind.DISABLE, active))


async def member_inserted(scene: Scene) -> tuple[Plan, str]:
    member = scene.user(lambda u: u.userType == "Member" and u.accountEnabled)
    return forged(scene.plan, [*scene.plan.actions, await scene.action(ActionKind.DISABLE, member)]), member


async def role_holder_inserted(scene: Scene) -> tuple[Plan, str]:
    roles = scene.tenant.tenant.all_role_principals(expand_groups=True)
    holder = next(u.id for u in scene.tenant.tenant.users.values() if u.userType == "Guest" and u.id in roles)
    await scene.flag_record(holder, days_ago=20)  # flagged before they were given the role
    return forged(scene.plan, [*scene.plan.actions, await scene.action(ActionKind.DISABLE, holder)]), holder


async def evidence_dates_moved_back(scene: Scene) -> tuple[Plan, str]:
    truth = scene.tenant.control.ground_truth()["guest_kinds"]
    active = scene.user(lambda u: truth.get(u.id) == "active")
    honest = await scene.action(ActionKind.FLAG, active)
    assert honest.evidence.sign_in is not None
    old = NOW - timedelta(days=400)
    sign_in = msgspec.structs.replace(honest.evidence.sign_in, successful=old, interactive=old, non_interactive=old)
    moved = msgspec.structs.replace(honest, evidence=msgspec.structs.replace(honest.evidence, sign_in=sign_in))
    return forged(scene.plan, [*scene.plan.actions, moved]), active


EDITS = {
    "flag-changed-to-disable": (flag_changed_to_disable, "guestctl has not flagged this guest"),
    "flagged-seconds-ago-changed-to-disable": (flagged_seconds_ago_changed_to_disable, "disable is not due before"),
    "disable-changed-to-delete": (disable_changed_to_delete, "guestctl has no record of disabling this account"),
    "disabled-by-someone-else-to-delete": (
        disabled_by_someone_else_to_delete,
        "guestctl has no record of disabling this account",
    ),
    "target-swapped": (target_swapped_to_an_active_guest, "guestctl has not flagged this guest"),
    "member-inserted": (member_inserted, "not a guest (userType Member)"),
    "role-holder-inserted": (role_holder_inserted, "exempt: holds a directory role"),
    "evidence-dates-moved": (evidence_dates_moved_back, "re-checked just before acting: the rules give no action"),
}


@pytest.fixture
async def scene(emulator: EmulatorServer, graph: Graph, store: Store) -> Scene:
    emulator.reset(seed_tenant(31, guests=100, members=10, now=NOW))
    flags = await plan_sweep(graph, store, POLICY, now=NOW, scan_id="f", tenant_id=None)
    await apply_plan(flags, graph, store, POLICY, await exemptions_now(graph, POLICY), actor="t", clock=lambda: NOW)
    emulator.control.set_clock(LATER)
    plan = await plan_sweep(graph, store, POLICY, now=LATER, scan_id="d", tenant_id=None)
    assert {a.kind for a in plan.actions} == {ActionKind.FLAG, ActionKind.DISABLE}
    return Scene(emulator, graph, store, plan)


@pytest.mark.parametrize("edit", list(EDITS))
async def test_an_edited_action_is_skipped_with_the_reason_and_changes_nothing(scene: Scene, edit: str) -> None:
    make, reason = EDITS[edit]
    plan, edited = await make(scene)
    scene.tenant.control.clear_requests()
    before = scene.tenant.tenant.users[edited].accountEnabled

    results = await apply_plan(
        plan,
        scene.graph,
        scene.store,
        POLICY,
        await exemptions_now(scene.graph, POLICY),
        actor="t",
        clock=lambda: LATER,
    )

    (result,) = [r for r in results if r.action.target_id == edited]
    assert result.outcome is Outcome.SKIPPED
    assert reason in result.detail
    writes = [r for r in scene.tenant.control.requests() if r["method"] in ("PATCH", "DELETE", "POST")]
    assert [w for w in writes if edited in w["path"]] == []
    assert scene.tenant.tenant.users[edited].accountEnabled is before
    assert [e async for e in scene.store.read_audit(target_id=edited)] == []
    # the rest of the plan was honest and went through
    others = [r for r in results if r.action.target_id != edited]
    assert others
    assert {r.outcome for r in others} == {Outcome.DONE}


@pytest.mark.parametrize(
    ("edit", "refusal"),
    [
        pytest.param(
            lambda p: msgspec.structs.replace(p, created_at=LATER + timedelta(hours=2)),
            "dated in the future",
            id="created-at-in-the-future",
        ),
        pytest.param(
            lambda p: msgspec.structs.replace(p, created_at=LATER - timedelta(days=3)),
            "hours old",
            id="created-at-moved-back",
        ),
        pytest.param(
            lambda p: msgspec.structs.replace(p, counts={**p.counts, "active": p.counts["active"] + 5}),
            "counts add up to",
            id="counts-changed",
        ),
        pytest.param(
            lambda p: msgspec.structs.replace(p, counts={**p.counts, "stale": 0, "never-redeemed": 0}),
            "actions for its 0 stale and never-redeemed guests",
            id="counts-disagree-with-actions",
        ),
        pytest.param(
            lambda p: msgspec.structs.replace(p, actions=(*p.actions, p.actions[0])),
            "more than one action for guest",
            id="action-repeated",
        ),
        pytest.param(
            lambda p: msgspec.structs.replace(
                p, actions=(msgspec.structs.replace(p.actions[0], target_id=p.actions[1].target_id), *p.actions[1:])
            ),
            "more than one action for guest",
            id="target-swapped-to-another-planned-guest",
        ),
        pytest.param(
            lambda p: msgspec.structs.replace(
                p,
                guests=p.guests * 100,
                counts={**p.counts, "active": p.counts["active"] + p.guests * 99},
                policy_digest=TIGHT.digest(),
            ),
            "over safety.max_percent",
            id="guests-inflated-to-slip-under-the-percent-cap",
        ),
    ],
)
async def test_an_edited_plan_that_disagrees_with_itself_or_time_is_refused_whole(
    scene: Scene, edit: Callable[[Plan], Plan], refusal: str
) -> None:
    plan = edit(scene.plan)
    policy = TIGHT if plan.policy_digest == TIGHT.digest() else POLICY
    scene.tenant.control.clear_requests()
    with pytest.raises(RefusedError, match=refusal):
        await apply_plan(
            plan,
            scene.graph,
            scene.store,
            policy,
            await exemptions_now(scene.graph, policy),
            actor="t",
            clock=lambda: LATER,
        )
    assert [r for r in scene.tenant.control.requests() if r["method"] in ("PATCH", "DELETE", "POST")] == []
    assert [e async for e in scene.store.read_audit(run_id=run_id_for(plan))] == []


TIGHT = POLICY.model_validate({**POLICY.model_dump(mode="json"), "safety": {"max_actions": 10_000, "max_percent": 5}})
