"""GET /auditLogs/signIns: order, page size, documented filters only, retention, recorded sign-ins."""

from __future__ import annotations

import httpx
import pytest

from emulator.testing import EmulatorServer
from tests.support.emulator import follow


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
    ):
        assert field in entry
    assert "errorCode" in entry["status"]


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
