"""The offboarding changes, one method per action kind, and the undo of each for `guestctl restore --run`.

Each effect runs after apply has read the target again (`apply.py`); each tenant change is audited just
before it is made (`RunAudit.change`), its reason carrying the HR event's provenance. Group memberships are
removed with `DELETE /groups/{id}/members/{id}/$ref` only: without `/$ref` Graph deletes the user
(docs/graph-contract.md#advanced-queries). Undo entries have names of their own (`….undo`, `….restore`), so
a second restore finds nothing new to undo.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import quote

from shared.clock import Clock
from shared.core.apply import Outcome, Progress
from shared.core.audit import RunAudit
from shared.core.mail import Mail, send_once
from shared.core.restore import UndoHandler, Undoing
from shared.errors import GraphError
from shared.graph import Graph
from shared.offboarding.fetch import direct_groups, read_sponsored, sponsors_changed
from shared.offboarding.ledger import DELETIONS, TABLE, UNSPONSORED
from shared.offboarding.plan import Action, Plan, provenance_text
from shared.partners.migrate_apply import MEMBER_TYPE, channel_members, members_path
from shared.stale.effects import UNDO as GUEST_UNDO
from shared.store import AuditEntry, Store

MEMBER_REMOVED, SPONSOR_ADDED, SPONSOR_REMOVED = "group.member.remove", "sponsor.add", "sponsor.remove"
CHANNEL_MEMBER_REMOVED = "channel.member.remove"
ALREADY_EXISTS = "One or more added object references already exist"


def ref(graph: Graph, object_id: str) -> dict[str, str]:
    return {"@odata.id": graph.url(f"/directoryObjects/{object_id}")}


def _already_there(error: GraphError) -> bool:
    return error.status == 400 and ALREADY_EXISTS in error.message


class Effects:
    def __init__(self, graph: Graph, store: Store, audit: RunAudit, clock: Clock, plan: Plan, sender: str | None):
        self.graph, self.store, self.audit, self.clock, self.plan, self.sender = (
            graph,
            store,
            audit,
            clock,
            plan,
            sender,
        )

    async def disable(self, action: Action, resumed: bool) -> tuple[Outcome, str]:
        path, body = f"/users/{action.target_id}", {"accountEnabled": False}
        await self.audit.change(
            action.target_id,
            "guest.disable",
            reason=action.reason,
            before={"accountEnabled": True},
            after={"accountEnabled": False},
            send=lambda: self.graph.request("PATCH", path, json_body=body, idempotent=True),
            resumed=resumed,
        )
        return Outcome.DONE, "disabled (accountEnabled=false)"

    async def remove_member(self, action: Action, resumed: bool) -> tuple[Outcome, str]:
        group, member = action.target_id, action.other_id
        path = f"/groups/{group}/members/{member}/$ref"  # never without /$ref: that deletes the user
        await self.audit.change(
            group,
            MEMBER_REMOVED,
            reason=action.reason,
            before={"member_id": member, "group": action.evidence.get("group")},
            after={"member_id": None},
            send=lambda: self.graph.request("DELETE", path, idempotent=True),
            resumed=resumed,
        )
        return Outcome.DONE, f"removed from group {action.evidence.get('group') or group}"

    async def add_sponsor(self, action: Action, resumed: bool) -> tuple[Outcome, str]:
        guest, sponsor = action.target_id, action.other_id
        try:
            await self.audit.change(
                guest,
                SPONSOR_ADDED,
                reason=action.reason,
                before={"sponsor_id": None},
                after={"sponsor_id": sponsor},
                send=lambda: self.graph.request(
                    "POST", f"/users/{guest}/sponsors/$ref", json_body=ref(self.graph, sponsor)
                ),
                resumed=resumed,
            )
        except GraphError as error:
            if _already_there(error):
                sponsors_changed(self.graph, guest, added=sponsor)
                return Outcome.ALREADY_DONE, "already a sponsor"
            raise
        sponsors_changed(self.graph, guest, added=sponsor)
        return Outcome.DONE, f"sponsor {sponsor} added"

    async def remove_sponsor(self, action: Action, resumed: bool) -> tuple[Outcome, str]:
        guest, sponsor = action.target_id, action.other_id
        path = f"/users/{guest}/sponsors/{sponsor}/$ref"
        await self.audit.change(
            guest,
            SPONSOR_REMOVED,
            reason=action.reason,
            before={"sponsor_id": sponsor},
            after={"sponsor_id": None},
            send=lambda: self.graph.request("DELETE", path, idempotent=True),
            resumed=resumed,
        )
        sponsors_changed(self.graph, guest, removed=sponsor)
        return Outcome.DONE, f"leaver {sponsor} removed as sponsor"

    async def flag(self, action: Action, resumed: bool) -> tuple[Outcome, str]:
        plan = self.plan
        summary = (
            f"sponsor {plan.worker or action.other_id} left on {plan.effective:%Y-%m-%d} "
            f"({provenance_text(plan.provenance)}): {action.evidence.get('no_sponsor') or 'no sponsor left'}"
        )
        data = self._record(action, flagged_at=self.clock().isoformat(), leaver_id=action.other_id, summary=summary)
        await self.store.upsert(TABLE, UNSPONSORED, action.target_id, data)
        return Outcome.DONE, "flagged for review: no sponsor left"

    async def schedule_delete(self, action: Action, resumed: bool) -> tuple[Outcome, str]:
        assert action.due_at is not None
        data = self._record(action, due_at=action.due_at.isoformat(), state="scheduled")
        await self.store.upsert(TABLE, DELETIONS, action.target_id, data)
        return Outcome.DONE, f"soft deletion scheduled for {action.due_at:%Y-%m-%d %H:%M} UTC"

    async def delete(self, action: Action, resumed: bool) -> tuple[Outcome, str]:
        await self.audit.change(
            action.target_id,
            "guest.delete",
            reason=action.reason,
            before={"deletedDateTime": None},
            after={"deletedDateTime": self.clock().isoformat(), "restorableDays": 30},
            send=lambda: self.graph.request("DELETE", f"/users/{action.target_id}"),
            resumed=resumed,
        )
        return Outcome.DONE, "deleted (restorable for 30 days)"

    async def notify(self, action: Action, progress: Progress) -> tuple[Outcome, str]:
        guests = list(action.evidence.get("guests", []))
        to = str(action.evidence["to"])
        leaver = self.plan.worker or action.other_id

        async def compose() -> Mail:
            lines = "\n".join(f"- {guest}" for guest in guests)
            text = (
                f"{leaver} has left. You are now the sponsor of these guest accounts:\n\n{lines}\n\n"
                "If a guest no longer needs access, tell your IT team; guestctl's sweep reviews guests regularly."
            )
            return Mail(to, f"You now sponsor {len(guests)} guest account(s) of {leaver}", text)

        sent = await send_once(self.graph, self.sender, progress, compose)
        return (Outcome.DONE, f"emailed {to}") if sent else (Outcome.ALREADY_DONE, f"{to} was emailed before")

    async def remove_channel_member(self, action: Action, resumed: bool) -> tuple[Outcome, str]:
        member = action.evidence["member"]
        team, channel = str(member["team_id"]), action.target_id
        key = (str(member.get("tenant_id") or "").lower(), action.other_id.lower())
        membership = (await channel_members(self.graph, team, channel)).get(key)
        if membership is None:
            return Outcome.ALREADY_DONE, f"not a member of {member.get('channel')}"
        path = f"{members_path(team, channel)}/{quote(membership, safe='')}"
        await self.audit.change(
            f"{channel}/{action.other_id}",
            CHANNEL_MEMBER_REMOVED,
            reason=action.reason,
            before={"member": member},
            after={"member": None},
            send=lambda: self.graph.request("DELETE", path, idempotent=True),
            resumed=resumed,
        )
        return Outcome.DONE, f"removed from shared channel {member.get('channel')}"

    def _record(self, action: Action, **fields: Any) -> dict[str, Any]:
        return {
            "run_id": self.audit.run_id,
            "reason": action.reason,
            "provenance": self.plan.provenance,
            "worker": self.plan.worker,
            **fields,
        }


# -- undo (guestctl restore --run offboard-…) ---------------------------------------------------------------
async def _undo_member_removed(entry: AuditEntry, undo: Undoing) -> tuple[Outcome, str]:
    group, member = entry.target_id, str((entry.before or {}).get("member_id"))
    if any(g.id.lower() == group.lower() for g in await direct_groups(undo.graph, member)):
        return Outcome.ALREADY_DONE, f"{member} is a member again"
    path = f"/groups/{group}/members/$ref"
    await undo.change(
        entry, "group.member.restore", lambda: undo.graph.request("POST", path, json_body=ref(undo.graph, member))
    )
    return Outcome.DONE, f"{member} added back to group {(entry.before or {}).get('group') or group}"


async def _undo_sponsor_added(entry: AuditEntry, undo: Undoing) -> tuple[Outcome, str]:
    sponsor = str((entry.after or {}).get("sponsor_id"))
    guest = await read_sponsored(undo.graph, entry.target_id)
    if guest is None or sponsor.lower() not in guest.sponsor_ids:
        return Outcome.ALREADY_DONE, f"{sponsor} is not a sponsor"
    path = f"/users/{entry.target_id}/sponsors/{sponsor}/$ref"
    await undo.change(entry, "sponsor.add.undo", lambda: undo.graph.request("DELETE", path, idempotent=True))
    sponsors_changed(undo.graph, entry.target_id, removed=sponsor)
    return Outcome.DONE, f"sponsor {sponsor} removed again"


async def _undo_sponsor_removed(entry: AuditEntry, undo: Undoing) -> tuple[Outcome, str]:
    sponsor = str((entry.before or {}).get("sponsor_id"))
    guest = await read_sponsored(undo.graph, entry.target_id)
    if guest is None:
        return Outcome.SKIPPED, "the guest no longer exists"
    if sponsor.lower() in guest.sponsor_ids:
        return Outcome.ALREADY_DONE, f"{sponsor} is a sponsor again"
    path, body = f"/users/{entry.target_id}/sponsors/$ref", ref(undo.graph, sponsor)
    await undo.change(entry, "sponsor.remove.undo", lambda: undo.graph.request("POST", path, json_body=body))
    sponsors_changed(undo.graph, entry.target_id, added=sponsor)
    return Outcome.DONE, f"sponsor {sponsor} back"


async def _undo_channel_member_removed(entry: AuditEntry, undo: Undoing) -> tuple[Outcome, str]:
    member = (entry.before or {}).get("member") or {}
    team, channel = str(member.get("team_id")), str(member.get("channel_id"))
    key = (str(member.get("tenant_id") or "").lower(), str(member.get("home_id")).lower())
    if key in await channel_members(undo.graph, team, channel):
        return Outcome.ALREADY_DONE, f"a member of {member.get('channel')} again"
    body = {
        "@odata.type": MEMBER_TYPE,
        "roles": [],
        "user@odata.bind": undo.graph.url(f"/users('{member.get('home_id')}')"),
        "tenantId": member.get("tenant_id"),
    }
    path = members_path(team, channel)
    await undo.change(entry, "channel.member.restore", lambda: undo.graph.request("POST", path, json_body=body))
    return Outcome.DONE, f"added back to shared channel {member.get('channel')}"


UNDO: Final[dict[str, UndoHandler]] = {
    **GUEST_UNDO,  # guest.disable → re-enable, guest.delete → restore from deleted items (the sweep's undo)
    MEMBER_REMOVED: _undo_member_removed,
    SPONSOR_ADDED: _undo_sponsor_added,
    SPONSOR_REMOVED: _undo_sponsor_removed,
    CHANNEL_MEMBER_REMOVED: _undo_channel_member_removed,
}
