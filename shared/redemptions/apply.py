"""Send due reminders: each re-checked against Graph now, then sent exactly once through the core applier.

A planned reminder is a request: just before sending, the guest is read again and must still be a guest,
enabled and not yet redeemed (a redemption can arrive between plan and send). Then:

- with our own message (`invitations.message_template` and `sender_mailbox`): a fresh redeem URL (Graph's
  resend with no email of its own) in our email, drafted and sent exactly once (`shared.core.mail`);
- otherwise Microsoft's invitation email again (`POST /invitations` for the same address). Graph cannot say
  whether it sent one, so the action's record is marked `sending` just before the request leaves: a rerun
  that finds `sending` does not send again (at most once; the reminder is reported as uncertain). Only a
  lost answer leaves it there: an error answer (Graph refused, nothing was sent) clears it, so the rerun
  sends the reminder.

Each reminder is audited once (`guest.remind`) and recorded on the guest (`reminders_sent`).
"""

from __future__ import annotations

from collections.abc import Callable

from msgspec.structs import replace

from shared.clock import Clock
from shared.config import Policy
from shared.core.apply import ActionResult, Outcome, Progress, apply_actions
from shared.core.audit import RunAudit
from shared.core.mail import Mail, send_once
from shared.errors import GraphError, NotFoundError, OutcomeUnknownError
from shared.graph import Graph
from shared.invitations.effects import post_invitation
from shared.invitations.plan import DEFAULT_MESSAGE_TEMPLATE
from shared.redemptions.effects import GUESTS, REDEMPTIONS_TABLE, from_data, save
from shared.redemptions.plan import Reminder
from shared.redemptions.records import PENDING
from shared.store import Record, Store
from shared.store.registry import REMINDER_ACTIONS

REMINDERS_TABLE = REMINDER_ACTIONS
RUN_ID = "reminders"  # one reminder run at a time (the lease); records are keyed per guest, invitation, day
SUBJECT = "Reminder: you are invited to collaborate"
CHECK_SELECT = "id,userType,externalUserState,accountEnabled"
UNCERTAIN = "an interrupted attempt may have sent Microsoft's email: not sent again"


async def send_reminders(
    reminders: list[Reminder],
    graph: Graph,
    store: Store,
    policy: Policy,
    *,
    actor: str,
    clock: Clock,
    on_done: Callable[[ActionResult[Reminder]], None] | None = None,
) -> list[ActionResult[Reminder]]:
    """Send `reminders` (may be none: a run also closes the reminders an interrupted run left started)."""
    sender = _Sender(graph, store, policy, RunAudit(store, RUN_ID, actor, None, clock), clock)
    return await apply_actions(
        reminders,
        sender.carry_out,
        store=store,
        table=REMINDERS_TABLE,
        run_id=RUN_ID,
        clock=clock,
        key=lambda r: r.key,
        on_done=on_done,
        unplanned=sender.no_longer_due,
    )


class _Sender:
    def __init__(self, graph: Graph, store: Store, policy: Policy, audit: RunAudit, clock: Clock) -> None:
        self.graph = graph
        self.store = store
        self.policy = policy.invitations
        self.audit = audit
        self.clock = clock

    async def carry_out(self, reminder: Reminder, progress: Progress) -> tuple[Outcome, str]:
        if progress.data.get("stage") == "sending":
            await self._record_sent(reminder)  # most likely sent: never again, and not due again
            return Outcome.SKIPPED, UNCERTAIN
        why_not = await self._why_not(reminder)
        if why_not is not None:
            return Outcome.SKIPPED, why_not
        reason = f"reminder on day {reminder.day} after the invitation of {reminder.invited_at:%Y-%m-%d}"
        if self.policy.message_template and self.policy.sender_mailbox:
            await self._own_email(reminder, progress)
            how = f"our own email from {self.policy.sender_mailbox}"
            await self.audit.once(reminder.user_id, "guest.remind", reason=reason, after={"day": reminder.day})
        else:
            await self.audit.change(
                reminder.user_id,
                "guest.remind",
                reason=reason,
                before={},
                after={"day": reminder.day},
                send=lambda: self._microsofts_email(reminder, progress),
                resumed=progress.resumed,
            )
            how = "Microsoft's invitation email"
        await self._record_sent(reminder)
        return Outcome.DONE, f"day-{reminder.day} reminder sent ({how})"

    async def no_longer_due(self, record: Record) -> tuple[Outcome, str]:
        """A reminder an interrupted run started that is not due now: sent, if the guest's record says so."""
        user_id, _, day = record.row.split(":")
        guest = await self.store.get(REDEMPTIONS_TABLE, GUESTS, user_id)
        if guest is not None and int(day.removeprefix("d")) in from_data(guest.data).reminders_sent:
            return Outcome.ALREADY_DONE, "sent by an interrupted run"
        return Outcome.SKIPPED, "no longer due (started by an interrupted run)"

    async def _why_not(self, reminder: Reminder) -> str | None:
        """Why this reminder must not go out now, from a fresh read of the guest; None if it may."""
        try:
            user = await self.graph.get_json(f"/users/{reminder.user_id}", params={"$select": CHECK_SELECT})
        except NotFoundError:
            return "the guest no longer exists"
        if user.get("userType") != "Guest":
            return "no longer a guest"
        if user.get("externalUserState") != PENDING:
            return "redeemed the invitation meanwhile"
        if user.get("accountEnabled") is False:
            return "the account is disabled"
        record = await self.store.get(REDEMPTIONS_TABLE, GUESTS, reminder.user_id)
        if record is not None and reminder.day in from_data(record.data).reminders_sent:
            return f"the day-{reminder.day} reminder was already sent"
        return None

    async def _microsofts_email(self, reminder: Reminder, progress: Progress) -> None:
        async def mark_sending() -> None:
            await progress.save(stage="sending")

        try:
            await post_invitation(
                self.graph,
                reminder.email or "",
                str(self.policy.redirect_url),
                send_message=True,
                before_send=mark_sending,
            )
        except OutcomeUnknownError:
            raise  # the email may have gone out: `sending` stays, never sent again
        except GraphError:
            await progress.save(stage="refused")  # Graph answered with an error: nothing went out, send it again
            raise

    async def _own_email(self, reminder: Reminder, progress: Progress) -> None:
        async def compose() -> Mail:
            invited = await post_invitation(
                self.graph, reminder.email or "", str(self.policy.redirect_url), send_message=False
            )
            template = self.policy.message_template or DEFAULT_MESSAGE_TEMPLATE
            fields = {"{redeem_url}": invited.redeem_url or "", "{message}": "", "{email}": reminder.email or ""}
            text = template.replace("{display_name}", reminder.email or "")
            for name, value in fields.items():
                text = text.replace(name, value)
            return Mail(reminder.email or "", SUBJECT, text)

        await send_once(self.graph, self.policy.sender_mailbox, progress, compose, stage="drafted")

    async def _record_sent(self, reminder: Reminder) -> None:
        record = await self.store.get(REDEMPTIONS_TABLE, GUESTS, reminder.user_id)
        if record is None:
            return
        guest = from_data(record.data)
        if reminder.day not in guest.reminders_sent:
            await save(self.store, replace(guest, reminders_sent=tuple(sorted({*guest.reminders_sent, reminder.day}))))
