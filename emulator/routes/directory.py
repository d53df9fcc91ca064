"""/directory/deletedItems: soft-deleted users, restore and permanent delete (30-day retention)."""

from __future__ import annotations

from typing import Any

from emulator.errors import bad_request, not_found
from emulator.http import Ctx, Reply, Route, json_reply, no_content
from emulator.odata import parse_select
from emulator.routes.common import page_of
from emulator.schema import USER
from emulator.tenant import DeletedUser
from emulator.views import user_renderer


def _deleted_json(entry: DeletedUser, select: tuple[str, ...]) -> dict[str, Any]:
    body = {"@odata.type": "#microsoft.graph.user"}
    body.update(user_renderer(select)(entry.user))
    if "userPrincipalName" in body:
        # Entra prefixes a deleted user's UPN with its object id without dashes.
        body["userPrincipalName"] = entry.user.id.replace("-", "") + entry.user.userPrincipalName
    if "deletedDateTime" not in body:
        body["deletedDateTime"] = entry.user.deletedDateTime
    return body


def _select(ctx: Ctx) -> tuple[str, ...]:
    return parse_select(ctx.options.get("$select"), USER)


async def list_deleted_users(ctx: Ctx) -> Reply:
    select = _select(ctx)
    entries = sorted(ctx.tenant.deleted.values(), key=lambda e: e.deleted_at)
    return page_of(
        ctx, entries, lambda e: _deleted_json(e, select), context="directory/deletedItems/microsoft.graph.user"
    )


async def list_deleted_cast_required(ctx: Ctx) -> Reply:
    raise bad_request(
        "Listing deleted items requires a type cast such as /directory/deletedItems/microsoft.graph.user."
    )


async def get_deleted(ctx: Ctx) -> Reply:
    entry = ctx.tenant.deleted.get(ctx.params["item_id"].lower())
    if entry is None:
        raise not_found("directoryObject", ctx.params["item_id"])
    body = {"@odata.context": ctx.context_url("directory/deletedItems/$entity")}
    body.update(_deleted_json(entry, _select(ctx)))
    return json_reply(body)


async def restore_deleted(ctx: Ctx) -> Reply:
    tenant = ctx.tenant
    item_id = ctx.params["item_id"].lower()
    entry = tenant.deleted.get(item_id)
    if entry is None:
        raise not_found("directoryObject", ctx.params["item_id"])
    if entry.user.userPrincipalName.lower() in tenant.by_upn:
        raise bad_request("Another object with the same value for property userPrincipalName already exists.")
    user = tenant.restore_user(item_id)
    body = {"@odata.context": ctx.context_url("directoryObjects/$entity"), "@odata.type": "#microsoft.graph.user"}
    body.update(user_renderer(USER.default_select)(user))
    return json_reply(body)


async def purge_deleted(ctx: Ctx) -> Reply:
    tenant = ctx.tenant
    item_id = ctx.params["item_id"].lower()
    if item_id not in tenant.deleted:
        raise not_found("directoryObject", ctx.params["item_id"])
    tenant.purge_user(item_id)
    return no_content()


ROUTES = [
    Route("GET", "/directory/deleteditems/microsoft.graph.user", list_deleted_users),
    Route("GET", "/directory/deleteditems", list_deleted_cast_required),
    Route("POST", "/directory/deleteditems/{item_id}/restore", restore_deleted),
    Route("GET", "/directory/deleteditems/{item_id}", get_deleted),
    Route("DELETE", "/directory/deleteditems/{item_id}", purge_deleted),
]
