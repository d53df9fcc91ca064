"""OData pieces every capability's queries share: string literals, `in (...)` lists, chunks, object ids."""

from __future__ import annotations

import re
from collections.abc import Sequence

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
