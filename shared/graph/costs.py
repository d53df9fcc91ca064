"""What one request costs against Graph's identity limits (docs/graph-contract.md#throttling).

The pacer charges these before sending, so bulk work stays under the per app+tenant budget instead of
discovering it through 429s. Unknown paths cost the documented default (1 RU; writes 1 RU + 1 write).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
# POSTs that only read (docs/graph-contract.md#throttling lists them with their own RU cost and no write).
_READ_ONLY_POSTS = re.compile(r"/(checkMemberGroups|checkMemberObjects|getMemberGroups|getByIds)$", re.I)

# (method, path pattern, base RU) — the documented rows; the first match wins.
_BASE_COSTS: tuple[tuple[str, re.Pattern[str], int], ...] = (
    ("GET", re.compile(r"^/users/?$", re.I), 2),
    ("GET", re.compile(r"^/groups/[^/]+/members(/|$)", re.I), 3),
    ("GET", re.compile(r"^/groups/[^/]+/transitiveMembers(/|$)", re.I), 5),
    ("POST", re.compile(r"/checkMemberGroups$", re.I), 4),
    ("POST", re.compile(r"/getByIds$", re.I), 5),
    ("GET", re.compile(r"/transitiveMemberOf(/|$)", re.I), 2),
)
REPORTS_PATH = re.compile(r"^/auditLogs/", re.I)


@dataclass(frozen=True, slots=True)
class Cost:
    """Budget units one request uses: identity resource units, writes, reports requests, and pages of the
    user list with signInActivity (docs/graph-contract.md#throttling: "GET signInActivity: 10 requests per minute")."""

    resource_units: int = 1
    writes: int = 0
    reports: int = 0
    sign_in_activity: int = 0

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            self.resource_units + other.resource_units,
            self.writes + other.writes,
            self.reports + other.reports,
            self.sign_in_activity + other.sign_in_activity,
        )


FREE = Cost(0, 0, 0, 0)
USERS_LIST = re.compile(r"^/users/?$", re.I)


def request_cost(method: str, path: str, query: Mapping[str, str] | None = None) -> Cost:
    """Cost of one request. `path` is relative to the version root (e.g. `/users/123`)."""
    method = method.upper()
    path = "/" + path.lstrip("/").split("?", 1)[0]
    if REPORTS_PATH.match(path):
        return Cost(resource_units=0, writes=0, reports=1)
    if method in WRITE_METHODS and not _READ_ONLY_POSTS.search(path):
        return Cost(resource_units=1, writes=1)
    base = next((ru for m, pattern, ru in _BASE_COSTS if m == method and pattern.search(path)), 1)
    query = {k.lstrip("$").lower(): v for k, v in (query or {}).items()}
    if "select" in query:
        base -= 1
    if "expand" in query:
        base += 1
    top = query.get("top")
    if top is not None and top.isdigit() and int(top) < 20:
        base -= 1
    # Whether the 10-per-minute row covers `/users?$select=signInActivity` is unconfirmed;
    # docs/graph-contract.md#throttling says to budget for it. Only list pages are charged: a single user's
    # re-check stays unpaced (429 still applies).
    listing_sign_ins = (
        method == "GET"
        and USERS_LIST.match(path)
        and any("signinactivity" in query.get(option, "").lower() for option in ("select", "filter"))
    )
    return Cost(resource_units=max(base, 1), sign_in_activity=1 if listing_sign_ins else 0)
