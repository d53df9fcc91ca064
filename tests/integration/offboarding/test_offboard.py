"""HR offboarding against the emulator: a guest worker, a leaving sponsor, an ambiguous name, restore."""

from __future__ import annotations

from datetime import timedelta

import pytest

from emulator.testing import EmulatorServer
from shared.config import Policy
from shared.core.apply import Outcome
from shared.core.restore import restore
from shared.graph import Graph
from shared.offboarding.apply import apply_plan
from shared.offboarding.events import Worker
from shared.offboarding.plan import ActionKind, run_id_for
from shared.offboarding.service import carry_out, carry_out_due, make_plan
from shared.store import Store
from shared.store.registry import OFFBOARD_ACTIONS, OFFBOARDINGS
from tests.support.graph import emulator_graph
from tests.support.offboarding import NOW, POLICY, group


async def offboard(graph: Graph, store: Store, worker: Worker, policy: Policy = POLICY):
    plan = await make_plan(
        graph,
        store,
        policy,
        worker,
        effective=NOW,
        run_id=run_id_for("t"),
        provenance={"system": "workday", "event": "e1"},
    )
    results = await apply_plan(plan, graph, store, policy, actor="t", clock=lambda: NOW)
    return plan, results


async def test_guest_worker_disabled_memberships_removed_deleted_when_due_and_restorable(
    tenant: EmulatorServer, graph: Graph, store: Store
) -> None:
    control = tenant.control
    boss = control.create_user(displayName="Boss", mail="boss@contoso.com")["id"]
    worker = control.create_user(userType="Guest", mail="ann@fabrikam.com", sponsors=[boss])["id"]
    other = control.create_user(userType="Guest", mail="bob@fabrikam.com", sponsors=[worker, boss])["id"]
    static = group(tenant, "Project X", worker)
    dynamic = group(tenant, "All guests", worker, dynamic=True)

    plan, results = await offboard(graph, store, Worker(email="ann@fabrikam.com"))

    assert {r.outcome for r in results} == {Outcome.DONE}, [r.detail for r in results]
    users = tenant.tenant.users
    assert users[worker].accountEnabled is False
    assert worker not in tenant.tenant.groups[static].members
    assert worker in tenant.tenant.groups[dynamic].members
    assert users[other].sponsors == (boss,)
    assert any("dynamic group All guests" in note for note in plan.notes)
    deletes = [r for r in tenant.control.requests(method="DELETE") if "/members/" in r["path"]]
    assert deletes
    assert all(r["path"].endswith("/$ref") for r in deletes)
    audit = [e async for e in store.read_audit(run_id=plan.run_id)]
    assert all("workday" in e.reason for e in audit)

    assert await carry_out_due(graph, store, POLICY, now=NOW + timedelta(days=29), clock=lambda: NOW) == []
    assert worker in users
    later = NOW + timedelta(days=31)
    tenant.control.set_clock(later)
    (deleted,) = await carry_out_due(graph, store, POLICY, now=later, clock=lambda: later)
    assert deleted.status == "done"
    assert worker not in tenant.tenant.users
    scheduled = await store.get(OFFBOARDINGS, "deletions", worker)
    assert scheduled is not None
    assert scheduled.data["state"] == "done"

    undone = await restore(graph, store, actor="t", run_id=plan.run_id, clock=lambda: later)
    assert {r.outcome for r in undone} <= {Outcome.DONE, Outcome.ALREADY_DONE}, [r.line() for r in undone]
    users = tenant.tenant.users
    assert users[worker].accountEnabled is True
    assert worker in tenant.tenant.groups[static].members
    assert set(users[other].sponsors) == {worker, boss}


@pytest.mark.parametrize("has_manager", [True, False], ids=["manager", "fallback"])
async def test_leaving_sponsor_guests_go_to_the_manager_or_the_fallback(
    tenant: EmulatorServer, graph: Graph, store: Store, has_manager: bool
) -> None:
    control = tenant.control
    boss = control.create_user(displayName="Boss", mail="boss@contoso.com")["id"]
    fallback = control.create_user(displayName="Fallback", mail="it@contoso.com")["id"]
    leaver = control.create_user(
        displayName="Leaver", mail="lee@contoso.com", employeeId="E7", **({"manager": boss} if has_manager else {})
    )["id"]
    guests = [
        control.create_user(userType="Guest", mail=f"g{i}@fabrikam.com", sponsors=[leaver])["id"] for i in range(2)
    ]
    policy = Policy.model_validate(
        {"offboarding": {"fallback_sponsor": fallback}, "invitations": {"sender_mailbox": "it@contoso.com"}}
    )

    _plan, results = await offboard(graph, store, Worker(employeeId="E7"), policy)

    heir = boss if has_manager else fallback
    assert {r.outcome for r in results} == {Outcome.DONE}, [r.detail for r in results]
    assert all(tenant.tenant.users[g].sponsors == (heir,) for g in guests)
    assert tenant.tenant.users[leaver].accountEnabled is True, "a member is never disabled"
    mails = [m for m in tenant.control.outbox()]
    assert len(mails) == 1


