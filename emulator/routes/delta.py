"""GET /users/delta: initial round, change rounds, @removed, $deltatoken=latest and token expiry.

Tokens are self-contained (base64 JSON): the journal position the round started at, the $select and
`id eq` filter of the first request (docs/graph-contract.md#delta: query parameters are encoded into the tokens) and
the virtual time the token was issued, so a token older than 7 days gets 410 syncStateNotFound.
"""

from __future__ import annotations

from typing import Any

from emulator.clock import parse_datetime
from emulator.errors import GraphError, bad_request, unsupported_query
from emulator.http import Cost, Ctx, Reply, Route, json_collection_reply, json_reply
from emulator.odata import decode_token, encode_token, parse_filter, parse_select
from emulator.schema import USER
from emulator.tenant import CHANGE_DELETED, CHANGE_SOFT_DELETED, DELTA_TOKEN_LIFETIME, User
from emulator.views import user_json_renderer, user_renderer

DELTA_PAGE_DEFAULT = 200  # emulator choice; `Prefer: odata.maxpagesize=N` (1..999) overrides it
DELTA_PAGE_MAX = 999
DELTA_FILTER_MAX_IDS = 50  # docs/graph-contract.md#delta

_ALLOWED = {"$select", "$filter", "$deltatoken", "$skiptoken"}


def _page_size(ctx: Ctx) -> int:
    for part in ctx.headers.get("prefer", "").split(","):
        key, _, value = part.strip().partition("=")
        if key.strip().lower() == "odata.maxpagesize" and value.strip().isdigit():
            return max(1, min(int(value), DELTA_PAGE_MAX))
    return DELTA_PAGE_DEFAULT


def _minimal(ctx: Ctx) -> bool:
    return any(p.strip().lower() == "return=minimal" for p in ctx.headers.get("prefer", "").split(","))


def _filter_ids(text: str) -> list[str]:
    tree = parse_filter(text)
    nodes = tree[1] if tree[0] == "or" else [tree]
    ids: list[str] = []
    for node in nodes:
        if (
            node[0] != "cmp"
            or node[1] != "eq"
            or not isinstance(node[2], str)
            or node[2].lower() != "id"
            or node[3].kind != "string"
        ):
            raise unsupported_query("Delta query on users supports only $filter=id eq '{id}', combined with 'or'.")
        ids.append(node[3].value.lower())
    if len(ids) > DELTA_FILTER_MAX_IDS:
        raise unsupported_query(f"Delta query filters accept at most {DELTA_FILTER_MAX_IDS} ids.")
    return ids


def _sync_state_not_found(ctx: Ctx, state: dict[str, Any] | None) -> GraphError:
    params: list[tuple[str, str]] = []
    if state and state.get("s"):
        params.append(("$select", ",".join(state["s"])))
    if state and state.get("f"):
        params.append(("$filter", " or ".join(f"id eq '{i}'" for i in state["f"])))
    location = ctx.graph_url(ctx.path, params or None)
    return GraphError(
        410,
        "syncStateNotFound",
        "The sync state generation is not found or has expired. Restart the synchronisation without a token.",
        {"Location": location},
    )


def _decode_state(ctx: Ctx, token: str, what: str) -> dict[str, Any]:
    state = decode_token(token, what=what)
    if state.get("e") != ctx.tenant.epoch:
        raise _sync_state_not_found(ctx, state)
    issued = parse_datetime(state["t"])
    if ctx.tenant.now() - issued > DELTA_TOKEN_LIFETIME:
        raise _sync_state_not_found(ctx, state)
    return state


def _link(ctx: Ctx, name: str, state: dict[str, Any]) -> str:
    return ctx.graph_url(ctx.path, [(name, encode_token(state))])


async def users_delta(ctx: Ctx) -> Reply:
    options = ctx.options
    for option in options:
        if option not in _ALLOWED:
            raise unsupported_query(f"Query option '{option}' is not supported with delta query on users.")
    tenant = ctx.tenant
    now_text = tenant.now_iso()
    token_option = "$deltatoken" if "$deltatoken" in options else "$skiptoken" if "$skiptoken" in options else None
    if token_option and ("$select" in options or "$filter" in options):
        raise bad_request("Query options are encoded in the delta token; send the nextLink or deltaLink as it is.")
    if token_option is None:
        select = parse_select(options.get("$select"), USER) if "$select" in options else None
        if select and "signInActivity" in select:
            raise unsupported_query("signInActivity cannot be selected in a delta query.")
        filter_ids = _filter_ids(options["$filter"]) if "$filter" in options else None
        state: dict[str, Any] = {
            "e": tenant.epoch,
            "m": "initial",
            "p": -1,
            "j": tenant.journal_position,
            "s": list(select) if select else None,
            "f": filter_ids,
            "t": now_text,
        }
    elif token_option == "$deltatoken" and options["$deltatoken"].lower() == "latest":
        # docs/graph-contract.md#delta: $deltatoken=latest returns only a deltaLink ("sync from now").
        fresh = {
            "e": tenant.epoch,
            "m": "changes",
            "j": tenant.journal_position,
            "o": 0,
            "s": None,
            "f": None,
            "t": now_text,
        }
        body = {
            "@odata.context": ctx.context_url("users"),
            "value": [],
            "@odata.deltaLink": _link(ctx, "$deltatoken", fresh),
        }
        return json_reply(body)
    else:
        state = _decode_state(
            ctx, options[token_option], "delta token" if token_option == "$deltatoken" else "skip token"
        )
        if token_option == "$deltatoken":
            state = {**state, "m": "changes", "o": 0, "end": tenant.journal_position}
    select_list = tuple(state["s"]) if state.get("s") else USER.default_select
    render = user_json_renderer(select_list)
    size = _page_size(ctx)
    filter_ids = set(state["f"]) if state.get("f") else None
    if state["m"] == "initial":
        return _initial_page(ctx, state, render, size, filter_ids)
    return _changes_page(ctx, state, select_list, size, filter_ids)


