"""What `guestctl partners migrate` calls: read the partner's guests, what they use and the mapped shared
channels, plan (migrate.py), and apply through the core applier (migrate_apply.py); typed results.

Planning reads Graph only: every guest (paged), the home tenant of each guest domain (the store's lookup
cache, shared with discovery), role holders, each of the partner's guests' groups and app role assignments
(`$batch`), the teams, the mapped teams' shared channels and their members, and our cross-tenant settings.
A `{create: NAME}` mapping reads the team's channels: one of that name is used (it must be shared), else the
plan creates it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from shared.clock import Clock, utc_now
from shared.config import ChannelToCreate, PartnerTrust, Policy, Settings, load_policy
from shared.core.apply import ActionResult, Outcome, outcome_counts
from shared.errors import InputError, PolicyError, RefusedError
from shared.graph import Graph, graph_options, tenant_graph
from shared.graph.odata import is_object_id
from shared.partners.accept import IdsFile
from shared.partners.fetch import cross_tenant_settings, guest_pages, guest_teams
from shared.partners.home_ids import home_users_via_app, ids_from_app
from shared.partners.migrate import MigrationPlan, SharedChannel, plan_migration, run_id_for
from shared.partners.migrate_apply import apply_migration, channel_members, channels_path
from shared.partners.records import Guest, Usage
from shared.partners.rules import Use, direct_connect, home_domain, no_tenant_reason, use_of
from shared.partners.service import lookup_tenants
from shared.partners.trust_effects import find_tenant
from shared.partners.trust_service import plan_tenant, resolve_named
from shared.stale.fetch import directory_role_holders
from shared.store import Store, open_state

MIGRATE_SELECT: Final = "id,mail,otherMails,userPrincipalName,identities,userType,externalUserState"
TEAMS_PARAMS: Final = {
    "$filter": "resourceProvisioningOptions/Any(x:x eq 'Team')",
    "$select": "id,displayName",
    "$top": 999,
}
SHARED_ONLY: Final = {"$filter": "membershipType eq 'shared'"}


def read_ids(text: str, *, name: str) -> IdsFile:
    try:
        return IdsFile.from_json(json.loads(text))
    except (ValueError, TypeError, KeyError) as error:
        raise InputError(
            f"{name}: not a usable partner id file: {str(error)[:200]}",
            hint="give the file `guestctl partners accept --out` wrote in the partner's tenant",
        ) from None


async def partner_guests(graph: Graph, store: Store, partner_tenant: str, now: Any) -> tuple[list[Guest], int]:
    """Every guest whose home domain belongs to the partner's tenant (lookups cached with discovery's), and
    how many guests the tenant has in all (what safety.max_percent is a share of)."""
    guests = [
        g
        async for page in guest_pages(graph, sign_in_activity=False, select=MIGRATE_SELECT)
        for g in page.value
        if g.user_type == "Guest"
    ]
    domains = {g.id: home_domain(g) for g in guests}
    wanted = sorted({d for g in guests if (d := domains[g.id]) and no_tenant_reason(g, d) is None})
    tenants, _ = await lookup_tenants(graph, store, wanted, now)
    theirs = [
        g
        for g in guests
        if (tenant := tenants.get(domains[g.id] or "")) is not None and tenant.tenant_id.lower() == partner_tenant
    ]
    return theirs, len(guests)


def _pick(wanted: str, items: list[dict[str, Any]], what: str, where: str) -> dict[str, Any]:
    """An item by id, else by display name (case-insensitive); two with that name is an error, not a guess."""
    by_id = [i for i in items if str(i["id"]).lower() == wanted.lower()]
    found = by_id or [i for i in items if str(i.get("displayName") or "").lower() == wanted.lower()]
    if len(found) != 1:
        problem = "no" if not found else f"{len(found)}"
        raise PolicyError(
            f"partners.tenants[{where}].channels: {problem} {what} {wanted[:80]!r}",
            hint=f"give the {what}'s id, or a display name only one {what} has",
        )
    return found[0]


async def mapped_channels(
    graph: Graph, entry: PartnerTrust, where: str, teams: list[dict[str, Any]]
) -> dict[str, SharedChannel]:
    """team id → its mapped shared channel (with its members now), from `channels` in the policy."""
    mapped: dict[str, SharedChannel] = {}
    for team_ref, channel_ref in entry.channels.items():
        team = _pick(team_ref, teams, "team", where)
        team_id = str(team["id"]).lower()
        if isinstance(channel_ref, ChannelToCreate):
            channel = await _to_create(graph, team, channel_ref, where)
            if channel is None:
                mapped[team_id] = SharedChannel(
                    team_id, str(team.get("displayName")), "", channel_ref.create,
                    create=True, description=channel_ref.description,
                )  # fmt: skip
                continue
        else:
            shared = (await graph.get_json(channels_path(team_id), params=SHARED_ONLY)).get("value", [])
            channel = _pick(channel_ref, shared, "shared channel", where)
        members = await channel_members(graph, team_id, str(channel["id"]))
        mapped[team_id] = SharedChannel(
            team_id,
            str(team.get("displayName")),
            str(channel["id"]),
            str(channel.get("displayName")),
            frozenset(members),
        )
    return mapped


async def _to_create(graph: Graph, team: dict[str, Any], wanted: ChannelToCreate, where: str) -> dict[str, Any] | None:
    """The team's channel named as `{create: NAME}` says, when it exists already (it must be shared); None:
    it is to be created."""
    every = (await graph.get_json(channels_path(str(team["id"])))).get("value", [])
    found = next((c for c in every if str(c.get("displayName") or "").lower() == wanted.create.lower()), None)
    if found is not None and found.get("membershipType") != "shared":
        raise PolicyError(
            f"partners.tenants[{where}].channels: team {team.get('displayName')!r} has a "
            f"{found.get('membershipType')} channel named {wanted.create!r}, and only a shared channel takes "
            "people of another tenant",
            hint="name another channel to create, or map the team to an existing shared channel",
        )
    return found


@dataclass(frozen=True, slots=True)
class FromApp:
    """Home ids read from the partner's tenant by our multi-tenant app (`home_ids: app`): the partner as
    partners.tenants names it (id or domain), and how to open a Graph client for their tenant."""

    tenant: str
    open_partner: Callable[[str], Graph]


Source = IdsFile | FromApp
HomeIds = Callable[[str, str, list[Guest]], Awaitable[IdsFile]]  # (tenant id, label, candidates) → ids


async def plan_with(
    graph: Graph, store: Store, policy: Policy, source: Source, *, our_tenant: str | None, clock: Clock = utc_now
) -> MigrationPlan:
    """The migration plan for the partner whose id file this is, or whom `FromApp` names. Reads Graph only
    (with `FromApp`, also the partner's users that match the candidates' addresses)."""
    if isinstance(source, IdsFile) and our_tenant is not None and source.resource_tenant != our_tenant.lower():
        raise RefusedError(
            f"the id file is for tenant {source.resource_tenant}, not ours ({our_tenant})",
            hint="ask the partner to run accept with --resource-tenant set to our tenant id; nothing was changed",
        )
    named = await resolve_named(graph, policy, our_tenant=our_tenant)
    now = clock()
    if isinstance(source, FromApp):
        wanted = source.tenant.strip().lower()
        found = [(i, t, label, e) for i, (t, label, e) in enumerate(named) if wanted in (t, e.tenant.lower())]
        if not found and not is_object_id(wanted):  # another domain of theirs
            wanted = str((await find_tenant(graph, domain=wanted))["tenantId"]).lower()
            found = [(i, t, label, e) for i, (t, label, e) in enumerate(named) if t == wanted]
        unnamed = f"--tenant {source.tenant[:80]!r}: partners.tenants names no such partner"
        hint = "give a partner of partners.tenants: its tenant id or a domain of theirs"

        async def home(tenant_id: str, label: str, candidates: list[Guest]) -> IdsFile:
            partner = source.open_partner(tenant_id)
            try:
                users = await home_users_via_app(partner, label, candidates) if candidates else []
            finally:
                await partner.close()
            return ids_from_app(tenant_id, our_tenant, users, now)
    else:
        ids = source
        found = [(i, t, label, e) for i, (t, label, e) in enumerate(named) if t == ids.tenant_id]
        unnamed = f"the id file is from tenant {ids.tenant_id}, which partners.tenants does not name"
        hint = "add the partner to the policy first"

        async def home(tenant_id: str, label: str, candidates: list[Guest]) -> IdsFile:
            return ids

    if not found:
        raise InputError(unnamed, hint=f"{hint} (and apply its trust settings); nothing was changed")
    ((index, tenant_id, label, entry),) = found
    wanted_source = "app" if isinstance(source, FromApp) else "file"
    if entry.home_ids != wanted_source:
        given = "--tenant" if wanted_source == "app" else "--ids FILE"
        needed = "--ids FILE (their id file)" if entry.home_ids == "file" else f"--tenant {entry.tenant}"
        raise InputError(
            f"partners.tenants[{index}] ({label}) has home_ids: {entry.home_ids}, so {given} is not its source",
            hint=f"give {needed}, or change home_ids in the policy; nothing was changed",
        )
    if not entry.channels:
        raise PolicyError(
            f"partners.tenants[{index}] ({label}) has no channels: nothing to migrate people into",
            hint="map each team to a shared channel: channels: {TEAM: SHARED_CHANNEL}",
        )
    return await _plan(graph, store, policy, (index, tenant_id, label, entry), home, now)


async def _plan(
    graph: Graph, store: Store, policy: Policy, named: tuple[int, str, str, PartnerTrust], home: HomeIds, now: Any
) -> MigrationPlan:
    index, tenant_id, label, entry = named
    every_team = [item async for page in graph.pages("/groups", params=TEAMS_PARAMS) for item in page.items]
    channels = await mapped_channels(graph, entry, str(index), every_team)
    guests, all_guests = await partner_guests(graph, store, tenant_id, now)
    holders = await directory_role_holders(graph)
    teams = {str(item["id"]).lower() for item in every_team}
    read = [g.id for g in guests if g.id not in holders]
    usage = await guest_teams(graph, read, teams) if read else {}
    rows = [(g, *usage.get(g.id, (Usage(role_holder=True), frozenset()))) for g in guests]
    ids = await home(tenant_id, label, [g for g, use, _ in rows if use_of(use) is Use.TEAMS_ONLY])
    default, configured = await cross_tenant_settings(graph)
    inbound = direct_connect(default, configured.get(tenant_id)).inbound
    return plan_migration(
        now=now,
        partner_tenant=tenant_id,
        partner_label=label,
        run_id=run_id_for(tenant_id, ids, policy.digest()),
        ids=ids,
        guests=rows,
        channels=channels,
        inbound_allowed=inbound != "blocked",
        policy=policy,
        all_guests=all_guests,
    )


@dataclass(frozen=True, slots=True)
class Migration:
    plan: MigrationPlan
    results: list[ActionResult[Any]] | None  # None: planned only (channel creations, then memberships)

    def to_json(self) -> dict[str, Any]:
        body = self.plan.to_json()
        if self.results is not None:
            body["outcomes"] = outcome_counts(self.results)
            body["results"] = [
                {
                    "action": r.action.kind.value,
                    **r.action.to_json(),
                    "mail": getattr(r.action, "mail", None),
                    "outcome": r.outcome.value,
                    "detail": r.detail,
                }
                for r in self.results
            ]
        return body

    def failed(self) -> bool:
        return any(r.outcome is Outcome.FAILED for r in self.results or [])


async def migrate_with(
    graph: Graph,
    store: Store,
    policy: Policy,
    source: Source,
    *,
    our_tenant: str | None,
    apply: bool,
    actor: str = "guestctl partners migrate",
    clock: Clock = utc_now,
    on_done: Callable[[ActionResult[Any]], None] | None = None,
) -> Migration:
    """Plan, and with `apply` create the planned channels and add the planned memberships (a rerun of the same
    id file continues its run); over the blast-radius cap, `apply` raises RefusedError and changes nothing."""
    plan = await plan_with(graph, store, policy, source, our_tenant=our_tenant, clock=clock)
    if not apply:
        return Migration(plan, None)
    applied = await apply_migration(plan, graph, store, policy=policy, actor=actor, clock=clock, on_done=on_done)
    return Migration(plan, applied)


async def migrate_partner(
    settings: Settings, text: str | None, *, name: str, tenant: str | None = None, apply: bool
) -> Migration:
    """From the partner's id file (`text`, read from `name`), or with `tenant` from their tenant by our app."""
    policy = load_policy(settings.policy)
    options = graph_options(settings)
    source: Source = (
        FromApp(tenant, lambda tenant_id: tenant_graph(options, tenant_id))
        if tenant
        else read_ids(text or "", name=name)
    )
    our_tenant = plan_tenant(settings)
    graph = Graph(options)
    try:
        async with open_state(settings) as store:
            return await migrate_with(graph, store, policy, source, our_tenant=our_tenant, apply=apply)
    finally:
        await graph.close()
