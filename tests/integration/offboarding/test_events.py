"""HR events through the engine against the emulator: scheduled until the virtual clock passes the date, due
now carried out, ambiguous for review; cancellation before the date (nothing changes) and after it (restored
through the core restore); a leaving sponsor's change undone by `guestctl restore --run`."""

from __future__ import annotations

from datetime import timedelta

from emulator.testing import EmulatorServer
from shared.config import DirectConnectScope, Policy
from shared.core.restore import restore
from shared.graph import Graph
from shared.offboarding.events import HrEvent
from shared.offboarding.ledger import RUNS
from shared.offboarding.service import Offboarded, carry_out_due, handle_event
from shared.partners.accept_service import accept_with
from shared.partners.migrate_apply import channel_members
from shared.partners.migrate_service import migrate_with
from shared.partners.trust_effects import PARTNERS_PATH
from shared.stale import plan_sweep
from shared.store import Store
from shared.store.registry import OFFBOARDINGS
from tests.support.azurite import StoreLocation, sqlite_only
from tests.support.cli import emulator_settings, run_guestctl
from tests.support.offboarding import NOW, POLICY, group, hr_event
from tests.support.partners import (
    DIRECT_CONNECT_INBOUND,
    FABRIKAM,
    SHARED_CHANNEL,
    home_id,
    home_tenant,
    partner_tenant,
)

LATER = NOW + timedelta(days=5)


async def handle(graph: Graph, store: Store, event: HrEvent, event_id: str, *, at=NOW) -> Offboarded:
    return await handle_event(graph, store, POLICY, event, event_id=event_id, replayable=False, clock=lambda: at)


def writes(tenant: EmulatorServer) -> list[str]:
    return [f"{r['method']} {r['path']}" for r in tenant.control.requests() if r["method"] != "GET"]


async def test_future_event_waits_for_the_virtual_clock_due_now_is_done_ambiguous_is_review(
    tenant: EmulatorServer, graph: Graph, store: Store
) -> None:
    control = tenant.control
    later = control.create_user(userType="Guest", mail="ann@fabrikam.com")["id"]
    now = control.create_user(userType="Guest", mail="bob@fabrikam.com")["id"]
    control.create_user(userType="Guest", mail="x@fabrikam.com")
    control.create_user(displayName="Other", mail="y@contoso.com", otherMails=["x@fabrikam.com"])
    team = group(tenant, "Project X", later, now)
    control.clear_requests()

    scheduled = await handle(
        graph, store, hr_event("worker.terminated", {"email": "ann@fabrikam.com"}, LATER.date(), event="T1"), "e1"
    )
    again = await handle(
        graph, store, hr_event("worker.terminated", {"email": "ann@fabrikam.com"}, LATER.date(), event="T1"), "e1"
    )
    ambiguous = await handle(
        graph, store, hr_event("worker.terminated", {"email": "x@fabrikam.com"}, NOW.date(), event="T3"), "e3"
    )

    assert (scheduled.status, scheduled.due_at) == ("scheduled", LATER.replace(hour=0))
    assert again.status == "scheduled"
    assert ambiguous.status == "review"
    assert ambiguous.review == "ambiguous: 2 users have email x@fabrikam.com"
    assert writes(tenant) == []
    assert await carry_out_due(graph, store, POLICY, now=NOW, clock=lambda: NOW) == []
    assert writes(tenant) == []

    done = await handle(
        graph, store, hr_event("worker.contract_ended", {"entraObjectId": now}, NOW.date(), event="T2"), "e2"
    )
    assert done.status == "done"
    assert tenant.tenant.users[now].accountEnabled is False
    assert tenant.tenant.users[later].accountEnabled is True

    control.set_clock(LATER)
    (carried,) = await carry_out_due(graph, store, POLICY, now=LATER, clock=lambda: LATER)
    assert (carried.status, carried.run_id) == ("done", scheduled.run_id)
    assert tenant.tenant.users[later].accountEnabled is False
    assert later not in tenant.tenant.groups[team].members
    row = await store.get(OFFBOARDINGS, RUNS, scheduled.run_id)
    assert row is not None
    assert row.data["state"] == "done"


