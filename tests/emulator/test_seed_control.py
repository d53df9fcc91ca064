"""Seed generator (determinism, ground truth matches data) and the /_emulator control API."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from emulator.clock import format_datetime
from emulator.seed import GUEST_KINDS, seed_tenant
from emulator.testing import EmulatorServer
from tests.support.emulator import NOW


def fingerprint(seed: int | str, **kwargs: int) -> list[tuple]:
    tenant = seed_tenant(seed, now=NOW, **kwargs)
    return [(u.id, u.mail, u.createdDateTime, u.sign_in) for u in tenant.users.values()]


def test_same_seed_same_tenant_and_other_seed_other_tenant() -> None:
    assert fingerprint(5, guests=40, members=5) == fingerprint(5, guests=40, members=5)
    assert fingerprint(5, guests=40, members=5) != fingerprint(6, guests=40, members=5)


def test_demo_tenant_is_small_and_fixed() -> None:
    demo = seed_tenant("demo", now=NOW)
    assert fingerprint("demo") == fingerprint("demo")
    guests = [u for u in demo.users.values() if u.userType == "Guest"]
    assert len(guests) == 40
    assert {u.displayName for u in demo.users.values()} >= {"Adele Vance", "Megan Bowen"}
    assert len(demo.external_tenants) == 5


def test_generated_counts_and_every_kind_present() -> None:
    tenant = seed_tenant(9, guests=600, members=30, now=NOW)
    truth = tenant.ground_truth
    guests = [u for u in tenant.users.values() if u.userType == "Guest"]
    assert len(guests) == 600 == len(truth["guest_kinds"])
    assert set(Counter(truth["guest_kinds"].values())) == {kind for kind, _ in GUEST_KINDS}
    assert set(truth["identity_kinds"].values()) == {"aad", "msa", "otp"}
    assert tenant.size_class == "L"


def test_ground_truth_matches_the_objects() -> None:
    tenant = seed_tenant(9, guests=600, members=30, now=NOW)
    truth = tenant.ground_truth
    now = format_datetime(NOW)
    days_ago = lambda d: format_datetime(NOW - timedelta(days=d))  # noqa: E731
    for user_id, kind in truth["guest_kinds"].items():
        user = tenant.users[user_id]
        assert user.creationType == "Invitation"
        assert user.userType == "Guest"
        if kind.startswith("pending"):
            assert user.externalUserState == "PendingAcceptance"
            assert user.sign_in is None
        else:
            assert user.externalUserState == "Accepted"
        if kind == "active":
            assert user.sign_in[4] >= days_ago(30)
        if kind == "stale":
            assert days_ago(721) <= user.sign_in[4] <= days_ago(91)
        if kind == "token_refresh":
            assert user.sign_in[0] <= days_ago(120)
            assert user.sign_in[2] >= days_ago(14)
        if kind == "no_activity":
            assert user.sign_in is None
            assert user.createdDateTime < "2020-04-01"
        if kind == "disabled":
            assert user.accountEnabled is False
        if kind == "pending_stale":
            assert user.createdDateTime <= days_ago(60)
        assert user.createdDateTime <= now
        if user.sign_in and user.sign_in[0]:
            assert user.createdDateTime <= user.sign_in[0]
    for user_id in truth["external_members"]:
        user = tenant.users[user_id]
        assert user.userType == "Member"
        assert user.creationType == "Invitation"
    for user_id in truth["role_holding_guests"]:
        assert tenant.role_of[user_id]


def test_partner_organisations_have_tenants_and_domains() -> None:
    tenant = seed_tenant(9, guests=200, members=10, now=NOW)
    for partner in tenant.ground_truth["partners"]:
        external = tenant.external_tenants[partner["tenantId"]]
        assert partner["domain"] in external.domains
    aad = [u for u in tenant.users.values() if tenant.ground_truth["identity_kinds"].get(u.id) == "aad"]
    assert all(u.mail.split("@")[1] in {p["domain"] for p in tenant.ground_truth["partners"]} for u in aad)


def test_sign_in_log_has_both_cross_tenant_access_types() -> None:
    tenant = seed_tenant(9, guests=200, members=10, now=NOW)
    kinds = Counter(e["crossTenantAccessType"] for e in tenant.sign_ins)
    assert kinds["b2bCollaboration"]
    assert kinds["b2bDirectConnect"]
    assert kinds["none"]
    assert all(e["createdDateTime"] >= format_datetime(NOW - timedelta(days=30)) for e in tenant.sign_ins)


# ---- control API ---------------------------------------------------------------------------------


def test_reset_and_generate_guests(emulator: EmulatorServer) -> None:
    summary = emulator.control.reset(seed=4, guests=30, members=6, now=NOW)
    assert summary["guests"] == 30
    ids = emulator.control.generate_guests(10, seed=2)
    assert len(ids) == 10
    assert emulator.control.tenant()["guests"] == 40
    assert set(ids) <= set(emulator.control.ground_truth()["guest_kinds"])


def test_clock_moves_forward_only_and_dates_follow_it(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    emulator.control.set_clock(frozen=True)
    before = emulator.control.clock()["now"]
    after = emulator.control.advance(days=10)["now"]
    assert after == format_datetime(datetime.fromisoformat(before.replace("Z", "+00:00")) + timedelta(days=10))
    with pytest.raises(RuntimeError):
        emulator.control.set_clock(now="2001-01-01T00:00:00Z")
    created = graph_http.post(
        "/invitations",
        json={"invitedUserEmailAddress": "mo@fabrikam.com", "inviteRedirectUrl": "https://myapps.microsoft.com"},
    )
    user = graph_http.get(
        f"/users/{created.json()['invitedUser']['id']}", params={"$select": "id,createdDateTime"}
    ).json()
    assert user["createdDateTime"] == after
    assert created.headers["date"] == datetime.fromisoformat(after.replace("Z", "+00:00")).astimezone(UTC).strftime(
        "%a, %d %b %Y %H:%M:%S GMT"
    )


def test_request_log_records_method_path_query_headers(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    emulator.control.clear_requests()
    graph_http.get("/users", params={"$select": "id", "$top": "3"}, headers={"ConsistencyLevel": "eventual"})
    [entry] = emulator.control.requests()
    assert entry["method"] == "GET"
    assert entry["path"] == "/v1.0/users"
    assert entry["query"] == {"$select": "id", "$top": "3"}
    assert entry["headers"]["consistencylevel"] == "eventual"
    assert entry["status"] == 200


def test_create_user_and_sign_in_activity_switch(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    created = emulator.control.create_user(
        userType="Guest",
        mail="pat@example.org",
        externalUserState="Accepted",
        signInActivity={"lastSignInDateTime": "2025-01-02T03:04:05Z"},
    )
    user = graph_http.get(f"/users/{created['id']}", params={"$select": "id,signInActivity,identities"}).json()
    assert user["signInActivity"]["lastSignInDateTime"] == "2025-01-02T03:04:05Z"
    emulator.control.set_sign_in_activity_available(False)
    response = graph_http.get("/users", params={"$select": "id,signInActivity"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
    assert graph_http.get("/users", params={"$select": "id"}).status_code == 200


def test_control_api_needs_no_token_and_rejects_bad_settings(emulator: EmulatorServer) -> None:
    assert httpx.get(f"{emulator.root_url}/_emulator/health").status_code == 200
    assert httpx.put(f"{emulator.root_url}/_emulator/limits", json={"bogus": 1}).status_code == 400
    assert httpx.put(f"{emulator.root_url}/_emulator/faults", json={"rate_429": "x", "bogus": 1}).status_code == 400
