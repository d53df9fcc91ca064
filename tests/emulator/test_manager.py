"""A user's manager (GET, PUT and DELETE /users/{id}/manager) and $filter on employeeId, per the user resource."""

from __future__ import annotations

import httpx

from emulator.testing import EmulatorServer


def test_manager_is_404_until_set_then_a_directory_object(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    boss = emulator.control.create_user(displayName="Boss", mail="boss@contoso.com")["id"]
    worker = emulator.control.create_user(displayName="Worker", mail="worker@contoso.com")["id"]
    missing = graph_http.get(f"/users/{worker}/manager")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "Request_ResourceNotFound"

    ref = {"@odata.id": f"https://graph.microsoft.com/v1.0/users/{boss}"}
    assert graph_http.put(f"/users/{worker}/manager/$ref", json=ref).status_code == 204
    found = graph_http.get(f"/users/{worker}/manager", params={"$select": "id,mail"}).json()
    assert found["@odata.type"] == "#microsoft.graph.user"
    assert (found["id"], found["mail"]) == (boss, "boss@contoso.com")
    assert found["@odata.context"].endswith("$metadata#directoryObjects/$entity")

    assert graph_http.delete(f"/users/{worker}/manager/$ref").status_code == 204
    assert graph_http.get(f"/users/{worker}/manager").status_code == 404


def test_manager_seeded_and_gone_with_the_manager(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    boss = emulator.control.create_user(displayName="Boss", mail="boss@contoso.com")["id"]
    worker = emulator.control.create_user(displayName="Worker", mail="worker@contoso.com", manager=boss)["id"]
    assert graph_http.get(f"/users/{worker}/manager").json()["id"] == boss
    assert graph_http.delete(f"/users/{boss}").status_code == 204
    assert graph_http.get(f"/users/{worker}/manager").status_code == 404


def test_employee_id_filters_eq_by_default_ne_only_as_advanced(
    emulator: EmulatorServer, graph_http: httpx.Client
) -> None:
    worker = emulator.control.create_user(displayName="Worker", mail="w@contoso.com", employeeId="E-1001")["id"]
    emulator.control.create_user(displayName="Other", mail="o@contoso.com", employeeId="E-2002")
    found = graph_http.get("/users", params={"$filter": "employeeId eq 'E-1001'", "$select": "id,employeeId"})
    assert [(u["id"], u["employeeId"]) for u in found.json()["value"]] == [(worker, "E-1001")]
    refused = graph_http.get("/users", params={"$filter": "employeeId ne 'E-1001'"})
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "Request_UnsupportedQuery"
