"""Apply a migration: each shared channel to create made once, then each home identity added to its
shared channel once; audited, restorable.

- The plan is refused whole (nothing is written) when it was refused when planned or is over the
  blast-radius cap of the policy now (the same check, made again here).
- Channels first: just before creating one, the team's channels are read; one of that name (made by an
  interrupted attempt of this run, or by someone else) is used instead, so a crash after the POST never
  makes a second one. Its owner is the first enabled member user among the team's owners (app-only creation
  must name one). Its id is kept on the action's record and handed to the adds that need it.
- The core applier (`shared.core.apply`) keeps one record per membership (table `partnermigrateactions`,
  partition = run id), so a rerun finishes an interrupted run and repeats nothing.
- Just before adding, the channel's members are read (once per channel per run): someone already in it
  counts as done and nothing is written or audited.
- A refused add (403: B2B direct connect is not allowed between the tenants — our inbound was checked when
  planning, so it is the partner's outbound) is reported `skipped` with `blocked: partner outbound not
  enabled`, and the run's record keeps it settled: it is not retried until a new id file starts a new run.
- `RESTORABLE` hands the core's restore the undos for `guestctl partners rollback`: remove each membership
  the run added; delete a channel the run created only while nobody but its owner is in it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import quote

from shared.clock import Clock, utc_now
from shared.config import Policy
from shared.core.apply import ActionResult, Outcome, Progress, apply_actions
from shared.core.audit import RunAudit
from shared.core.restore import Restorable, UndoHandler, Undoing
from shared.errors import GraphError, PermissionDeniedError, RefusedError
from shared.graph import Graph
from shared.partners.migrate import (
    BLOCKED_OUTBOUND,
    RUN_PREFIX,
    ChannelCreate,
    MemberAdd,
    MigrationPlan,
    move_refusal,
)
from shared.store import AuditEntry, Store
from shared.store.registry import PARTNER_MIGRATE_ACTIONS

ACTIONS_TABLE: Final = PARTNER_MIGRATE_ACTIONS
ADDED, REMOVED = "channel.member.add", "channel.member.remove"  # audit entry names
CREATED, DELETED = "channel.create", "channel.delete"
OWNERS_PARAMS: Final = {"$select": "id,userType,accountEnabled"}
MEMBER_TYPE: Final = "#microsoft.graph.aadUserConversationMember"
CONFLICT: Final = 409  # Graph: the user is already a member of the channel


def members_path(team_id: str, channel_id: str) -> str:
    return f"/teams/{quote(team_id)}/channels/{quote(channel_id, safe='')}/members"


async def channel_members(graph: Graph, team_id: str, channel_id: str) -> dict[tuple[str, str], str]:
    """(tenant id, user id) → membership id of everyone in the channel now."""
    found = {}
    async for page in graph.pages(members_path(team_id, channel_id)):
        for item in page.items:
            key = (str(item.get("tenantId") or "").lower(), str(item.get("userId") or "").lower())
            found[key] = str(item["id"])
    return found


def channels_path(team_id: str) -> str:
    return f"/teams/{quote(team_id)}/channels"


async def channel_named(graph: Graph, team_id: str, name: str) -> dict[str, Any] | None:
    """The team's channel of that display name (any case; unique in a team), whatever its kind."""
    channels = (await graph.get_json(channels_path(team_id))).get("value", [])
    return next((c for c in channels if str(c.get("displayName") or "").lower() == name.lower()), None)


async def team_owner(graph: Graph, team_id: str) -> str | None:
    """An owner of the team to name as the new channel's owner: the first enabled member user (by id)."""
    path = f"/groups/{quote(team_id)}/owners/microsoft.graph.user"
    owners = [item async for page in graph.pages(path, params=OWNERS_PARAMS) for item in page.items]
    usable = sorted(str(o["id"]) for o in owners if o.get("userType") == "Member" and o.get("accountEnabled", True))
    return usable[0] if usable else None