def _initial_page(ctx: Ctx, state: dict[str, Any], render: Any, size: int, filter_ids: set[str] | None) -> Reply:
    tenant = ctx.tenant
    values: list[str] = []
    position = state["p"]
    if filter_ids is not None:
        users = sorted((tenant.users[i] for i in filter_ids if i in tenant.users), key=lambda u: u.seq)
        pending = [u for u in users if u.seq > position]
    else:
        pending = None
    more = False
    if pending is not None:
        chunk, more = pending[:size], len(pending) > size
        values = [render(u) for u in chunk]
        last = chunk[-1].seq if chunk else position
    else:
        slots = tenant.user_slots
        index, end, last = position + 1, len(slots), position
        while index < end:
            user = slots[index]
            index += 1
            if user is None:
                continue
            if len(values) == size:
                more = True
                break
            values.append(render(user))
            last = user.seq
    body: dict[str, Any] = {"@odata.context": ctx.context_url("users")}
    if more:
        body["@odata.nextLink"] = _link(ctx, "$skiptoken", {**state, "p": last})
    else:
        done = {**state, "m": "changes", "o": 0, "t": ctx.tenant.now_iso()}
        done.pop("p", None)
        body["@odata.deltaLink"] = _link(ctx, "$deltatoken", done)
    return json_collection_reply(body, values)


def _changes_page(
    ctx: Ctx, state: dict[str, Any], select: tuple[str, ...], size: int, filter_ids: set[str] | None
) -> Reply:
    tenant = ctx.tenant
    start, end = state["j"], state.get("end", tenant.journal_position)
    if start < tenant.changes_base:
        raise _sync_state_not_found(ctx, state)
    tracked = set(select) if state.get("s") else None
    # Latest journal entry per user within [start, end), in order of each user's last change.
    latest: dict[str, tuple[str, set[str] | None]] = {}
    for position, change in tenant.changes_since(start):
        if position >= end:
            break
        if filter_ids is not None and change.user_id not in filter_ids:
            continue
        previous = latest.pop(change.user_id, None)
        props: set[str] | None
        if change.props is None or (previous is not None and previous[1] is None):
            props = None
        else:
            props = set(change.props) | (previous[1] if previous is not None else set())
        latest[change.user_id] = (change.kind, props)
    minimal = _minimal(ctx)
    items: list[dict[str, Any]] = []
    for user_id, (kind, props) in latest.items():
        if kind == CHANGE_DELETED:
            items.append({"id": user_id, "@removed": {"reason": "deleted"}})
            continue
        user: User | None = tenant.users.get(user_id)
        if kind == CHANGE_SOFT_DELETED or user is None:
            reason = "changed" if user_id in tenant.deleted else "deleted"
            items.append({"id": user_id, "@removed": {"reason": reason}})
            continue
        if props is not None and tracked is not None and not (props & tracked):
            continue  # only untracked properties changed (docs/graph-contract.md#delta)
        if minimal and props is not None:
            names = tuple(n for n in select if n in props or n == "id")
            items.append(user_renderer(names if "id" in names else (*names, "id"))(user))
        else:
            items.append(user_renderer(select)(user))
    offset = state.get("o", 0)
    chunk = items[offset : offset + size]
    body: dict[str, Any] = {"@odata.context": ctx.context_url("users")}
    if offset + size < len(items):
        body["@odata.nextLink"] = _link(ctx, "$skiptoken", {**state, "m": "changes", "o": offset + size, "end": end})
    else:
        done = {k: v for k, v in state.items() if k not in ("end", "o", "p")}
        done.update({"m": "changes", "j": end, "o": 0, "t": tenant.now_iso()})
        body["@odata.deltaLink"] = _link(ctx, "$deltatoken", done)
    body["value"] = chunk
    reply = json_reply(body)
    if minimal:
        reply.headers.append(("Preference-Applied", "return=minimal"))
    return reply


ROUTES = [
    Route("GET", "/users/delta()", users_delta, Cost(1)),
    Route("GET", "/users/delta", users_delta, Cost(1)),
]
