"""Groups and $ref semantics, membership checks, roles, sponsors, deletedItems and retention."""

from __future__ import annotations

import httpx
import pytest

from emulator.testing import EmulatorServer


def group_id(emulator: EmulatorServer, name: str) -> str:
    return emulator.control.ground_truth()["groups"][name]


def a_guest(emulator: EmulatorServer, *, roles: bool = False) -> str:
    tenant = emulator.tenant
    for user in tenant.users.values():
        if user.userType == "Guest" and bool(tenant.role_of.get(user.id)) == roles:
            return user.id
    raise AssertionError("no such guest")


def ref(emulator: EmulatorServer, object_id: str) -> dict[str, str]:
    return {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{object_id}"}


def test_add_member_ref_then_adding_again_is_400(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    group, guest = group_id(emulator, "Executives"), a_guest(emulator)
    assert graph_http.post(f"/groups/{group}/members/$ref", json=ref(emulator, guest)).status_code == 204
    again = graph_http.post(f"/groups/{group}/members/$ref", json=ref(emulator, guest))
    assert again.status_code == 400
    assert "One or more added object references already exist" in again.json()["error"]["message"]
    members = graph_http.get(f"/groups/{group}/members", params={"$select": "id"}).json()["value"]
    assert guest in [m["id"] for m in members]


def test_remove_member_ref_keeps_the_user(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    static = group_id(emulator, "All Partners")
    member = next(m for m in emulator.tenant.groups[static].members if m in emulator.tenant.users)
    assert graph_http.delete(f"/groups/{static}/members/{member}/$ref").status_code == 204
    assert member not in emulator.tenant.groups[static].members
    assert member in emulator.tenant.users
    assert graph_http.delete(f"/groups/{static}/members/{member}/$ref").status_code == 404


def test_delete_member_without_ref_deletes_the_user(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    static = group_id(emulator, "All Partners")
    member = next(m for m in emulator.tenant.groups[static].members if m in emulator.tenant.users)
    assert graph_http.delete(f"/groups/{static}/members/{member}").status_code == 204
    assert member not in emulator.tenant.users
    assert member in emulator.tenant.deleted


def test_dynamic_group_membership_cannot_be_edited(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    group = group_id(emulator, "All Guests (dynamic)")
    member = next(iter(emulator.tenant.groups[group].members))
    assert graph_http.delete(f"/groups/{group}/members/{member}/$ref").status_code == 400


def test_check_member_groups_is_transitive(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    finance, partners = group_id(emulator, "Finance Partners"), group_id(emulator, "All Partners")
    executives = group_id(emulator, "Executives")
    guest = a_guest(emulator)
    graph_http.post(f"/groups/{finance}/members/$ref", json=ref(emulator, guest))
    emulator.tenant.remove_member(emulator.tenant.groups[partners], guest)
    response = graph_http.post(f"/users/{guest}/checkMemberGroups", json={"groupIds": [finance, partners, executives]})
    assert response.status_code == 200
    assert sorted(response.json()["value"]) == sorted([finance, partners])
    assert response.headers["x-ms-resource-unit"] == "4"


def test_check_member_groups_takes_at_most_20_ids(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    ids = [f"00000000-0000-0000-0000-{i:012d}" for i in range(21)]
    assert graph_http.post(f"/users/{a_guest(emulator)}/checkMemberGroups", json={"groupIds": ids}).status_code == 400


def test_transitive_member_of_lists_groups_and_roles(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    guest = emulator.control.ground_truth()["role_holding_guests"][0]
    items = graph_http.get(f"/users/{guest}/transitiveMemberOf").json()["value"]
    kinds = {item["@odata.type"] for item in items}
    assert "#microsoft.graph.directoryRole" in kinds
    only_groups = graph_http.get(f"/users/{guest}/transitiveMemberOf/microsoft.graph.group").json()["value"]
    assert {item["@odata.type"] for item in only_groups} <= {"#microsoft.graph.group"}


def test_directory_roles_and_their_members(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    roles = graph_http.get("/directoryRoles").json()["value"]
    by_name = {r["displayName"]: r for r in roles}
    assert by_name["Global Administrator"]["roleTemplateId"] == "62e90394-69f5-4237-9190-012177145e10"
    members = graph_http.get(f"/directoryRoles/{by_name['Global Administrator']['id']}/members").json()["value"]
    assert [m["id"] for m in members] == emulator.control.ground_truth()["admins"][:1]


@pytest.mark.parametrize(
    ("text", "names"),
    [
        pytest.param("displayName eq 'Executives'", {"Executives"}, id="displayName-eq"),
        pytest.param("startsWith(displayName,'Partner - ')", None, id="displayName-startsWith"),
        pytest.param(
            "resourceProvisioningOptions/Any(x:x eq 'Team')",
            {"Project Phoenix", "Supplier Collaboration"},
            id="teams-enabled-groups",
        ),
    ],
)
def test_group_filters(emulator: EmulatorServer, graph_http: httpx.Client, text: str, names: set[str] | None) -> None:
    items = graph_http.get("/groups", params={"$filter": text, "$select": "id,displayName"}).json()["value"]
    found = {g["displayName"] for g in items}
    if names is None:
        names = {g.displayName for g in emulator.tenant.groups.values() if g.displayName.startswith("Partner - ")}
        assert names
    assert found == names
    assert all(set(g) == {"id", "displayName"} for g in items)


def test_sponsors_list_and_add_ref(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    guest = a_guest(emulator)
    member = next(
        u.id
        for u in emulator.tenant.users.values()
        if u.userType == "Member" and u.id not in emulator.tenant.users[guest].sponsors
    )
    before = [s["id"] for s in graph_http.get(f"/users/{guest}/sponsors").json()["value"]]
    body = {"@odata.id": f"https://graph.microsoft.com/v1.0/users/{member}"}
    assert graph_http.post(f"/users/{guest}/sponsors/$ref", json=body).status_code == 204
    after = [s["id"] for s in graph_http.get(f"/users/{guest}/sponsors").json()["value"]]
    assert after == [*before, member]
    assert graph_http.post(f"/users/{guest}/sponsors/$ref", json=body).status_code == 400


def test_revoke_sign_in_sessions(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    guest = a_guest(emulator)
    before = emulator.tenant.users[guest].signInSessionsValidFromDateTime
    emulator.control.advance(days=1)
    response = graph_http.post(f"/users/{guest}/revokeSignInSessions")
    assert response.status_code == 200
    assert response.json()["value"] is True
    after = graph_http.get(f"/users/{guest}", params={"$select": "id,signInSessionsValidFromDateTime"}).json()
    assert after["signInSessionsValidFromDateTime"] > before


def test_deleting_a_user_holding_an_admin_role_is_forbidden(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    admin = emulator.control.ground_truth()["admins"][0]
    response = graph_http.delete(f"/users/{admin}")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "Authorization_RequestDenied"


def test_soft_delete_restore_with_memberships(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    partners = group_id(emulator, "All Partners")
    guest = next(m for m in emulator.tenant.groups[partners].members if m in emulator.tenant.users)
    assert graph_http.delete(f"/users/{guest}").status_code == 204
    assert graph_http.get(f"/users/{guest}").status_code == 404
    deleted = graph_http.get("/directory/deletedItems/microsoft.graph.user").json()["value"]
    [entry] = [d for d in deleted if d["id"] == guest]
    assert entry["@odata.type"] == "#microsoft.graph.user"
    assert entry["userPrincipalName"].startswith(guest.replace("-", ""))
    assert graph_http.get(f"/directory/deletedItems/{guest}").status_code == 200
    restored = graph_http.post(f"/directory/deletedItems/{guest}/restore")
    assert restored.status_code == 200
    assert restored.json()["id"] == guest
    assert guest in emulator.tenant.groups[partners].members
    assert graph_http.get(f"/users/{guest}").status_code == 200


def test_permanent_delete(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    guest = a_guest(emulator)
    graph_http.delete(f"/users/{guest}")
    assert graph_http.delete(f"/directory/deletedItems/{guest}").status_code == 204
    assert graph_http.get(f"/directory/deletedItems/{guest}").status_code == 404
    assert graph_http.post(f"/directory/deletedItems/{guest}/restore").status_code == 404


@pytest.mark.parametrize(
    ("days", "restorable"),
    [pytest.param(29, True, id="restorable-within-30-days"), pytest.param(31, False, id="purged-after-30-days")],
)
def test_deleted_items_retention(
    emulator: EmulatorServer, graph_http: httpx.Client, days: int, restorable: bool
) -> None:
    guest = a_guest(emulator)
    graph_http.delete(f"/users/{guest}")
    emulator.control.advance(days=days)
    assert (graph_http.get(f"/directory/deletedItems/{guest}").status_code == 200) is restorable


def test_app_role_assignments_list_the_users_own_and_its_direct_groups(
    emulator: EmulatorServer, graph_http: httpx.Client
) -> None:
    guest = a_guest(emulator)
    static = group_id(emulator, "Executives")
    assert graph_http.post(f"/groups/{static}/members/$ref", json=ref(emulator, guest)).status_code == 204
    own = emulator.control.assign_app_role(guest, "11111111-1111-1111-1111-111111111111", "Expenses")
    emulator.control.assign_app_role(static, "22222222-2222-2222-2222-222222222222", "Intranet")
    listed = graph_http.get(f"/users/{guest}/appRoleAssignments").json()["value"]
    assert [(a["resourceDisplayName"], a["principalType"]) for a in listed] == [
        ("Expenses", "User"),
        ("Intranet", "Group"),
    ]
    assert set(listed[0]) == {
        "id", "appRoleId", "createdDateTime", "deletedDateTime", "principalDisplayName",
        "principalId", "principalType", "resourceDisplayName", "resourceId",
    }  # fmt: skip
    assert (listed[0]["id"], listed[0]["deletedDateTime"]) == (own["id"], None)
    selected = graph_http.get(f"/users/{guest}/appRoleAssignments", params={"$select": "resourceId"}).json()
    assert selected["value"][0] == {"id": own["id"], "resourceId": "11111111-1111-1111-1111-111111111111"}
    members = emulator.tenant.groups[static].members
    other = next(u for u in emulator.tenant.users.values() if u.userType == "Member" and u.id not in members)
    assert graph_http.get(f"/users/{other.id}/appRoleAssignments").json()["value"] == []
    unknown = graph_http.get(f"/users/{guest}/appRoleAssignments", params={"$select": "nonsense"})
    assert unknown.status_code == 400
