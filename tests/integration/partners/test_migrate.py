"""The partner's `accept` in their own tenant, then `migrate` in ours, on the five-partner tenant and both
stores: exactly the right home identities join exactly the right shared channel, a rerun adds nothing, the
partner that never enabled outbound is reported as blocked (not retried), rollback removes exactly what the
run added."""

from __future__ import annotations

from datetime import timedelta

from emulator.testing import EmulatorServer
from shared.config import DirectConnectScope, Policy
from shared.core.apply import Outcome
from shared.graph import Graph
from shared.partners.accept import HomeUser, IdsFile
from shared.partners.accept_service import accept_with
from shared.partners.migrate import Status
from shared.partners.migrate_apply import channel_members
from shared.partners.migrate_service import migrate_with
from shared.partners.trust_effects import PARTNERS_PATH, read_partner
from shared.partners.trust_service import rollback_trust
from shared.store import Store
from tests.support.partners import (
    DIRECT_CONNECT_INBOUND,
    FABRIKAM,
    FABRIKAM_PEOPLE,
    NORTHWIND,
    NORTHWIND_PEOPLE,
    SHARED_CHANNEL,
    home_id,
    home_tenant,
    partner_tenant,
)
from tests.support.stale import NOW

TEAM = "cccccccc-0000-4000-8000-000000000001"
MEMBERS_PATH = f"/v1.0/teams/{TEAM}/channels/{SHARED_CHANNEL}/members"


def policy() -> Policy:
    channels = {"Project X": "Project X Partners"}
    return Policy.model_validate(
        {
            "partners": {
                "tenants": [
                    {"tenant": FABRIKAM, "name": "Fabrikam", "inbound": {"users": "all"}, "channels": channels},
                    {"tenant": "northwind.com", "inbound": {"users": "all"}, "channels": {TEAM: SHARED_CHANNEL}},
                ]
            }
        }
    )


async def members(graph: Graph) -> set[tuple[str, str]]:
    return set(await channel_members(graph, TEAM, SHARED_CHANNEL))


async def test_accept_migrate_rerun_blocked_and_rollback(emulator: EmulatorServer, graph: Graph, store: Store) -> None:
    ours = partner_tenant(NOW)
    our_id = ours.tenant.id

    # Fabrikam's admin, in their tenant: a plan changes nothing; --apply sets outbound for us only.
    emulator.reset(home_tenant(NOW))
    scope = DirectConnectScope(users="all")
    planned = await accept_with(graph, store, own_tenant=FABRIKAM, resource_tenant=our_id, scope=scope, apply=False)
    assert planned.plan.kind is not None
    assert planned.results is None
    assert await read_partner(graph, our_id) is None
    assert not planned.ids.outbound_applied
    accepted = await accept_with(graph, store, own_tenant=FABRIKAM, resource_tenant=our_id, scope=scope, apply=True)
    assert [r.outcome for r in accepted.results or []] == [Outcome.DONE]
    configured = await read_partner(graph, our_id)
    assert configured is not None
    assert configured["b2bDirectConnectOutbound"]["usersAndGroups"]["targets"] == [
        {"target": "AllUsers", "targetType": "user"}
    ]
    assert configured["b2bDirectConnectInbound"] is None  # nothing else of theirs is touched
    fabrikam_ids = accepted.ids
    assert fabrikam_ids.outbound_applied
    assert {u.id for u in fabrikam_ids.users} == {home_id(m) for m in FABRIKAM_PEOPLE if not m.startswith("f9@")}

    # Our tenant: inbound allowed for both; Fabrikam's outbound is on there, Northwind's never.
    emulator.reset(ours.tenant)
    for partner in (FABRIKAM, NORTHWIND):
        await graph.request("POST", PARTNERS_PATH, json_body={"tenantId": partner, **DIRECT_CONNECT_INBOUND})
    before = await members(graph)
    migration = await migrate_with(graph, store, policy(), fabrikam_ids, our_tenant=our_id, apply=True)

    statuses = {p.mail: p.status for p in migration.plan.people}
    assert statuses == {
        **{m: Status.ADD for m in FABRIKAM_PEOPLE[:9]},
        "f9@fabrikam.com": Status.NO_HOME_ID,
        "f.other@fabrikam.com": Status.KEEPS_GUEST,  # in another group too
        "f.admin@fabrikam.com": Status.KEEPS_GUEST,  # holds a directory role
    }
    assert [r.outcome for r in migration.results or []] == [Outcome.DONE] * 9
    added = {(FABRIKAM, home_id(m)) for m in FABRIKAM_PEOPLE[:9]}
    assert await members(graph) == before | added

    emulator.control.clear_requests()
    again = await migrate_with(graph, store, policy(), fabrikam_ids, our_tenant=our_id, apply=True)
    assert again.plan.actions == []
    assert again.results == []
    assert {p.status for p in again.plan.people if p.mail in FABRIKAM_PEOPLE[:9]} == {Status.MEMBER}
    assert emulator.control.requests(path=MEMBERS_PATH, method="POST") == []

    northwind_ids = IdsFile(
        NORTHWIND,
        our_id,
        NOW - timedelta(days=1),
        {"users": "all"},
        False,
        tuple(_home_users(NORTHWIND_PEOPLE)),
    )
    blocked = await migrate_with(graph, store, policy(), northwind_ids, our_tenant=our_id, apply=True)
    assert blocked.plan.notes
    assert "did not apply" in blocked.plan.notes[0]
    assert [(r.outcome, r.detail.split(" (")[0]) for r in blocked.results or []] == [
        (Outcome.SKIPPED, "blocked: partner outbound not enabled")
    ] * 3
    emulator.control.clear_requests()
    rerun = await migrate_with(graph, store, policy(), northwind_ids, our_tenant=our_id, apply=True)
    assert [r.outcome for r in rerun.results or []] == [Outcome.ALREADY_DONE] * 3  # reported, not retried
    assert {r.detail.split(" (")[0] for r in rerun.results or []} == {"blocked: partner outbound not enabled"}
    assert emulator.control.requests(path=MEMBERS_PATH, method="POST") == []

    undone = await rollback_trust(graph, store, migration.plan.run_id, actor="test")
    assert [r.outcome for r in undone] == [Outcome.DONE] * 9
    assert await members(graph) == before
    twice = await rollback_trust(graph, store, migration.plan.run_id, actor="test")
    assert {r.outcome for r in twice} == {Outcome.ALREADY_DONE}
    removals = [e async for e in store.read_audit(run_id=migration.plan.run_id) if e.action == "channel.member.remove"]
    assert len(removals) == 9


def _home_users(mails: list[str]) -> list[HomeUser]:
    return [HomeUser(home_id(m), m, m) for m in mails]
