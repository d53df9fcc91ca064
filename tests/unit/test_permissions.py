"""The Graph permission maps agree: docs/permissions.md's checked table, shared/permissions.py and
infra/graph.bicep (parsed with pycep-parser). Each check is shown to fail on a mutated copy."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pycep import BicepParser

from shared.permissions import APP_ROLE_IDS, CAPABILITY_PERMISSIONS, DEFAULT_CAPABILITIES
from tests.support.graph_calls import PERMISSIONS_DOC, Row, compare, documented_calls, template

GRAPH_BICEP = Path(__file__).resolve().parents[2] / "infra" / "graph.bicep"
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def capability_permissions(rows: dict[str, Row]) -> dict[str, frozenset[str]]:
    """Each capability's permissions: the union over the table rows that name it."""
    found: dict[str, set[str]] = {}
    for row in rows.values():
        for capability in row.capabilities:
            found.setdefault(capability, set()).update(row.permissions)
    return {capability: frozenset(names) for capability, names in found.items()}


def literal(value: Any) -> Any:
    """pycep's value of a literal object/array: object keys come quoted when they are strings."""
    if isinstance(value, dict):
        return {str(key).strip("'"): literal(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [literal(inner) for inner in value]
    return value


@pytest.fixture(scope="module")
def bicep() -> dict[str, Any]:
    return BicepParser().parse(file_path=GRAPH_BICEP)


def test_every_permission_in_the_table_has_an_app_role_id_and_no_id_is_unused() -> None:
    named = set().union(*(row.permissions for row in documented_calls().values()))
    assert named == set(APP_ROLE_IDS)
    assert all(GUID.match(role_id) for role_id in APP_ROLE_IDS.values())
    assert len(set(APP_ROLE_IDS.values())) == len(APP_ROLE_IDS)


def test_capabilities_grant_the_union_of_their_calls_permissions() -> None:
    assert capability_permissions(documented_calls()) == CAPABILITY_PERMISSIONS
    assert set(DEFAULT_CAPABILITIES) <= set(CAPABILITY_PERMISSIONS)


def test_a_changed_row_is_caught() -> None:
    text = PERMISSIONS_DOC.read_text()
    broader = text.replace(
        "| `GET /users/$count` | `User.Read.All` |", "| `GET /users/$count` | `Directory.Read.All` |"
    )
    assert broader != text
    assert capability_permissions(documented_calls(broader)) != CAPABILITY_PERMISSIONS


def test_graph_bicep_holds_the_same_maps(bicep: dict[str, Any]) -> None:
    variables = bicep["variables"]
    assert literal(variables["appRoleIds"]["value"]) == APP_ROLE_IDS
    capabilities = literal(variables["capabilityPermissions"]["value"])
    assert {name: frozenset(names) for name, names in capabilities.items()} == CAPABILITY_PERMISSIONS


def test_graph_bicep_grants_each_enabled_capability_on_graph_only(bicep: dict[str, Any]) -> None:
    parameters = bicep["parameters"]
    camel = {name: re.sub(r"_(\w)", lambda m: m.group(1).upper(), name) for name in CAPABILITY_PERMISSIONS}
    defaults = {name for name, param in camel.items() if parameters[param]["default"] is True}
    assert defaults == set(DEFAULT_CAPABILITIES)
    union = bicep["variables"]["granted"]["value"]["function"]
    assert union["type"] == "union"
    terms = [arg["operator"]["operands"] for arg in union["parameters"].values()]
    assert [(t["condition"], t["true_value"]["operator"]["operands"]["operand_2"]) for t in terms] == [
        (camel[name], name) for name in CAPABILITY_PERMISSIONS
    ]
    graph = bicep["resources"]["graph"]
    assert graph["existing"] is True
    assert graph["config"]["appId"] == "00000003-0000-0000-c000-000000000000"
    grants = bicep["resources"]["grants"]
    assert grants["type"] == "Microsoft.Graph/appRoleAssignedTo"
    assert grants["config"]["loop_type"]["detail"]["array_name"] == "granted"
    assert grants["config"]["config"]["principalId"] == "principalId"
    assert set(bicep["extensions"]) == {"microsoftGraphV1"}  # the alias infra/bicepconfig.json pins
    config = json.loads((GRAPH_BICEP.parent / "bicepconfig.json").read_text())
    assert config["extensions"]["microsoftGraphV1"].endswith("/microsoftgraph/v1.0:1.0.0")


def test_a_changed_id_in_graph_bicep_is_caught(tmp_path: Path) -> None:
    changed = tmp_path / "graph.bicep"
    changed.write_text(GRAPH_BICEP.read_text().replace(APP_ROLE_IDS["Mail.Send"], APP_ROLE_IDS["User.Read.All"]))
    assert literal(BicepParser().parse(file_path=changed)["variables"]["appRoleIds"]["value"]) != APP_ROLE_IDS


@pytest.mark.parametrize(
    ("method", "path", "select", "expected"),
    [
        ("get", "/v1.0/users/delta", "", "GET /users/delta"),
        ("GET", "/v1.0/users/a.b@contoso.com/messages/AAMkAD0=/send", "", "GET /users/{id}/messages/{id}/send"),
        (
            "DELETE",
            "/v1.0/teams/3f2504e0-4f89-11d3-9a0c-0305e82c3301/channels/19:x@thread.tacv2/members/MCMjMQ==",
            "",
            "DELETE /teams/{id}/channels/{id}/members/{id}",
        ),
        (
            "POST",
            "/v1.0/groups/3f2504e0-4f89-11d3-9a0c-0305e82c3301/members/$ref",
            "",
            "POST /groups/{id}/members/$ref",
        ),
        ("GET", "/v1.0/users", "id,signInActivity", "GET /users?$select=signInActivity"),
        (
            "GET",
            "/v1.0/tenantRelationships/findTenantInformationByDomainName(domainName='fabrikam.com')",
            "",
            "GET /tenantRelationships/findTenantInformationByDomainName(domainName='{domainName}')",
        ),
    ],
)
def test_template(method: str, path: str, select: str, expected: str) -> None:
    assert template(method, path, select) == expected


def test_compare_reports_unlisted_calls_always_and_unmade_ones_only_on_a_full_run() -> None:
    documented = documented_calls()
    made = set(documented) - {"GET /users/delta"}
    assert compare(made | {"GET /applications"}, documented, complete=False) == [
        "GET /applications: made by the tests but not in docs/permissions.md"
    ]
    missing = compare(made, documented, complete=True)
    assert "GET /users/delta: listed in docs/permissions.md but never made" in missing
