"""/servicePrincipals: get one by object id or by appId, and the app-role assignments granted to it (its
application permissions). https://learn.microsoft.com/en-us/graph/api/serviceprincipal-get and
https://learn.microsoft.com/en-us/graph/api/serviceprincipal-list-approleassignments
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from emulator.errors import bad_request, not_found
from emulator.http import Ctx, Reply, Route, json_reply
from emulator.routes.common import page_of
from emulator.routes.users import APP_ROLE_ASSIGNMENT_FIELDS
from emulator.service_principals import SERVICE_PRINCIPAL_FIELDS


def _selected(ctx: Ctx, fields: Sequence[str], type_name: str) -> tuple[str, ...]:
    if not ctx.options.get("$select"):
        return tuple(fields)
    by_lower = {f.lower(): f for f in fields}
    names = [n.strip() for n in ctx.options["$select"].split(",") if n.strip()]
    unknown = [n for n in names if n.lower() not in by_lower]
    if unknown:
        raise bad_request(f"Could not find a property named '{unknown[0]}' on type 'microsoft.graph.{type_name}'.")
    return tuple(dict.fromkeys(["id", *(by_lower[n.lower()] for n in names)]))


def _service_principal(ctx: Ctx) -> dict[str, Any]:
    if "app_id" in ctx.params:
        found = ctx.tenant.service_principal_by_app_id(ctx.params["app_id"])
        key = f"appId='{ctx.params['app_id']}'"
    else:
        found = ctx.tenant.service_principals.get(ctx.params["id"].lower())
        key = ctx.params["id"]
    if found is None:
        raise not_found("servicePrincipal", key)
    return found


async def get_service_principal(ctx: Ctx) -> Reply:
    record = _service_principal(ctx)
    selected = _selected(ctx, SERVICE_PRINCIPAL_FIELDS, "servicePrincipal")
    context = (
        "servicePrincipals/$entity"
        if not ctx.options.get("$select")
        else f"servicePrincipals({','.join(selected)})/$entity"
    )
    return json_reply({"@odata.context": ctx.context_url(context), **{name: record[name] for name in selected}})


async def app_role_assignments(ctx: Ctx) -> Reply:
    record = _service_principal(ctx)
    selected = _selected(ctx, APP_ROLE_ASSIGNMENT_FIELDS, "appRoleAssignment")
    items = list(ctx.tenant.app_role_assignments.get(record["id"], ()))
    return page_of(
        ctx,
        items,
        lambda item: {name: item.get(name) for name in selected},
        context=f"servicePrincipals('{record['id']}')/appRoleAssignments",
    )


ROUTES = [
    Route("GET", "/serviceprincipals(appid='{app_id}')", get_service_principal),
    Route("GET", "/serviceprincipals(appid='{app_id}')/approleassignments", app_role_assignments),
    Route("GET", "/serviceprincipals/{id}", get_service_principal),
    Route("GET", "/serviceprincipals/{id}/approleassignments", app_role_assignments),
]
