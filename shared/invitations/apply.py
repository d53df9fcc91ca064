"""Apply an invitation plan: invite, add to groups, add sponsors, send our own email — each once.

Every row has a record in the store, keyed by (batch id, normalised address): the idempotency key. Its
`stage` moves forward only, with conditional updates, so a rerun (or a second worker) continues where
the last one stopped and never repeats a finished step:

    new → inviting → invited → drafted → mailed → done     (our own email: a custom message)
    new → inviting → invited → done                        (Microsoft's email, or no email)

- `inviting` is written just before POST /invitations leaves (inside the pacer slot). Finding a row in
  `inviting` means the outcome is unknown: the address is looked up first, and only re-invited if Graph
  has no such user — so a crash never produces a second invitation or a second Microsoft email.
- Our own email is made exactly-once the way Exchange allows: a draft is created in the sender's mailbox
  and its id recorded (`drafted`), then the draft is sent. Finding a row in `drafted`, the draft is read
  first: still a draft → send it; gone from Drafts (404) or no longer a draft → it was sent. A crash
  before the id was recorded leaves an unsent draft behind, never a second email.
- Group and sponsor references are safe to repeat (Graph answers "already exist"), so they are simply
  ensured until recorded.

The redeem URL lives only in memory between the invitation response and the draft: never in the store,
the audit log, a log line or a report (it is, of course, in the email).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from shared.clock import Clock, utc_now
from shared.concurrency import map_bounded
from shared.core.audit import RunAudit, canonical
from shared.errors import (
    AlreadyExistsError,
    ConfigError,
    GraphError,
    InvalidRecordError,
    NotFoundError,
    StaleVersionError,
    StoreError,
)
from shared.graph import Graph
from shared.graph.batch import BatchRequest
from shared.graph.odata import literal
from shared.invitations.plan import InvitationPlan, Outcome, RowPlan, adopt_email_action
from shared.invitations.rows import cut
from shared.store import Record, Store

ROWS_TABLE = "invitations"
BATCHES_TABLE = "invitebatches"
BATCH_PARTITION = "batch"
ROWS_IN_FLIGHT = 64  # rows worked on at once; the pacer bounds the requests
ALREADY_EXISTS = "One or more added object references already exist"
MAX_REASON_CHARS = 2_000  # a failure's reason in results and in the row's record (well within a store value)


class Stage(StrEnum):
    NEW = "new"
    INVITING = "inviting"
    INVITED = "invited"
    DRAFTED = "drafted"
    MAILED = "mailed"
    DONE = "done"


class Result(StrEnum):
    INVITED = "invited"
    ADOPTED = "adopted"
    ALREADY_DONE = "already-done"  # finished by an earlier run of this batch
    SKIPPED_MEMBER = "skipped-member"
    INVALID = "invalid"
    BLOCKED_DOMAIN = "blocked-domain"
    FAILED = "failed"


OK_RESULTS = frozenset({Result.INVITED, Result.ADOPTED, Result.ALREADY_DONE})


@dataclass(frozen=True, slots=True)
class RowResult:
    row: int
    email: str
    result: Result
    user_id: str | None
    reason: str
    transient: bool = False  # failed for a reason that may pass (throttling, Graph unavailable): try again

    def to_json(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "email": self.email,
            "outcome": self.result.value,
            "user_id": self.user_id,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class Mailer:
    """Sends our own invitation emails (app-only invitations cannot carry a custom message)."""

    sender: str  # mailbox UPN or id
    subject: str = "You are invited to collaborate"


class _Row:
    """One row's progress: the plan, its store record, and the redeem URL while it is in memory."""

    def __init__(self, plan: RowPlan, record: Record) -> None:
        self.plan = plan
        self.record = record
        self.redeem_url: str | None = None

    @property
    def data(self) -> dict[str, Any]:
        return self.record.data


async def apply_invitations(
    plan: InvitationPlan,
    graph: Graph,
    store: Store,
    *,
    mailer: Mailer | None,
    actor: str,
    clock: Clock = utc_now,
    on_row_done: Callable[[RowResult], None] | None = None,
) -> list[RowResult]:
    """Carry out `plan`; return one result per row, in row order. Safe to run again at any time."""
    await _record_batch(plan, store, clock)
    applier = _Applier(plan, graph, store, mailer, actor, clock)
    return await map_bounded(plan.rows, applier.apply_row, limit=ROWS_IN_FLIGHT, on_done=on_row_done)


