"""/groups, membership `$ref` semantics, and /directoryRoles."""

from __future__ import annotations

from typing import Any

from emulator.errors import bad_request, not_found, unsupported_query
from emulator.http import Cost, Ctx, Reply, Route, json_reply, no_content
from emulator.odata import MAX_OR_CLAUSES, compile_filter, parse_select, parse_top, too_many_or_clauses
from emulator.routes.common import (
    conflict_reference,
    next_link,
    object_id_from_reference,
    page_of,
    require_group,
    skip_position,
)
from emulator.routes.users import _loose_select, delete_user_object
from emulator.schema import GROUP
from emulator.views import GROUP_ACCESSORS, directory_object, group_renderer, role_json

_LIST_OPTIONS = {"$select", "$filter", "$top", "$count", "$skiptoken"}


async def list_groups(ctx: Ctx) -> Reply:
    for option in ctx.options:
        if option not in _LIST_OPTIONS:
            raise unsupported_query(f"Query option '{option}' is not supported by the emulator on /groups.")
    select = parse_select(ctx.options.get("$select"), GROUP)
    top = parse_top(ctx.options.get("$top"), 100, 999)
    compiled = compile_filter(ctx.options["$filter"], GROUP, GROUP_ACCESSORS) if "$filter" in ctx.options else None
    if compiled is not None and compiled.advanced and not ctx.eventual:
        raise unsupported_query(
            "Unsupported query. This query requires the ConsistencyLevel header set to "
            "'eventual' (advanced query capabilities)."
        )
    if compiled is not None and compiled.or_width > MAX_OR_CLAUSES and not ctx.eventual:
        raise too_many_or_clauses(compiled.or_width)
    predicate = compiled.predicate if compiled else None
    tenant = ctx.tenant
    after = skip_position(ctx)
    page: list[Any] = []
    more = False
    for group in tenant.group_slots[after + 1 :]:
        if group is None or (predicate is not None and not predicate(group)):
            continue
        if len(page) == top:
            more = True
            break
        page.append(group)
    render = group_renderer(select)
    body: dict[str, Any] = {"@odata.context": ctx.context_url("groups")}
    if ctx.eventual and ctx.options.get("$count", "").lower() == "true":
        body["@odata.count"] = sum(1 for g in tenant.groups.values() if predicate is None or predicate(g))
    if more:
        body["@odata.nextLink"] = next_link(ctx, page[-1].seq)
    body["value"] = [render(g) for g in page]
    return json_reply(body)


async def get_group(ctx: Ctx) -> Reply:
    group = require_group(ctx)
    select = parse_select(ctx.options.get("$select"), GROUP, single=True)
    body = {"@odata.context": ctx.context_url("groups/$entity")}
    body.update(group_renderer(select)(group))
    return json_reply(body)


def _members(ctx: Ctx, transitive: bool, owners: bool = False) -> Reply:
    group = require_group(ctx)
    tenant = ctx.tenant
    if owners:
        ids = list(group.owners)
    elif transitive:
        seen: dict[str, None] = {}
        frontier = list(group.members)
        while frontier:
            member_id = frontier.pop(0)
            if member_id in seen:
                continue
            seen[member_id] = None
            if member_id in tenant.groups:
                frontier.extend(tenant.groups[member_id].members)
        ids = list(seen)
    else:
        ids = list(group.members)
    objects = [obj for obj in (tenant.find_object(i) for i in ids) if obj is not None]
    cast = ctx.params.get("cast")
    cast = cast.lower() if cast is not None else None  # type casts match in any case
    if cast == "microsoft.graph.user":
        from emulator.tenant import User

        objects = [o for o in objects if isinstance(o, User)]
    elif cast is not None:
        raise bad_request(f"Resource not found for the segment '{cast}'.", code="BadRequest")
    select = _loose_select(ctx)
    extra = {"@odata.count": len(objects)} if ctx.eventual and ctx.options.get("$count") == "true" else None
    return page_of(ctx, objects, lambda obj: directory_object(obj, select), context="directoryObjects", extra=extra)


