"""OData pieces every capability's queries share: string literals, `in (...)` lists, chunks, object ids, and
finding groups named by id or display name."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Graph's limit on `in` values and `or` alternatives without advanced queries
# (docs/graph-contract.md#advanced-queries): longer lists are split into chunks of this size.
IN_CHUNK = 15
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


def literal(value: str) -> str:
    """An OData string literal: single quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def literals(values: Sequence[str]) -> str:
    """The inside of an `in (...)` list."""
    return ",".join(literal(v) for v in values)


def chunks(values: Sequence[str], size: int = IN_CHUNK) -> list[list[str]]:
    """`values` in lists of at most `size`, for one `in (...)` filter each."""
    return [list(values[i : i + size]) for i in range(0, len(values), size)]


def is_object_id(value: str) -> bool:
    """Whether `value` has the form of a directory object id (a GUID)."""
    return GUID.match(value) is not None


GROUP_SELECT = "id,displayName,groupTypes"


@dataclass(frozen=True, slots=True)
class GroupRef:
    """A group as a policy or an input row names it: by object id or by display name."""

    id: str
    display_name: str
    dynamic: bool = False  # dynamic membership: members cannot be added

    @classmethod
    def from_graph(cls, item: Mapping[str, Any]) -> GroupRef:
        return cls(item["id"], item.get("displayName") or "", "DynamicMembership" in (item.get("groupTypes") or []))


def group_filters(keys: Sequence[str]) -> list[str]:
    """The `$filter`s (on /groups, with `$select=GROUP_SELECT`) that find groups named by id or display name.
    A GUID-shaped key is looked up both ways: a display name may look like a GUID."""
    ids = [key for key in keys if is_object_id(key)]
    return [f"id in ({literals(c)})" for c in chunks(ids)] + [
        f"displayName in ({literals(c)})" for c in chunks(list(keys))
    ]


def index_groups(index: dict[str, list[GroupRef]], items: Iterable[Mapping[str, Any]]) -> None:
    """Add Graph's groups to `index`, by lower-cased id and display name (names need not be unique)."""
    for item in items:
        group = GroupRef.from_graph(item)
        for key in {group.id.lower(), group.display_name.lower()}:
            if group not in index.setdefault(key, []):
                index[key].append(group)


def matching_groups(key: str, index: Mapping[str, Sequence[GroupRef]]) -> list[GroupRef]:
    """The groups `key` names: the group with that object id if there is one, else every group of that
    display name (none: not found; more than one: ambiguous — the caller words the problem)."""
    matches = list(index.get(key.strip().lower(), []))
    by_id = [g for g in matches if g.id.lower() == key.strip().lower()]
    return by_id or matches
