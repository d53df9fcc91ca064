"""Pure rules of redemption tracking: what a user seen in delta means for our record, and which reminder
is due. No I/O: "why was this reminder sent?" is answered here and nowhere else."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum

from msgspec.structs import replace

from shared.redemptions.records import ACCEPTED, GUEST, DeltaUser, GuestState, Source, Tracked


class ChangeKind(StrEnum):
    NEW = "new"  # a guest we did not track yet
    REDEEMED = "redeemed"  # pending → redeemed
    REINVITED = "reinvited"  # redeemed → pending again (Graph's reset redemption)
    RESTORED = "restored"  # gone → back (restored from deleted items)
    REMOVED = "removed"  # deleted, or no longer a guest
    CHANGED = "changed"  # mail, name or enabled changed


# Changes after which a guest a sweep had flagged is no longer stale: it was just active, or brought back.
UNFLAGGING = frozenset({ChangeKind.REDEEMED, ChangeKind.REINVITED, ChangeKind.RESTORED})


def observe(before: Tracked | None, user: DeltaUser, now: datetime) -> tuple[ChangeKind, Tracked] | None:
    """What `user` (as delta returned it) changes in our record `before`; None when nothing does.

    Delta can return a user more than once and rounds can be replayed: applying the result twice changes
    nothing the second time, so nothing is counted twice.
    """
    if user.removed is not None or user.user_type not in (GUEST, None):
        reason = user.removed.reason if user.removed is not None else "not a guest"
        if before is None or (before.state is GuestState.GONE and before.removed == reason):
            return None
        return ChangeKind.REMOVED, replace(before, state=GuestState.GONE, removed=reason, updated_at=now)
    if user.user_type is None:  # delta can return a partial user; without userType we cannot tell
        return None
    seen = _seen(before, user, now)
    if before is None or before.updated_at is None:  # first seen by delta (invitations record the batch first)
        return ChangeKind.NEW, seen
    if before.state is GuestState.GONE:
        return ChangeKind.RESTORED, seen
    if before.state is GuestState.PENDING and seen.state is GuestState.REDEEMED:
        return ChangeKind.REDEEMED, seen
    if before.state is GuestState.REDEEMED and seen.state is GuestState.PENDING:
        return ChangeKind.REINVITED, replace(seen, reminders_sent=())
    if (seen.email, seen.display_name, seen.enabled) != (before.email, before.display_name, before.enabled):
        return ChangeKind.CHANGED, seen
    return None


def _seen(before: Tracked | None, user: DeltaUser, now: datetime) -> Tracked:
    """Our record updated with what delta says now (fields delta did not send are kept)."""
    base = before or Tracked(user_id=user.id, source=Source.EXTERNAL, invited_at=user.created)
    redeemed = user.state == ACCEPTED or (user.state is None and base.state is GuestState.REDEEMED)
    state = GuestState.REDEEMED if redeemed else GuestState.PENDING
    redeemed_at = base.redeemed_at if base.state is GuestState.REDEEMED and redeemed else None
    if redeemed and redeemed_at is None:
        # externalUserStateChangeDateTime is when the invitation was redeemed; a guest redeemed before it
        # existed has none, and then the time we saw it is the best we know.
        redeemed_at = user.state_changed or now
    return replace(
        base,
        email=user.mail or (user.other_mails or [None])[0] or base.email,
        display_name=user.display_name or base.display_name,
        enabled=user.enabled if user.enabled is not None else base.enabled,
        invited_at=base.invited_at or user.created,
        state=state,
        redeemed_at=redeemed_at,
        removed=None,
        updated_at=now,
    )


def due_reminder(guest: Tracked, reminders: Sequence[int], now: datetime) -> int | None:
    """The reminder (days after the invitation) to send now, or None.

    Only guests guestctl invited are reminded (people invited another way did not ask for our email), only
    while pending and enabled. When several are due (reminders were off, or the timer did not run), only the
    latest is sent: one email, not a burst; the earlier ones are passed over.
    """
    if guest.state is not GuestState.PENDING or guest.source is not Source.BATCH or guest.invited_at is None:
        return None
    if guest.enabled is False:
        return None
    due = [day for day in reminders if guest.invited_at + timedelta(days=day) <= now]
    if not due or max(due) in guest.reminders_sent or max(due) < max(guest.reminders_sent, default=0):
        return None
    return max(due)


def next_reminder(guest: Tracked, reminders: Sequence[int]) -> datetime | None:
    """When the next reminder falls due (for the pending list), or None if none will."""
    if guest.state is not GuestState.PENDING or guest.source is not Source.BATCH or guest.invited_at is None:
        return None
    last = max(guest.reminders_sent, default=0)
    later = sorted(day for day in reminders if day > last)
    return guest.invited_at + timedelta(days=later[0]) if later else None
