"""Graph (and guestctl's own records) → the facts an offboarding plan is made from. No tenant changes.

- The worker: the first identifier the event gives, in `IDENTIFIER_ORDER`, decides; zero or several users
  with it is no action, recorded for a person to review with the reason.
- Their direct groups (`memberOf/microsoft.graph.group`; dynamic ones are kept so the plan can say why
  they are left), the guests they sponsor, their manager, and the policy's fallback sponsor.
- Graph has no reverse navigation from a sponsor to the guests it sponsors, so finding them reads every
  guest with `$expand=sponsors($select=id)`: one request per 100 guests (docs/graph-contract.md#offboarding).
  That read is kept per Graph client for `SPONSOR_INDEX_SECONDS`, so a burst of HR events (a team leaving at
  once) reads the guests once, not once per event; guestctl's own sponsor changes update the kept copy.
- A direct connect partner user has no object here: the shared channels guestctl added them to are in
  the migration runs' audit entries (`channel.member.add`), found by email.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import quote

import msgspec

from shared.config import Policy
from shared.errors import NotFoundError
from shared.graph import Graph
from shared.graph.odata import literal
from shared.offboarding.events import Worker
from shared.offboarding.records import (
    GROUP_SELECT,
    MANAGER_SELECT,
    PERSON_SELECT,
    SPONSORED_SELECT,
    Facts,
    Group,
    Person,
    Ref,
    Sponsored,
    person_decoder,
)
from shared.partners.retire_apply import migrated_members
from shared.stale.sweep import exemptions_now
from shared.store import Store

USERS = "/users"
GUEST_FILTER = "userType eq 'Guest'"
EXPAND_SPONSORS = "sponsors($select=id)"
SPONSORED_PAGE = "100"  # Graph returns at most 100 objects per page with $expand (docs/graph-contract.md#offboarding)
# How long one read of every guest's sponsors answers "whom does X sponsor?" (docs/offboarding.md#scale).
SPONSOR_INDEX_SECONDS = 60.0


async def find_worker(graph: Graph, worker: Worker) -> tuple[tuple[str, str], list[Person]]:
    """The first identifier given and every user it matches (one is a match; none or several, a review)."""
    name, value = worker.identifiers()[0]
    if name == "entraObjectId":
        found = await read_user(graph, value, PERSON_SELECT)
        return (name, value), [found] if found is not None else []
    if name == "userPrincipalName":
        filters = [f"userPrincipalName eq {literal(value)}"]
    elif name == "email":
        # mail, or the address a guest was invited with (otherMails): both default-query filters
        filters = [f"mail eq {literal(value)}", f"otherMails/any(m:m eq {literal(value)})"]
    else:
        filters = [f"employeeId eq {literal(value)}"]
    users: dict[str, Person] = {}
    for where in filters:
        async for page in graph.pages(USERS, params={"$filter": where, "$select": PERSON_SELECT}):
            for item in page.items:
                users.setdefault(item["id"].lower(), msgspec.convert(item, Person))
    return (name, value), list(users.values())


async def read_user(graph: Graph, id_or_upn: str, select: str) -> Person | None:
    try:
        response = await graph.request("GET", f"{USERS}/{quote(id_or_upn, safe='@')}", params={"$select": select})
    except NotFoundError:
        return None
    return person_decoder.decode(response.content)


async def direct_groups(graph: Graph, user_id: str) -> list[Group]:
    """The groups the user is a direct member of (membership through another group is that group's)."""
    path = f"{USERS}/{user_id}/memberOf/microsoft.graph.group"
    return [
        msgspec.convert(i, Group)
        async for page in graph.pages(path, params={"$select": GROUP_SELECT})
        for i in page.items
    ]


@dataclass
class SponsorIndex:
    """Every guest with its sponsors, read at `read_at` (monotonic seconds), and who sponsors whom."""

    read_at: float
    guests: dict[str, Sponsored]
    sponsors: dict[str, set[str]] = field(default_factory=dict)  # guest id → sponsor ids, lower case

    def sponsored_by(self, sponsor_id: str) -> list[Sponsored]:
        wanted = sponsor_id.lower()
        return [
            msgspec.structs.replace(self.guests[guest], sponsors=[Ref(s) for s in sorted(ids)])
            for guest, ids in self.sponsors.items()
            if wanted in ids
        ]

    def changed(self, guest_id: str, *, added: str | None = None, removed: str | None = None) -> None:
        ids = self.sponsors.get(guest_id.lower())
        if ids is None:
            return  # a guest the read did not see: nobody asks for it before the next read
        if added:
            ids.add(added.lower())
        if removed:
            ids.discard(removed.lower())


_INDEXES: weakref.WeakKeyDictionary[Graph, SponsorIndex] = weakref.WeakKeyDictionary()
_READING: weakref.WeakKeyDictionary[Graph, asyncio.Lock] = weakref.WeakKeyDictionary()


async def sponsor_index(graph: Graph) -> SponsorIndex:
    """Every guest's sponsors, read again when the kept read is older than `SPONSOR_INDEX_SECONDS` (one read
    at a time per client: concurrent HR events wait for it instead of each reading every guest)."""
    async with _READING.setdefault(graph, asyncio.Lock()):
        kept = _INDEXES.get(graph)
        if kept is not None and time.monotonic() - kept.read_at < SPONSOR_INDEX_SECONDS:
            return kept
        started = time.monotonic()
        params = {"$filter": GUEST_FILTER, "$select": SPONSORED_SELECT, "$expand": EXPAND_SPONSORS}
        guests: dict[str, Sponsored] = {}
        async for page in graph.pages(USERS, params={**params, "$top": SPONSORED_PAGE}):
            for item in page.items:
                guest = msgspec.convert(item, Sponsored)
                guests[guest.id.lower()] = guest
        index = SponsorIndex(started, guests, {gid: set(g.sponsor_ids) for gid, g in guests.items()})
        _INDEXES[graph] = index
        return index


async def sponsored_by(graph: Graph, sponsor_id: str) -> list[Sponsored]:
    """Every guest `sponsor_id` sponsors (apply reads each again before changing it)."""
    return (await sponsor_index(graph)).sponsored_by(sponsor_id)


def sponsors_changed(graph: Graph, guest_id: str, *, added: str | None = None, removed: str | None = None) -> None:
    """guestctl changed a guest's sponsors: the kept read says so too (a later event in the burst sees it)."""
    kept = _INDEXES.get(graph)
    if kept is not None:
        kept.changed(guest_id, added=added, removed=removed)


async def read_sponsored(graph: Graph, guest_id: str) -> Sponsored | None:
    """One guest with its sponsors, as Graph has them now (apply's re-check)."""
    params = {"$select": SPONSORED_SELECT, "$expand": EXPAND_SPONSORS}
    try:
        return msgspec.convert(await graph.get_json(f"{USERS}/{guest_id}", params=params), Sponsored)
    except NotFoundError:
        return None


async def manager_of(graph: Graph, user_id: str) -> Person | None:
    """The user's manager; None when none is set (Graph: 404 Request_ResourceNotFound)."""
    try:
        found = await graph.get_json(f"{USERS}/{user_id}/manager", params={"$select": MANAGER_SELECT})
    except NotFoundError:
        return None
    return msgspec.convert(found, Person)


async def channel_memberships(store: Store, email: str) -> list[dict[str, Any]]:
    """The shared channel memberships guestctl's migrations added for `email` (one per channel)."""
    wanted = email.lower()
    found: dict[str, dict[str, Any]] = {}
    async for member in migrated_members(store):
        if str(member.get("mail") or "").lower() == wanted and member.get("channel_id"):
            found.setdefault(f"{member['channel_id']}/{member.get('home_id')}", member)
    return list(found.values())


async def gather_facts(graph: Graph, store: Store, policy: Policy, worker: Worker, today: date) -> Facts:
    """Everything the plan needs about the worker named by the event. Reads only."""
    identifier, users = await find_worker(graph, worker)
    name, value = identifier
    if len(users) > 1:
        return Facts(identifier, review=f"ambiguous: {len(users)} users have {name} {value}")
    if not users:
        channels = tuple(await channel_memberships(store, value)) if name == "email" else ()
        if channels:
            return Facts(identifier, channels=channels)
        return Facts(identifier, review=f"no user has {name} {value}")
    (person,) = users
    exempt = (await exemptions_now(graph, policy)).reason(person, today)
    groups = await direct_groups(graph, person.id)
    sponsored = await sponsored_by(graph, person.id)
    manager = await manager_of(graph, person.id) if sponsored else None
    fallback = policy.offboarding.fallback_sponsor
    fallback_user = await read_user(graph, fallback, MANAGER_SELECT) if sponsored and fallback else None
    return Facts(
        identifier,
        worker=person,
        exempt=exempt,
        groups=tuple(groups),
        sponsored=tuple(sponsored),
        manager=manager,
        fallback=fallback_user,
    )