async def list_members(ctx: Ctx) -> Reply:
    return _members(ctx, False)


async def list_transitive_members(ctx: Ctx) -> Reply:
    return _members(ctx, True)


async def list_owners(ctx: Ctx) -> Reply:
    return _members(ctx, False, owners=True)


async def add_member(ctx: Ctx) -> Reply:
    group = require_group(ctx)
    member_id = object_id_from_reference(ctx, ctx.json_object())
    tenant = ctx.tenant
    if tenant.users.get(member_id) is None and tenant.groups.get(member_id) is None:
        raise not_found("directoryObject", member_id)
    if group.is_dynamic:
        raise bad_request(
            "Insufficient privileges to complete the operation: the membership of a dynamic group "
            "is managed by its rule and cannot be changed.",
            code="Request_BadRequest",
        )
    if member_id in group.members:
        raise conflict_reference("members")
    tenant.add_member(group, member_id)
    return no_content()


async def remove_member_ref(ctx: Ctx) -> Reply:
    group = require_group(ctx)
    member_id = ctx.params["member_id"].lower()
    if group.is_dynamic:
        raise bad_request("The membership of a dynamic group is managed by its rule and cannot be changed.")
    if member_id not in group.members:
        raise not_found("directoryObject", member_id)
    ctx.tenant.remove_member(group, member_id)
    return no_content()


async def delete_member_object(ctx: Ctx) -> Reply:
    """DELETE /groups/{id}/members/{id} without /$ref deletes the member object itself.

    See docs/graph-contract.md#groups.
    """
    group = require_group(ctx)
    member_id = ctx.params["member_id"].lower()
    if member_id not in group.members:
        raise not_found("directoryObject", member_id)
    user = ctx.tenant.users.get(member_id)
    if user is None:
        raise bad_request("Deleting a non-user member through this path is not supported by the emulator.")
    return delete_user_object(ctx, user)


async def list_roles(ctx: Ctx) -> Reply:
    roles = list(ctx.tenant.roles.values())
    return page_of(ctx, roles, role_json, context="directoryRoles")


async def get_role(ctx: Ctx) -> Reply:
    role = ctx.tenant.roles.get(ctx.params["role_id"].lower())
    if role is None:
        raise not_found("directoryRole", ctx.params["role_id"])
    return json_reply({"@odata.context": ctx.context_url("directoryRoles/$entity"), **role_json(role)})


async def list_role_members(ctx: Ctx) -> Reply:
    tenant = ctx.tenant
    role = tenant.roles.get(ctx.params["role_id"].lower())
    if role is None:
        raise not_found("directoryRole", ctx.params["role_id"])
    objects = [obj for obj in (tenant.find_object(i) for i in role.members) if obj is not None]
    select = _loose_select(ctx)
    return page_of(ctx, objects, lambda obj: directory_object(obj, select), context="directoryObjects")


ROUTES = [
    Route("GET", "/groups", list_groups),
    Route("GET", "/groups/{group_id}", get_group),
    Route("GET", "/groups/{group_id}/members", list_members, Cost(3)),
    Route("GET", "/groups/{group_id}/owners", list_owners, Cost(3)),
    Route("GET", "/groups/{group_id}/owners/{cast}", list_owners, Cost(3)),
    Route("GET", "/groups/{group_id}/members/{cast}", list_members, Cost(3)),
    Route("GET", "/groups/{group_id}/transitivemembers", list_transitive_members, Cost(5)),
    Route("POST", "/groups/{group_id}/members/$ref", add_member),
    Route("DELETE", "/groups/{group_id}/members/{member_id}/$ref", remove_member_ref),
    Route("DELETE", "/groups/{group_id}/members/{member_id}", delete_member_object),
    Route("GET", "/directoryroles", list_roles),
    Route("GET", "/directoryroles/{role_id}", get_role),
    Route("GET", "/directoryroles/{role_id}/members", list_role_members),
]
