"""The staged removal end to end against the emulator with its virtual clock: 2,000 guests, members and
role holders present; categories checked against an independent count from the seed's ground truth."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from emulator.seed import seed_tenant
from emulator.testing import EmulatorServer
from shared.config import Policy
from shared.core.restore import restore
from shared.errors import RefusedError
from shared.graph import Graph
from shared.stale import ActionKind, Outcome, apply_plan, exemptions_now, plan_sweep, run_id_for
from shared.store import Store
from tests.support.azurite import sqlite_only
from tests.support.stale import NOW, POLICY

# What each generated guest profile must come out as under POLICY (emulator/seed.py GUEST_KINDS).
EXPECTED_CATEGORY = {
    "active": "active",
    "token_refresh": "active",
    "stale": "stale",
    "legacy_stale": "stale",
    "no_activity": "unknown",
    "null_activity": "stale",
    "pending_recent": "active",
    "pending_stale": "never-redeemed",
    "disabled": "stale",
}


@pytest.fixture
def tenant(emulator: EmulatorServer) -> EmulatorServer:
    emulator.reset(seed_tenant(9, guests=2_000, members=200, now=NOW))
    return emulator


def independent_expectation(emulator: EmulatorServer) -> tuple[Counter[str], set[str]]:
    """Category counts and the guests to flag, from the seed's ground truth (not from our rules)."""
    truth = emulator.control.ground_truth()
    role_holders = emulator.tenant.all_role_principals(expand_groups=True)  # every form: active, scoped, eligible
    counts: Counter[str] = Counter()
    to_flag = set()
    for guest_id, kind in truth["guest_kinds"].items():
        category = "exempt" if guest_id in role_holders else EXPECTED_CATEGORY[kind]
        counts[category] += 1
        if category in ("stale", "never-redeemed") and kind != "disabled":
            to_flag.add(guest_id)
    return counts, to_flag


@sqlite_only  # 2,000 guests, every stage: ~2 min more on Azurite (test_guards: flag, disable, restore on both)
async def test_flag_disable_delete_restore(tenant: EmulatorServer, graph: Graph, store: Store) -> None:
    emulator = tenant
    members = {u.id: u.accountEnabled for u in emulator.tenant.users.values() if u.userType == "Member"}
    expected_counts, expected_flags = independent_expectation(emulator)
    plan = await plan_sweep(graph, store, POLICY, now=NOW, scan_id="s1", tenant_id=None)
    assert {k: v for k, v in plan.counts.items() if v} == dict(expected_counts)
    assert plan.guests == 2_000
    assert {a.target_id for a in plan.actions} == expected_flags
    assert {a.kind for a in plan.actions} == {ActionKind.FLAG}
    await apply_plan(plan, graph, store, POLICY, await exemptions_now(graph, POLICY), actor="test", clock=lambda: NOW)

    # Two weeks later: the flagged guests are disabled — except one who signed in meanwhile.
    later = NOW + timedelta(days=15)
    emulator.control.set_clock(later)
    plan = await plan_sweep(graph, store, POLICY, now=later, scan_id="s2", tenant_id=None)
    assert {a.target_id for a in plan.actions if a.kind is ActionKind.DISABLE} == expected_flags
    newly_inactive = {a.target_id for a in plan.actions if a.kind is ActionKind.FLAG}
    assert {a.kind for a in plan.actions} <= {ActionKind.DISABLE, ActionKind.FLAG}
    assert not newly_inactive & expected_flags, "crossing the limit in these 15 days: flagged, not disabled"
    returning = sorted(expected_flags)[0]
    emulator.control.sign_in(returning)
    results = await apply_plan(
        plan, graph, store, POLICY, await exemptions_now(graph, POLICY), actor="test", clock=lambda: later
    )
    by_target = {r.action.target_id: r for r in results if r.action.kind is ActionKind.DISABLE}
    assert by_target[returning].outcome is Outcome.SKIPPED
    assert "re-checked just before acting" in by_target[returning].detail
    disabled = expected_flags - {returning}
    assert all(r.outcome is Outcome.DONE for t, r in by_target.items() if t != returning)
    assert all(emulator.tenant.users[g].accountEnabled is False for g in disabled)
    assert emulator.tenant.users[returning].accountEnabled is True

    # A month after that: the disabled guests are deleted (soft); the returning one is un-flagged.
    last = later + timedelta(days=31)
    emulator.control.set_clock(last)
    plan = await plan_sweep(graph, store, POLICY, now=last, scan_id="s3", tenant_id=None)
    assert {a.target_id for a in plan.actions if a.kind is ActionKind.DELETE} == disabled
    assert [a.target_id for a in plan.actions if a.kind is ActionKind.UNFLAG] == [returning]
    assert {a.target_id for a in plan.actions if a.kind is ActionKind.DISABLE} == newly_inactive
    await apply_plan(plan, graph, store, POLICY, await exemptions_now(graph, POLICY), actor="test", clock=lambda: last)
    assert not any(g in emulator.tenant.users for g in disabled)
    assert {u.id: u.accountEnabled for u in emulator.tenant.users.values() if u.userType == "Member"} == members

    # Restore brings every guest that run deleted (or disabled) back, enabled.
    lines = await restore(graph, store, actor="test", run_id=run_id_for(plan), clock=lambda: last)
    assert len(lines) == len(disabled) + len(newly_inactive)
    assert all(emulator.tenant.users[g].accountEnabled is True for g in disabled | newly_inactive)


@sqlite_only  # 2,000 flags on Azurite take ~18 s; the cap refusal runs on both in test_guards and test_edited_plans
async def test_over_cap_plan_is_refused_whole_and_changes_nothing(
    tenant: EmulatorServer, graph: Graph, store: Store
) -> None:
    emulator = tenant
    capped = Policy.model_validate({**POLICY.model_dump(mode="json"), "safety": {"max_actions": 5}})
    flags = await plan_sweep(graph, store, capped, now=NOW, scan_id="c1", tenant_id=None)
    await apply_plan(flags, graph, store, capped, await exemptions_now(graph, capped), actor="t", clock=lambda: NOW)
    later = NOW + timedelta(days=15)
    emulator.control.set_clock(later)
    plan = await plan_sweep(graph, store, capped, now=later, scan_id="c2", tenant_id=None)
    assert plan.refused
    assert "exceed safety.max_actions (5)" in plan.refused
    emulator.control.clear_requests()
    with pytest.raises(RefusedError):
        await apply_plan(
            plan, graph, store, capped, await exemptions_now(graph, capped), actor="t", clock=lambda: later
        )
    writes = [r for r in emulator.control.requests() if r["method"] in ("PATCH", "DELETE", "POST")]
    assert writes == []
