"""Stored objects -> Graph JSON for a `$select`, and property readers for the filter compiler.

Renderers are compiled once per selection (a tuple of getters) and cached, because a 100,000-user
listing renders the same selection 100,000 times.
"""

from __future__ import annotations

from functools import lru_cache
from operator import attrgetter
from typing import Any

from emulator.odata import Accessors, Getter
from emulator.schema import COLLECTION, GROUP, USER
from emulator.tenant import SIGN_IN_FIELDS, DirectoryRole, Group, User

USER_SLOT_PROPERTIES = frozenset(User.__slots__) - {"extra", "seq", "sign_in", "sponsors", "home_tenant_id"}
IDENTITY_KEYS = ("signInType", "issuer", "issuerAssignedId")


def _identities(user: User) -> list[dict[str, Any]]:
    return [dict(zip(IDENTITY_KEYS, identity, strict=True)) for identity in user.identities]


def _sign_in_activity(user: User) -> dict[str, Any] | None:
    values = user.sign_in
    if values is None:
        return None
    return dict(zip(SIGN_IN_FIELDS, values, strict=True))


def user_getter(name: str) -> Getter:
    if name == "identities":
        return _identities
    if name == "signInActivity":
        return _sign_in_activity
    if name in USER_SLOT_PROPERTIES:
        return attrgetter(name)
    if USER.types.get(name) == COLLECTION:
        return lambda user: user.get(name) or []
    return lambda user: user.get(name)


@lru_cache(maxsize=256)
def user_renderer(select: tuple[str, ...]) -> Any:
    """A function user -> dict for this selection; signInActivity is left out when there is none."""
    getters = tuple((name, user_getter(name)) for name in select)
    if "signInActivity" in select:

        def render_with_sign_in(user: User) -> dict[str, Any]:
            body = {name: get(user) for name, get in getters}
            if body["signInActivity"] is None:
                # Not returned for users who never signed in (docs/graph-contract.md#sign-in-activity).
                del body["signInActivity"]
            return body

        return render_with_sign_in

    def render(user: User) -> dict[str, Any]:
        return {name: get(user) for name, get in getters}

    return render


class UserAccessors(Accessors):
    def value(self, path: str) -> Getter:
        if path.startswith("signInActivity/"):
            index = SIGN_IN_FIELDS.index(path.split("/", 1)[1])
            return lambda user: user.sign_in[index] if user.sign_in is not None else None
        if path == "identities":
            return attrgetter("identities")
        return user_getter(path)

    def item(self, collection: str, sub: str | None) -> Getter:
        if collection == "identities":
            if sub not in IDENTITY_KEYS:
                from emulator.errors import bad_request

                raise bad_request(f"Could not find a property named '{sub}' on type 'microsoft.graph.objectIdentity'.")
            index = IDENTITY_KEYS.index(sub)
            return lambda identity: identity[index]
        return super().item(collection, sub)


USER_ACCESSORS = UserAccessors()


def group_getter(name: str) -> Getter:
    if GROUP.types.get(name) == COLLECTION:
        return lambda group: list(group.get(name) or ())
    return lambda group: group.get(name)


@lru_cache(maxsize=64)
def group_renderer(select: tuple[str, ...]) -> Any:
    getters = tuple((name, group_getter(name)) for name in select)
    return lambda group: {name: get(group) for name, get in getters}


class GroupAccessors(Accessors):
    def value(self, path: str) -> Getter:
        return group_getter(path)


GROUP_ACCESSORS = GroupAccessors()


def role_json(role: DirectoryRole) -> dict[str, Any]:
    return {
        "id": role.id,
        "deletedDateTime": None,
        "description": role.description,
        "displayName": role.displayName,
        "roleTemplateId": role.roleTemplateId,
    }


def directory_object(obj: User | Group | DirectoryRole, select: tuple[str, ...] | None = None) -> dict[str, Any]:
    """An entry of a mixed directoryObject collection (members, memberOf, sponsors, deletedItems)."""
    if isinstance(obj, User):
        body = {"@odata.type": "#microsoft.graph.user"}
        body.update(user_renderer(select or USER.default_select)(obj))
        return body
    if isinstance(obj, Group):
        body = {"@odata.type": "#microsoft.graph.group"}
        chosen = tuple(n for n in (select or GROUP.default_select) if n in GROUP.types) or ("id",)
        body.update(group_renderer(chosen)(obj))
        return body
    return {"@odata.type": "#microsoft.graph.directoryRole", **role_json(obj)}


# ---- JSON text renderers (hot path) ----------------------------------------------------------------
# Listing 100,000 users spends most of its time turning objects into JSON. For the common property
# types a generated function writes the JSON text directly (C string escaping, one f-string), which is
# several times faster than building a dict and running json.dumps over it.

_escape = json_escape = __import__("json").encoder.encode_basestring_ascii
_dumps = __import__("json").dumps


def _s(value: str | None) -> str:
    return "null" if value is None else _escape(value)


def _b(value: bool | None) -> str:
    return "null" if value is None else ("true" if value else "false")


def _l(values: tuple[str, ...]) -> str:
    return "[" + ",".join(map(_escape, values)) + "]"


def _j(value: Any) -> str:
    return _dumps(value, separators=(",", ":"))


# Braces doubled: this text is pasted into the generated f-string.
_SIGN_IN_TEMPLATE = "{{" + ",".join(f'"{name}":{{_s(a[{i}])}}' for i, name in enumerate(SIGN_IN_FIELDS)) + "}}"


@lru_cache(maxsize=256)
def user_json_renderer(select: tuple[str, ...]) -> Any:
    """A function user -> JSON object text for this selection (same content as `user_renderer`)."""
    from emulator.schema import BOOLEAN

    parts: list[str] = []
    sign_in = False
    for index, name in enumerate(select):
        key = _escape(name)
        comma = "," if parts else ""
        if name == "signInActivity":
            sign_in = True
            continue
        kind = USER.types.get(name)
        if name in USER_SLOT_PROPERTIES and name not in ("identities", "businessPhones", "otherMails"):
            reader = "_b" if kind == BOOLEAN else "_s"
            parts.append(f"{comma}{key}:{{{reader}(u.{name})}}")
        elif name in ("businessPhones", "otherMails"):
            parts.append(f"{comma}{key}:{{_l(u.{name})}}")
        else:
            parts.append(f"{comma}{key}:{{_j(g{index}(u))}}")
    body = "".join(parts)
    namespace: dict[str, Any] = {"_s": _s, "_b": _b, "_l": _l, "_j": _j}
    for index, name in enumerate(select):
        namespace[f"g{index}"] = user_getter(name)
    if sign_in:
        separator = "," if body else ""
        code = (
            "def render(u):\n"
            "    a = u.sign_in\n"
            "    if a is None:\n"
            f"        return f'{{{{{body}}}}}'\n"
            f"    return f'{{{{{body}{separator}\"signInActivity\":{_SIGN_IN_TEMPLATE}}}}}'\n"
        )
    else:
        code = f"def render(u):\n    return f'{{{{{body}}}}}'\n"
    exec(code, namespace)
    return namespace["render"]
