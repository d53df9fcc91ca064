"""GET /auditLogs/signIns: order, page size, documented filters only, retention, recorded sign-ins."""

from __future__ import annotations

import httpx
import pytest

from emulator.testing import EmulatorServer
from tests.support.emulator import follow

PARTNERS = "/policies/crossTenantAccessPolicy/partners"
STEP_FIELDS = {  # authenticationDetail
    "authenticationMethod",
    "authenticationMethodDetail",
    "authenticationStepDateTime",
    "authenticationStepRequirement",
    "authenticationStepResultDetail",
    "succeeded",
}
ALLOWED = {"accessType": "allowed", "targets": [{"target": "AllUsers", "targetType": "user"}]}
TEAMS = {"accessType": "allowed", "targets": [{"target": "Office365", "targetType": "application"}]}


def test_newest_first_and_pages_of_at_most_1000(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    assert graph_http.get("/auditLogs/signIns", params={"$top": "1001"}).status_code == 400
    entries = follow(graph_http, graph_http.get("/auditLogs/signIns", params={"$top": "17"}))
    stamps = [e["createdDateTime"] for e in entries]
    assert stamps == sorted(stamps, reverse=True)
    assert len(entries) == len(emulator.tenant.sign_ins)
    assert len({e["id"] for e in entries}) == len(entries)


def test_entries_carry_the_cross_tenant_fields(graph_http: httpx.Client) -> None:
    entries = graph_http.get("/auditLogs/signIns").json()["value"]
    kinds = {e["crossTenantAccessType"] for e in entries}
    assert {"b2bCollaboration", "b2bDirectConnect"} <= kinds
    entry = entries[0]
    for field in (
        "homeTenantId",
        "resourceTenantId",
        "userType",
        "userId",
        "userPrincipalName",
        "createdDateTime",
        "appId",
        "authenticationRequirement",
        "authenticationDetails",
    ):
        assert field in entry
    assert "errorCode" in entry["status"]
    single = next(e for e in entries if e["crossTenantAccessType"] == "none")
    assert single["authenticationRequirement"] == "singleFactorAuthentication"
    assert [(s["authenticationMethod"], s["succeeded"]) for s in single["authenticationDetails"]] == [
        ("Password", True)
    ]
    assert set(single["authenticationDetails"][0]) == STEP_FIELDS


@pytest.mark.parametrize(
    ("text", "check"),
    [
        pytest.param(
            "createdDateTime ge {since}", lambda e, s, u, who: e["createdDateTime"] >= s, id="createdDateTime-ge"
        ),
        pytest.param(
            "createdDateTime ge {since} and createdDateTime le {until}",
            lambda e, s, u, who: s <= e["createdDateTime"] <= u,
            id="createdDateTime-window",
        ),
        pytest.param("userId eq '{user}'", lambda e, s, u, who: e["userId"] == who, id="userId-eq"),
        pytest.param(
            "status/errorCode eq 0", lambda e, s, u, who: e["status"]["errorCode"] == 0, id="status-errorCode-eq"
        ),
    ],
)
def test_documented_filters(emulator: EmulatorServer, graph_http: httpx.Client, text: str, check) -> None:
    log = emulator.tenant.sign_ins
    since, until = log[len(log) // 3]["createdDateTime"], log[2 * len(log) // 3]["createdDateTime"]
    user = log[-1]["userId"]
    query = text.format(since=since, until=until, user=user)
    got = {e["id"] for e in follow(graph_http, graph_http.get("/auditLogs/signIns", params={"$filter": query}))}
    assert got == {e["id"] for e in log if check(e, since, until, user)}
    assert got


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("crossTenantAccessType eq 'b2bDirectConnect'", id="crossTenantAccessType"),
        pytest.param("homeTenantId eq '00000000-0000-0000-0000-000000000000'", id="homeTenantId"),
        pytest.param("resourceTenantId eq '00000000-0000-0000-0000-000000000000'", id="resourceTenantId"),
        pytest.param("userType eq 'guest'", id="userType"),
    ],
)
def test_undocumented_filters_are_rejected(graph_http: httpx.Client, text: str) -> None:
    response = graph_http.get("/auditLogs/signIns", params={"$filter": text})
    assert response.status_code == 400
    assert "Invalid filter clause" in response.json()["error"]["message"]


