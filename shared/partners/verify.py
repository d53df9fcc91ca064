"""Verification from the sign-in log: who of each partner signs in through direct connect, who still as a
guest, where their MFA is satisfied, and what fails with which error code (docs/partners.md#verify).

The log is read by time window (`createdDateTime ge …`, whole UTC days), page by page through the Graph
client's pacer (an identity report: 5 requests per 10 s), and folded into tallies as it streams
(`verify_rules.Aggregation`): memory grows with partners, days and people, never with entries.

The store keeps, in table `partnersignins` (partition: the partner's home tenant id):
- `day:YYYY-MM-DD`: that day's tally. A run replaces the days of its window, so running twice never counts
  twice, and trends outlive the log's 30-day retention;
- `person:<userPrincipalName>`: the first and last day the person signed in through direct connect, and
  their home object id (`userId`), kept as the evidence retirement relies on (docs/partners.md#retire).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.clock import Clock, utc_now
from shared.config import Policy, Settings, load_policy
from shared.errors import InputError, PermissionDeniedError
from shared.graph import Graph, get_graph
from shared.partners.fetch import SIGN_INS_PAGE, SIGN_INS_PATH
from shared.partners.verify_rules import Aggregation, Person, Tally, window_start
from shared.store import Store, open_state
from shared.store.registry import PARTNER_SIGN_INS

log = logging.getLogger("guestctl.partners")

SIGN_INS_TABLE = PARTNER_SIGN_INS
DAY_ROW = "day:"
PERSON_ROW = "person:"
MAX_DAYS = 30  # the sign-in log's retention with Entra ID P1/P2 (docs/graph-contract.md#sign-in-logs)


async def read_sign_ins(graph: Graph, since: datetime, aggregation: Aggregation) -> bool:
    """Fold every sign-in since `since` into `aggregation`, page by page; False if the log is refused."""
    stamp = since.strftime("%Y-%m-%dT%H:%M:%SZ")
    params = {"$filter": f"createdDateTime ge {stamp}", "$top": SIGN_INS_PAGE}
    try:
        async for page in graph.pages(SIGN_INS_PATH, params=params):
            for entry in page.items:
                aggregation.add(entry)
    except PermissionDeniedError as error:
        log.warning("sign-in log not readable (%s): nothing to verify", error.code or error.status)
        return False
    return True


def window_days(since: datetime, now: datetime) -> list[str]:
    days, day = [], since
    while day <= now:
        days.append(day.strftime("%Y-%m-%d"))
        day += timedelta(days=1)
    return days


async def keep_aggregates(store: Store, aggregation: Aggregation, days: list[str], now: datetime) -> None:
    """Replace the window's day tallies (a day with no sign-ins any more loses its row) and widen each
    person's direct connect dates (never narrowed: the evidence outlives the log)."""
    window = set(days)
    async for record in store.query(SIGN_INS_TABLE, row_prefix=DAY_ROW):
        day = record.row.removeprefix(DAY_ROW)
        if day in window and (record.partition, day) not in aggregation.days:
            await store.delete(record)
    kept_at = now.isoformat()
    for (home, day), tally in aggregation.days.items():
        await store.upsert(SIGN_INS_TABLE, home, DAY_ROW + day, {**tally.to_json(), "kept_at": kept_at})
    for (home, person), seen in aggregation.people.items():
        if seen.first_direct is None or seen.last_direct is None:
            continue
        record = await store.get(SIGN_INS_TABLE, home, PERSON_ROW + person)
        before = record.data if record is not None else {}
        first = min(filter(None, (before.get("first_direct"), seen.first_direct)))
        last = max(filter(None, (before.get("last_direct"), seen.last_direct)))
        data = {"upn": person, "user_id": seen.user_id, "name": seen.name, "first_direct": first, "last_direct": last}
        if data != before:
            await store.upsert(SIGN_INS_TABLE, home, PERSON_ROW + person, data)


