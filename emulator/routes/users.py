"""/users: list with $filter/$select/$top/$count/$orderby, get, update, delete, and user actions."""

from __future__ import annotations

from typing import Any

from emulator.clock import format_datetime, parse_datetime
from emulator.errors import GraphError, bad_request, forbidden, not_found, unsupported_query
from emulator.http import Cost, Ctx, Reply, Route, json_collection_reply, json_reply, no_content
from emulator.odata import (
    MAX_OR_CLAUSES,
    CompiledFilter,
    compile_filter,
    encode_token,
    parse_select,
    parse_top,
    too_many_or_clauses,
)
from emulator.routes.common import (
    conflict_reference,
    next_link,
    object_id_from_reference,
    page_of,
    require_user,
    skip_position,
)
from emulator.schema import BOOLEAN, COLLECTION, DATETIME, STRING, USER, USER_WRITABLE
from emulator.tenant import Tenant, User
from emulator.views import USER_ACCESSORS, directory_object, user_json_renderer, user_renderer

PAGE_DEFAULT = 100
PAGE_MAX = 999
PAGE_MAX_SIGN_IN = 500  # docs/graph-contract.md#paging: max 500 when signInActivity is selected
CHECK_MEMBER_GROUPS_MAX = 20

_LIST_OPTIONS = {"$select", "$filter", "$top", "$count", "$skiptoken", "$expand", "$orderby", "$search", "$format"}
_ORDERABLE = {"displayname": "displayName", "userprincipalname": "userPrincipalName"}


def _non_premium() -> GraphError:
    # Real Graph error for signInActivity without an Entra ID P1/P2 licence.
    return GraphError(
        403,
        "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
        "Neither tenant is B2C or tenant doesn't have premium license",
    )


class UserQuery:
    """A parsed and validated /users query (shared by the list and /$count)."""

    def __init__(self, ctx: Ctx, *, counting: bool = False) -> None:
        options = ctx.options
        for option in options:
            if option not in _LIST_OPTIONS:
                raise bad_request(f"Query option '{option}' is not supported.", code="Request_UnsupportedQuery")
        self.select = parse_select(options.get("$select"), USER)
        self.filter: CompiledFilter | None = None
        if "$filter" in options:
            self.filter = compile_filter(options["$filter"], USER, USER_ACCESSORS)
        self.sign_in = "signInActivity" in self.select or bool(
            self.filter and any(p.startswith("signInActivity/") for p in self.filter.paths)
        )
        if self.sign_in and not ctx.tenant.sign_in_activity_available:
            raise _non_premium()
        self.top = parse_top(options.get("$top"), PAGE_DEFAULT, PAGE_MAX_SIGN_IN if self.sign_in else PAGE_MAX)
        self.count = options.get("$count", "").lower() == "true"
        self.order: tuple[str, bool] | None = None
        if "$orderby" in options:
            self.order = _parse_orderby(options["$orderby"])
        if "$search" in options:
            raise GraphError(501, "NotImplemented", "The emulator does not implement $search.")
        advanced = bool(self.filter and self.filter.advanced) or bool(self.order and self.filter)
        if advanced and not ctx.eventual:
            # docs/graph-contract.md#advanced-queries: advanced-only filters without ConsistencyLevel are rejected.
            raise unsupported_query(
                "Unsupported query. This query requires the ConsistencyLevel header set to 'eventual' "
                "(advanced query capabilities)."
            )
        if self.filter and self.filter.or_width > MAX_OR_CLAUSES and not ctx.eventual:
            raise too_many_or_clauses(self.filter.or_width)
        # Without the header, ?$count=true is silently ignored (docs/graph-contract.md#advanced-queries).
        self.count = self.count and ctx.eventual
        self.expand = options.get("$expand")
        if self.expand is not None:
            if ctx.eventual and (advanced or self.count):
                raise unsupported_query("$expand is not supported with advanced queries.")
            if self.expand.split("(")[0].strip().lower() != "sponsors":
                raise GraphError(
                    501, "NotImplemented", f"The emulator supports $expand=sponsors only (got '{self.expand}')."
                )
        if counting and "$top" in options:
            self.top = PAGE_MAX

    def matches(self, tenant: Tenant) -> list[User] | None:
        """Users from an index when the filter pins id / userPrincipalName / mail; None means scan."""
        if self.filter is None or self.filter.index is None:
            return None
        path, values = self.filter.index
        found: dict[int, User] = {}
        for value in values:
            key = str(value).lower()
            user = None
            if path == "id":
                user = tenant.users.get(key)
            elif path == "userprincipalname":
                user = tenant.by_upn.get(key)
            elif path == "mail":
                user = tenant.by_mail.get(key)
            else:
                return None
            if user is not None:
                found[user.seq] = user
        return [found[seq] for seq in sorted(found)]

    def count_matches(self, ctx: Ctx) -> int:
        tenant = ctx.tenant
        key = ("users", ctx.options.get("$filter", ""), tenant.epoch)
        cached = ctx.state.count_cache.get(key)
        if cached is not None and cached[0] == tenant.version:
            return cached[1]
        predicate = self.filter.predicate if self.filter else None
        indexed = self.matches(tenant)
        if indexed is not None:
            total = sum(1 for u in indexed if predicate is None or predicate(u))
        elif predicate is None:
            total = len(tenant.users)
        else:
            total = sum(1 for u in tenant.iter_users() if predicate(u))
        ctx.state.count_cache[key] = (tenant.version, total)
        return total


