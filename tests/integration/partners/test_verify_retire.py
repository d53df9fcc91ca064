"""Verification and retirement against the five-partner tenant, on both stores: direct connect sign-ins per
partner and person, failures by code, idempotent day tallies; only verified, Teams-only guests of named
partners are retired (never members or role holders), over the cap nothing, and rollback restores; a
migrated guest is matched by the home id migration linked, before (and against) its addresses."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from emulator.testing import EmulatorServer
from shared.config import Policy
from shared.core.apply import Outcome
from shared.errors import RefusedError
from shared.graph import Graph
from shared.partners.accept import HomeUser, IdsFile
from shared.partners.migrate_service import migrate_with
from shared.partners.retire_service import plan_file, retire_with
from shared.partners.trust_effects import PARTNERS_PATH
from shared.partners.trust_service import rollback_trust
from shared.partners.verify import SIGN_INS_TABLE, verify_with
from shared.store import Store
from tests.support.partners import (
    DIRECT_CONNECT_INBOUND,
    FABRIKAM,
    FABRIKAM_PEOPLE,
    NORTHWIND,
    TAILSPIN,
    WOODGROVE,
    home_id,
    partner_tenant,
)
from tests.support.stale import NOW

HOME = "eeeeeeee-0000-4000-8000-00000000000{}"


def policy(**safety: object) -> Policy:
    return Policy.model_validate(
        {
            "partners": {
                "tenants": [
                    {
                        "tenant": FABRIKAM,
                        "name": "Fabrikam",
                        "inbound": {"users": "all"},
                        "channels": {"Project X": "Project X Partners"},
                    },
                    {"tenant": TAILSPIN, "name": "Tailspin", "inbound": {"users": "all"}},
                ]
            },
            "stale": {"disable_after_days": 7, "delete_after_days": 30},
            "safety": {"max_actions": 50, "max_percent": 100, **safety},
        }
    )


def direct(emulator: EmulatorServer, n: int, mail: str, *, days: int, error: int = 0) -> None:
    """A direct connect sign-in of a Fabrikam home identity (the log entry carries their home UPN)."""
    emulator.tenant.external_tenants[FABRIKAM].users[HOME.format(n)] = {"displayName": f"F{n}", "mail": mail}
    emulator.control.sign_in(
        HOME.format(n),
        at=(NOW - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        crossTenantAccessType="b2bDirectConnect",
        homeTenantId=FABRIKAM,
        success=not error,
        errorCode=error,
    )


async def test_verify_counts_per_partner_and_person_and_keeps_days_once(
    emulator: EmulatorServer, graph: Graph, store: Store
) -> None:
    emulator.reset(partner_tenant(NOW).tenant)
    direct(emulator, 0, "f0@fabrikam.com", days=1)
    direct(emulator, 0, "f0@fabrikam.com", days=2)
    direct(emulator, 1, "f1@fabrikam.com", days=1, error=90071)
    named = {FABRIKAM: "Fabrikam"}

    first = await verify_with(graph, store, named, days=7, clock=lambda: NOW)
    again = await verify_with(graph, store, named, days=7, clock=lambda: NOW)

    rows = {p["tenant_id"]: p for p in again.to_json()["partners"]}
    assert list(rows) == [FABRIKAM, WOODGROVE]  # named first, then others seen through direct connect
    fabrikam = rows[FABRIKAM]
    assert (fabrikam["direct_connect"], fabrikam["direct_connect_failed"], fabrikam["guest"]) == (3, 1, 3)
    assert fabrikam["errors"] == {"90071": 1}
    people = {p["person"]: p for p in fabrikam["people"]}
    assert people["f0@fabrikam.com"]["direct_connect"] == 2
    assert people["f0@fabrikam.com"]["first_direct_connect"] == str((NOW - timedelta(days=2)).date())
    assert people["f1@fabrikam.com"]["last_direct_connect"] is None  # failed only: not moved
    assert people["f1@fabrikam.com"]["errors"] == {"90071": 1}
    # run twice, the kept day tallies are the same (replaced, not added)
    assert first.to_json()["partners"][0]["days"] == fabrikam["days"]
    assert sum(d["direct_connect"] for d in fabrikam["days"]) == 3
    rows_kept = [r.row async for r in store.query(SIGN_INS_TABLE, FABRIKAM)]
    assert "person:f0@fabrikam.com" in rows_kept
    assert "person:f1@fabrikam.com" not in rows_kept


async def test_verify_sees_the_outcomes_both_tenants_settings_give(
    emulator: EmulatorServer, graph: Graph, store: Store
) -> None:
    """Our Conditional Access requires MFA of external users and both partners are configured on our side
    (Fabrikam's MFA trusted); Northwind's admin never allowed outbound: their attempts fail with 500212."""
    emulator.reset(partner_tenant(NOW).tenant)
    emulator.control.set_external_mfa_required(True)
    for partner, trusted in ((FABRIKAM, True), (NORTHWIND, False)):
        trust = {
            "isMfaAccepted": trusted,
            "isCompliantDeviceAccepted": False,
            "isHybridAzureADJoinedDeviceAccepted": False,
        }
        await graph.request(
            "POST", PARTNERS_PATH, json_body={"tenantId": partner, **DIRECT_CONNECT_INBOUND, "inboundTrust": trust}
        )
    at = (NOW - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for partner, mail in (
        (FABRIKAM, "f2@fabrikam.com"),
        (FABRIKAM, "f3@fabrikam.com"),
        (NORTHWIND, "n0@northwind.com"),
    ):
        emulator.control.sign_in(home_id(mail), at=at, homeTenantId=partner, crossTenantAccessType="b2bDirectConnect")

    result = await verify_with(graph, store, {FABRIKAM: "Fabrikam", NORTHWIND: "Northwind"}, days=7, clock=lambda: NOW)

    rows = {p["tenant_id"]: p for p in result.to_json()["partners"]}
    northwind = rows[NORTHWIND]
    assert (northwind["direct_connect"], northwind["direct_connect_failed"]) == (1, 1)
    assert northwind["errors"] == {"500212": 1}
    fabrikam = rows[FABRIKAM]
    assert (fabrikam["direct_connect"], fabrikam["direct_connect_failed"], fabrikam["errors"]) == (2, 0, {})
    assert fabrikam["mfa"] == {"home": 2, "none": 3}  # direct connect: their home MFA; the seeded guest sign-ins
    people = {p["person"]: p for p in fabrikam["people"]}
    assert people["f2@fabrikam.com"]["mfa"] == {"home": 1, "none": 1}  # direct connect, and as a guest


async def test_retire_only_verified_teams_only_guests_capped_and_restorable(
    emulator: EmulatorServer, graph: Graph, store: Store
) -> None:
    built = partner_tenant(NOW)
    emulator.reset(built.tenant)
    fabrikam = built.guests["fabrikam"]  # f0..f9 Teams-only, f.other in another group, f.admin a role holder
    for n, mail in ((0, "f2@fabrikam.com"), (1, "f3@fabrikam.com"), (2, "f.other@fabrikam.com")):
        direct(emulator, n, mail, days=1)
    direct(emulator, 3, "f.admin@fabrikam.com", days=1)
    await verify_with(graph, store, {FABRIKAM: "Fabrikam"}, days=7, clock=lambda: NOW)

    planned = await retire_with(graph, store, policy(), tenant_id=None, clock=lambda: NOW)
    assert [(a.kind.value, a.target_id) for a in planned.plan.actions] == [
        ("flag", fabrikam[2]),
        ("flag", fabrikam[3]),
    ]
    assert planned.plan.kept["the guest account gives more than Teams"] == 1 + 3  # f.other; Tailspin's app users
    assert planned.plan.kept["holds a directory role"] == 1
    flagged = await retire_with(graph, store, policy(), tenant_id=None, apply=True, clock=lambda: NOW)
    assert [r.outcome for r in flagged.results] == [Outcome.DONE, Outcome.DONE]

    later = NOW + timedelta(days=8)
    over = await retire_with(graph, store, policy(max_actions=1), tenant_id=None, clock=lambda: later)
    assert over.plan.refused
    assert over.plan.destructive() == 2
    with pytest.raises(RefusedError):
        await retire_with(graph, store, policy(max_actions=1), tenant_id=None, apply=True, clock=lambda: later)
    assert all(emulator.tenant.users[g].accountEnabled for g in fabrikam)  # over the cap: nothing

    # f3 joins a non-Teams group after the plan was saved: re-checked at apply, kept
    saved = await retire_with(graph, store, policy(), tenant_id=None, clock=lambda: later)
    text = json.dumps(await plan_file(store, saved.plan))
    emulator.tenant.add_member(emulator.tenant.groups["cccccccc-0000-4000-8000-000000000002"], fabrikam[3])
    run = await retire_with(graph, store, policy(), tenant_id=None, apply=True, plan_text=text, clock=lambda: later)
    outcomes = {r.action.target_id: (r.outcome, r.detail) for r in run.results}
    assert outcomes[fabrikam[2]] == (Outcome.DONE, "disabled")
    assert outcomes[fabrikam[3]][0] is Outcome.SKIPPED
    assert "more than Teams" in outcomes[fabrikam[3]][1]
    assert emulator.tenant.users[fabrikam[2]].accountEnabled is False
    assert emulator.tenant.users[built.role_holder].accountEnabled is True

    restored = await rollback_trust(graph, store, run.to_json()["run_id"], actor="test")
    assert [(r.target_id, r.outcome) for r in restored] == [(fabrikam[2], Outcome.DONE)]
    assert emulator.tenant.users[fabrikam[2]].accountEnabled is True


async def test_a_migrated_guest_is_matched_by_home_id_first_and_never_across_tenants(
    emulator: EmulatorServer, graph: Graph, store: Store
) -> None:
    built = partner_tenant(NOW)
    emulator.reset(built.tenant)
    await graph.request("POST", PARTNERS_PATH, json_body={"tenantId": FABRIKAM, **DIRECT_CONNECT_INBOUND})
    people = FABRIKAM_PEOPLE[:9]  # f9 has left Fabrikam: not in their id file
    users = tuple(HomeUser(home_id(m), m, m) for m in people)
    ids = IdsFile(FABRIKAM, built.tenant.id, NOW - timedelta(days=1), {"users": "all"}, True, users)
    migrated = await migrate_with(graph, store, policy(), ids, our_tenant=None, apply=True, clock=lambda: NOW)
    assert {r.outcome for r in migrated.results or []} == {Outcome.DONE}
    guest = dict(zip(FABRIKAM_PEOPLE, built.guests["fabrikam"], strict=True))
    home = emulator.tenant.external_tenants[FABRIKAM].users

    def sign_in(user_id: str, tenant: str = FABRIKAM) -> None:
        at = (NOW - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        emulator.control.sign_in(user_id, at=at, crossTenantAccessType="b2bDirectConnect", homeTenantId=tenant)

    home[home_id("f4@fabrikam.com")]["mail"] = "fiona@fabrikam.com"  # renamed at home: the log has the new UPN
    sign_in(home_id("f4@fabrikam.com"))
    home[HOME.format(9)] = {"displayName": "F9", "mail": "f9@fabrikam.com"}  # f9: no home id, so by address
    sign_in(HOME.format(9))
    home["eeeeeeee-0000-4000-8000-0000000000f5"] = {"displayName": "new", "mail": "f5@fabrikam.com"}
    sign_in("eeeeeeee-0000-4000-8000-0000000000f5")  # f5's old address, now someone else's: not f5
    sign_in(home_id("f6@fabrikam.com"), TAILSPIN)  # f6's home id, but from another tenant: not f6
    await verify_with(graph, store, {FABRIKAM: "Fabrikam", TAILSPIN: "Tailspin"}, days=7, clock=lambda: NOW)

    planned = await retire_with(graph, store, policy(), tenant_id=None, clock=lambda: NOW)
    day = str((NOW - timedelta(days=1)).date())
    assert {(a.kind.value, a.target_id): a.reason.split("(")[1].split(")")[0] for a in planned.plan.actions} == {
        ("flag", guest["f4@fabrikam.com"]): f"direct connect sign-in on {day} by home id {home_id('f4@fabrikam.com')}",
        ("flag", guest["f9@fabrikam.com"]): f"direct connect sign-in on {day} by address f9@fabrikam.com",
    }
