"""Partner discovery against an emulated tenant with five partner organisations, on both stores."""

from __future__ import annotations

from emulator.testing import EmulatorServer
from shared.graph import Graph
from shared.partners.service import discover_with, latest_discovery
from shared.store import Store
from tests.support.partners import DIRECT_CONNECT_INBOUND, NORTHWIND, WOODGROVE, partner_tenant
from tests.support.stale import NOW

LOOKUP = "/v1.0/tenantRelationships/findTenantInformationByDomainName"


async def configure(graph: Graph, tenant_id: str) -> None:
    body = {"tenantId": tenant_id, **DIRECT_CONNECT_INBOUND}
    await graph.request("POST", "/policies/crossTenantAccessPolicy/partners", json_body=body)


async def test_discover_ranks_and_explains_five_partners(emulator: EmulatorServer, graph: Graph, store: Store) -> None:
    built = partner_tenant(NOW)
    emulator.reset(built.tenant)
    await configure(graph, NORTHWIND)
    await configure(graph, WOODGROVE)
    emulator.control.clear_requests()

    found = await discover_with(graph, store, clock=lambda: NOW)

    rows = {p.display_name: p.to_json() for p in found.partners}
    assert [p.display_name for p in found.partners] == [
        "Fabrikam",
        "Northwind Traders",
        "Woodgrove Bank",
        "Tailspin Toys",
        "no tenant: consumer mail",
        "no tenant: no Entra tenant for the domain",
        "no tenant: non-Entra identity (MicrosoftAccount)",
    ]
    fabrikam = rows["Fabrikam"]
    assert (fabrikam["guests"], fabrikam["teams_only"], fabrikam["active_90_days"]) == (12, 10, 9)
    assert fabrikam["domains"] == ["fabrikam.co.uk", "fabrikam.com"]
    assert fabrikam["uses"] == {"teams only": 10, "directory role": 1, "apps": 0, "other groups": 1, "nothing": 0}
    assert fabrikam["recommendation"] == "migrate"
    assert fabrikam["reasons"] == [
        "10 of 12 guests are Teams-only",
        "direct connect not yet configured",
        "1 hold a directory role",
        "1 use other groups",
    ]
    assert fabrikam["direct_connect"] == {"inbound": "blocked", "outbound": "blocked", "explicit": False}
    assert fabrikam["sign_ins"] == {"b2bCollaboration": 3}
    assert rows["Northwind Traders"]["recommendation"] == "awaiting partner"
    assert "no direct connect sign-ins from them yet" in rows["Northwind Traders"]["reasons"][1]
    woodgrove = rows["Woodgrove Bank"]
    assert (woodgrove["recommendation"], woodgrove["sign_ins"]) == ("already configured", {"b2bDirectConnect": 3})
    assert woodgrove["direct_connect"] == {"inbound": "allowed", "outbound": "blocked", "explicit": True}
    tailspin = rows["Tailspin Toys"]
    assert (tailspin["recommendation"], tailspin["reasons"]) == (
        "keep guests",
        ["only 1 of 4 guests are Teams-only", "3 use apps"],
    )
    consumer = rows["no tenant: consumer mail"]
    assert (consumer["tenant_id"], consumer["guests"], consumer["domains"]) == (None, 2, ["gmail.com"])
    assert consumer["recommendation"] == "no tenant"

    lookups = emulator.control.requests(path=LOOKUP)
    assert sorted(r["path"].split("'")[1] for r in lookups) == sorted(
        ["fabrikam.com", "fabrikam.co.uk", "tailspin.com", "northwind.com", "woodgrove.com", "unknown-org.example"]
    )
    # what guests use is read only for partner tenants' guests, never for "no tenant" ones or role holders
    read = {r["path"].split("/")[3] for r in emulator.control.requests(path="/v1.0/users/") if r.get("batch")}
    assert read == {g for org in ("fabrikam", "tailspin", "northwind", "woodgrove") for g in built.guests[org]} - {
        built.role_holder
    }

    kept = await latest_discovery(store)
    assert kept is not None
    assert [p["display_name"] for p in kept["partners"]] == list(rows)

    emulator.control.clear_requests()
    again = await discover_with(graph, store, clock=lambda: NOW, min_guests=3)
    assert emulator.control.requests(path=LOOKUP) == []
    assert (again.lookups, again.lookups_cached) == (0, 6)
    assert [p.display_name for p in again.partners] == ["Fabrikam", "Northwind Traders", "Tailspin Toys"]
