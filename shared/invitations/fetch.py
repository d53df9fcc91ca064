"""Graph → records for planning: who already holds each address, which groups and sponsors exist.

Lookups are batched: `in (...)` filters of at most IN_CHUNK values, up to 20 of them per `$batch` round
trip, through the paced Graph client — never one request per row (1,000 rows ≈ 4 round trips).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from shared.errors import GraphError
from shared.graph import Graph
from shared.graph.batch import BatchRequest
from shared.graph.client import build_url
from shared.invitations.plan import Directory, DirectoryGroup, DirectoryUser
from shared.invitations.rows import InvitationRow
from shared.invitations.rules import normalise_email, row_problem

IN_CHUNK = 15  # short `in` lists keep URLs short and under Graph's filter-complexity limits
USER_SELECT = "id,userType,mail,userPrincipalName,externalUserState"
GROUP_SELECT = "id,displayName,groupTypes"
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


async def fetch_directory(graph: Graph, rows: Iterable[InvitationRow]) -> Directory:
    """Everything `plan_invitations` needs to know about the directory for these rows."""
    # Rows the plan will call invalid anyway are not looked up: an overlong value would fail the whole lookup.
    rows = [r for r in rows if row_problem(r) is None]
    addresses = sorted({normalise_email(r.email) for r in rows})
    group_keys = sorted({g for r in rows for g in r.groups})
    sponsor_keys = sorted({s for r in rows for s in r.sponsors})

    wanted = set(addresses)
    lookups: list[tuple[str, str, str]] = []  # (kind, path, filter)
    for chunk in _chunks(addresses):
        lookups.append(("address", "/users", f"mail in ({_literals(chunk)})"))
        lookups.append(("address", "/users", f"userPrincipalName in ({_literals(chunk)})"))
    group_ids = [k for k in group_keys if GUID.match(k)]
    for chunk in _chunks(group_ids):
        lookups.append(("group", "/groups", f"id in ({_literals(chunk)})"))
    for chunk in _chunks(group_keys):  # a GUID may also be a display name; names are matched case-insensitively
        lookups.append(("group", "/groups", f"displayName in ({_literals(chunk)})"))
    sponsor_ids = [k for k in sponsor_keys if GUID.match(k)]
    sponsor_names = [k for k in sponsor_keys if not GUID.match(k)]
    for chunk in _chunks(sponsor_ids):
        lookups.append(("sponsor", "/users", f"id in ({_literals(chunk)})"))
    for chunk in _chunks(sponsor_names):
        lookups.append(("sponsor", "/users", f"userPrincipalName in ({_literals(chunk)})"))
        lookups.append(("sponsor", "/users", f"mail in ({_literals(chunk)})"))

    requests = [
        BatchRequest(
            str(index),
            "GET",
            build_url(
                "", path, {"$filter": filter_, "$select": GROUP_SELECT if kind == "group" else USER_SELECT, "$top": 999}
            ),
        )
        for index, (kind, path, filter_) in enumerate(lookups)
    ]
    responses = await graph.batch(requests)

    users: dict[str, DirectoryUser] = {}
    groups: dict[str, list[DirectoryGroup]] = {}
    sponsors: dict[str, DirectoryUser] = {}
    for index, (kind, _, filter_) in enumerate(lookups):
        response = responses.get(str(index))
        if response is None or not response.ok:
            status = response.status if response else "no response"
            code = ((response.body or {}).get("error") or {}).get("code") if response else None
            raise GraphError(
                f"directory lookup failed ({filter_[:60]}…): {status} {code or ''}".rstrip(),
                status=response.status if response else None,
                code=code,
            )
        for item in (response.body or {}).get("value", []):
            if kind == "group":
                dynamic = "DynamicMembership" in (item.get("groupTypes") or [])
                group = DirectoryGroup(item["id"], item.get("displayName") or "", dynamic)
                for key in {group.id.lower(), group.display_name.lower()}:
                    if group not in groups.setdefault(key, []):
                        groups[key].append(group)
                continue
            user = _user(item)
            if kind == "address":
                for address in (user.mail, user.user_principal_name):
                    if address and address.lower() in wanted:
                        users.setdefault(address.lower(), user)
            else:
                for key in (user.id, user.mail, user.user_principal_name):
                    if key:
                        sponsors[key.lower()] = user
    return Directory(users_by_address=users, groups_by_key=groups, sponsors_by_key=sponsors)


def _user(item: dict[str, Any]) -> DirectoryUser:
    return DirectoryUser(
        id=item["id"],
        user_type=item.get("userType") or "Member",
        mail=item.get("mail"),
        user_principal_name=item.get("userPrincipalName"),
        external_user_state=item.get("externalUserState"),
    )


def _chunks(values: list[str]) -> list[list[str]]:
    return [values[i : i + IN_CHUNK] for i in range(0, len(values), IN_CHUNK)]


def _literals(values: list[str]) -> str:
    """OData string literals: single quotes doubled."""
    return ",".join("'" + v.replace("'", "''") + "'" for v in values)
