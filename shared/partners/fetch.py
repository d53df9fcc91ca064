"""Graph → records for partner discovery: guests, tenant lookups, what each guest uses, cross-tenant
settings and the sign-in log.

Lookups cost one request per domain (cached by the caller); what a guest uses is read through `$batch`
(docs/graph-contract.md#batching), two inner requests per guest, only for guests of a partner tenant: a
"no tenant" guest cannot move to direct connect whatever it uses, and role holders are known from one
tenant-wide lookup. The sign-in log is an identity report, paced at 5 requests per 10 s by the Graph
client; it is read by time window and its cross-tenant fields are picked out here, because filtering on
them is not documented (docs/graph-contract.md#sign-in-logs).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from typing import Any

import msgspec

from shared.concurrency import map_bounded
from shared.errors import GraphError, NotFoundError, PermissionDeniedError
from shared.graph import Graph
from shared.graph.batch import BatchRequest
from shared.partners.records import GUEST_SELECT, GUEST_SELECT_WITHOUT_SIGN_IN, GuestPage, TenantInfo, Usage
from shared.stale.records import UnreadableUserError

log = logging.getLogger("guestctl.partners")

USERS_PATH = "/users"
GUEST_FILTER = "userType eq 'Guest'"
PAGE_WITH_SIGN_IN = 500  # docs/graph-contract.md#paging: the maximum $top when signInActivity is selected
PAGE_WITHOUT_SIGN_IN = 999
TENANT_BY_DOMAIN = "/tenantRelationships/findTenantInformationByDomainName(domainName='{domain}')"
TEAMS_FILTER = "resourceProvisioningOptions/Any(x:x eq 'Team')"  # docs/graph-contract.md#groups
GROUPS_PATH = "/groups"
MEMBER_OF = "/users/{id}/transitiveMemberOf?$select=id&$top=999"
APP_ROLES = "/users/{id}/appRoleAssignments?$select=id,resourceId"
GROUP_TYPE = "#microsoft.graph.group"
GUESTS_PER_BATCH = 10  # two inner requests each: one full $batch of 20
BATCHES_IN_FLIGHT = 4
DEFAULT_POLICY_PATH = "/policies/crossTenantAccessPolicy/default"
PARTNERS_PATH = "/policies/crossTenantAccessPolicy/partners"
SIGN_INS_PATH = "/auditLogs/signIns"
SIGN_INS_PAGE = 1000  # docs/graph-contract.md#sign-in-logs: the maximum page


async def guest_pages(graph: Graph, *, sign_in_activity: bool, select: str | None = None) -> AsyncIterator[GuestPage]:
    """Every guest, page by page; `PermissionDeniedError` from the first page if signInActivity is refused.
    `select` replaces the properties read (without signInActivity)."""
    select, top = (
        (
            (GUEST_SELECT, PAGE_WITH_SIGN_IN)
            if sign_in_activity
            else (GUEST_SELECT_WITHOUT_SIGN_IN, PAGE_WITHOUT_SIGN_IN)
        )
        if select is None
        else (select, PAGE_WITHOUT_SIGN_IN)
    )
    url: str | None = graph.url(USERS_PATH, {"$filter": GUEST_FILTER, "$select": select, "$top": top})
    while url:
        response = await graph.request("GET", url)
        try:
            page = msgspec.json.decode(response.content, type=GuestPage)
        except msgspec.DecodeError as error:
            raise UnreadableUserError(f"a page of guests from Graph could not be read: {error}") from None
        yield page
        url = page.next_link


async def find_tenant(graph: Graph, domain: str) -> TenantInfo | None:
    """The Entra tenant that has verified `domain`, or None if there is none (Graph answers 404)."""
    try:
        found = await graph.get_json(TENANT_BY_DOMAIN.format(domain=domain.replace("'", "''")))
    except NotFoundError:
        return None
    return TenantInfo(found["tenantId"], found.get("displayName"), found.get("defaultDomainName"))


async def team_ids(graph: Graph) -> set[str]:
    """Ids of every group that is a team (one paged query; membership is then read per guest)."""
    params = {"$filter": TEAMS_FILTER, "$select": "id", "$top": 999}
    return {item["id"] async for page in graph.pages(GROUPS_PATH, params=params) for item in page.items}


async def guest_usage(graph: Graph, user_ids: Iterable[str], teams: set[str]) -> dict[str, Usage]:
    """Per guest: how many teams and other groups it is in (transitively), how many app role assignments."""
    return {user_id: usage for user_id, (usage, _) in (await guest_teams(graph, user_ids, teams)).items()}


async def guest_teams(
    graph: Graph, user_ids: Iterable[str], teams: set[str]
) -> dict[str, tuple[Usage, frozenset[str]]]:
    """Per guest: its `Usage` and the ids of the teams it is in (migration maps those to shared channels)."""
    ids = list(user_ids)
    chunks = [ids[i : i + GUESTS_PER_BATCH] for i in range(0, len(ids), GUESTS_PER_BATCH)]

    async def one_batch(chunk: list[str]) -> dict[str, tuple[Usage, frozenset[str]]]:
        requests = [
            BatchRequest(f"{kind}{n}", "GET", path.format(id=user_id))
            for n, user_id in enumerate(chunk)
            for kind, path in (("g", MEMBER_OF), ("a", APP_ROLES))
        ]
        answers = await graph.batch(requests)
        found = {}
        for n, user_id in enumerate(chunk):
            groups = await _all_items(graph, answers[f"g{n}"].status, answers[f"g{n}"].body, user_id)
            apps = await _all_items(graph, answers[f"a{n}"].status, answers[f"a{n}"].body, user_id)
            group_ids = {g["id"] for g in groups if g.get("@odata.type", GROUP_TYPE) == GROUP_TYPE}
            in_teams = frozenset(group_ids & teams)
            usage = Usage(teams=len(in_teams), other_groups=len(group_ids - teams), apps=len(apps))
            found[user_id] = (usage, in_teams)
        return found

    usage: dict[str, tuple[Usage, frozenset[str]]] = {}
    for part in await map_bounded(chunks, one_batch, limit=BATCHES_IN_FLIGHT):
        usage.update(part)
    return usage


async def _all_items(graph: Graph, status: int, body: Any, user_id: str) -> list[dict[str, Any]]:
    """An inner response's items, with any further pages read directly."""
    if status >= 400:
        error = (body or {}).get("error", {}) if isinstance(body, dict) else {}
        raise GraphError(f"reading what guest {user_id} uses failed: {status} {error.get('code')}", status=status)
    items = list(body.get("value", []))
    next_link = body.get("@odata.nextLink")
    while next_link:
        page = await graph.get_json(next_link)
        items += page.get("value", [])
        next_link = page.get("@odata.nextLink")
    return items


