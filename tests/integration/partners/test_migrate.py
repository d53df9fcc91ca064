"""The partner's `accept` in their own tenant, then `migrate` in ours, on the five-partner tenant and both
stores: exactly the right home identities join exactly the right shared channel, a rerun adds nothing, the
partner that never enabled outbound is reported as blocked (not retried), rollback removes exactly what the
run added; a `{create: NAME}` mapping creates its shared channel once, even across a killed run, and its
rollback deletes it only while nobody else is in it; a plan over the blast-radius cap changes nothing.
Home ids read by our multi-tenant app in the partner's tenant (`home_ids: app`) give the same plan as their
id file, by filtered lookups only; a partner whose admin has not consented is refused, nothing changed."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from emulator.testing import EmulatorServer
from shared.config import DirectConnectScope, Policy, load_policy
from shared.core.apply import Outcome
from shared.errors import CredentialError, ExitCode, RefusedError
from shared.graph import Graph, tenant_graph
from shared.partners.accept import HomeUser, IdsFile
from shared.partners.accept_service import accept_with
from shared.partners.migrate import Status
from shared.partners.migrate_apply import channel_members
from shared.partners.migrate_service import FromApp, migrate_with
from shared.partners.trust_effects import PARTNERS_PATH, read_partner
from shared.partners.trust_service import rollback_trust
from shared.store import Store, open_store
from tests.support.azurite import sqlite_only
from tests.support.cli import emulator_settings, kill_when, run_guestctl, start_guestctl
from tests.support.partners import (
    DIRECT_CONNECT_INBOUND,
    FABRIKAM,
    FABRIKAM_PEOPLE,
    NORTHWIND,
    NORTHWIND_PEOPLE,
    OWNER,
    SHARED_CHANNEL,
    TEAM_Y,
    home_id,
    home_tenant,
    left,
    partner_tenant,
)
from tests.support.stale import NOW

TEAM = "cccccccc-0000-4000-8000-000000000001"
MEMBERS_PATH = f"/v1.0/teams/{TEAM}/channels/{SHARED_CHANNEL}/members"


def policy(home_ids: str = "file") -> Policy:
    channels = {"Project X": "Project X Partners"}
    fabrikam = {"tenant": FABRIKAM, "name": "Fabrikam", "inbound": {"users": "all"}, "channels": channels}
    northwind = {"tenant": "northwind.com", "inbound": {"users": "all"}, "channels": {TEAM: SHARED_CHANNEL}}
    return Policy.model_validate(
        {"partners": {"tenants": [{**fabrikam, "home_ids": home_ids}, {**northwind, "home_ids": home_ids}]}}
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
    assert {u.id for u in fabrikam_ids.users} == {home_id(m) for m in FABRIKAM_PEOPLE if not left(m)}  # enabled

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


MOVE_Y = FABRIKAM_PEOPLE[2:5]  # f2–f4 are also in Project Y, whose policy says {create: "Project Y Partners"}
CREATE_POLICY = f"""
partners:
  tenants:
    - tenant: {FABRIKAM}
      name: Fabrikam
      inbound: {{users: all}}
      channels: {{"Project Y": {{create: "Project Y Partners", description: "Fabrikam and us"}}}}
"""


def fabrikam_ids(our_id: str) -> IdsFile:
    """Fabrikam's id file as their `accept` writes it: every person of theirs but f9, who has left."""
    users = tuple(_home_users([m for m in FABRIKAM_PEOPLE if not left(m)]))
    return IdsFile(FABRIKAM, our_id, NOW - timedelta(days=1), {"users": "all"}, True, users)


def channels_y(emulator: EmulatorServer) -> list:
    return [c for c in emulator.tenant.channels.values() if c.team_id == TEAM_Y]