async def create_channel(
    graph: Graph, audit: RunAudit, action: ChannelCreate, progress: Progress
) -> tuple[Outcome, str]:
    """Create the shared channel unless the team has one of that name already (never a second POST)."""
    where = f"{action.channel_name!r} in team {action.team_name}"
    found = await channel_named(graph, action.team_id, action.channel_name)
    if found is not None:
        if found.get("membershipType") != "shared":
            return Outcome.SKIPPED, f"a {found.get('membershipType')} channel {where} exists: it cannot be shared"
        progress.note(channel_id=str(found["id"]))
        if await audit.has(action.target_id, CREATED):
            return Outcome.DONE, f"created shared channel {where} (by the interrupted run)"
        return Outcome.ALREADY_DONE, f"shared channel {where} exists already (not created by this run)"
    owner = await team_owner(graph, action.team_id)
    if owner is None:
        return Outcome.SKIPPED, f"team {action.team_name} has no enabled member user as owner to own the channel"
    body = {
        "displayName": action.channel_name,
        "description": action.description,
        "membershipType": "shared",
        "members": [
            {"@odata.type": MEMBER_TYPE, "user@odata.bind": graph.url(f"/users('{owner}')"), "roles": ["owner"]}
        ],
    }
    made: dict[str, Any] = {}

    async def send() -> None:
        made.update((await graph.request("POST", channels_path(action.team_id), json_body=body)).json())

    await audit.change(
        action.target_id,
        CREATED,
        reason=f"partners migrate: shared channel {where} for the partner's people (the policy allows creating it)",
        before={"channel": None},
        after={"channel": {**action.to_json(), "owner_id": owner}},
        send=send,
        resumed=progress.resumed,
    )
    progress.note(channel_id=str(made["id"]))
    return Outcome.DONE, f"created shared channel {where} (owner {owner})"


def audit_after(action: MemberAdd) -> dict[str, Any]:
    return {"member": {**action.to_json(), "roles": []}}


async def add_member(graph: Graph, audit: RunAudit, action: MemberAdd, resumed: bool) -> tuple[Outcome, str]:
    """POST the home identity as a member; 403 is the partner's outbound, 409 an earlier add."""
    body = {
        "@odata.type": MEMBER_TYPE,
        "roles": [],
        "user@odata.bind": graph.url(f"/users('{action.home_id}')"),
        "tenantId": action.tenant_id,
    }

    async def send() -> None:
        await graph.request("POST", members_path(action.team_id, action.channel_id), json_body=body)

    reason = (
        f"partners migrate: guest {action.mail or action.guest_id} joins {action.channel_name} with their home identity"
    )
    try:
        await audit.change(
            action.target_id,
            ADDED,
            reason=reason,
            before={"member": None},
            after=audit_after(action),
            send=send,
            resumed=resumed,
        )
    except PermissionDeniedError as error:
        return Outcome.SKIPPED, f"{BLOCKED_OUTBOUND} (Graph: {error.status} {error.message[:160]})"
    except GraphError as error:
        if error.status == CONFLICT:
            return Outcome.ALREADY_DONE, "already a member"
        raise
    return Outcome.DONE, f"added to {action.channel_name}"


class Applier:
    def __init__(self, graph: Graph, store: Store, run_id: str, actor: str, clock: Clock) -> None:
        self.graph = graph
        self.audit = RunAudit(store, run_id, actor, None, clock)
        self.members: dict[str, dict[tuple[str, str], str]] = {}
        self.locks: dict[str, asyncio.Lock] = {}

    async def current(self, action: MemberAdd) -> dict[tuple[str, str], str]:
        """The channel's members, read once per run (one page walk per channel, not per person)."""
        lock = self.locks.setdefault(action.channel_id, asyncio.Lock())
        async with lock:
            if action.channel_id not in self.members:
                self.members[action.channel_id] = await channel_members(self.graph, action.team_id, action.channel_id)
        return self.members[action.channel_id]

    async def carry_out(self, action: MemberAdd, progress: Progress) -> tuple[Outcome, str]:
        if (action.tenant_id, action.home_id) in await self.current(action):
            if progress.resumed and await self.audit.has(action.target_id, ADDED):
                return Outcome.DONE, f"added to {action.channel_name} (by the interrupted run)"
            return Outcome.ALREADY_DONE, "already a member"
        return await add_member(self.graph, self.audit, action, progress.resumed)


