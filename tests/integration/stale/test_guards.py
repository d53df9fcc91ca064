"""What apply refuses to take over: accounts someone else disabled, non-guests, edited plans."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from datetime import timedelta

import msgspec
import pytest

from emulator.seed import seed_tenant
from emulator.testing import EmulatorServer
from shared.config import Policy
from shared.core.restore import restore
from shared.errors import RefusedError
from shared.graph import Graph, GraphOptions
from shared.stale import Action, ActionKind, Outcome, apply_plan, exemptions_now, plan_sweep, run_id_for
from shared.stale.apply import GUESTS_PARTITION, GUESTS_TABLE
from shared.stale.plan import Exemptions, Plan, Planner
from shared.stale.records import decode_guest
from shared.store import Store
from shared.store.lease import LeaseHeldError
from tests.support.scripted_server import Handler, Reply, ScriptedServer, SeenRequest, graph_error
from tests.support.stale import NOW, POLICY

LATER = NOW + timedelta(days=15)


@pytest.fixture
def tenant(emulator: EmulatorServer) -> EmulatorServer:
    emulator.reset(seed_tenant(31, guests=120, members=12, now=NOW))
    return emulator


async def test_an_account_someone_else_disabled_is_left_to_them(
    tenant: EmulatorServer, graph: Graph, store: Store
) -> None:
    flags = await plan_sweep(graph, store, POLICY, now=NOW, scan_id="f", tenant_id=None)
    await apply_plan(flags, graph, store, POLICY, await exemptions_now(graph, POLICY), actor="t", clock=lambda: NOW)
    taken = flags.actions[0].target_id
    # An admin disables the flagged guest themselves (say, a compromised account).
    await graph.request("PATCH", f"/users/{taken}", json_body={"accountEnabled": False}, idempotent=True)

    later = NOW + timedelta(days=15)
    tenant.control.set_clock(later)
    plan = await plan_sweep(graph, store, POLICY, now=later, scan_id="d", tenant_id=None)
    results = await apply_plan(
        plan, graph, store, POLICY, await exemptions_now(graph, POLICY), actor="t", clock=lambda: later
    )
    (theirs,) = [r for r in results if r.action.target_id == taken]
    assert (theirs.outcome, theirs.detail) == (
        Outcome.SKIPPED,
        "someone else disabled the account: guestctl leaves it to them",
    )
    assert not [e async for e in store.read_audit(target_id=taken) if e.action == "guest.disable"]

    # Later sweeps plan nothing for them, and undoing guestctl's run does not re-enable them.
    last = later + timedelta(days=31)
    tenant.control.set_clock(last)
    again = await plan_sweep(graph, store, POLICY, now=last, scan_id="e", tenant_id=None)
    assert taken not in {a.target_id for a in again.actions}
    await restore(graph, store, actor="t", run_id=run_id_for(plan), clock=lambda: last)
    assert tenant.tenant.users[taken].accountEnabled is False


async def test_a_plan_cannot_enable_members_or_accounts_guestctl_did_not_disable(
    tenant: EmulatorServer, graph: Graph, store: Store
) -> None:
    plain = [u for u in tenant.tenant.users.values() if u.accountEnabled and not tenant.tenant.role_of.get(u.id)]
    member = next(u for u in plain if u.userType == "Member")
    guest = next(u for u in plain if u.userType == "Guest")
    for user in (member, guest):
        await graph.request("PATCH", f"/users/{user.id}", json_body={"accountEnabled": False}, idempotent=True)
    plan = await plan_sweep(graph, store, POLICY, now=NOW, scan_id="p", tenant_id=None)
    template = plan.actions[0]
    # An edited plan (a fresh digest is no protection against whoever can write the file)
    forged = msgspec.structs.replace(
        plan,
        actions=tuple(
            Action(ActionKind.ENABLE, user.id, "x", "forged", msgspec.structs.replace(template.evidence, id=user.id))
            for user in (member, guest)
        ),
    )
    results = await apply_plan(
        forged, graph, store, POLICY, await exemptions_now(graph, POLICY), actor="t", clock=lambda: NOW
    )
    details = {r.action.target_id: (r.outcome, r.detail) for r in results}
    assert details[member.id] == (Outcome.SKIPPED, "not a guest (userType Member): guestctl acts on guests only")
    assert details[guest.id] == (
        Outcome.SKIPPED,
        "guestctl has no record of disabling this account; left as it is",
    )
    assert tenant.tenant.users[member.id].accountEnabled is False
    assert tenant.tenant.users[guest.id].accountEnabled is False


async def test_apply_checks_the_cap_itself_and_does_not_trust_the_plan(
    tenant: EmulatorServer, graph: Graph, store: Store
) -> None:
    capped = Policy.model_validate({**POLICY.model_dump(mode="json"), "safety": {"max_actions": 2, "max_percent": 100}})
    plan = await plan_sweep(graph, store, POLICY, now=NOW, scan_id="c", tenant_id=None)
    deletes = tuple(msgspec.structs.replace(a, kind=ActionKind.DELETE) for a in plan.actions[:3])
    counts = {**plan.counts, "stale": plan.counts["stale"] - 3, "disabled-long": 3}  # consistent with itself
    forged = msgspec.structs.replace(plan, actions=deletes, counts=counts, refused=None, policy_digest=capped.digest())
    exemptions = await exemptions_now(graph, capped)
    tenant.control.clear_requests()
    with pytest.raises(RefusedError, match=r"exceed safety\.max_actions"):
        await apply_plan(forged, graph, store, capped, exemptions, actor="t", clock=lambda: NOW)
    assert [r for r in tenant.control.requests() if r["method"] in ("PATCH", "DELETE")] == []


async def flagged_then_disable_plan(tenant: EmulatorServer, graph: Graph, store: Store) -> Plan:
    """Flag the inactive guests now; the plan two weeks later disables them (the clock is moved there)."""
    flags = await plan_sweep(graph, store, POLICY, now=NOW, scan_id="f", tenant_id=None)
    await apply_plan(flags, graph, store, POLICY, await exemptions_now(graph, POLICY), actor="t", clock=lambda: NOW)
    tenant.control.set_clock(LATER)
    return await plan_sweep(graph, store, POLICY, now=LATER, scan_id="d", tenant_id=None)


async def test_restore_run_twice_changes_and_audits_nothing_the_second_time(
    tenant: EmulatorServer, graph: Graph, store: Store
) -> None:
    later = LATER
    plan = await flagged_then_disable_plan(tenant, graph, store)
    await apply_plan(plan, graph, store, POLICY, await exemptions_now(graph, POLICY), actor="t", clock=lambda: later)
    disabled = {a.target_id for a in plan.actions if a.kind is ActionKind.DISABLE}
    assert disabled

    first = await restore(graph, store, actor="t", run_id=run_id_for(plan), clock=lambda: later)
    audit_after_first = [e async for e in store.read_audit()]
    tenant.control.clear_requests()
    second = await restore(graph, store, actor="t", run_id=run_id_for(plan), clock=lambda: later)

    assert {r.target_id: (r.outcome, r.detail) for r in first} == {g: (Outcome.DONE, "re-enabled") for g in disabled}
    assert {r.outcome for r in second} == {Outcome.ALREADY_DONE}
    assert [e async for e in store.read_audit()] == audit_after_first
    assert [r for r in tenant.control.requests() if r["method"] != "GET"] == []
    assert all(tenant.tenant.users[g].accountEnabled for g in disabled)


async def test_two_appliers_of_one_plan_cannot_run_at_once(tenant: EmulatorServer, graph: Graph, store: Store) -> None:
    later = LATER
    plan = await flagged_then_disable_plan(tenant, graph, store)
    exemptions = await exemptions_now(graph, POLICY)
    tenant.control.clear_requests()

    both = await asyncio.gather(
        apply_plan(plan, graph, store, POLICY, exemptions, actor="first", clock=lambda: later),
        apply_plan(plan, graph, store, POLICY, exemptions, actor="second", clock=lambda: later),
        return_exceptions=True,
    )
    refused = [r for r in both if isinstance(r, LeaseHeldError)]
    (results,) = [r for r in both if isinstance(r, list)]
    assert len(refused) == 1
    assert "is in progress elsewhere" in refused[0].one_line()
    disables = [r for r in results if r.action.kind is ActionKind.DISABLE]
    assert {r.outcome for r in disables} == {Outcome.DONE}
    audited = [e async for e in store.read_audit(run_id=run_id_for(plan)) if e.action == "guest.disable"]
    assert len(audited) == len(disables), "each disable audited once"
    patches = tenant.control.requests(path="/v1.0/users/", method="PATCH")
    assert len(patches) == len(disables), "each disable sent once"

    again = await apply_plan(plan, graph, store, POLICY, exemptions, actor="third", clock=lambda: later)
    assert {r.outcome for r in again} == {Outcome.ALREADY_DONE}, "the lease is let go when the run ends"


async def test_a_change_graph_refuses_is_audited_as_failed_too(
    scripted_server: Callable[[Handler], ScriptedServer], store: Store
) -> None:
    stale_guest = {
        "id": "g1",
        "userType": "Guest",
        "accountEnabled": True,
        "createdDateTime": "2020-01-01T00:00:00Z",
        "externalUserState": "Accepted",
        "signInActivity": {"lastSuccessfulSignInDateTime": "2024-01-01T00:00:00Z"},
    }

    def answer(request: SeenRequest) -> Reply:
        if request.method == "PATCH":
            return graph_error(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
        return Reply(200, json.dumps(stale_guest).encode())

    server = scripted_server(answer)
    graph = Graph(GraphOptions(base_url=server.base_url, auth="emulator"))
    plan = Planner(POLICY, NOW, lifecycle={}, exemptions=Exemptions()).finish()
    disable = Action(
        ActionKind.DISABLE,
        "g1",
        "Ann <ann@fabrikam.com>",
        "flagged on 2026-11-01",
        decode_guest(json.dumps(stale_guest).encode()),
    )
    plan = msgspec.structs.replace(plan, actions=(disable,), guests=1000, counts={**plan.counts, "stale": 1000})
    try:
        flagged = {"stage": "flagged", "flagged_at": (NOW - timedelta(days=20)).isoformat(), "run_id": "earlier"}
        await store.upsert(GUESTS_TABLE, GUESTS_PARTITION, "g1", flagged)
        ticks = itertools.count()
        clock = lambda: NOW + timedelta(milliseconds=next(ticks))  # noqa: E731 - entries in order
        (result,) = await apply_plan(plan, graph, store, POLICY, Exemptions(), actor="t", clock=clock)
        entries = [(e.action, e.after.get("error", "")) async for e in store.read_audit(target_id="g1")]
    finally:
        await graph.close()
    assert result.outcome is Outcome.FAILED
    assert [name for name, _ in entries] == ["guest.disable", "guest.disable.failed"]
    assert "403 Authorization_RequestDenied" in entries[1][1]


async def test_restore_leaves_an_account_disabled_by_someone_after_guestctl_re_enabled_it(
    tenant: EmulatorServer, graph: Graph, store: Store
) -> None:
    plan = await flagged_then_disable_plan(tenant, graph, store)
    exemptions = await exemptions_now(graph, POLICY)
    await apply_plan(plan, graph, store, POLICY, exemptions, actor="t", clock=lambda: LATER)
    back = next(
        a.target_id
        for a in plan.actions
        if a.kind is ActionKind.DISABLE and tenant.tenant.users[a.target_id].externalUserState == "Accepted"
    )
    # Re-invited (redemption reset): the next sweep re-enables them.
    invitation = {
        "invitedUserEmailAddress": tenant.tenant.users[back].mail,
        "inviteRedirectUrl": "https://myapplications.microsoft.com",
        "invitedUser": {"id": back},
        "resetRedemption": True,
        "sendInvitationMessage": False,
    }
    await graph.request("POST", "/invitations", json_body=invitation)
    again = LATER + timedelta(days=1)
    tenant.control.set_clock(again)
    enable = await plan_sweep(graph, store, POLICY, now=again, scan_id="e", tenant_id=None)
    assert (ActionKind.ENABLE, back) in {(a.kind, a.target_id) for a in enable.actions}
    await apply_plan(enable, graph, store, POLICY, exemptions, actor="t", clock=lambda: again)
    assert tenant.tenant.users[back].accountEnabled is True
    # Then an admin disables the account for a reason of their own.
    await graph.request("PATCH", f"/users/{back}", json_body={"accountEnabled": False}, idempotent=True)

    results = await restore(graph, store, actor="t", run_id=run_id_for(plan), clock=lambda: again)

    (theirs,) = [r for r in results if r.target_id == back]
    assert (theirs.outcome, theirs.detail) == (Outcome.SKIPPED, "disabled, but not by guestctl: left as it is")
    assert tenant.tenant.users[back].accountEnabled is False
