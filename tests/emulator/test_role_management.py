"""/roleManagement/directory: every form of role holding (activated, AU-scoped, custom, PIM-eligible)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from emulator.tenant import Group, directory_assignment_id
from emulator.testing import EmulatorServer
from tests.support.emulator import NOW, follow

ASSIGNMENTS = "/roleManagement/directory/roleAssignments"
ELIGIBILITY = "/roleManagement/directory/roleEligibilitySchedules"
USER_ADMIN = "fe930be7-5e62-47db-91af-98c3a49a38b1"
HELPDESK = "729827e3-9c14-49f7-bb1b-9608f156bbb8"


def role_id(emulator: EmulatorServer, name: str) -> str:
    return next(r.id for r in emulator.tenant.roles.values() if r.displayName == name)


def directory_role_members(graph_http: httpx.Client, directory_role_id: str) -> set[str]:
    return {m["id"] for m in graph_http.get(f"/directoryRoles/{directory_role_id}/members").json()["value"]}


def assert_graph_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}


def test_every_directory_role_membership_is_a_tenant_wide_assignment(
    emulator: EmulatorServer, graph_http: httpx.Client
) -> None:
    first = graph_http.get(ASSIGNMENTS, params={"$top": "3"})
    assert first.headers["x-ms-resource-unit"] == "1"  # 1 RU, $top < 20 → floor of 1
    assert first.json()["@odata.context"].endswith("$metadata#roleManagement/directory/roleAssignments")
    assert "$top=3" in first.json()["@odata.nextLink"]
    items = follow(graph_http, first)
    assert len({i["id"] for i in items}) == len(items) == len(emulator.tenant.unified_role_assignments())
    assert all(set(i) == {"id", "principalId", "roleDefinitionId", "directoryScopeId", "appScopeId"} for i in items)
    tenant_wide = {(i["principalId"], i["roleDefinitionId"]) for i in items if i["directoryScopeId"] == "/"}
    for role in emulator.tenant.roles.values():
        for member in directory_role_members(graph_http, role.id):
            assert (member, role.roleTemplateId) in tenant_wide
    admin = emulator.control.ground_truth()["admins"][0]
    (global_admin,) = [i for i in items if i["principalId"] == admin and i["roleDefinitionId"].startswith("62e90394")]
    # Entra's id for a tenant-wide assignment: base64url(role definition + principal GUID bytes) + "-1"
    assert global_admin["id"] == directory_assignment_id("62e90394-69f5-4237-9190-012177145e10", admin)
    assert global_admin["id"].startswith("lAPpYvVpN0KRkAEhdxReE")
    assert global_admin["appScopeId"] is None


def test_filter_by_principal_finds_the_au_scoped_assignment_that_directory_roles_do_not_show(
    emulator: EmulatorServer, graph_http: httpx.Client
) -> None:
    truth = emulator.control.ground_truth()
    (guest,) = truth["scoped_role_guests"]
    au = truth["administrative_units"]["Partner Guests"]
    response = graph_http.get(ASSIGNMENTS, params={"$filter": f"principalId eq '{guest}'"})
    assert response.status_code == 200
    (assignment,) = response.json()["value"]
    assert assignment["roleDefinitionId"] == HELPDESK
    assert assignment["directoryScopeId"] == f"/administrativeUnits/{au}"
    assert guest not in directory_role_members(graph_http, role_id(emulator, "Helpdesk Administrator"))
    assert not emulator.tenant.role_of.get(guest)
    memberships = graph_http.get(f"/users/{guest}/memberOf/microsoft.graph.directoryRole").json()["value"]
    assert memberships == []


def test_filter_by_role_definition_finds_custom_role_holders(
    emulator: EmulatorServer, graph_http: httpx.Client
) -> None:
    truth = emulator.control.ground_truth()
    custom = truth["custom_roles"]["Partner Access Reviewer"]
    items = graph_http.get(ASSIGNMENTS, params={"$filter": f"roleDefinitionId eq '{custom}'"}).json()["value"]
    assert [i["principalId"] for i in items] == truth["custom_role_guests"]
    assert all(i["directoryScopeId"] == "/" for i in items)
    definitions = graph_http.get("/roleManagement/directory/roleDefinitions").json()["value"]
    by_id = {d["id"]: d for d in definitions}
    assert by_id[custom]["isBuiltIn"] is False
    assert by_id[USER_ADMIN]["isBuiltIn"] is True
    assert by_id[USER_ADMIN]["templateId"] == USER_ADMIN
    # Custom roles never become directoryRoles.
    assert custom not in {r["roleTemplateId"] for r in graph_http.get("/directoryRoles").json()["value"]}


def test_filter_and_select_combinations(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    admin = emulator.control.ground_truth()["admins"][1]  # User Administrator and Guest Inviter
    both = graph_http.get(
        ASSIGNMENTS,
        params={
            "$filter": f"principalId eq '{admin}' and roleDefinitionId in ('{USER_ADMIN}', '{HELPDESK}')",
            "$select": "principalId,roleDefinitionId",
        },
    )
    assert both.status_code == 200
    assert both.json()["value"] == [
        {"principalId": admin, "roleDefinitionId": USER_ADMIN, "id": both.json()["value"][0]["id"]}
    ]
    assert both.headers["x-ms-resource-unit"] == "1"


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        pytest.param({"$filter": "startsWith(principalId,'a')"}, 400, "Request_UnsupportedQuery", id="startsWith"),
        pytest.param({"$filter": "principalId ne 'x'"}, 400, "Request_UnsupportedQuery", id="ne"),
        pytest.param({"$filter": "id eq 'x'"}, 400, "Request_UnsupportedQuery", id="id-not-filterable"),
        pytest.param({"$filter": "displayName eq 'x'"}, 400, "Request_BadRequest", id="unknown-property"),
        pytest.param({"$filter": "principalId eq"}, 400, "Request_BadRequest", id="malformed"),
        pytest.param({"$select": "resourceScope"}, 400, "Request_BadRequest", id="unknown-select"),
        pytest.param({"$orderby": "principalId"}, 400, "Request_UnsupportedQuery", id="orderby"),
        pytest.param({"$expand": "roleDefinition"}, 400, "Request_BadRequest", id="expand-other"),
        pytest.param({"$top": "0"}, 400, "Request_UnsupportedQuery", id="top-zero"),
    ],
)
def test_unsupported_queries_get_graph_errors(
    graph_http: httpx.Client, params: dict[str, str], status: int, code: str
) -> None:
    assert_graph_error(graph_http.get(ASSIGNMENTS, params=params), status, code)


def test_expand_principal(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    (guest,) = emulator.control.ground_truth()["custom_role_guests"]
    response = graph_http.get(ASSIGNMENTS, params={"$filter": f"principalId eq '{guest}'", "$expand": "principal"})
    (item,) = response.json()["value"]
    assert item["principal"]["@odata.type"] == "#microsoft.graph.user"
    assert item["principal"]["id"] == guest
    assert response.headers["x-ms-resource-unit"] == "2"  # $expand +1


def test_eligibility_schedules_list_pim_eligible_guests(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    truth = emulator.control.ground_truth()
    (guest,) = truth["eligible_role_guests"]
    response = graph_http.get(ELIGIBILITY)
    assert response.status_code == 200
    assert response.headers["x-ms-resource-unit"] == "1"
    assert response.json()["@odata.context"].endswith("roleManagement/directory/roleEligibilitySchedules")
    (schedule,) = [s for s in response.json()["value"] if s["principalId"] == guest]
    assert schedule["roleDefinitionId"] == USER_ADMIN
    assert schedule["directoryScopeId"] == "/"
    assert schedule["memberType"] == "Direct"
    assert schedule["status"] == "Provisioned"
    assert schedule["scheduleInfo"]["startDateTime"] <= truth["now"]
    assert schedule["scheduleInfo"]["expiration"] == {"type": "noExpiration", "endDateTime": None, "duration": None}
    # Eligible is not active: not a member of the directoryRole, not in roleAssignments.
    assert guest not in directory_role_members(graph_http, role_id(emulator, "User Administrator"))
    assert graph_http.get(ASSIGNMENTS, params={"$filter": f"principalId eq '{guest}'"}).json()["value"] == []
    filtered = graph_http.get(
        ELIGIBILITY, params={"$filter": f"principalId eq '{guest}'", "$select": "roleDefinitionId"}
    )
    assert filtered.json()["value"] == [{"roleDefinitionId": USER_ADMIN, "id": schedule["id"]}]


def test_eligibility_paging_and_expiry(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    members = emulator.control.ground_truth()["members"]
    for user_id in members[3:8]:
        emulator.control.make_eligible("Helpdesk Administrator", user_id, end=NOW + timedelta(days=10))
    everyone = follow(graph_http, graph_http.get(ELIGIBILITY, params={"$top": "2"}))
    assert len({s["id"] for s in everyone}) == len(everyone) == 6
    ending = [s for s in everyone if s["principalId"] in members[3:8]]
    assert {s["scheduleInfo"]["expiration"]["type"] for s in ending} == {"afterDateTime"}
    emulator.control.advance(days=11)
    left = graph_http.get(ELIGIBILITY).json()["value"]
    assert [s["principalId"] for s in left] == emulator.control.ground_truth()["eligible_role_guests"]
    assert not set(members[3:8]) & emulator.tenant.all_role_principals()


def test_tenant_without_p2_refuses_eligibility_but_lists_assignments(
    emulator: EmulatorServer, graph_http: httpx.Client
) -> None:
    emulator.control.set_pim_available(False)
    assert emulator.control.tenant()["pimAvailable"] is False
    refused = graph_http.get(ELIGIBILITY)
    assert_graph_error(refused, 400, "AadPremiumLicenseRequired")
    assert "Premium 2" in refused.json()["error"]["message"]
    assert graph_http.get(ASSIGNMENTS).status_code == 200
    emulator.control.set_pim_available(True)
    assert graph_http.get(ELIGIBILITY).status_code == 200


def test_deleted_user_loses_every_form_and_restore_brings_it_back(
    emulator: EmulatorServer, graph_http: httpx.Client
) -> None:
    truth = emulator.control.ground_truth()
    (scoped,) = truth["scoped_role_guests"]
    (eligible,) = truth["eligible_role_guests"]
    (activated,) = truth["role_holding_guests"]
    for user_id in (scoped, eligible, activated):
        assert graph_http.delete(f"/users/{user_id}").status_code == 204
    principals = {i["principalId"] for i in follow(graph_http, graph_http.get(ASSIGNMENTS))}
    scheduled = {s["principalId"] for s in graph_http.get(ELIGIBILITY).json()["value"]}
    assert not {scoped, activated} & principals
    assert eligible not in scheduled
    assert not {scoped, eligible, activated} & emulator.tenant.all_role_principals()
    for user_id in (scoped, eligible):
        assert graph_http.post(f"/directory/deletedItems/{user_id}/restore").status_code == 200
    assert graph_http.get(ASSIGNMENTS, params={"$filter": f"principalId eq '{scoped}'"}).json()["value"]
    assert graph_http.get(ELIGIBILITY, params={"$filter": f"principalId eq '{eligible}'"}).json()["value"]


def test_role_assignable_group_as_principal(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    tenant = emulator.tenant
    member = emulator.control.ground_truth()["members"][5]
    with tenant.lock:
        group = tenant.add_group(
            Group(
                id="0b7d4c1e-5f0a-4d8e-9a31-2c6b7e8f9a10",
                displayName="PIM Helpdesk",
                createdDateTime=NOW.isoformat(),
                isAssignableToRole=True,
            )
        )
        tenant.add_member(group, member)
    emulator.control.make_eligible("Helpdesk Administrator", group.id)
    emulator.control.assign_role(HELPDESK, group.id, "/administrativeUnits/5d0e2c61-1111-4a4a-8b8b-0c0c0c0c0c0c")
    assert group.id in {s["principalId"] for s in graph_http.get(ELIGIBILITY).json()["value"]}
    assert graph_http.get(ASSIGNMENTS, params={"$filter": f"principalId eq '{group.id}'"}).json()["value"]
    assert group.id in tenant.all_role_principals()
    assert member not in tenant.all_role_principals() or tenant.role_of.get(member)
    assert member in tenant.all_role_principals(expand_groups=True)
    plain = next(g for g in tenant.groups.values() if not g.isAssignableToRole)
    with pytest.raises(RuntimeError, match="not role-assignable"):
        emulator.control.make_eligible("Helpdesk Administrator", plain.id)


def test_tenant_wide_built_in_through_control_is_a_directory_role_membership(
    emulator: EmulatorServer, graph_http: httpx.Client
) -> None:
    guest = next(
        u.id for u in emulator.tenant.users.values() if u.userType == "Guest" and not emulator.tenant.role_of.get(u.id)
    )
    emulator.control.assign_role("Directory Readers", guest)
    assert guest in directory_role_members(graph_http, role_id(emulator, "Directory Readers"))
    (item,) = graph_http.get(ASSIGNMENTS, params={"$filter": f"principalId eq '{guest}'"}).json()["value"]
    assert (item["roleDefinitionId"], item["directoryScopeId"]) == ("88d8e3e3-8f55-4a1e-953a-9b9898b8876b", "/")
    with pytest.raises(ValueError, match="use assign_role"):
        emulator.tenant.assign_role_scoped("Directory Readers", guest, "/")


def test_ground_truth_names_every_role_principal(emulator: EmulatorServer) -> None:
    truth = emulator.control.ground_truth()
    tenant = emulator.tenant
    hidden = truth["eligible_role_guests"] + truth["scoped_role_guests"] + truth["custom_role_guests"]
    assert hidden
    assert not any(tenant.role_of.get(g) for g in hidden)
    assert set(truth["all_role_holding_guests"]) == set(truth["role_holding_guests"]) | set(hidden)
    assert set(truth["role_principals"]) == tenant.all_role_principals()
    assert set(truth["all_role_holding_guests"]) <= tenant.all_role_principals()
    assert all(truth["guest_kinds"][g] == "stale" for g in truth["all_role_holding_guests"])


async def test_sdk_request_builder_lists_role_assignments(emulator: EmulatorServer, graph_client: Any) -> None:
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph.generated.role_management.directory.role_assignments.role_assignments_request_builder import (
        RoleAssignmentsRequestBuilder,
    )

    truth = emulator.control.ground_truth()
    (guest,) = truth["scoped_role_guests"]
    query = RoleAssignmentsRequestBuilder.RoleAssignmentsRequestBuilderGetQueryParameters(
        filter=f"principalId eq '{guest}'"
    )
    page = await graph_client.role_management.directory.role_assignments.get(
        RequestConfiguration(query_parameters=query)
    )
    (assignment,) = page.value
    assert assignment.principal_id == guest
    assert assignment.role_definition_id == HELPDESK
    assert assignment.directory_scope_id.startswith("/administrativeUnits/")

    everything = await graph_client.role_management.directory.role_assignments.get(
        RequestConfiguration(
            query_parameters=RoleAssignmentsRequestBuilder.RoleAssignmentsRequestBuilderGetQueryParameters(top=4)
        )
    )
    seen = [a.id for a in everything.value]
    link = everything.odata_next_link
    while link:
        following = await graph_client.role_management.directory.role_assignments.with_url(link).get()
        seen += [a.id for a in following.value]
        link = following.odata_next_link
    assert len(seen) == len(set(seen)) == len(emulator.tenant.unified_role_assignments())


async def test_sdk_eligibility_schedules_and_licence_error(emulator: EmulatorServer, graph_client: Any) -> None:
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError

    schedules = await graph_client.role_management.directory.role_eligibility_schedules.get()
    (schedule,) = schedules.value
    assert schedule.principal_id == emulator.control.ground_truth()["eligible_role_guests"][0]
    assert schedule.schedule_info.expiration.type.value == "noExpiration"
    emulator.control.set_pim_available(False)
    with pytest.raises(ODataError) as raised:
        await graph_client.role_management.directory.role_eligibility_schedules.get()
    assert raised.value.response_status_code == 400
    assert raised.value.error.code == "AadPremiumLicenseRequired"