async def cross_tenant_settings(graph: Graph) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The default cross-tenant access settings and every explicit partner configuration by tenant id."""
    default = await graph.get_json(DEFAULT_POLICY_PATH)
    partners = {item["tenantId"].lower(): item async for page in graph.pages(PARTNERS_PATH) for item in page.items}
    return default, partners


async def sign_ins_by_tenant(graph: Graph, since: datetime) -> dict[str, Counter[str]] | None:
    """Sign-ins since `since` per home tenant, counted by crossTenantAccessType; None if the log is refused
    (no AuditLog.Read.All, or no Entra ID P1/P2)."""
    stamp = since.strftime("%Y-%m-%dT%H:%M:%SZ")
    params = {"$filter": f"createdDateTime ge {stamp}", "$top": SIGN_INS_PAGE}
    counts: dict[str, Counter[str]] = {}
    try:
        async for page in graph.pages(SIGN_INS_PATH, params=params):
            for entry in page.items:
                home = (entry.get("homeTenantId") or "").lower()
                kind = entry.get("crossTenantAccessType") or "none"
                if home and kind != "none":
                    counts.setdefault(home, Counter())[kind] += 1
    except PermissionDeniedError as error:
        log.info("sign-in log not readable (%s): no sign-ins per partner", error.code or error.status)
        return None
    return counts