async def test_created_channel_once_across_a_killed_run_and_its_rollback(
    emulator: EmulatorServer, graph: Graph, tmp_path: Path
) -> None:
    ours = partner_tenant(NOW)
    team_y = ours.tenant.groups[TEAM_Y]
    for mail in MOVE_Y:
        ours.tenant.add_member(team_y, next(u.id for u in ours.tenant.users.values() if u.mail == mail))
    emulator.reset(ours.tenant)
    await graph.request("POST", PARTNERS_PATH, json_body={"tenantId": FABRIKAM, **DIRECT_CONNECT_INBOUND})
    (tmp_path / "policy.yaml").write_text(CREATE_POLICY)
    ids = fabrikam_ids(ours.tenant.id)
    (tmp_path / "ids.json").write_text(json.dumps(ids.to_json()))
    create_path = f"/v1.0/teams/{TEAM_Y}/channels"

    # Killed while Graph answers the channel's POST: the channel exists, the run never saw its id.
    process = start_guestctl(emulator, tmp_path, "partners", "migrate", "--ids", "ids.json", "--apply")
    assert kill_when(emulator, process, create_path, 1), "the run must really have been killed mid-apply"
    policy_y = load_policy(tmp_path / "policy.yaml")
    async with open_store(str(tmp_path / "state.db")) as store:
        rerun = await migrate_with(graph, store, policy_y, ids, our_tenant=None, apply=True)
        (created,) = channels_y(emulator)
        assert (created.displayName, created.membershipType, created.description) == (
            "Project Y Partners", "shared", "Fabrikam and us",
        )  # fmt: skip
        posts = emulator.control.requests(path=create_path, method="POST")
        assert [r["path"] for r in posts].count(create_path) == 1, "never a second channel"
        assert {r.outcome for r in rerun.results or []} <= {Outcome.DONE, Outcome.ALREADY_DONE}
        moved = {(FABRIKAM, home_id(m)) for m in MOVE_Y}
        members = set(await channel_members(graph, TEAM_Y, created.id))
        assert members == moved | {(ours.tenant.id, OWNER)}
        assert [e.action async for e in store.read_audit(run_id=rerun.plan.run_id)].count("channel.create") == 1

        # Someone else joins: rollback removes exactly the run's members and keeps the channel, saying why.
        other = (FABRIKAM, home_id(FABRIKAM_PEOPLE[0]))
        body = {"@odata.type": "#microsoft.graph.aadUserConversationMember", "roles": [], "tenantId": FABRIKAM,
                "user@odata.bind": graph.url(f"/users('{other[1]}')")}  # fmt: skip
        await graph.request("POST", f"/teams/{TEAM_Y}/channels/{created.id}/members", json_body=body)
        kept = await rollback_trust(graph, store, rerun.plan.run_id, actor="test")
        assert [r.outcome for r in kept] == [Outcome.DONE] * len(MOVE_Y) + [Outcome.SKIPPED]
        assert "1 member(s) besides its owner" in kept[-1].detail
        assert set(await channel_members(graph, TEAM_Y, created.id)) == {other, (ours.tenant.id, OWNER)}

        # Once they are gone, the rollback deletes the channel it created.
        membership = (await channel_members(graph, TEAM_Y, created.id))[other]
        await graph.request("DELETE", f"/teams/{TEAM_Y}/channels/{created.id}/members/{membership}")
        undone = await rollback_trust(graph, store, rerun.plan.run_id, actor="test")
        assert [r.outcome for r in undone] == [Outcome.ALREADY_DONE] * len(MOVE_Y) + [Outcome.DONE]
        assert channels_y(emulator) == []
        assert len([e async for e in store.read_audit(run_id=rerun.plan.run_id) if e.action == "channel.delete"]) == 1


async def test_over_the_cap_nothing_changes(emulator: EmulatorServer, graph: Graph, store: Store) -> None:
    ours = partner_tenant(NOW)
    emulator.reset(ours.tenant)
    await graph.request("POST", PARTNERS_PATH, json_body={"tenantId": FABRIKAM, **DIRECT_CONNECT_INBOUND})
    limits = policy().model_dump(mode="json")
    over = Policy.model_validate({**limits, "partners": {**limits["partners"], "max_moves": 8}})
    planned = await migrate_with(graph, store, over, fabrikam_ids(ours.tenant.id), our_tenant=None, apply=False)
    assert planned.plan.refused is not None
    assert planned.plan.refused.startswith("9 people to move into shared channels ")
    assert "partners.max_moves (8)" in planned.plan.refused
    emulator.control.clear_requests()
    with pytest.raises(RefusedError, match="nothing will be applied"):
        await migrate_with(graph, store, over, fabrikam_ids(ours.tenant.id), our_tenant=None, apply=True)
    assert [r for r in emulator.control.requests() if r["method"] != "GET" and "$batch" not in r["path"]] == []
    assert [e async for e in store.read_audit(run_id=planned.plan.run_id)] == []


