"""Apply an invitation plan: invite, send our own email, add to groups and sponsors — each once.

Every row to act on is an action of the core applier (`shared.core.apply`): its record lives in table
`invitations`, keyed by (batch id, normalised address) — the idempotency key — and carries the row's
`stage`, which moves forward with conditional updates, so a rerun (or a second worker) continues where
the last one stopped and never repeats a finished step:

    new → inviting → invited → drafted → mailed → done     (our own email: a custom message)
    new → inviting → invited → done                        (Microsoft's email, or no email)

- `inviting` is written just before POST /invitations leaves (inside the pacer slot). Finding a row in
  `inviting` means the outcome is unknown: the address is looked up first, and only re-invited if Graph
  has no such user — so a crash never produces a second invitation or a second Microsoft email. An
  invitation Graph refuses created nothing: the row goes back to `new`.
- Our own email is exactly-once through `shared.core.mail`: a draft in the sender's mailbox, its id
  recorded (`drafted`), then sent; a resumed row reads the draft first (still a draft → send it; gone or
  no longer a draft → it was sent). A crash before the id was recorded leaves an unsent draft behind,
  never a second email.
- Group and sponsor references are safe to repeat (Graph answers "already exist"), so they are simply
  ensured until recorded.

The redeem URL lives only in memory between the invitation response and the draft: never in the store,
the audit log, a log line or a report (it is, of course, in the email).

Leases: a batch may arrive in several queue chunks, worked at once on several instances. The lease is
per set of rows (a chunk, or the CLI's whole file), not per batch: chunks of one batch run side by side,
and a chunk delivered again while its first delivery still runs is refused (`LeaseHeldError`) instead of
working the same rows twice at once. Rows shared by overlapping sets are still kept apart by their
records' conditional updates.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from shared.clock import Clock, utc_now
from shared.core.apply import ActionResult, Outcome, Progress, apply_actions
from shared.core.audit import RunAudit
from shared.core.mail import Mail, send_once
from shared.errors import AlreadyExistsError, GraphError, StoreError, is_transient
from shared.graph import Graph
from shared.invitations.effects import InvitationEffects, raise_failures
from shared.invitations.plan import InvitationOutcome, InvitationPlan, RowPlan, adopt_email_action
from shared.invitations.rows import cut
from shared.redemptions.effects import track_invited
from shared.store import Store
from shared.store.registry import INVITATIONS, INVITE_BATCHES

ROWS_TABLE = INVITATIONS
BATCHES_TABLE = INVITE_BATCHES
BATCH_PARTITION = "batch"
ROWS_IN_FLIGHT = 64  # rows worked on at once; the pacer bounds the requests
MAX_REASON_CHARS = 2_000  # a failure's reason in results and in the row's record (well within a store value)
ALREADY_DONE = "finished by an earlier run of this batch"
ACTIONABLE = frozenset({InvitationOutcome.INVITE, InvitationOutcome.ALREADY_GUEST})


class InvitationStage(StrEnum):
    NEW = "new"
    INVITING = "inviting"
    INVITED = "invited"
    DRAFTED = "drafted"
    MAILED = "mailed"
    DONE = "done"


class InvitationResult(StrEnum):
    INVITED = "invited"
    ADOPTED = "adopted"
    ALREADY_DONE = "already-done"  # finished by an earlier run of this batch
    SKIPPED_MEMBER = "skipped-member"
    INVALID = "invalid"
    BLOCKED_DOMAIN = "blocked-domain"
    FAILED = "failed"


OK_RESULTS = frozenset({InvitationResult.INVITED, InvitationResult.ADOPTED, InvitationResult.ALREADY_DONE})
NOT_ACTED_ON = {
    InvitationOutcome.INVALID: InvitationResult.INVALID,
    InvitationOutcome.BLOCKED_DOMAIN: InvitationResult.BLOCKED_DOMAIN,
    InvitationOutcome.ALREADY_MEMBER: InvitationResult.SKIPPED_MEMBER,
}


@dataclass(frozen=True, slots=True)
class RowResult:
    row: int
    email: str
    result: InvitationResult
    user_id: str | None
    reason: str
    transient: bool = False  # failed for a reason that may pass (throttling, Graph unavailable): try again
    # already-done: the result the run that finished the row reported, read from the row's own record
    finished: RowResult | None = None

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
    acted = [row for row in plan.rows if row.outcome in ACTIONABLE]
    skipped = [applier.not_acted_on(row) for row in plan.rows if row.outcome not in ACTIONABLE]
    for result in skipped:
        if on_row_done is not None:
            on_row_done(result)
    applied = await apply_actions(
        acted,
        applier.carry_out,
        store=store,
        table=ROWS_TABLE,
        run_id=plan.batch_id,
        clock=clock,
        failures=(GraphError, StoreError),  # this row only: the others go on
        limit=ROWS_IN_FLIGHT,
        on_done=(lambda done: on_row_done(row_result(done))) if on_row_done is not None else None,
        key=lambda row: row.key,
        initial=_initial,
        lease_scope=lease_scope_for(row.key for row in acted),
    )
    by_row = {r.row: r for r in [*skipped, *(row_result(r) for r in applied)]}
    return [by_row[row.row] for row in plan.rows]


def lease_scope_for(keys: Iterable[str]) -> str:
    """One lease per set of rows (their normalised addresses; see the module docstring): the same chunk, the
    same lease."""
    return "lease-" + hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:16]


def _initial(row: RowPlan) -> dict[str, Any]:
    """A row's record on first sight: the intent is fixed by the first plan."""
    return {
        "row": row.row,
        "email": row.email,
        "intent": row.outcome.value,
        "stage": InvitationStage.NEW.value,
        "user_id": row.user_id,
        "invited_at": None,
        "mail_sent_at": None,
        "groups_done": [],
        "sponsors_done": [],
        "draft_id": None,
        "error": None,
    }


