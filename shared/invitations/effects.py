"""The invitations capability's Graph changes, one function per kind, each audited exactly once.

- `invite`: POST /invitations. Not idempotent, so its row is marked `inviting` just before the request
  leaves (inside the pacer slot); apply looks the address up (`find_guest`) before ever inviting again.
- `resend`, `fresh_redeem_url`: POST /invitations for an address that already has a guest — Graph's
  resend: the same user and a fresh redeem URL (with or without Microsoft's email).
- `add_references`: group memberships and sponsors in one `$batch`; Graph's "already exist" counts as
  done, so these are safe to repeat.
- `find_guest`: the guest holding an address, if any.

The redeem URL is returned, never stored: it lives in memory until it is in the email.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from shared.core.audit import RunAudit, canonical
from shared.errors import GraphError
from shared.graph import Graph
from shared.graph.batch import BatchRequest
from shared.graph.odata import literal
from shared.invitations.plan import RowPlan

ALREADY_EXISTS = "One or more added object references already exist"
# (progress field, audit name, audit key) of each kind of reference
REFERENCES = (("groups_done", "group.add-member", "group"), ("sponsors_done", "guest.add-sponsor", "sponsor"))


@dataclass(frozen=True, slots=True)
class Invited:
    user_id: str
    redeem_url: str | None  # in memory only


async def post_invitation(
    graph: Graph,
    email: str,
    redirect_url: str,
    *,
    send_message: bool,
    before_send: Callable[[], Awaitable[None]] | None = None,
    display_name: str | None = None,
) -> Invited:
    """POST /invitations: a new guest, or for an existing guest's address Graph's resend (the same user and
    a fresh redeem URL, with Microsoft's email if `send_message`)."""
    body: dict[str, Any] = {
        "invitedUserEmailAddress": email,
        "inviteRedirectUrl": redirect_url,
        "sendInvitationMessage": send_message,
    }
    if display_name:
        body["invitedUserDisplayName"] = display_name
    response = await graph.request("POST", "/invitations", json_body=body, before_send=before_send)
    invitation = json.loads(response.content)
    return Invited(invitation["invitedUser"]["id"], invitation.get("inviteRedeemUrl"))


class InvitationEffects:
    def __init__(self, graph: Graph, audit: RunAudit, batch_id: str) -> None:
        self.graph = graph
        self.audit = audit
        self.batch_id = batch_id

    def reason(self, row: RowPlan) -> str:
        return f"invitation batch {self.batch_id} row {row.row}"

    async def invite(
        self, row: RowPlan, *, invited_at: str, before_send: Callable[[], Awaitable[None]] | None
    ) -> Invited:
        """Invite a new guest (Microsoft's email only when we send none of our own); audited once it exists."""
        send_message = row.send_email and not row.custom_message
        # Our own email replaces Microsoft's when there is a custom message (docs/graph-contract.md#invitations).
        invited = await self._post_invitation(
            row, send_message=send_message, before_send=before_send, display_name=row.display_name
        )
        after = {"email": row.email, "sendInvitationMessage": send_message, "invitedAt": invited_at}
        await self.audit.write(invited.user_id, "guest.invite", reason=self.reason(row), after=after)
        return invited

    async def confirm_invited(self, row: RowPlan, user_id: str) -> None:
        """An interrupted run made the invitation but could not audit it: every change is audited."""
        if not await self.audit.has(user_id):
            after = {"email": row.email, "confirmedAfterInterruption": True}
            await self.audit.write(user_id, "guest.invite", reason=self.reason(row), after=after)

    async def resend(self, row: RowPlan, user_id: str) -> str | None:
        """--resend for an existing guest: a new invitation (Microsoft's email unless we send our own), audited."""
        invited = await self._post_invitation(row, send_message=not row.custom_message)
        await self.audit.write(user_id, "guest.reinvite", reason=self.reason(row), after={"email": row.email})
        return invited.redeem_url

    async def fresh_redeem_url(self, row: RowPlan) -> str | None:
        """Re-inviting an existing guest's address is Graph's resend mechanism: same user, a fresh redeem URL,
        and no Microsoft email with this flag. For our own email after a crash lost the URL (never stored)."""
        return (await self._post_invitation(row, send_message=False)).redeem_url

    async def _post_invitation(
        self,
        row: RowPlan,
        *,
        send_message: bool,
        before_send: Callable[[], Awaitable[None]] | None = None,
        display_name: str | None = None,
    ) -> Invited:
        return await post_invitation(
            self.graph,
            row.email,
            row.redirect_url,
            send_message=send_message,
            before_send=before_send,
            display_name=display_name,
        )

    async def add_references(self, row: RowPlan, user_id: str, done: dict[str, list[str]]) -> list[str]:
        """Add the row's missing group memberships and sponsors; `done` gains what Graph now has. Each new one
        is audited once (skipping what an interrupted run audited); returns the failures, one line each."""
        base = self.graph.options.base_url
        wanted = [
            ("groups_done", group_id, f"/groups/{group_id}/members/$ref", f"{base}/directoryObjects/{user_id}")
            for group_id in row.group_ids
            if group_id not in done["groups_done"]
        ] + [
            ("sponsors_done", sponsor_id, f"/users/{user_id}/sponsors/$ref", f"{base}/users/{sponsor_id}")
            for sponsor_id in row.sponsor_ids
            if sponsor_id not in done["sponsors_done"]
        ]
        if not wanted:
            return []
        # Adding a reference twice only earns "already exist", so these writes are safe to repeat.
        requests = [
            BatchRequest(str(i), "POST", path, body={"@odata.id": target}, idempotent=True)
            for i, (_, _, path, target) in enumerate(wanted)
        ]
        responses = await self.graph.batch(requests)
        added: dict[str, list[str]] = {"groups_done": [], "sponsors_done": []}
        failures = []
        for i, (name, target_id, path, _) in enumerate(wanted):
            response = responses.get(str(i))
            error = ((response.body or {}).get("error") or {}) if response else {}
            if response is not None and (response.ok or _already_exists(response.status, error.get("message"))):
                added[name].append(target_id)
            else:
                status = response.status if response else "no response"
                failures.append(f"POST {path}: {status} {error.get('code', '')} {error.get('message', '')}".strip())
        # Audit before recording, skipping what an interrupted run already audited: exactly one entry each.
        audited = await self.audit.written(user_id)
        for name, action, key in REFERENCES:
            for target in added[name]:
                after = {key: target}
                if (action, canonical(after)) not in audited:
                    await self.audit.write(user_id, action, reason=self.reason(row), after=after)
            done[name] = [*done[name], *added[name]]
        return failures

    async def find_guest(self, address: str) -> str | None:
        """The id of the guest whose mail is `address`, if Graph has one."""
        found = await self.graph.get_json(
            "/users", params={"$filter": f"mail eq {literal(address)}", "$select": "id,userType"}
        )
        guests = [u["id"] for u in found.get("value", []) if u.get("userType") == "Guest"]
        return guests[0] if guests else None


def _already_exists(status: int, message: str | None) -> bool:
    return status == 400 and ALREADY_EXISTS.lower() in (message or "").lower()


def raise_failures(failures: list[str]) -> None:
    if failures:
        raise GraphError("; ".join(failures))