async def kept_days(store: Store, home: str) -> list[dict[str, Any]]:
    """Every day tally kept for a partner, oldest first (longer than the log keeps them)."""
    return [
        {"day": r.row.removeprefix(DAY_ROW), **Tally.from_json(r.data).to_json()}
        async for r in store.query(SIGN_INS_TABLE, home.lower(), row_prefix=DAY_ROW)
    ]


@dataclass(frozen=True, slots=True)
class PartnerSignIns:
    tenant_id: str
    label: str | None  # the policy's name for a configured partner
    configured: bool  # named in partners.tenants
    window: Tally
    days: list[dict[str, Any]]  # every kept day, from the store
    people: list[tuple[str, Person]]

    def to_json(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "name": self.label,
            "configured": self.configured,
            **self.window.to_json(),
            "days": self.days,
            "people": [_person_json(upn, p) for upn, p in self.people],
        }


def _person_json(upn: str, person: Person) -> dict[str, Any]:
    return {
        "person": upn,
        "user_id": person.user_id,
        "name": person.name,
        **person.tally.to_json(),
        "first_direct_connect": person.first_direct,
        "last_direct_connect": person.last_direct,
    }


@dataclass(frozen=True, slots=True)
class Verification:
    generated_at: datetime
    since: datetime
    days: int
    entries: int  # every log entry read in the window
    sign_in_log: bool  # False: the log was refused (no AuditLog.Read.All or no P1/P2)
    partners: list[PartnerSignIns]
    notes: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "generated_at": self.generated_at.isoformat(),
            "since": self.since.isoformat(),
            "days": self.days,
            "entries": self.entries,
            "sign_in_log": self.sign_in_log,
            "partners": [p.to_json() for p in self.partners],
            "notes": self.notes,
        }


async def verify_with(
    graph: Graph, store: Store, configured: dict[str, str], *, days: int = MAX_DAYS, clock: Clock = utc_now
) -> Verification:
    """Read the window's sign-ins, keep the day tallies, and report on the configured partners (tenant id →
    label) and on every other tenant seen signing in through direct connect."""
    if not 1 <= days <= MAX_DAYS:
        raise InputError(f"--days must be 1 to {MAX_DAYS} (the sign-in log keeps 30 days); got {days}")
    now = clock()
    since = window_start(now, days)
    aggregation = Aggregation()
    readable = await read_sign_ins(graph, since, aggregation)
    if readable:
        await keep_aggregates(store, aggregation, window_days(since, now), now)
    totals = aggregation.partner_totals()
    shown = set(configured) | {home for home, tally in totals.items() if tally.direct}
    partners = []
    for home in sorted(shown, key=lambda h: (h not in configured, configured.get(h) or "", h)):
        people = sorted(((upn, p) for (h, upn), p in aggregation.people.items() if h == home), key=lambda x: x[0])
        window = totals.get(home, Tally())
        kept = await kept_days(store, home)
        partners.append(PartnerSignIns(home, configured.get(home), home in configured, window, kept, people))
    notes = [] if readable else ["the sign-in log could not be read (AuditLog.Read.All and Entra ID P1/P2 needed)"]
    return Verification(now, since, days, aggregation.entries, readable, partners, notes)


async def configured_partners(graph: Graph, policy: Policy) -> dict[str, str]:
    """The partners the policy names, tenant id → label (a domain is looked up)."""
    from shared.partners.trust_service import resolve_named

    return {tenant_id: label for tenant_id, label, _ in await resolve_named(graph, policy, our_tenant=None)}


async def verify(settings: Settings, *, days: int = MAX_DAYS, clock: Clock = utc_now) -> Verification:
    """`guestctl partners verify` and the daily timer: the configured tenant's sign-ins of the last `days`."""
    policy = load_policy(settings.policy)
    graph = get_graph(settings)  # the process's client: the Functions app reuses it, so it is not closed here
    async with open_state(settings) as store:
        return await verify_with(graph, store, await configured_partners(graph, policy), days=days, clock=clock)