def _parse_orderby(text: str) -> tuple[str, bool]:
    parts = text.strip().split()
    if not parts or len(parts) > 2 or "," in text:
        raise unsupported_query(f"Unsupported $orderby '{text}'.")
    name = _ORDERABLE.get(parts[0].lower())
    if name is None:
        raise unsupported_query(f"Sorting by '{parts[0]}' is not supported.")
    descending = len(parts) == 2 and parts[1].lower() == "desc"
    if len(parts) == 2 and parts[1].lower() not in ("asc", "desc"):
        raise bad_request(f"Invalid $orderby direction '{parts[1]}'.")
    return name, descending


def _ordered(ctx: Ctx, name: str, descending: bool) -> list[User]:
    tenant = ctx.tenant
    key = ("order", name, str(descending), tenant.epoch)
    cached = ctx.state.count_cache.get(key)
    if cached is not None and cached[0] == tenant.version:
        return cached[1]  # type: ignore[return-value]
    ordered = sorted(tenant.users.values(), key=lambda u: ((getattr(u, name) or "").lower(), u.seq), reverse=descending)
    ctx.state.count_cache[key] = (tenant.version, ordered)  # type: ignore[assignment]
    return ordered


def _sponsor_expander(ctx: Ctx, expand: str) -> Any:
    select: tuple[str, ...] | None = None
    if "(" in expand:
        inner = expand[expand.index("(") + 1 : expand.rindex(")")]
        for part in inner.split(";"):
            key, _, value = part.partition("=")
            if key.strip().lower() == "$select":
                select = tuple(s.strip() for s in value.split(",") if s.strip())
    tenant = ctx.tenant

    def expand_user(user: User, body: dict[str, Any]) -> None:
        sponsors = [tenant.find_object(sid) for sid in user.sponsors]
        body["sponsors"] = [directory_object(obj, select) for obj in sponsors if obj is not None]

    return expand_user


async def list_users(ctx: Ctx) -> Reply:
    query = UserQuery(ctx)
    tenant = ctx.tenant
    render = user_renderer(query.select)
    predicate = query.filter.predicate if query.filter else None
    top = query.top
    page: list[User] = []
    more = False
    if query.order is not None:
        start = skip_position(ctx) + 1
        ordered = _ordered(ctx, *query.order)
        index = start
        while index < len(ordered):
            user = ordered[index]
            index += 1
            if predicate is None or predicate(user):
                if len(page) == top:
                    more = True
                    break
                page.append(user)
        last = index - 2 if more else index - 1
    else:
        after = skip_position(ctx)
        candidates = query.matches(tenant)
        if candidates is not None:
            pool = [u for u in candidates if u.seq > after and (predicate is None or predicate(u))]
            page, more = pool[:top], len(pool) > top
        else:
            slots = tenant.user_slots
            index, end = after + 1, len(slots)
            while index < end:
                user = slots[index]
                index += 1
                if user is None or (predicate is not None and not predicate(user)):
                    continue
                if len(page) == top:
                    more = True
                    break
                page.append(user)
        last = page[-1].seq if page else after
    body: dict[str, Any] = {"@odata.context": ctx.context_url(_context_fragment(ctx, query))}
    if query.count:
        body["@odata.count"] = query.count_matches(ctx)
    if more:
        body["@odata.nextLink"] = next_link(ctx, last)
    if query.expand is None:
        render_json = user_json_renderer(query.select)
        return json_collection_reply(body, [render_json(user) for user in page])
    values = [render(user) for user in page]
    expand = _sponsor_expander(ctx, query.expand)
    for user, item in zip(page, values, strict=True):
        expand(user, item)
    body["value"] = values
    return json_reply(body)


