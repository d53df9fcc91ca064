"""What the CLI, the Functions timer and the demo call for partner discovery: typed results.

`discover` reads, never writes to the tenant: guests by home organisation, what they use, our
cross-tenant settings for each partner and recent sign-ins, then a recommendation per partner
(rules.py). Tenant lookups are cached in the store for `LOOKUP_TTL`, so a daily refresh over thousands
of domains costs no lookups at all once warm; the latest discovery is kept in the store.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from shared.clock import Clock, utc_now
from shared.concurrency import map_bounded
from shared.config import Settings
from shared.errors import InputError, PermissionDeniedError
from shared.graph import Graph, get_graph
from shared.partners.fetch import cross_tenant_settings, find_tenant, guest_pages, guest_usage, sign_ins_by_tenant
from shared.partners.fetch import team_ids as fetch_team_ids
from shared.partners.records import Guest, Home, TenantInfo, Usage
from shared.partners.report import Discovery, Partner, Seen, bucket_key, build_partner, is_accepted, ranked
from shared.partners.rules import direct_connect, home_domain, is_active, no_tenant_reason
from shared.stale.fetch import directory_role_holders
from shared.store import Store, open_state
from shared.store.registry import PARTNER_DISCOVERY, TENANT_LOOKUPS
from shared.store.text import put_text, read_text

log = logging.getLogger("guestctl.partners")

LOOKUPS_TABLE = TENANT_LOOKUPS
DISCOVERY_TABLE = PARTNER_DISCOVERY
DOMAINS = "domain"
LATEST = "latest"
SUMMARY = "summary"
LOOKUP_TTL = timedelta(days=7)  # a domain rarely changes tenant; a week old answer is good enough to rank
LOOKUPS_IN_FLIGHT = 8
SIGN_IN_DAYS = 30  # the sign-in log's retention with Entra ID P1/P2 (docs/graph-contract.md#sign-in-logs)
NO_TENANT_FOR_DOMAIN = "no Entra tenant for the domain"


async def discover(settings: Settings, *, min_guests: int = 1, clock: Clock = utc_now, keep: bool = True) -> Discovery:
    """Discover the partners of the configured tenant (see the module docstring); `keep`: store it."""
    if min_guests < 1:
        raise InputError(f"--min-guests must be at least 1 (got {min_guests})")
    async with open_state(settings) as store:
        # The process's client (get_graph): not closed here, the Functions app reuses it across invocations.
        return await discover_with(get_graph(settings), store, min_guests=min_guests, clock=clock, keep=keep)


async def discover_with(
    graph: Graph, store: Store, *, min_guests: int = 1, clock: Clock = utc_now, keep: bool = True
) -> Discovery:
    """`discover` with a Graph client and a store at hand (the tests, the bench and the demo)."""
    if min_guests < 1:
        raise InputError(f"--min-guests must be at least 1 (got {min_guests})")
    now = clock()
    guests, sign_in_activity = await _read_guests(graph, now)
    domains = sorted({g.domain for g in guests if g.domain and g.no_tenant is None})
    tenants, made = await lookup_tenants(graph, store, domains, now)
    seen = [_seen(g, tenants) for g in guests]
    buckets: dict[str, list[Seen]] = {}
    for one in seen:
        buckets.setdefault(bucket_key(one.home), []).append(one)
    buckets = {k: v for k, v in buckets.items() if len(v) >= min_guests}
    partner_ids = {k for k, v in buckets.items() if v[0].home.tenant is not None}
    holders = await directory_role_holders(graph)
    wanted = [s.user_id for k in partner_ids for s in buckets[k] if s.user_id not in holders]
    usage = await guest_usage(graph, wanted, await fetch_team_ids(graph)) if wanted else {}
    usage |= {s.user_id: Usage(role_holder=True) for k in partner_ids for s in buckets[k] if s.user_id in holders}
    default, configured = await cross_tenant_settings(graph)
    sign_ins = await sign_ins_by_tenant(graph, now - timedelta(days=SIGN_IN_DAYS))
    partners: list[Partner] = [
        build_partner(
            key,
            members,
            usage if key in partner_ids else None,
            direct_connect(default, configured.get(key)) if key in partner_ids else None,
            (sign_ins or {}).get(key),
            now,
        )
        for key, members in buckets.items()
    ]
    discovery = Discovery(
        generated_at=now,
        partners=ranked(partners),
        guests=len(guests),
        domains=len(domains),
        lookups=made,
        lookups_cached=len(domains) - made,
        sign_in_activity=sign_in_activity,
        sign_in_log=sign_ins is not None,
        sign_in_days=SIGN_IN_DAYS,
        notes=_notes(sign_in_activity, sign_ins is not None),
    )
    if keep:
        await put_text(store, DISCOVERY_TABLE, LATEST, SUMMARY, json.dumps(discovery.to_json()))
    return discovery


async def latest_discovery(store: Store) -> dict | None:
    """The latest discovery kept in the store (as JSON), or None if none was kept."""
    text = await read_text(store, DISCOVERY_TABLE, LATEST, SUMMARY)
    return json.loads(text) if text is not None else None


class _Light:
    """A guest reduced to what discovery keeps (100,000 of these stay small)."""

    __slots__ = ("accepted", "active", "created", "domain", "no_tenant", "user_id")

    def __init__(self, guest: Guest, now: datetime) -> None:
        self.user_id = guest.id
        self.domain = home_domain(guest)
        self.no_tenant = no_tenant_reason(guest, self.domain)
        self.accepted = is_accepted(guest.state)
        self.created = guest.created
        self.active = is_active(guest.sign_in, now)


async def _read_guests(graph: Graph, now: datetime) -> tuple[list[_Light], bool]:
    """Every guest (only guests: the filter's answer is checked), with signInActivity when Graph gives it."""
    try:
        return [
            _Light(g, now) async for page in guest_pages(graph, sign_in_activity=True) for g in _only(page.value)
        ], True
    except PermissionDeniedError as error:
        # No Entra ID P1/P2 or no AuditLog.Read.All: the same scan without activity (docs/partners.md).
        log.warning("signInActivity not available (%s): activity is not counted", error.code or error.status)
    guests = [_Light(g, now) async for page in guest_pages(graph, sign_in_activity=False) for g in _only(page.value)]
    return guests, False


def _only(users: Iterable[Guest]) -> list[Guest]:
    return [u for u in users if u.user_type == "Guest"]


async def lookup_tenants(
    graph: Graph, store: Store, domains: list[str], now: datetime
) -> tuple[dict[str, TenantInfo | None], int]:
    """Each domain's tenant, from the store's cache when younger than LOOKUP_TTL, else one lookup; how many
    lookups were made."""
    known: dict[str, TenantInfo | None] = {}
    wanted = set(domains)
    async for record in store.query(LOOKUPS_TABLE, DOMAINS):
        data = record.data
        if record.row in wanted and datetime.fromisoformat(data["looked_up_at"]) > now - LOOKUP_TTL:
            tenant = data.get("tenant_id")
            known[record.row] = (
                TenantInfo(tenant, data.get("display_name"), data.get("default_domain")) if tenant else None
            )
    missing = [d for d in domains if d not in known]

    async def look_up(domain: str) -> None:
        found = await find_tenant(graph, domain)
        known[domain] = found
        data = {
            "tenant_id": found.tenant_id if found else None,
            "display_name": found.display_name if found else None,
            "default_domain": found.default_domain if found else None,
            "looked_up_at": now.isoformat(),
        }
        await store.upsert(LOOKUPS_TABLE, DOMAINS, domain, data)

    await map_bounded(missing, look_up, limit=LOOKUPS_IN_FLIGHT)
    return known, len(missing)


def _seen(guest: _Light, tenants: dict[str, TenantInfo | None]) -> Seen:
    reason = guest.no_tenant
    tenant = None
    if reason is None and guest.domain is not None:
        tenant = tenants.get(guest.domain)
        reason = None if tenant is not None else NO_TENANT_FOR_DOMAIN
    home = Home(guest.domain, tenant, reason)
    return Seen(guest.user_id, home, guest.accepted, guest.created, guest.active)


def _notes(sign_in_activity: bool, sign_in_log: bool) -> list[str]:
    notes = []
    if not sign_in_activity:
        notes.append(
            "signInActivity is not available (Entra ID P1/P2 and AuditLog.Read.All needed): no guest counts as active"
        )
    if not sign_in_log:
        notes.append("the sign-in log could not be read (AuditLog.Read.All needed): no sign-ins per partner")
    return notes
