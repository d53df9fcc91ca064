"""Graph → records for the stale-guest sweep: the guest scan, role holders and exemption groups.

The guest scan streams `GET /users?$filter=userType eq 'Guest'` page by page (constant memory) and is
resumable: a 100,000-guest tenant with signInActivity selected is 200 pages of at most 500 users
(docs/graph-contract.md#paging), possibly throttled to 10 requests per minute
(docs/graph-contract.md#throttling), so it may need more than one Functions invocation
(docs/architecture.md#scale). The checkpoint lives in the store (table `scans`, partition `stale`, row =
scan id).

Delivery is at-least-once: a page counts as consumed when the consumer asks for the next one, so the
page in hand when a consumer stops (or crashes) is delivered again on resume. Consumers key their own
state by guest id. If Graph refuses the saved nextLink (an expired skip token) the scan restarts from
the first page, which re-delivers guests seen before — the same rule covers it.

Pages are read one ahead: the request for page N+1 leaves when page N is handed over, so Graph works on
it while the consumer plans page N. A consumer that stops early wastes that one request (cancelled; it
may already have been sent and counted against the signInActivity budget).

Missing signInActivity (no Entra ID P1 licence or no AuditLog.Read.All; Graph answers 403 when it is
selected) raises `SignInActivityUnavailable` instead of a page. The caller then stops every
inactivity action, says why (docs/architecture.md#safety-rules), and may scan again with
`sign_in_activity=False` so that never-redeemed detection still works.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any

from shared.clock import utc_now
from shared.errors import ExitCode, GraphError, GuestctlError, NotFoundError, PermissionDeniedError, PolicyError
from shared.graph import Graph
from shared.graph.odata import (
    GROUP_SELECT,
    GroupRef,
    group_filters,
    index_groups,
    matching_groups,
)
from shared.stale.records import GUEST_SELECT, Guest, GuestPage, decode_page
from shared.store import Store
from shared.store.registry import SCANS

log = logging.getLogger("guestctl.stale")

USERS_PATH = "/users"
GUEST_FILTER = "userType eq 'Guest'"
# signInActivity cannot be combined with other filters, so it is only ever selected
# (docs/graph-contract.md#sign-in-activity).
GUEST_SELECT_WITHOUT_SIGN_IN = ",".join(name for name in GUEST_SELECT.split(",") if name != "signInActivity")
MAX_PAGE_SIZE = 500  # docs/graph-contract.md#paging: the maximum $top when signInActivity is selected
READ_AHEAD_WAIT_SECONDS = 0.005  # longest wait for the next page's request to leave before handing one over
ROLE_ASSIGNMENTS_PATH = "/roleManagement/directory/roleAssignments"
ROLE_ELIGIBILITY_PATH = "/roleManagement/directory/roleEligibilitySchedules"
# Graph's answer for PIM without an Entra ID P2 licence (unconfirmed: seen in public reports, see emulator/README)
NO_PIM_LICENCE_CODE = "AadPremiumLicenseRequired"
MEMBERS_TOP = 999  # membership collections page up to 999 objects
GROUPS_PATH = "/groups"
GROUP_TYPE = "#microsoft.graph.group"

SCAN_TABLE = SCANS
SCAN_PARTITION = "stale"
# Statuses with which Graph refuses a stale cursor: 400 (malformed / not valid for this request), 404,
# and 410 Gone (sync state expired). A saved nextLink refused this way means "start over".
REFUSED_CURSOR_STATUSES = frozenset({400, 404, 410})
NON_PREMIUM_CODE = "Authentication_RequestFromNonPremiumTenantOrB2CTenant"


class SignInActivityUnavailable(GuestctlError):
    """Graph returns no signInActivity for this tenant/app, so inactivity cannot be judged.

    Raised by `scan_guests(..., sign_in_activity=True)` instead of the first page Graph refuses (the
    first page of the scan, unless the licence or permission went away mid-scan). `reason` is the
    sentence the run prints and records ("no inactivity actions: ..."); `code` and `request_id` are
    Graph's, for support.
    """

    exit_code = ExitCode.REFUSED
    http_status = 403

    def __init__(self, reason: str, *, code: str | None = None, request_id: str | None = None) -> None:
        super().__init__(
            f"signInActivity is not available: {reason}",
            hint="assign Entra ID P1/P2 and grant the app AuditLog.Read.All; until then no guest is flagged "
            "for inactivity (never-redeemed detection still runs: scan with sign_in_activity=False)",
        )
        self.reason = reason
        self.code = code
        self.request_id = request_id


class GroupNotFoundError(PolicyError):
    """An exemption group named in the policy does not exist (or the name is ambiguous)."""


@dataclass(frozen=True, slots=True)
class ScanCheckpoint:
    """What the store keeps about one scan. Holds a nextLink (a cursor), never tokens or redeem URLs."""

    next_link: str | None  # None and not finished: start from the first page
    pages: int
    guests: int
    started_at: str  # ISO 8601 UTC
    finished: bool
    sign_in_activity: bool  # a cursor is only reused for the same query
    restarts: int = 0  # times a refused cursor made the scan start over

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> ScanCheckpoint:
        return cls(
            next_link=data.get("next_link"),
            pages=int(data.get("pages", 0)),
            guests=int(data.get("guests", 0)),
            started_at=str(data.get("started_at", "")),
            finished=bool(data.get("finished", False)),
            sign_in_activity=bool(data.get("sign_in_activity", True)),
            restarts=int(data.get("restarts", 0)),
        )


class ScanPage(list[Guest]):
    """One page of guests, and where it stands in its scan: its page number in the current pass, and how
    many times the scan has started over (a consumer that keeps pages drops them when that changes)."""

    def __init__(self, guests: list[Guest], *, index: int, restarts: int) -> None:
        super().__init__(guests)
        self.index = index
        self.restarts = restarts


async def read_checkpoint(store: Store, scan_id: str) -> ScanCheckpoint | None:
    """The saved checkpoint of a scan, or None if it never saved one."""
    record = await store.get(SCAN_TABLE, SCAN_PARTITION, scan_id)
    return ScanCheckpoint.from_data(record.data) if record is not None else None


async def _save(store: Store, scan_id: str, checkpoint: ScanCheckpoint) -> None:
    # upsert: a checkpoint is a cursor, not a decision (shared/store/protocol.py)
    await store.upsert(SCAN_TABLE, SCAN_PARTITION, scan_id, asdict(checkpoint))


async def scan_guests(
    graph: Graph,
    store: Store,
    *,
    scan_id: str,
    page_size: int = MAX_PAGE_SIZE,
    sign_in_activity: bool = True,
) -> AsyncIterator[ScanPage]:
    """Every guest of the tenant, one page of `Guest` records at a time, resumable by `scan_id`.

    A call with the `scan_id` of an unfinished scan continues from its saved nextLink; with a finished
    (or no) checkpoint it starts a new scan. See the module docstring for the delivery guarantee and
    for `SignInActivityUnavailable`.
    """
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE} (got {page_size})")
    select = GUEST_SELECT if sign_in_activity else GUEST_SELECT_WITHOUT_SIGN_IN
    first_url = graph.url(USERS_PATH, {"$filter": GUEST_FILTER, "$select": select, "$top": page_size})

    saved = await read_checkpoint(store, scan_id)
    checkpoint = _resumable(graph, scan_id, saved, sign_in_activity)
    if checkpoint is None:
        # Starting over an unfinished scan counts as a restart: a consumer that kept earlier pages drops them.
        restarts = saved.restarts + 1 if saved is not None and not saved.finished else 0
        checkpoint = _new_checkpoint(sign_in_activity, restarts)
        await _save(store, scan_id, checkpoint)
    resuming = checkpoint.next_link is not None
    url: str | None = checkpoint.next_link or first_url

    prefetched: asyncio.Task[GuestPage] | None = None
    try:
        while url is not None:
            try:
                page = await prefetched if prefetched is not None else await _read_page(graph, url)
            except PermissionDeniedError as error:
                if sign_in_activity:
                    raise await _sign_in_activity_error(graph, error) from error
                raise
            except GraphError as error:
                if not (resuming and error.status in REFUSED_CURSOR_STATUSES):
                    raise
                log.warning(
                    "scan %s: Graph refused the saved nextLink (%s %s); restarting from the first page, "
                    "guests already delivered will be delivered again",
                    scan_id,
                    error.status,
                    error.code,
                )
                checkpoint = _new_checkpoint(sign_in_activity, checkpoint.restarts + 1)
                await _save(store, scan_id, checkpoint)
                resuming = False
                url = first_url
                continue
            prefetched = None
            resuming = False
            guests = _guests(page.value, scan_id)
            if page.next_link is not None:
                prefetched = await _read_ahead(graph, page.next_link)
            if guests:
                # the consumer coming back for more is what confirms this page
                yield ScanPage(guests, index=checkpoint.pages, restarts=checkpoint.restarts)
            checkpoint = replace(
                checkpoint,
                next_link=page.next_link,
                pages=checkpoint.pages + 1,
                guests=checkpoint.guests + len(guests),
                finished=page.next_link is None,
            )
            await _save(store, scan_id, checkpoint)
            url = page.next_link
    finally:
        if prefetched is not None:  # the consumer stopped early: the page read ahead is not needed
            prefetched.cancel()
            await asyncio.gather(prefetched, return_exceptions=True)  # its outcome no longer matters


def _new_checkpoint(sign_in_activity: bool, restarts: int) -> ScanCheckpoint:
    """A scan starting from the first page (`restarts`: how many times this one has started over)."""
    return ScanCheckpoint(None, 0, 0, utc_now().isoformat(), False, sign_in_activity, restarts=restarts)


async def _read_ahead(graph: Graph, url: str) -> asyncio.Task[GuestPage]:
    """Ask for the next page now, so that Graph prepares it while the consumer works on this one.

    The consumer's CPU work would hold the request back, so wait until it has left (or, if the pacer
    holds it, for a moment only).
    """
    sent = asyncio.Event()
    task = asyncio.create_task(_read_page(graph, url, on_sent=sent.set))
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(sent.wait(), READ_AHEAD_WAIT_SECONDS)
    except BaseException:  # cancelled while waiting: the page read ahead is nobody's now
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise
    return task


async def count_guests(graph: Graph) -> int | None:
    """How many guests the tenant has (for a progress bar), or None if Graph will not say.

    `/users/$count` is an advanced query: it needs `ConsistencyLevel: eventual`
    (docs/graph-contract.md#advanced-queries) and may lag recent changes by a little, which is fine for
    showing progress and never used for decisions.
    """
    try:
        response = await graph.request(
            "GET", f"{USERS_PATH}/$count", params={"$filter": GUEST_FILTER}, headers={"ConsistencyLevel": "eventual"}
        )
        return int(response.text)
    except (GraphError, ValueError) as error:
        log.debug("guest count unavailable: %s", error)
        return None


async def _read_page(graph: Graph, url: str, on_sent: Callable[[], None] | None = None) -> GuestPage:
    response = await graph.request("GET", url, on_sent=on_sent)
    return decode_page(response.content)


def _resumable(
    graph: Graph, scan_id: str, saved: ScanCheckpoint | None, sign_in_activity: bool
) -> ScanCheckpoint | None:
    """The saved checkpoint if this call may continue it, else None (start a new scan)."""
    if saved is None or saved.finished:
        return None
    if saved.sign_in_activity != sign_in_activity:
        log.info("scan %s: the saved checkpoint is for another $select; starting a new scan", scan_id)
        return None
    if saved.next_link is not None:
        try:
            graph.relative_path(saved.next_link)  # a cursor for another Graph host is never followed
        except GraphError:
            log.warning("scan %s: the saved nextLink is not on the configured Graph host; starting over", scan_id)
            return None
    return saved


def _guests(users: list[Guest], scan_id: str) -> list[Guest]:
    # Safety in depth (docs/architecture.md#safety-rules): whatever the filter returned, only guests leave
    # this function.
    guests = [user for user in users if user.user_type == "Guest"]
    if len(guests) != len(users):
        for user in users:
            if user.user_type != "Guest":
                log.error("scan %s: Graph returned non-guest %s for a guest filter; skipped", scan_id, user.id)
    return guests


async def _sign_in_activity_error(graph: Graph, error: PermissionDeniedError) -> GuestctlError:
    """`SignInActivityUnavailable` if the same query without signInActivity is allowed, else the 403 itself.

    One probe tells "no P1 / no AuditLog.Read.All" apart from "cannot read users at all", which no
    fallback scan would fix.
    """
    probe = {"$filter": GUEST_FILTER, "$select": "id", "$top": 1}
    try:
        await graph.get_json(USERS_PATH, params=probe)
    except PermissionDeniedError:
        return error
    if error.code == NON_PREMIUM_CODE:
        reason = "the tenant has no Microsoft Entra ID P1/P2 licence (Graph: {code})"
    else:
        reason = "the app may lack AuditLog.Read.All or the tenant an Entra ID P1/P2 licence (Graph: {code})"
    return SignInActivityUnavailable(
        reason.format(code=error.code or error.status), code=error.code, request_id=error.request_id
    )


async def _member_objects(graph: Graph, path: str) -> AsyncIterator[dict[str, Any]]:
    async for page in graph.pages(path, params={"$select": "id", "$top": MEMBERS_TOP}):
        for item in page.items:
            yield item


async def directory_role_holders(graph: Graph) -> set[str]:
    """Ids of every principal holding a directory role in any form, with role-holding groups expanded.

    Role holders are never planned (docs/architecture.md#safety-rules), whatever their other attributes say. Active
    assignments cover built-in and custom roles at any scope (tenant-wide and administrative units, which
    `/directoryRoles` members leave out); PIM eligibility adds those who can activate a role at will. A
    tenant without the licence for PIM (Entra ID P2) has no eligible holders. Any other failure is raised:
    planning without knowing who holds roles would not be safe.
    """
    # documented query options: $filter, $expand, $select (no $top: Graph pages these itself)
    params = {"$select": "id,principalId", "$expand": "principal"}
    principals = [item async for page in graph.pages(ROLE_ASSIGNMENTS_PATH, params=params) for item in page.items]
    try:
        principals += [item async for page in graph.pages(ROLE_ELIGIBILITY_PATH, params=params) for item in page.items]
    except GraphError as error:
        if error.code != NO_PIM_LICENCE_CODE:
            raise
        log.info("no PIM role eligibility in this tenant (%s): active role assignments only", error.code)
    ids = {item["principalId"] for item in principals}
    groups = [
        item["principalId"] for item in principals if (item.get("principal") or {}).get("@odata.type") == GROUP_TYPE
    ]
    if groups:  # role-assignable groups: their members hold the role too
        ids |= await transitive_group_members(graph, groups)
    return ids


async def transitive_group_members(graph: Graph, group_ids: Iterable[str]) -> set[str]:
    """Ids of the non-group objects (users, mostly) nested anywhere inside these groups.

    Uses `transitiveMembers` (one paged call per group, Graph does the nesting); nested groups are
    left out of the result because exemptions apply to people.
    """

    async def members(group_id: str) -> set[str]:
        try:
            return {
                item["id"]
                async for item in _member_objects(graph, f"{GROUPS_PATH}/{group_id}/transitiveMembers")
                if item.get("@odata.type") != GROUP_TYPE
            }
        except NotFoundError:
            raise GroupNotFoundError(
                f'group "{group_id}" not found', hint="check the policy's exemption groups"
            ) from None

    results = await asyncio.gather(*(members(g) for g in dict.fromkeys(group_ids)))
    return set().union(*results)


async def resolve_groups(graph: Graph, names_or_ids: Iterable[str]) -> dict[str, str]:
    """Each policy exemption group (object id or display name, case-insensitive) → its object id.

    An unknown or ambiguous name is an error naming it: an exemption that silently matches nothing
    would let the sweep act on people the policy meant to protect.
    """
    wanted = list(dict.fromkeys(k.strip() for k in names_or_ids if k.strip()))

    async def found(filter_: str) -> list[dict[str, Any]]:
        params = {"$filter": filter_, "$select": GROUP_SELECT, "$top": MEMBERS_TOP}
        return [item async for page in graph.pages(GROUPS_PATH, params=params) for item in page.items]

    index: dict[str, list[GroupRef]] = {}
    for items in await asyncio.gather(*(found(f) for f in group_filters(wanted))):
        index_groups(index, items)
    resolved: dict[str, str] = {}
    for key in wanted:
        matches = sorted({g.id for g in matching_groups(key, index)})
        if len(matches) > 1:
            raise GroupNotFoundError(
                f'exemption group "{key}" is ambiguous: {len(matches)} groups have that name ({", ".join(matches)})',
                hint="name the group by its object id in the policy",
            )
        if not matches:
            raise GroupNotFoundError(
                f'exemption group "{key}" not found', hint="check the name or use the group's object id"
            )
        resolved[key] = matches[0]
    return resolved