def row_result(done: ActionResult[RowPlan]) -> RowResult:
    row, data = done.action, done.progress
    user_id = data.get("user_id")
    if done.outcome is Outcome.FAILED:
        transient = done.error is not None and is_transient(done.error)
        reason = cut(done.detail, MAX_REASON_CHARS)
        return RowResult(row.row, row.email, InvitationResult.FAILED, user_id, reason, transient=transient)
    invited = InvitationOutcome(data.get("intent", row.outcome.value)) is InvitationOutcome.INVITE
    result = InvitationResult.INVITED if invited else InvitationResult.ADOPTED
    finished = RowResult(row.row, row.email, result, user_id, done.detail)  # an earlier run's: its record's detail
    if done.outcome is Outcome.ALREADY_DONE:
        return RowResult(row.row, row.email, InvitationResult.ALREADY_DONE, user_id, ALREADY_DONE, finished=finished)
    return finished


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
        self.clock = clock
        self.audit = RunAudit(store, plan.batch_id, actor, plan.digest(), clock)
        self.effects = InvitationEffects(graph, self.audit, plan.batch_id)
        # what gets the row to `invited`, by the intent the first plan fixed; each returns the redeem URL
        # when it has one in memory
        self.by_intent: dict[InvitationOutcome, Callable[[RowPlan, Progress], Awaitable[str | None]]] = {
            InvitationOutcome.INVITE: self.invite,
            InvitationOutcome.ALREADY_GUEST: self.adopt,
        }

    def not_acted_on(self, row: RowPlan) -> RowResult:
        return RowResult(row.row, row.email, NOT_ACTED_ON[row.outcome], row.user_id, row.reason)

    async def carry_out(self, row: RowPlan, progress: Progress) -> tuple[Outcome, str]:
        """Take the row from its recorded stage to `done`: invited or adopted, emailed, grouped, sponsored."""
        if progress.data["stage"] == InvitationStage.DONE:  # finished before rows were core action records
            return Outcome.ALREADY_DONE, ALREADY_DONE
        intent = InvitationOutcome(progress.data["intent"])
        redeem_url = None
        if progress.data["stage"] in (InvitationStage.NEW, InvitationStage.INVITING):
            redeem_url = await self.by_intent[intent](row, progress)
        if intent is InvitationOutcome.INVITE and not progress.data.get("tracked"):
            # Redemption tracking learns who invited this guest, and when (its time-to-redeem and reminders).
            invited_at = datetime.fromisoformat(progress.data["invited_at"])
            await track_invited(self.store, progress.data["user_id"], row.email, self.plan.batch_id, invited_at)
            progress.note(tracked=True)
        wants_own_email = row.custom_message is not None and (intent is InvitationOutcome.INVITE or row.resend)
        if wants_own_email and progress.data["stage"] in (InvitationStage.INVITED, InvitationStage.DRAFTED):
            await self.send_own_email(row, progress, redeem_url)
        done = {
            "groups_done": list(progress.data["groups_done"]),
            "sponsors_done": list(progress.data["sponsors_done"]),
        }
        failures = await self.effects.add_references(row, progress.data["user_id"], done)
        if failures:
            await progress.save(**done)
            raise_failures(failures)
        progress.note(**done, stage=InvitationStage.DONE.value)  # written with the action's completion
        if intent is InvitationOutcome.INVITE:
            return Outcome.DONE, f"invited {progress.data['invited_at']}"
        email = adopt_email_action(resend=row.resend)
        return Outcome.DONE, f"adopted guest {progress.data['user_id']}: groups and sponsors ensured, {email}"

    async def invite(self, row: RowPlan, progress: Progress) -> str | None:
        if progress.data["stage"] == InvitationStage.INVITING:
            # An earlier attempt's outcome is unknown: if Graph has the guest, that attempt worked.
            existing = await self.effects.find_guest(row.key)
            if existing is not None:
                invited_at = progress.data["invited_at"] or self.clock().isoformat()
                await progress.save(stage=InvitationStage.INVITED.value, user_id=existing, invited_at=invited_at)
                await self.effects.confirm_invited(row, existing)
                return None

        async def mark_inviting() -> None:
            await progress.save(stage=InvitationStage.INVITING.value)

        invited_at = self.clock().isoformat()
        marker = mark_inviting if progress.data["stage"] != InvitationStage.INVITING else None
        try:
            # Audited before the save: a crash in between leaves the row `inviting`, and the resumed run
            # finds the guest and this entry, so the change is audited exactly once.
            invited = await self.effects.invite(row, invited_at=invited_at, before_send=marker)
        except GraphError as error:
            if error.status is not None and 400 <= error.status < 500 and error.status not in (408, 429):
                # Graph refused the invitation: nothing was created, so the row is not left `inviting`.
                await progress.save(stage=InvitationStage.NEW.value, error=cut(error.one_line(), MAX_REASON_CHARS))
            raise
        await progress.save(stage=InvitationStage.INVITED.value, user_id=invited.user_id, invited_at=invited_at)
        return invited.redeem_url

    async def adopt(self, row: RowPlan, progress: Progress) -> str | None:
        """An existing guest: nothing to create; --resend sends a new invitation."""
        user_id = progress.data["user_id"] or row.user_id
        await progress.save(stage=InvitationStage.INVITED.value, user_id=user_id)
        return await self.effects.resend(row, user_id) if row.resend else None

    async def send_own_email(self, row: RowPlan, progress: Progress, redeem_url: str | None) -> None:
        """Our own invitation email, exactly once (`shared.core.mail`), audited once."""
        sender = self.mailer.sender if self.mailer else None

        async def compose() -> Mail:
            # Resumed after a crash, the URL was never stored: a fresh one comes from re-inviting.
            url = redeem_url if redeem_url is not None else await self.effects.fresh_redeem_url(row)
            content = (row.custom_message or "").replace("{redeem_url}", url or "")
            content = content.replace("{display_name}", row.display_name or row.email).replace("{email}", row.email)
            return Mail(row.email, self.mailer.subject if self.mailer else "", content)

        await send_once(self.graph, sender, progress, compose, stage=InvitationStage.DRAFTED.value)
        sent_at = self.clock().isoformat()
        await self.audit.once(
            progress.data["user_id"],
            "guest.invitation-email",
            reason=self.effects.reason(row),
            after={"to": row.email, "from": sender, "sentAt": sent_at},
        )
        await progress.save(stage=InvitationStage.MAILED.value, mail_sent_at=sent_at)
