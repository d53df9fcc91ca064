"""/servicePrincipals: Microsoft Graph's own with its application permissions as appRoles, a managed identity's by
appId, and the app-role assignments granted to it."""

from __future__ import annotations

import httpx

from emulator.service_principals import GRAPH_APP_ID, SERVICE_PRINCIPAL_FIELDS
from emulator.testing import EmulatorServer

IDENTITY_CLIENT_ID = "6c1a4b52-3d1e-4f0e-9a7b-2f8d5e9c0a11"
USER_READ_ALL = "df021288-bdef-4463-88db-98f22de89214"


def test_graph_service_principal_by_app_id_lists_its_application_permissions(graph_http: httpx.Client) -> None:
    response = graph_http.get(f"/servicePrincipals(appId='{GRAPH_APP_ID}')")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(SERVICE_PRINCIPAL_FIELDS) <= set(body)  # every documented property, null or empty when unset
    assert body["appId"] == GRAPH_APP_ID
    assert body["displayName"] == "Microsoft Graph"
    roles = {role["value"]: role for role in body["appRoles"]}
    assert roles["User.Read.All"]["id"] == USER_READ_ALL
    assert roles["User.Read.All"]["allowedMemberTypes"] == ["Application"]
    same = graph_http.get(f"/servicePrincipals/{body['id']}", params={"$select": "id,appRoles"}).json()
    assert set(same) == {"@odata.context", "id", "appRoles"}
    assert same["appRoles"] == body["appRoles"]


def test_a_managed_identity_sees_the_permissions_granted_to_it(
    emulator: EmulatorServer, graph_http: httpx.Client
) -> None:
    graph = graph_http.get(f"/servicePrincipals(appId='{GRAPH_APP_ID}')", params={"$select": "id"}).json()
    identity = emulator.control.add_service_principal(IDENTITY_CLIENT_ID, "guestctl-identity")
    emulator.control.assign_app_role(identity["id"], graph["id"], "Microsoft Graph", USER_READ_ALL)

    found = graph_http.get(f"/servicePrincipals(appId='{IDENTITY_CLIENT_ID.upper()}')", params={"$select": "id"})
    assert found.json()["id"] == identity["id"]
    assignments = graph_http.get(f"/servicePrincipals/{identity['id']}/appRoleAssignments").json()["value"]
    assert [(a["appRoleId"], a["resourceId"], a["principalType"]) for a in assignments] == [
        (USER_READ_ALL, graph["id"], "ServicePrincipal")
    ]
    assert graph_http.get(f"/servicePrincipals/{graph['id']}/appRoleAssignments").json()["value"] == []


def test_an_unknown_app_id_is_404_and_an_unknown_property_400(graph_http: httpx.Client) -> None:
    missing = graph_http.get(f"/servicePrincipals(appId='{IDENTITY_CLIENT_ID}')")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "Request_ResourceNotFound"
    bad = graph_http.get(f"/servicePrincipals(appId='{GRAPH_APP_ID}')", params={"$select": "nope"})
    assert bad.status_code == 400
