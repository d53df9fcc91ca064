"""Apply a migration: each home identity added to its shared channel once, audited, restorable.

- The core applier (`shared.core.apply`) keeps one record per membership (table `partnermigrateactions`,
  partition = run id), so a rerun finishes an interrupted run and repeats nothing.
- Just before adding, the channel's members are read (once per channel per run): someone already in it
  counts as done and nothing is written or audited.
- A refused add (403: B2B direct connect is not allowed between the tenants — our inbound was checked when
  planning, so it is the partner's outbound) is reported `skipped` with `blocked: partner outbound not
  enabled`, and the run's record keeps it settled: it is not retried until a new id file starts a new run.
- `RESTORABLE` hands the core's restore the undo (remove the membership) for `guestctl partners rollback`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import quote

from shared.clock import Clock, utc_now
from shared.core.apply import ActionResult, Outcome, Progress, apply_actions
from shared.core.audit import RunAudit
from shared.core.restore import Restorable, UndoHandler, Undoing
from shared.errors import GraphError, PermissionDeniedError
from shared.graph import Graph
from shared.partners.migrate import BLOCKED_OUTBOUND, RUN_PREFIX, MemberAdd, MigrationPlan
from shared.store import AuditEntry, Store
from shared.store.registry import PARTNER_MIGRATE_ACTIONS

ACTIONS_TABLE: Final = PARTNER_MIGRATE_ACTIONS
ADDED, REMOVED = "channel.member.add", "channel.member.remove"  # audit entry names
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
    actor: str,
    clock: Clock = utc_now,
    on_done: Callable[[ActionResult[MemberAdd]], None] | None = None,
) -> list[ActionResult[MemberAdd]]:
    applier = Applier(graph, store, plan.run_id, actor, clock)
    return await apply_actions(
        plan.actions,
        applier.carry_out,
        store=store,
        table=ACTIONS_TABLE,
        run_id=plan.run_id,
        clock=clock,
        limit=4,  # Teams has its own, undocumented write limits: a few at a time
        on_done=on_done,
    )


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


UNDO: Final[dict[str, UndoHandler]] = {ADDED: _undo_add}

RESTORABLE = Restorable(
    noun="partners migrate",
    run_id=re.compile(re.escape(RUN_PREFIX) + r"[0-9a-f]{16}"),
    example="partners-migrate-0123456789abcdef (partners migrate --apply prints it)",
    printed_by="`guestctl partners migrate --apply`",
    actions_table=ACTIONS_TABLE,
    undo=UNDO,
)