def _context_fragment(ctx: Ctx, query: UserQuery) -> str:
    if "$select" in ctx.options:
        return f"users({','.join(query.select)})"
    return "users"


async def count_users(ctx: Ctx) -> Reply:
    if not ctx.eventual:
        raise bad_request("$count is not currently supported.")
    query = UserQuery(ctx, counting=True)
    return Reply(200, str(query.count_matches(ctx)).encode(), "text/plain;charset=utf-8")


async def get_user(ctx: Ctx) -> Reply:
    user = require_user(ctx)
    select = parse_select(ctx.options.get("$select"), USER, single=True)
    if "signInActivity" in select and not ctx.tenant.sign_in_activity_available:
        raise _non_premium()
    body = {"@odata.context": ctx.context_url("users/$entity")}
    body.update(user_renderer(select)(user))
    expand = ctx.options.get("$expand")
    if expand is not None:
        if expand.split("(")[0].strip().lower() != "sponsors":
            raise GraphError(501, "NotImplemented", f"The emulator supports $expand=sponsors only (got '{expand}').")
        _sponsor_expander(ctx, expand)(user, body)
    return json_reply(body)


_READ_ONLY = {
    "id",
    "createdDateTime",
    "creationType",
    "externalUserState",
    "externalUserStateChangeDateTime",
    "signInActivity",
    "signInSessionsValidFromDateTime",
    "deletedDateTime",
    "proxyAddresses",
    "securityIdentifier",
    "identities",
    "lastPasswordChangeDateTime",
}