async def test_cancelled_before_the_date_changes_nothing_even_when_due_or_delivered_again(
    tenant: EmulatorServer, graph: Graph, store: Store
) -> None:
    worker = tenant.control.create_user(userType="Guest", mail="ann@fabrikam.com", employeeId="C-9")["id"]
    terminated = hr_event("worker.terminated", {"employeeId": "C-9"}, LATER.date(), event="T1")
    scheduled = await handle(graph, store, terminated, "e1")
    tenant.control.clear_requests()

    cancel = hr_event("worker.termination_cancelled", {"email": "ann@fabrikam.com"}, None, event="C1")
    cancelled = await handle(graph, store, cancel, "e2")
    twice = await handle(graph, store, cancel, "e2")

    assert (cancelled.status, cancelled.undone) == ("cancelled", (scheduled.run_id,))
    assert (twice.status, twice.undone) == ("cancelled", (scheduled.run_id,))
    row = await store.get(OFFBOARDINGS, RUNS, scheduled.run_id)
    assert row is not None
    assert row.data["state"] == "cancelled"
    assert row.data["undone_by"]["event"] == "C1"
    tenant.control.set_clock(LATER)
    assert await carry_out_due(graph, store, POLICY, now=LATER, clock=lambda: LATER) == []
    redelivered = await handle(graph, store, terminated, "e1", at=LATER)
    assert redelivered.status == "cancelled"
    assert writes(tenant) == []
    assert tenant.tenant.users[worker].accountEnabled is True


async def test_rehired_after_the_date_restores_the_run_and_cancels_its_deletion(
    tenant: EmulatorServer, graph: Graph, store: Store
) -> None:
    control = tenant.control
    boss = control.create_user(displayName="Boss", mail="boss@contoso.com")["id"]
    worker = control.create_user(userType="Guest", mail="ann@fabrikam.com", sponsors=[boss])["id"]
    other = control.create_user(userType="Guest", mail="bob@fabrikam.com", sponsors=[worker, boss])["id"]
    team = group(tenant, "Project X", worker)
    done = await handle(
        graph, store, hr_event("worker.terminated", {"email": "ann@fabrikam.com"}, NOW.date(), event="T1"), "e1"
    )
    assert done.status == "done"
    assert tenant.tenant.users[worker].accountEnabled is False

    rehired = await handle(
        graph, store, hr_event("worker.rehired", {"entraObjectId": worker}, LATER.date(), event="R1"), "e2", at=LATER
    )

    assert (rehired.status, rehired.undone) == ("restored", (done.run_id,))
    users = tenant.tenant.users
    assert users[worker].accountEnabled is True
    assert worker in tenant.tenant.groups[team].members
    assert set(users[other].sponsors) == {worker, boss}
    deletion = await store.get(OFFBOARDINGS, "deletions", worker)
    assert deletion is not None
    assert deletion.data["state"] == "cancelled"
    undos = [
        e async for e in store.read_audit(run_id=done.run_id) if e.action.endswith((".undo", ".restore", ".enable"))
    ]
    assert {e.action for e in undos} == {"guest.enable", "group.member.restore", "sponsor.remove.undo"}
    assert all(e.reason.startswith("HR system=workday tenant=acme event=R1 type=worker.rehired") for e in undos)
    gone = NOW + timedelta(days=31)
    control.set_clock(gone)
    assert await carry_out_due(graph, store, POLICY, now=gone, clock=lambda: gone) == []
    assert worker in tenant.tenant.users