async def _record_batch(plan: InvitationPlan, store: Store, clock: Clock) -> None:
    data = {
        "source": plan.source,
        "tenant_id": plan.tenant_id,
        "plan_digest": plan.digest(),
        "policy_digest": plan.policy_digest,
        "created_at": clock().isoformat(),
        "counts": plan.counts(),
    }
    with contextlib.suppress(AlreadyExistsError):  # a rerun of the same batch
        await store.create(BATCHES_TABLE, BATCH_PARTITION, plan.batch_id, data)


class _Applier:
    def __init__(
        self, plan: InvitationPlan, graph: Graph, store: Store, mailer: Mailer | None, actor: str, clock: Clock
    ) -> None:
        self.plan = plan
        self.graph = graph
        self.store = store
        self.mailer = mailer
        self.actor = actor
        self.clock = clock
        self.audit = RunAudit(store, plan.batch_id, actor, plan.digest(), clock)

    async def apply_row(self, row: RowPlan) -> RowResult:
        def result(kind: Result, reason: str, user_id: str | None = None) -> RowResult:
            return RowResult(row.row, row.email, kind, user_id, reason)

        if row.outcome is Outcome.INVALID:
            return result(Result.INVALID, row.reason)
        if row.outcome is Outcome.BLOCKED_DOMAIN:
            return result(Result.BLOCKED_DOMAIN, row.reason)
        if row.outcome is Outcome.ALREADY_MEMBER:
            return result(Result.SKIPPED_MEMBER, row.reason, row.user_id)
        state: _Row | None = None
        try:
            state = await self._load(row)
            if state.data["stage"] == Stage.DONE:
                return result(Result.ALREADY_DONE, "finished by an earlier run of this batch", state.data["user_id"])
            return await self._advance(state)
        except StaleVersionError:
            return result(Result.FAILED, "another worker is applying this row right now; run again to check")
        except GraphError as error:
            await self._record_error(state, error.one_line())
            failed = result(
                Result.FAILED, cut(error.one_line(), MAX_REASON_CHARS), state.data.get("user_id") if state else None
            )
            return replace(failed, transient=error.status is None or error.status == 429 or error.status >= 500)
        except StoreError as error:
            # The store refused this row (a value it cannot keep) or is unavailable: this row fails, the
            # others go on. Only a refusal is final; an unavailable store may pass.
            await self._record_error(state, error.one_line())
            failed = result(
                Result.FAILED, cut(error.one_line(), MAX_REASON_CHARS), state.data.get("user_id") if state else None
            )
            return replace(failed, transient=not isinstance(error, InvalidRecordError))

    async def _load(self, row: RowPlan) -> _Row:
        """The row's record, created on first sight with the intent fixed by the first plan."""
        record = await self.store.get(ROWS_TABLE, self.plan.batch_id, row.key)
        if record is None:
            data = {
                "row": row.row,
                "email": row.email,
                "intent": row.outcome.value,
                "stage": Stage.NEW.value,
                "user_id": row.user_id,
                "invited_at": None,
                "mail_sent_at": None,
                "groups_done": [],
                "sponsors_done": [],
                "draft_id": None,
                "error": None,
                "updated_at": self.clock().isoformat(),
            }
            try:
                record = await self.store.create(ROWS_TABLE, self.plan.batch_id, row.key, data)
            except AlreadyExistsError:
                record = await self.store.get(ROWS_TABLE, self.plan.batch_id, row.key)
                assert record is not None
        return _Row(row, record)

    async def _save(self, state: _Row, **changes: Any) -> None:
        state.record = await self.store.update(
            state.record, {**state.data, **changes, "updated_at": self.clock().isoformat()}
        )

    async def _advance(self, state: _Row) -> RowResult:
        row = state.plan
        intent = Outcome(state.data["intent"])
        if state.data["stage"] in (Stage.NEW, Stage.INVITING):
            if intent is Outcome.INVITE:
                await self._invite(state)
            else:  # adopting an existing guest: nothing to create
                await self._save(state, stage=Stage.INVITED.value, user_id=state.data["user_id"] or row.user_id)
                if row.resend:
                    await self._resend(state)
        wants_own_email = row.custom_message is not None and (intent is Outcome.INVITE or row.resend)
        if wants_own_email and state.data["stage"] in (Stage.INVITED, Stage.DRAFTED):
            await self._send_own_email(state)
        await self._ensure_references(state)
        await self._save(state, stage=Stage.DONE.value, error=None)
        user_id = state.data["user_id"]
        if intent is Outcome.INVITE:
            return RowResult(row.row, row.email, Result.INVITED, user_id, f"invited {state.data['invited_at']}")
        adopted = f"adopted guest {user_id}: groups and sponsors ensured, {adopt_email_action(resend=row.resend)}"
        return RowResult(row.row, row.email, Result.ADOPTED, user_id, adopted)

    async def _invite(self, state: _Row) -> None:
        row = state.plan
        if state.data["stage"] == Stage.INVITING:
            # An earlier attempt's outcome is unknown: if Graph has the guest, that attempt worked.
            existing = await self._find_by_address(row.key)
            if existing is not None:
                invited_at = state.data["invited_at"] or self.clock().isoformat()
                await self._save(state, stage=Stage.INVITED.value, user_id=existing, invited_at=invited_at)
                # The interrupted run made the change but could not audit it: every change is audited.
                if not await self.audit.has(existing):
                    await self._audit(
                        state, "guest.invite", existing, after={"email": row.email, "confirmedAfterInterruption": True}
                    )
                return
        body: dict[str, Any] = {
            "invitedUserEmailAddress": row.email,
            "inviteRedirectUrl": row.redirect_url,
            # Our own email replaces Microsoft's when there is a custom message (docs/graph-contract.md#invitations).
            "sendInvitationMessage": row.send_email and not row.custom_message,
        }
        if row.display_name:
            body["invitedUserDisplayName"] = row.display_name
        marker = self._marker(state, stage=Stage.INVITING.value) if state.data["stage"] != Stage.INVITING else None
        try:
            response = await self.graph.request("POST", "/invitations", json_body=body, before_send=marker)
        except GraphError as error:
            if error.status is not None and 400 <= error.status < 500 and error.status not in (408, 429):
                # Graph refused the invitation: nothing was created, so the row is not left `inviting`.
                await self._save(state, stage=Stage.NEW.value, error=cut(error.one_line(), MAX_REASON_CHARS))
            raise
        invitation = json.loads(response.content)
        state.redeem_url = invitation.get("inviteRedeemUrl")
        user_id = invitation["invitedUser"]["id"]
        invited_at = self.clock().isoformat()
        # Audit first: a crash before the save leaves the row `inviting`, and the resumed run finds the guest
        # and this entry, so the change is audited exactly once.
        await self._audit(
            state,
            "guest.invite",
            user_id,
            after={"email": row.email, "sendInvitationMessage": body["sendInvitationMessage"], "invitedAt": invited_at},
        )
        await self._save(state, stage=Stage.INVITED.value, user_id=user_id, invited_at=invited_at)

    async def _resend(self, state: _Row) -> None:
        """--resend for an existing guest: a new invitation email, once per batch."""
        row = state.plan
        body = {
            "invitedUserEmailAddress": row.email,
            "inviteRedirectUrl": row.redirect_url,
            "sendInvitationMessage": not row.custom_message,
        }
        response = await self.graph.request("POST", "/invitations", json_body=body)
        state.redeem_url = json.loads(response.content).get("inviteRedeemUrl")
        await self._audit(state, "guest.reinvite", state.data["user_id"], after={"email": row.email})

    async def _send_own_email(self, state: _Row) -> None:
        if self.mailer is None:
            raise ConfigError(
                "a custom message needs a sender mailbox", hint="set invitations.sender_mailbox in the policy"
            )
        mailbox = f"/users/{self.mailer.sender}/messages"
        if state.data["stage"] == Stage.INVITED:
            draft = await self.graph.request("POST", mailbox, json_body=await self._message(state))
            await self._save(state, stage=Stage.DRAFTED.value, draft_id=json.loads(draft.content)["id"])
        else:  # drafted by an earlier run: was it sent before that run stopped?
            try:
                found = await self.graph.get_json(f"{mailbox}/{state.data['draft_id']}", params={"$select": "isDraft"})
                already_sent = not found.get("isDraft", True)
            except NotFoundError:
                already_sent = True  # sending moves the draft out of Drafts, so its id no longer resolves
            if already_sent:
                await self._mailed(state)
                return
        with contextlib.suppress(NotFoundError):  # our own retried attempt already sent it
            await self.graph.request("POST", f"{mailbox}/{state.data['draft_id']}/send", idempotent=True)
        await self._mailed(state)

    async def _message(self, state: _Row) -> dict[str, Any]:
        """The draft: the policy's template with a fresh redeem URL (re-inviting yields one, without email)."""
        row = state.plan
        assert self.mailer is not None
        if state.redeem_url is None:
            # Resumed after a crash: the URL was never stored. Re-inviting an existing guest's address is
            # Graph's resend mechanism: same user, fresh URL, and no Microsoft email with this flag.
            response = await self.graph.request(
                "POST",
                "/invitations",
                json_body={
                    "invitedUserEmailAddress": row.email,
                    "inviteRedirectUrl": row.redirect_url,
                    "sendInvitationMessage": False,
                },
            )
            state.redeem_url = json.loads(response.content).get("inviteRedeemUrl")
        content = (row.custom_message or "").replace("{redeem_url}", state.redeem_url or "")
        content = content.replace("{display_name}", row.display_name or row.email).replace("{email}", row.email)
        state.redeem_url = None
        return {
            "subject": self.mailer.subject,
            "body": {"contentType": "Text", "content": content},
            "toRecipients": [{"emailAddress": {"address": row.email}}],
        }

    async def _mailed(self, state: _Row) -> None:
        """Audit (once, even across an interruption), then record the email as sent."""
        sent_at = self.clock().isoformat()
        assert self.mailer is not None
        user_id = state.data["user_id"]
        await self.audit.once(
            user_id,
            "guest.invitation-email",
            reason=self._reason(state),
            after={"to": state.plan.email, "from": self.mailer.sender, "sentAt": sent_at},
        )
        await self._save(state, stage=Stage.MAILED.value, mail_sent_at=sent_at)

    async def _ensure_references(self, state: _Row) -> None:
        """Group memberships and sponsors, in one `$batch` round trip; Graph's "already exist" counts as done."""
        row = state.plan
        user_id = state.data["user_id"]
        base = self.graph.options.base_url
        wanted = [
            ("groups_done", group_id, f"/groups/{group_id}/members/$ref", f"{base}/directoryObjects/{user_id}")
            for group_id in row.group_ids
            if group_id not in state.data["groups_done"]
        ] + [
            ("sponsors_done", sponsor_id, f"/users/{user_id}/sponsors/$ref", f"{base}/users/{sponsor_id}")
            for sponsor_id in row.sponsor_ids
            if sponsor_id not in state.data["sponsors_done"]
        ]
        if not wanted:
            return
        # Adding a reference twice only earns "already exist", so these writes are safe to repeat.
        requests = [
            BatchRequest(str(i), "POST", path, body={"@odata.id": target}, idempotent=True)
            for i, (_, _, path, target) in enumerate(wanted)
        ]
        responses = await self.graph.batch(requests)
        done = {"groups_done": list(state.data["groups_done"]), "sponsors_done": list(state.data["sponsors_done"])}
        failures = []
        for i, (field, target_id, path, _) in enumerate(wanted):
            response = responses.get(str(i))
            error = ((response.body or {}).get("error") or {}) if response else {}
            if response is not None and (response.ok or _already_exists(response.status, error.get("message"))):
                done[field].append(target_id)
            else:
                status = response.status if response else "no response"
                failures.append(f"POST {path}: {status} {error.get('code', '')} {error.get('message', '')}".strip())
        # Audit before recording, skipping what an interrupted run already audited: exactly one entry each.
        audited = await self.audit.written(user_id)
        for name, action, key in (
            ("groups_done", "group.add-member", "group"),
            ("sponsors_done", "guest.add-sponsor", "sponsor"),
        ):
            for target in done[name]:
                after = {key: target}
                if target not in state.data[name] and (action, canonical(after)) not in audited:
                    await self._audit(state, action, user_id, after=after)
        await self._save(state, **done)
        if failures:
            raise GraphError("; ".join(failures))

    async def _find_by_address(self, address: str) -> str | None:
        found = await self.graph.get_json(
            "/users", params={"$filter": f"mail eq {literal(address)}", "$select": "id,userType"}
        )
        guests = [u["id"] for u in found.get("value", []) if u.get("userType") == "Guest"]
        return guests[0] if guests else None

    async def _record_error(self, state: _Row | None, error: str) -> None:
        """Keep the last error on the row for `batch status`; losing a race here only loses the note."""
        if state is not None:
            with contextlib.suppress(StoreError):  # a lost race, or the store is what failed
                await self._save(state, error=cut(error, MAX_REASON_CHARS))

    def _marker(self, state: _Row, **changes: Any) -> Callable[[], Any]:
        async def mark() -> None:
            await self._save(state, **changes)

        return mark

    async def _audit(self, state: _Row, action: str, target: str, *, after: dict[str, Any]) -> None:
        await self.audit.write(target, action, reason=self._reason(state), after=after)

    def _reason(self, state: _Row) -> str:
        return f"invitation batch {self.plan.batch_id} row {state.plan.row}"


def _already_exists(status: int, message: str | None) -> bool:
    return status == 400 and ALREADY_EXISTS.lower() in (message or "").lower()
