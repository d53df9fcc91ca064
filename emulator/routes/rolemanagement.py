"""/roleManagement/directory: role assignments (every form), PIM eligibility schedules, role definitions.

Activated tenant-wide directoryRole memberships (what /directoryRoles/{id}/members lists) appear here as
assignments with directoryScopeId "/" and the role's template id as roleDefinitionId; administrative-unit
scoped and custom-role assignments, and PIM eligibilities, appear here only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from emulator.errors import GraphError, bad_request, not_found
from emulator.http import Cost, Ctx, Reply, Route, json_reply
from emulator.odata import Accessors, Getter, compile_filter, parse_select
from emulator.routes.common import page_of, reject_unknown_options
from emulator.schema import ROLE_ASSIGNMENT, ROLE_DEFINITION, ROLE_ELIGIBILITY, EntitySchema
from emulator.tenant import RoleAssignment, RoleDefinition, RoleEligibility, Tenant
from emulator.views import directory_object

_OPTIONS = {"$select", "$filter", "$top", "$skiptoken", "$expand"}
_CONTEXT = "roleManagement/directory/"

# PIM needs Microsoft Entra ID P2 (or ID Governance). What Graph answers without it is not documented;
# this is the answer reported from real tenants (README, "Unconfirmed").
LICENCE_STATUS, LICENCE_CODE = 400, "AadPremiumLicenseRequired"
LICENCE_MESSAGE = "The tenant needs an AAD Premium 2 license."


class _RowAccessors(Accessors):
    """Filters run over the rendered JSON rows (small collections)."""

    def value(self, path: str) -> Getter:
        return lambda row: row.get(path)


_ROWS = _RowAccessors()


def assignment_json(assignment: RoleAssignment) -> dict[str, Any]:
    return {
        "id": assignment.id,
        "principalId": assignment.principalId,
        "roleDefinitionId": assignment.roleDefinitionId,
        "directoryScopeId": assignment.directoryScopeId,
        "appScopeId": assignment.appScopeId,
    }


def eligibility_json(eligibility: RoleEligibility) -> dict[str, Any]:
    if eligibility.endDateTime is None:
        expiration = {"type": "noExpiration", "endDateTime": None, "duration": None}
    else:
        expiration = {"type": "afterDateTime", "endDateTime": eligibility.endDateTime, "duration": None}
    return {
        "id": eligibility.id,
        "principalId": eligibility.principalId,
        "roleDefinitionId": eligibility.roleDefinitionId,
        "directoryScopeId": eligibility.directoryScopeId,
        "appScopeId": eligibility.appScopeId,
        "createdUsing": eligibility.id,
        "createdDateTime": eligibility.createdDateTime,
        "modifiedDateTime": None,
        "status": eligibility.status,
        "memberType": eligibility.memberType,
        "scheduleInfo": {
            "startDateTime": eligibility.startDateTime,
            "recurrence": None,
            "expiration": expiration,
        },
    }


def definition_json(definition: RoleDefinition) -> dict[str, Any]:
    return {
        "id": definition.id,
        "description": definition.description,
        "displayName": definition.displayName,
        "isBuiltIn": definition.isBuiltIn,
        "isEnabled": definition.isEnabled,
        "resourceScopes": ["/"],
        "templateId": definition.templateId,
        "version": "1" if definition.isBuiltIn else None,
        "rolePermissions": [{"allowedResourceActions": list(definition.allowedResourceActions), "condition": None}],
    }


def _expand_principal(ctx: Ctx) -> bool:
    text = ctx.options.get("$expand")
    if text is None:
        return False
    if text.strip().lower() != "principal":
        raise bad_request(
            f"Parsing OData Select and Expand failed: only 'principal' can be expanded by the emulator, not '{text}'."
        )
    return True


def _listing(
    ctx: Ctx,
    objects: Sequence[Any],
    render: Callable[[Any], dict[str, Any]],
    schema: EntitySchema,
    context: str,
    *,
    expandable: bool = True,
) -> Reply:
    reject_unknown_options(ctx, _OPTIONS if expandable else _OPTIONS - {"$expand"})
    select = parse_select(ctx.options.get("$select"), schema)
    expand = _expand_principal(ctx) if expandable else False
    rows = [render(obj) for obj in objects]
    if "$filter" in ctx.options:
        predicate = compile_filter(ctx.options["$filter"], schema, _ROWS).predicate
        rows = [row for row in rows if predicate(row)]
    tenant = ctx.tenant

    def shape(row: dict[str, Any]) -> dict[str, Any]:
        body = {name: row[name] for name in select if name in row}
        if expand:
            principal = tenant.find_object(row["principalId"])
            body["principal"] = directory_object(principal) if principal is not None else None
        return body

    return page_of(ctx, rows, shape, context=_CONTEXT + context)


def _require_pim(tenant: Tenant) -> None:
    if not tenant.pim_available:
        raise GraphError(LICENCE_STATUS, LICENCE_CODE, LICENCE_MESSAGE)


async def list_role_assignments(ctx: Ctx) -> Reply:
    assignments = ctx.tenant.unified_role_assignments()
    return _listing(ctx, assignments, assignment_json, ROLE_ASSIGNMENT, "roleAssignments")


async def get_role_assignment(ctx: Ctx) -> Reply:
    assignments = ctx.tenant.unified_role_assignments()
    return _single(ctx, assignments, ctx.params["assignment_id"], assignment_json, ROLE_ASSIGNMENT, "roleAssignments")


async def list_role_eligibility_schedules(ctx: Ctx) -> Reply:
    _require_pim(ctx.tenant)
    schedules = ctx.tenant.current_eligibilities()
    return _listing(ctx, schedules, eligibility_json, ROLE_ELIGIBILITY, "roleEligibilitySchedules")


async def get_role_eligibility_schedule(ctx: Ctx) -> Reply:
    _require_pim(ctx.tenant)
    schedules = ctx.tenant.current_eligibilities()
    wanted = ctx.params["schedule_id"].lower()  # schedule ids are GUIDs (assignment ids are case-sensitive)
    return _single(ctx, schedules, wanted, eligibility_json, ROLE_ELIGIBILITY, "roleEligibilitySchedules")


def _single(
    ctx: Ctx,
    objects: Sequence[Any],
    wanted: str,
    render: Callable[[Any], dict[str, Any]],
    schema: EntitySchema,
    context: str,
) -> Reply:
    """GET of one object by id, with $select; 404 in Graph's shape when there is none."""
    for obj in objects:
        if obj.id == wanted:
            select = parse_select(ctx.options.get("$select"), schema, single=True)
            row = render(obj)
            body = {"@odata.context": ctx.context_url(_CONTEXT + context + "/$entity")}
            body.update({name: row[name] for name in select})
            return json_reply(body)
    raise not_found(schema.name, wanted)


async def list_role_definitions(ctx: Ctx) -> Reply:
    definitions = list(ctx.tenant.role_definitions.values())
    return _listing(ctx, definitions, definition_json, ROLE_DEFINITION, "roleDefinitions", expandable=False)


# Role management is a directory (identity) read: "any other identity GET" costs 1 RU, with the usual
# $select / $top modifiers (docs/graph-contract.md#throttling).
_READ = Cost(1)

ROUTES = [
    Route("GET", "/rolemanagement/directory/roleassignments", list_role_assignments, _READ),
    Route("GET", "/rolemanagement/directory/roleassignments/{assignment_id}", get_role_assignment, _READ),
    Route("GET", "/rolemanagement/directory/roleeligibilityschedules", list_role_eligibility_schedules, _READ),
    Route(
        "GET",
        "/rolemanagement/directory/roleeligibilityschedules/{schedule_id}",
        get_role_eligibility_schedule,
        _READ,
    ),
    Route("GET", "/rolemanagement/directory/roledefinitions", list_role_definitions, _READ),
]
