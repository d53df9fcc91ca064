"""A token issued for a partner's tenant is answered from that tenant's directory: only `GET /users` (filters,
$select, paging as /users does), 401 until their admin consents, 403 for anything else."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from emulator.seed import empty_tenant, make_user
from emulator.tenant import ExternalTenant
from emulator.testing import EmulatorServer

PARTNER = "aaaaaaaa-0000-4000-8000-0000000000aa"
PEOPLE = {f"eeeeeeee-0000-4000-8000-{n:012d}": f"p{n}@partner.example" for n in range(20)}


def token(tid: str) -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part({'tid': tid})}."


@pytest.fixture
def partner_http(emulator: EmulatorServer) -> httpx.Client:
    tenant = empty_tenant()
    make_user(tenant, mail="p0@partner.example", userPrincipalName="p0@partner.example")  # ours, not theirs
    external = tenant.add_external_tenant(ExternalTenant(PARTNER, "Partner", "partner.example", ("partner.example",)))
    external.users.update({i: {"displayName": m.split("@")[0], "mail": m} for i, m in PEOPLE.items()})
    first = next(iter(PEOPLE))
    external.users[first].update(accountEnabled=False, otherMails=["old@partner.example"])
    external.app_consented = True
    emulator.reset(tenant)
    headers = {"Authorization": f"Bearer {token(PARTNER)}"}
    return httpx.Client(base_url=emulator.base_url, headers=headers, timeout=30.0)


def test_users_filtered_selected_and_paged_from_the_partner_tenant(partner_http: httpx.Client) -> None:
    wanted = [f"p{n}@partner.example" for n in range(12)]
    listed = ",".join(f"'{m}'" for m in wanted)
    select = "id,mail,userPrincipalName,otherMails,accountEnabled,userType"
    params = {"$filter": f"mail in ({listed})", "$select": select, "$top": "5"}
    found, url = [], "/users"
    while url:
        page = partner_http.get(url, params=params if url == "/users" else None).json()
        found += page["value"]
        url = page.get("@odata.nextLink", "")
    assert [u["mail"] for u in found] == wanted  # theirs (our p0 is another object), every page
    first = found[0]
    assert first == {
        "id": next(iter(PEOPLE)),
        "mail": "p0@partner.example",
        "userPrincipalName": "p0@partner.example",
        "otherMails": ["old@partner.example"],
        "accountEnabled": False,
        "userType": "Member",
    }
    by_upn = partner_http.get("/users", params={"$filter": "userPrincipalName eq 'p3@partner.example'"}).json()
    assert [u["id"] for u in by_upn["value"]] == [list(PEOPLE)[3]]
    too_many = ",".join(f"'{m}'" for m in PEOPLE.values())  # 20 values: Graph's limit is 15
    assert partner_http.get("/users", params={"$filter": f"mail in ({too_many})"}).status_code == 400


def test_anything_else_is_denied_and_consent_is_required(emulator: EmulatorServer, partner_http: httpx.Client) -> None:
    for method, path in (("GET", f"/users/{next(iter(PEOPLE))}"), ("GET", "/groups"), ("POST", "/users")):
        denied = partner_http.request(method, path, json={} if method == "POST" else None)
        assert denied.status_code == 403
        assert denied.json()["error"]["code"] == "Authorization_RequestDenied"
    emulator.control.set_partner_app_consent(PARTNER, False)
    refused = partner_http.get("/users", params={"$filter": "mail eq 'p1@partner.example'"})
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert "AADSTS65001" in refused.json()["error"]["message"]
    stranger = token("aaaaaaaa-0000-4000-8000-0000000000ff")
    unknown = partner_http.get("/users", headers={"Authorization": f"Bearer {stranger}"})
    assert unknown.status_code == 401
    # A token without a partner's tid is ours, as before; the request log says whose tenant each request was for.
    ours = partner_http.get("/users", headers={"Authorization": "Bearer plain"}).json()
    assert [u["mail"] for u in ours["value"]] == ["p0@partner.example"]
    tenants = [r["tenantId"] for r in emulator.control.requests(path="/v1.0/users")]
    assert tenants[-1] == emulator.tenant.id
    assert PARTNER in tenants