async def test_leaving_sponsor_without_manager_or_fallback_flags_the_guests(
    tenant: EmulatorServer, graph: Graph, store: Store
) -> None:
    control = tenant.control
    leaver = control.create_user(displayName="Leaver", mail="lee@contoso.com")["id"]
    guest = control.create_user(userType="Guest", mail="g@fabrikam.com", sponsors=[leaver])["id"]

    _plan, results = await offboard(graph, store, Worker(userPrincipalName="lee@contoso.com"))

    assert [r.action.kind for r in results] == [ActionKind.REMOVE_SPONSOR, ActionKind.FLAG]
    flagged = await store.get(OFFBOARDINGS, "unsponsored", guest)
    assert flagged is not None
    assert "no manager" in flagged.data["reason"]


async def test_ambiguous_or_unknown_worker_is_for_review_and_writes_nothing(
    tenant: EmulatorServer, graph: Graph, store: Store
) -> None:
    control = tenant.control
    control.create_user(userType="Guest", mail="x@fabrikam.com")
    control.create_user(displayName="Other", mail="y@contoso.com", otherMails=["x@fabrikam.com"])
    member = control.create_user(displayName="Plain", mail="plain@contoso.com")["id"]

    ambiguous, results = await offboard(graph, store, Worker(email="x@fabrikam.com"))
    unknown, _ = await offboard(graph, store, Worker(email="nobody@fabrikam.com"))
    plain, _ = await offboard(graph, store, Worker(entraObjectId=member))

    assert ambiguous.review == "ambiguous: 2 users have email x@fabrikam.com"
    assert results == []
    assert unknown.review == "no user has email nobody@fabrikam.com"
    assert plain.actions == []
    assert plain.review is None
    assert [r for r in tenant.control.requests() if r["method"] != "GET"] == []


async def test_a_team_leaving_at_once_reads_the_guests_sponsors_once_and_sees_its_own_changes(
    tenant: EmulatorServer, graph: Graph, store: Store
) -> None:
    control = tenant.control
    fallback = control.create_user(displayName="Fallback", mail="it@contoso.com")["id"]
    boss = control.create_user(displayName="Boss", mail="boss@contoso.com")["id"]
    report = control.create_user(displayName="Report", mail="rea@contoso.com", manager=boss)["id"]
    guests = [control.create_user(userType="Guest", mail=f"g{i}@fabrikam.com", sponsors=[report])["id"] for i in (1, 2)]
    policy = Policy.model_validate({"offboarding": {"fallback_sponsor": fallback}})
    tenant.control.clear_requests()

    await offboard(graph, store, Worker(entraObjectId=report), policy)  # the report's guests go to the boss
    await offboard(graph, store, Worker(entraObjectId=boss), policy)  # then the boss leaves: to the fallback

    assert all(tenant.tenant.users[g].sponsors == (fallback,) for g in guests)
    every_guest = [r for r in tenant.control.requests(method="GET") if r["path"] == "/v1.0/users"
                   and "sponsors" in r["query"].get("$expand", "")]  # fmt: skip
    assert len(every_guest) == 1, "every guest's sponsors are read once for the burst"


async def test_a_rerun_closes_the_record_of_a_change_an_interrupted_attempt_made(
    tenant: EmulatorServer, graph: Graph, store: Store
) -> None:
    """Killed after removing the leaver as sponsor, before recording it: the rerun's fresh plan has nothing
    left to do for it, and its record must not say `started` forever (found by tests/reliability)."""
    control = tenant.control
    boss = control.create_user(displayName="Boss", mail="boss@contoso.com")["id"]
    worker = control.create_user(userType="Guest", mail="ann@fabrikam.com", sponsors=[boss])["id"]
    other = control.create_user(userType="Guest", mail="bob@fabrikam.com", sponsors=[worker, boss])["id"]
    run_id = run_id_for("t")
    planned = await make_plan(graph, store, POLICY, Worker(email="ann@fabrikam.com"), effective=NOW, run_id=run_id,
                              provenance={"system": "workday", "event": "e1"})  # fmt: skip
    (sponsorship,) = [a for a in planned.actions if a.kind is ActionKind.REMOVE_SPONSOR]
    await store.create(OFFBOARD_ACTIONS, run_id, sponsorship.key, {"state": "started", "attempts": 1, "detail": ""})
    await graph.request("DELETE", f"/users/{other}/sponsors/{worker}/$ref")  # the change made, then the kill

    rerun = emulator_graph(tenant.base_url)  # a new process: no kept read of the sponsors
    plan = await make_plan(rerun, store, POLICY, Worker(email="ann@fabrikam.com"), effective=NOW, run_id=run_id,
                           provenance={"system": "workday", "event": "e1"})  # fmt: skip
    result = await carry_out(rerun, store, POLICY, plan, [plan.identifier], clock=lambda: NOW)
    await rerun.close()
    assert sponsorship.key not in {r.action.key for r in result.results}
    record = await store.get(OFFBOARD_ACTIONS, run_id, sponsorship.key)
    assert record is not None
    assert (record.data["state"], record.data["outcome"]) == ("done", "done")
    # the event's outcome counts the run's records, so it says what an uninterrupted run says
    assert result.counts == {"disable done": 1, "remove-sponsor done": 1, "schedule-delete done": 1}