@sqlite_only
async def test_leaving_sponsors_change_undone_by_guestctl_restore_run(
    tenant: EmulatorServer, graph: Graph, store: Store, store_location: StoreLocation, tmp_path
) -> None:
    control = tenant.control
    boss = control.create_user(displayName="Boss", mail="boss@contoso.com")["id"]
    leaver = control.create_user(displayName="Lee", mail="lee@contoso.com", manager=boss)["id"]
    guest = control.create_user(userType="Guest", mail="g@fabrikam.com", sponsors=[leaver])["id"]
    done = await handle(
        graph, store, hr_event("worker.terminated", {"email": "lee@contoso.com"}, NOW.date(), event="T1"), "e1"
    )
    assert tenant.tenant.users[guest].sponsors == (boss,)
    (tmp_path / "policy.yaml").write_text("{}\n", encoding="utf-8")
    env = {
        **emulator_settings(tenant, tmp_path, tmp_path / "policy.yaml"),
        "GUESTCTL_STATE": store_location.location,
        "GUESTCTL_STATE_PREFIX": store_location.prefix,
    }

    result = run_guestctl("restore", "--run", done.run_id, cwd=tmp_path, env=env)

    assert result.returncode == 0, result.stderr
    assert tenant.tenant.users[guest].sponsors == (leaver,)
    assert tenant.tenant.users[leaver].accountEnabled is True
    again = await restore(graph, store, actor="t", run_id=done.run_id)
    assert {r.outcome.value for r in again} == {"already-done"}


async def test_the_next_sweep_lists_guests_left_without_a_sponsor_and_does_not_act_on_them(
    tenant: EmulatorServer, graph: Graph, store: Store
) -> None:
    control = tenant.control
    leaver = control.create_user(displayName="Lee", mail="lee@contoso.com")["id"]
    guest = control.create_user(userType="Guest", displayName="Gil", mail="g@fabrikam.com", sponsors=[leaver])["id"]
    await handle(graph, store, hr_event("worker.terminated", {"entraObjectId": leaver}, NOW.date(), event="T1"), "e1")

    plan = await plan_sweep(graph, store, POLICY, now=NOW, scan_id="t-sweep", tenant_id=None)

    assert plan is not None
    assert list(plan.to_json()["unsponsored"]) == [
        {
            "id": guest,
            "name": "Gil <g@fabrikam.com>",
            "reason": "sponsor lee@contoso.com left on 2025-06-02 (HR system=workday tenant=acme event=T1 "
            "type=worker.terminated): the leaver has no manager and offboarding.fallback_sponsor is not set",
        }
    ]
    assert [a for a in plan.actions if a.target_id == guest] == []


@sqlite_only  # a real accept and migration: the same steps run on both backends in tests/integration/partners
async def test_direct_connect_user_leaves_the_shared_channels_guestctl_added_them_to_and_comes_back(
    emulator: EmulatorServer, graph: Graph, store: Store
) -> None:
    ours = partner_tenant(NOW)
    emulator.reset(home_tenant(NOW))
    scope = DirectConnectScope(users="all")
    accepted = await accept_with(
        graph, store, own_tenant=FABRIKAM, resource_tenant=ours.tenant.id, scope=scope, apply=True
    )
    emulator.reset(ours.tenant)
    await graph.request("POST", PARTNERS_PATH, json_body={"tenantId": FABRIKAM, **DIRECT_CONNECT_INBOUND})
    policy = Policy.model_validate(
        {
            "partners": {
                "tenants": [
                    {"tenant": FABRIKAM, "inbound": {"users": "all"}, "channels": {"Project X": "Project X Partners"}}
                ]
            }
        }
    )
    await migrate_with(graph, store, policy, accepted.ids, our_tenant=ours.tenant.id, apply=True)
    mail, team = "f3@fabrikam.com", "cccccccc-0000-4000-8000-000000000001"
    member = (FABRIKAM, home_id(mail))
    assert member in await channel_members(graph, team, SHARED_CHANNEL)
    guest = next(u.id for u in emulator.tenant.users.values() if u.mail == mail)
    await graph.request("DELETE", f"/users/{guest}")  # retired: the person has no object here any more

    left = await handle(graph, store, hr_event("worker.terminated", {"email": mail}, NOW.date(), event="T1"), "e1")

    assert left.status == "done"
    assert [(r.action.kind.value, r.outcome.value) for r in left.results] == [("remove-channel-member", "done")]
    assert member not in await channel_members(graph, team, SHARED_CHANNEL)
    back = await handle(graph, store, hr_event("worker.rehired", {"email": mail}, LATER.date(), event="R1"), "e2")
    assert (back.status, back.undone) == ("restored", (left.run_id,))
    assert member in await channel_members(graph, team, SHARED_CHANNEL)