def validate_user_patch(payload: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for raw_name, value in payload.items():
        if raw_name.startswith("@"):
            continue
        name = USER.canonical(raw_name)
        if name is None:
            raise bad_request(f"Property '{raw_name}' does not exist as a declared property or extension property.")
        if name in _READ_ONLY or name not in USER_WRITABLE:
            raise bad_request(f"Property '{name}' is read-only and cannot be set.")
        kind = USER_WRITABLE[name]
        if value is not None:
            ok = (
                (kind == STRING and isinstance(value, str))
                or (kind == BOOLEAN and isinstance(value, bool))
                or (kind == COLLECTION and isinstance(value, list) and all(isinstance(v, str) for v in value))
                or (kind == DATETIME and isinstance(value, str) and _is_datetime(value))
            )
            if not ok:
                raise bad_request(f"Invalid value specified for property '{name}' of resource 'User'.")
            if kind == DATETIME:
                value = format_datetime(parse_datetime(value))
        elif kind in (BOOLEAN, COLLECTION) or name in ("userPrincipalName", "displayName"):
            raise bad_request(f"Invalid value specified for property '{name}' of resource 'User'.")
        if name == "userType" and value not in ("Member", "Guest"):
            raise bad_request("Invalid value specified for property 'userType' of resource 'User'.")
        values[name] = value
    return values


def _is_datetime(text: str) -> bool:
    try:
        parse_datetime(text)
    except ValueError:
        return False
    return "T" in text


async def update_user(ctx: Ctx) -> Reply:
    user = require_user(ctx)
    values = validate_user_patch(ctx.json_object())
    tenant = ctx.tenant
    if "accountEnabled" in values and tenant.holds_privileged_role(user.id):
        # App-only callers cannot change sign-in state of admin-role holders (same rule as delete,
        # docs/graph-contract.md#offboarding).
        raise forbidden()
    if "userPrincipalName" in values:
        other = tenant.by_upn.get(values["userPrincipalName"].lower())
        if other is not None and other is not user:
            raise bad_request("Another object with the same value for property userPrincipalName already exists.")
    tenant.update_user(user, values)
    return no_content()


async def delete_user(ctx: Ctx) -> Reply:
    user = require_user(ctx)
    return delete_user_object(ctx, user)


def delete_user_object(ctx: Ctx, user: User) -> Reply:
    if ctx.tenant.holds_privileged_role(user.id):
        # docs/graph-contract.md#offboarding: app-only permission is insufficient to delete users who hold admin roles.
        raise forbidden()
    ctx.tenant.soft_delete_user(user)
    return no_content()


async def list_sponsors(ctx: Ctx) -> Reply:
    user = require_user(ctx)
    tenant = ctx.tenant
    select = _loose_select(ctx)
    objects = [obj for obj in (tenant.find_object(sid) for sid in user.sponsors) if obj is not None]
    return page_of(ctx, objects, lambda obj: directory_object(obj, select), context="directoryObjects")


def _loose_select(ctx: Ctx) -> tuple[str, ...] | None:
    """$select on a directoryObject collection: names of any member type are accepted."""
    text = ctx.options.get("$select")
    if not text:
        return None
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    canonical = []
    for name in names:
        found = USER.canonical(name)
        if found is None:
            from emulator.schema import GROUP

            found = GROUP.canonical(name)
        if found is None:
            raise bad_request(
                f"Parsing OData Select and Expand failed: Could not find a property named '{name}' on "
                f"type 'microsoft.graph.directoryObject'."
            )
        canonical.append(found)
    if "id" not in canonical:
        canonical.append("id")
    return tuple(canonical)


async def add_sponsor(ctx: Ctx) -> Reply:
    user = require_user(ctx)
    sponsor_id = object_id_from_reference(ctx, ctx.json_object())
    tenant = ctx.tenant
    sponsor = tenant.users.get(sponsor_id) or tenant.groups.get(sponsor_id)
    if sponsor is None:
        raise not_found("directoryObject", sponsor_id)
    if sponsor_id in user.sponsors:
        raise conflict_reference("sponsors")
    with tenant.lock:
        user.sponsors = (*user.sponsors, sponsor_id)
        tenant.version += 1
    return no_content()


async def remove_sponsor(ctx: Ctx) -> Reply:
    user = require_user(ctx)
    sponsor_id = ctx.params["sponsor_id"].lower()
    if sponsor_id not in user.sponsors:
        raise not_found("directoryObject", sponsor_id)
    tenant = ctx.tenant
    with tenant.lock:
        user.sponsors = tuple(s for s in user.sponsors if s != sponsor_id)
        tenant.version += 1
    return no_content()


async def get_manager(ctx: Ctx) -> Reply:
    """The user's manager as a directoryObject; 404 Request_ResourceNotFound when none is set (user: manager)."""
    user = require_user(ctx)
    manager = ctx.tenant.users.get(ctx.tenant.managers.get(user.id, ""))
    if manager is None:  # never set, removed, or the manager was deleted
        raise not_found("manager", "manager")
    body = {"@odata.context": ctx.context_url("directoryObjects/$entity")}
    body.update(directory_object(manager, _loose_select(ctx)))
    return json_reply(body)


async def set_manager(ctx: Ctx) -> Reply:
    """PUT /users/{id}/manager/$ref: `@odata.id` of a user (or contact) replaces any manager set before."""
    user = require_user(ctx)
    manager_id = object_id_from_reference(ctx, ctx.json_object())
    tenant = ctx.tenant
    if manager_id not in tenant.users:
        raise not_found("directoryObject", manager_id)
    with tenant.lock:
        tenant.managers[user.id] = manager_id
        tenant.version += 1
    return no_content()


async def remove_manager(ctx: Ctx) -> Reply:
    user = require_user(ctx)
    tenant = ctx.tenant
    if user.id not in tenant.managers:
        raise not_found("manager", "manager")
    with tenant.lock:
        tenant.managers.pop(user.id, None)
        tenant.version += 1
    return no_content()


async def revoke_sessions(ctx: Ctx) -> Reply:
    user = require_user(ctx)
    tenant = ctx.tenant
    # This does not end a guest's home-tenant sessions; it only resets the timestamp
    # (docs/graph-contract.md#offboarding).
    user.signInSessionsValidFromDateTime = tenant.now_iso()
    tenant.record(user.id, "updated", frozenset({"signInSessionsValidFromDateTime"}))
    return json_reply({"@odata.context": ctx.context_url("Edm.Boolean"), "value": True})


async def check_member_groups(ctx: Ctx) -> Reply:
    user = require_user(ctx)
    payload = {key[:1].lower() + key[1:]: value for key, value in ctx.json_object().items()}
    group_ids = payload.get("groupIds")
    if not isinstance(group_ids, list) or not all(isinstance(g, str) for g in group_ids):
        raise bad_request("The 'groupIds' parameter must be an array of group ids.")
    if len(group_ids) > CHECK_MEMBER_GROUPS_MAX:
        raise bad_request(f"The number of groupIds exceeds the maximum of {CHECK_MEMBER_GROUPS_MAX}.")
    transitive = set(ctx.tenant.transitive_groups(user.id))
    found = [g for g in group_ids if g.lower() in transitive]
    return json_reply({"@odata.context": ctx.context_url("Collection(Edm.String)"), "value": found})


def _member_of(ctx: Ctx, transitive: bool) -> Reply:
    user = require_user(ctx)
    tenant = ctx.tenant
    cast = ctx.params.get("cast")
    cast = cast.lower() if cast is not None else None  # type casts match in any case
    if transitive:
        group_ids = tenant.transitive_groups(user.id)
        role_ids = tenant.transitive_roles(user.id)
    else:
        group_ids = list(tenant.member_of.get(user.id, ()))
        role_ids = list(tenant.role_of.get(user.id, ()))
    objects: list[Any] = [tenant.groups[g] for g in group_ids if g in tenant.groups]
    if cast is None:
        objects += [tenant.roles[r] for r in role_ids if r in tenant.roles]
    elif cast == "microsoft.graph.directoryrole":
        objects = [tenant.roles[r] for r in role_ids if r in tenant.roles]
    elif cast != "microsoft.graph.group":
        raise bad_request(f"Resource not found for the segment '{cast}'.", code="BadRequest")
    if cast and "$count" in ctx.options and not ctx.eventual:
        raise unsupported_query("A cast combined with $count requires ConsistencyLevel: eventual.")
    select = _loose_select(ctx)
    extra = {"@odata.count": len(objects)} if ctx.eventual and ctx.options.get("$count") == "true" else None
    return page_of(ctx, objects, lambda obj: directory_object(obj, select), context="directoryObjects", extra=extra)


async def transitive_member_of(ctx: Ctx) -> Reply:
    return _member_of(ctx, True)


async def member_of(ctx: Ctx) -> Reply:
    return _member_of(ctx, False)


APP_ROLE_ASSIGNMENT_FIELDS = (
    "id",
    "appRoleId",
    "createdDateTime",
    "deletedDateTime",
    "principalDisplayName",
    "principalId",
    "principalType",
    "resourceDisplayName",
    "resourceId",
)


async def app_role_assignments(ctx: Ctx) -> Reply:
    """The user's appRoleAssignments and those of the groups it is a direct member of (Graph's docs)."""
    user = require_user(ctx)
    selected = APP_ROLE_ASSIGNMENT_FIELDS
    if ctx.options.get("$select"):
        names = [n.strip() for n in ctx.options["$select"].split(",") if n.strip()]
        by_lower = {f.lower(): f for f in APP_ROLE_ASSIGNMENT_FIELDS}
        unknown = [n for n in names if n.lower() not in by_lower]
        if unknown:
            raise bad_request(
                f"Could not find a property named '{unknown[0]}' on type 'microsoft.graph.appRoleAssignment'."
            )
        selected = tuple(dict.fromkeys(["id", *(by_lower[n.lower()] for n in names)]))
    items = ctx.tenant.app_roles_of_user(user.id)
    return page_of(
        ctx,
        items,
        lambda item: {name: item.get(name) for name in selected},
        context=f"users('{user.id}')/appRoleAssignments",
    )


def skiptoken_for(tenant: Tenant, position: int) -> str:
    return encode_token({"e": tenant.epoch, "p": position})


ROUTES = [
    Route("GET", "/users", list_users, Cost(2)),
    Route("GET", "/users/$count", count_users, Cost(1)),
    Route("GET", "/users/{id}", get_user),
    Route("PATCH", "/users/{id}", update_user),
    Route("DELETE", "/users/{id}", delete_user),
    Route("GET", "/users/{id}/sponsors", list_sponsors),
    Route("POST", "/users/{id}/sponsors/$ref", add_sponsor),
    Route("DELETE", "/users/{id}/sponsors/{sponsor_id}/$ref", remove_sponsor),
    Route("GET", "/users/{id}/manager", get_manager),
    Route("PUT", "/users/{id}/manager/$ref", set_manager),
    Route("DELETE", "/users/{id}/manager/$ref", remove_manager),
    Route("POST", "/users/{id}/revokesigninsessions", revoke_sessions),
    Route("POST", "/users/{id}/checkmembergroups", check_member_groups, Cost(4, 0)),
    Route("GET", "/users/{id}/transitivememberof", transitive_member_of, Cost(2)),
    Route("GET", "/users/{id}/transitivememberof/{cast}", transitive_member_of, Cost(2)),
    Route("GET", "/users/{id}/memberof", member_of),
    Route("GET", "/users/{id}/approleassignments", app_role_assignments),
    Route("GET", "/users/{id}/memberof/{cast}", member_of),
]
