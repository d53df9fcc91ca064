"""Helpers shared by the route modules: paging links, lookups and collection replies."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from emulator.errors import GraphError, bad_request, not_found
from emulator.http import Ctx, Reply, json_reply
from emulator.odata import decode_token, encode_token, parse_top
from emulator.tenant import Group, User


def require_user(ctx: Ctx, key: str | None = None) -> User:
    identifier = key if key is not None else ctx.params["id"]
    user = ctx.tenant.find_user(identifier)
    if user is None:
        raise not_found("user", identifier)
    return user


def require_group(ctx: Ctx, key: str | None = None) -> Group:
    identifier = key if key is not None else ctx.params["group_id"]
    group = ctx.tenant.groups.get(identifier.lower())
    if group is None:
        raise not_found("group", identifier)
    return group


def reject_unknown_options(ctx: Ctx, allowed: set[str]) -> None:
    for option in ctx.options:
        if option not in allowed:
            raise bad_request(
                f"Query option '{option}' is not supported on this resource.", code="Request_UnsupportedQuery"
            )


def skip_position(ctx: Ctx) -> int:
    """Position after which the next page starts; -1 for the first page."""
    token = ctx.options.get("$skiptoken")
    if token is None:
        return -1
    payload = decode_token(token)
    if payload.get("e") != ctx.tenant.epoch or not isinstance(payload.get("p"), int):
        raise bad_request("The skip token is malformed or not valid for this request.")
    return payload["p"]


def next_link(ctx: Ctx, position: int, path: str | None = None) -> str:
    """The request URL again, with every original query option and a new $skiptoken."""
    params = [(k, v) for k, v in ctx.query if k.lower() != "$skiptoken"]
    params.append(("$skiptoken", encode_token({"e": ctx.tenant.epoch, "p": position})))
    return ctx.graph_url(path or ctx.path, params)


def page_of(
    ctx: Ctx,
    items: Sequence[Any],
    render: Callable[[Any], dict[str, Any]],
    *,
    context: str,
    default_top: int = 100,
    max_top: int = 999,
    extra: dict[str, Any] | None = None,
) -> Reply:
    """Page a small, already materialised collection (members, sponsors, roles, channels)."""
    top = parse_top(ctx.options.get("$top"), default_top, max_top)
    start = skip_position(ctx) + 1
    chunk = items[start : start + top]
    body: dict[str, Any] = {"@odata.context": ctx.context_url(context)}
    if extra:
        body.update(extra)
    body["value"] = [render(item) for item in chunk]
    if start + top < len(items):
        body["@odata.nextLink"] = next_link(ctx, start + top - 1)
    return json_reply(body)


def object_id_from_reference(ctx: Ctx, payload: dict[str, Any]) -> str:
    """The object id at the end of an `@odata.id` URL (`.../directoryObjects/{id}`, `.../users/{id}`)."""
    reference = payload.get("@odata.id")
    if not isinstance(reference, str) or not reference:
        raise bad_request("The request body must contain an '@odata.id' reference.")
    segments = [s for s in reference.split("?")[0].rstrip("/").split("/") if s]
    if len(segments) < 2 or segments[-2].lower() not in (
        "directoryobjects",
        "users",
        "groups",
        "serviceprincipals",
        "contacts",
        "devices",
    ):
        raise bad_request(f"Invalid object identifier '{reference}'.")
    return segments[-1].lower()


def conflict_reference(prop: str) -> GraphError:
    return bad_request(
        f"One or more added object references already exist for the following modified properties: '{prop}'."
    )