def test_recorded_sign_in_updates_activity_and_the_log(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    pending = next(u for u in emulator.tenant.users.values() if u.externalUserState == "PendingAcceptance")
    emulator.control.redeem(pending.id)
    entry = emulator.control.sign_in(pending.id)
    newest = graph_http.get("/auditLogs/signIns", params={"$top": "1"}).json()["value"][0]
    assert newest["id"] == entry["id"]
    assert newest["crossTenantAccessType"] == "b2bCollaboration"
    activity = graph_http.get(f"/users/{pending.id}", params={"$select": "id,signInActivity"}).json()
    assert activity["signInActivity"]["lastSuccessfulSignInDateTime"] == entry["createdDateTime"]
    assert activity["signInActivity"]["lastSignInRequestId"] == entry["correlationId"]


def test_direct_connect_sign_in_has_no_user_object_here(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    external = emulator.control.external_tenants()[0]
    home_user = external["users"][0]
    entry = emulator.control.sign_in(home_user["id"], homeTenantId=external["tenantId"])
    assert entry["crossTenantAccessType"] == "b2bDirectConnect"
    assert entry["homeTenantId"] == external["tenantId"]
    assert entry["resourceTenantId"] == emulator.tenant.id
    assert graph_http.get(f"/users/{home_user['id']}").status_code == 404


def test_entries_older_than_30_days_are_gone(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    before = len(follow(graph_http, graph_http.get("/auditLogs/signIns")))
    emulator.control.advance(days=31)
    assert before > 0
    assert graph_http.get("/auditLogs/signIns").json()["value"] == []


USERS_ONLY = {"usersAndGroups": ALLOWED, "applications": None}  # applications inherit the default: blocked
USERS_AND_TEAMS = {"usersAndGroups": ALLOWED, "applications": TEAMS}
BY_TOKEN = "MFA requirement satisfied by claim in the token"


@pytest.mark.parametrize(
    ("outbound", "inbound", "trust", "mfa_required", "code", "requirement", "mfa_step"),
    [
        pytest.param(False, None, True, False, 500212, "single", None, id="partner-outbound-blocked-first"),
        pytest.param(True, None, True, False, 500213, "single", None, id="our-default-inbound-blocks"),
        pytest.param(True, USERS_ONLY, True, False, 500213, "single", None, id="our-inbound-does-not-admit-teams"),
        pytest.param(True, USERS_AND_TEAMS, False, True, 90071, "multi", None, id="mfa-required-not-trusted"),
        pytest.param(True, USERS_AND_TEAMS, True, True, 0, "multi", BY_TOKEN, id="mfa-required-trusted"),
        pytest.param(True, USERS_AND_TEAMS, False, False, 0, "single", None, id="mfa-not-required"),
    ],
)
def test_direct_connect_outcome_follows_both_tenants_settings(
    emulator: EmulatorServer,
    graph_http: httpx.Client,
    outbound: bool,
    inbound: dict | None,
    trust: bool,
    mfa_required: bool,
    code: int,
    requirement: str,
    mfa_step: str | None,
) -> None:
    external = emulator.control.external_tenants()[0]
    tenant_id, home_user = external["tenantId"], external["users"][0]["id"]
    emulator.control.set_partner_outbound(tenant_id, outbound)
    emulator.control.set_external_mfa_required(mfa_required)
    body = {
        "tenantId": tenant_id,
        "b2bDirectConnectInbound": inbound,
        "inboundTrust": {
            "isMfaAccepted": trust,
            "isCompliantDeviceAccepted": False,
            "isHybridAzureADJoinedDeviceAccepted": False,
        },
    }
    assert graph_http.post(PARTNERS, json=body).status_code == 201

    entry = emulator.control.sign_in(home_user, homeTenantId=tenant_id, crossTenantAccessType="b2bDirectConnect")

    assert entry["status"]["errorCode"] == code
    assert (entry["status"]["failureReason"] is None) == (code == 0)
    assert entry["authenticationRequirement"] == f"{requirement}FactorAuthentication"
    steps = entry["authenticationDetails"]
    assert all(set(step) == STEP_FIELDS for step in steps)
    if code in (500212, 500213):
        assert steps == []  # refused by policy before any authentication step
    else:
        assert steps[0]["authenticationMethod"] == "Password"
    assert [step["authenticationStepResultDetail"] for step in steps[1:]] == ([mfa_step] if mfa_step else [])
    logged = graph_http.get("/auditLogs/signIns", params={"$top": "1"}).json()["value"][0]
    assert logged == entry


def test_explicit_outcome_overrides_the_settings(emulator: EmulatorServer) -> None:
    external = emulator.control.external_tenants()[0]
    emulator.control.set_partner_outbound(external["tenantId"], False)
    args = (external["users"][0]["id"],)
    ok = emulator.control.sign_in(*args, homeTenantId=external["tenantId"], success=True)
    failed = emulator.control.sign_in(*args, homeTenantId=external["tenantId"], success=False, errorCode=90071)
    assert (ok["status"]["errorCode"], failed["status"]["errorCode"]) == (0, 90071)
    assert emulator.control.tenant()["externalMfaRequired"] is False