@sqlite_only  # planning reads Graph only; applying is the core applier the tests above run on both stores
async def test_home_ids_from_the_partners_tenant_by_our_app(
    emulator: EmulatorServer, graph: Graph, store: Store
) -> None:
    ours = partner_tenant(NOW)
    emulator.reset(ours.tenant)
    for partner in (FABRIKAM, NORTHWIND):
        await graph.request("POST", PARTNERS_PATH, json_body={"tenantId": partner, **DIRECT_CONNECT_INBOUND})
    our_id = ours.tenant.id
    from_file = await migrate_with(graph, store, policy(), fabrikam_ids(our_id), our_tenant=our_id, apply=False)
    by_app = FromApp("fabrikam.com", lambda tenant: tenant_graph(graph.options, tenant))
    emulator.control.clear_requests()
    planned = await migrate_with(graph, store, policy("app"), by_app, our_tenant=our_id, apply=False)

    assert planned.plan.actions == from_file.plan.actions  # the same home ids into the same channel
    assert [(p.mail, p.status, p.home_id) for p in planned.plan.people] == [
        (p.mail, p.status, p.home_id) for p in from_file.plan.people
    ]  # f9's disabled home account is not theirs to add, on either path
    theirs = [r for r in emulator.control.requests() if r["tenantId"] == FABRIKAM]
    assert {(r["method"], r["path"]) for r in theirs} == {("GET", "/v1.0/users")}
    assert sorted(r["query"]["$filter"].split(" in ")[0] for r in theirs) == ["mail", "userPrincipalName"]
    assert all(r["status"] == 200 for r in theirs)  # 10 candidates' addresses: one `in` of each, never a list

    before = await members(graph)
    applied = await migrate_with(graph, store, policy("app"), by_app, our_tenant=our_id, apply=True)
    assert applied.plan.run_id == planned.plan.run_id  # the same answer the same day: the same run
    assert [r.outcome for r in applied.results or []] == [Outcome.DONE] * 9
    assert await members(graph) == before | {(FABRIKAM, home_id(m)) for m in FABRIKAM_PEOPLE[:9]}

    # Northwind's admin never consented our app: refused with what they must do; nothing read there, or changed.
    emulator.control.clear_requests()
    with pytest.raises(CredentialError) as refused:
        await migrate_with(graph, store, policy("app"), FromApp(NORTHWIND, by_app.open_partner), our_tenant=our_id,
                           apply=True)  # fmt: skip
    assert refused.value.message.startswith(f"partner northwind.com ({NORTHWIND}): no token of our app")
    assert f"{NORTHWIND}/adminconsent?client_id=" in (refused.value.hint or "")
    assert refused.value.exit_code is ExitCode.UNAVAILABLE
    assert [r for r in emulator.control.requests() if r["method"] != "GET" and "$batch" not in r["path"]] == []


APP_POLICY = f"""
partners:
  tenants:
    - tenant: {FABRIKAM}
      name: Fabrikam
      inbound: {{users: all}}
      channels: {{"Project X": "Project X Partners"}}
      home_ids: app
"""


async def test_migrate_cli_sources(emulator: EmulatorServer, graph: Graph, tmp_path: Path) -> None:
    """`--tenant` for a `home_ids: app` partner plans from their tenant; one source exactly, or a clear error."""
    emulator.reset(partner_tenant(NOW).tenant)
    await graph.request("POST", PARTNERS_PATH, json_body={"tenantId": FABRIKAM, **DIRECT_CONNECT_INBOUND})
    (tmp_path / "policy.yaml").write_text(APP_POLICY)
    env = emulator_settings(emulator, tmp_path, tmp_path / "policy.yaml")
    planned = run_guestctl("partners", "migrate", "--tenant", FABRIKAM, cwd=tmp_path, env=env)
    assert planned.returncode == 0, planned.stderr
    assert "no home id: 1" in planned.stdout
    assert "9 memberships to add; add them with --apply" in planned.stdout
    assert home_id("f0@fabrikam.co.uk") in planned.stdout
    both = run_guestctl("partners", "migrate", "--tenant", FABRIKAM, "--ids", "x.json", cwd=tmp_path, env=env)
    assert both.returncode == ExitCode.BAD_INPUT
    assert "give exactly one source of home ids" in both.stderr