async def apply_migration(
    plan: MigrationPlan,
    graph: Graph,
    store: Store,
    *,
    policy: Policy,
    actor: str,
    clock: Clock = utc_now,
    on_done: Callable[[ActionResult[Any]], None] | None = None,
) -> list[ActionResult[Any]]:
    """The channels to create, then the memberships; refused whole (RefusedError) over the cap."""
    over = plan.refused or move_refusal(policy, plan.moving())
    if over:
        hint = "raise partners.max_moves if this many is intended; nothing was changed"
        raise RefusedError(f"the migration is refused: {over}", hint=hint)
    applier = Applier(graph, store, plan.run_id, actor, clock)

    async def create(action: ChannelCreate, progress: Progress) -> tuple[Outcome, str]:
        return await create_channel(graph, applier.audit, action, progress)

    made = await apply_actions(
        plan.creates,
        create,
        store=store,
        table=ACTIONS_TABLE,
        run_id=plan.run_id,
        clock=clock,
        limit=1,
        on_done=on_done,
    )
    ids = {(r.action.team_id, r.action.channel_name): r.progress.get("channel_id") for r in made}
    adds: list[MemberAdd] = []
    waiting: list[ActionResult[Any]] = []
    for action in plan.actions:
        channel_id = action.channel_id or ids.get((action.team_id, action.channel_name))
        if channel_id:
            adds.append(dataclasses.replace(action, channel_id=str(channel_id)))
        else:  # its channel was not created: the rerun creates it, then adds them
            waiting.append(ActionResult(action, Outcome.SKIPPED, f"{action.channel_name} was not created"))
    # Teams has its own, undocumented write limits: a few at a time
    added = await apply_actions(
        adds, applier.carry_out, store=store, table=ACTIONS_TABLE, run_id=plan.run_id, clock=clock, limit=4,
        on_done=on_done,
    )  # fmt: skip
    return [*made, *added, *waiting]


async def _undo_add(entry: AuditEntry, undoing: Undoing) -> tuple[Outcome, str]:
    """Remove the membership the run added (found again by home tenant and user id)."""
    member = (entry.after or {}).get("member") or {}
    team_id, channel_id = str(member.get("team_id")), str(member.get("channel_id"))
    key = (str(member.get("tenant_id")).lower(), str(member.get("home_id")).lower())
    membership = (await channel_members(undoing.graph, team_id, channel_id)).get(key)
    if membership is None:
        return Outcome.ALREADY_DONE, f"not a member of {member.get('channel')} (already removed)"

    async def send() -> None:
        path = f"{members_path(team_id, channel_id)}/{quote(membership, safe='')}"
        await undoing.graph.request("DELETE", path, idempotent=True)

    await undoing.change(entry, REMOVED, send)
    return Outcome.DONE, f"removed from {member.get('channel')} (the run added them)"


async def _undo_create(entry: AuditEntry, undoing: Undoing) -> tuple[Outcome, str]:
    """Delete the channel the run created, only while nobody but the owner it was created with is in it."""
    channel = (entry.after or {}).get("channel") or {}
    team_id, name = str(channel.get("team_id")), str(channel.get("channel"))
    found = await channel_named(undoing.graph, team_id, name)
    if found is None:
        return Outcome.ALREADY_DONE, f"no channel {name!r} in team {channel.get('team')} (already deleted)"
    members = await channel_members(undoing.graph, team_id, str(found["id"]))
    others = [user for _, user in members if user != str(channel.get("owner_id")).lower()]
    if others:
        return Outcome.SKIPPED, (
            f"kept channel {name!r}: {len(others)} member(s) besides its owner joined it after the run created it; "
            "delete it in Teams if it should go"
        )

    async def send() -> None:
        await undoing.graph.request("DELETE", f"{channels_path(team_id)}/{quote(str(found['id']), safe='')}")

    await undoing.change(entry, DELETED, send)
    return Outcome.DONE, f"deleted channel {name!r} (the run created it; nobody else joined)"


UNDO: Final[dict[str, UndoHandler]] = {ADDED: _undo_add, CREATED: _undo_create}

RESTORABLE = Restorable(
    noun="partners migrate",
    run_id=re.compile(re.escape(RUN_PREFIX) + r"[0-9a-f]{16}"),
    example="partners-migrate-0123456789abcdef (partners migrate --apply prints it)",
    printed_by="`guestctl partners migrate --apply`",
    actions_table=ACTIONS_TABLE,
    undo=UNDO,
)
