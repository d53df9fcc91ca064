"""Pure rules: when was a guest last active, and which category does that put them in?

Last activity (docs/stale.md has the table of cases):
1. `lastSuccessfulSignInDateTime` when present: it covers interactive and non-interactive successes.
2. Otherwise the latest of `lastSignInDateTime` and `lastNonInteractiveSignInDateTime` — but only dates
   before 2023-12-01. Those two fields also record failed attempts; since 2023-12-01 every success also
   sets `lastSuccessfulSignInDateTime`, so a later attempt without it was a failure, not activity.
   Earlier dates cannot be told apart (the field is not backfilled) and count, erring towards "active".
3. The redemption date (`externalUserStateChangeDateTime`) and the creation date count as activity, so a
   guest invited or redeemed recently is never stale just because they have not signed in yet.
A guest for whom Graph returned no signInActivity is `unknown`, never `stale`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cache

import msgspec

from shared.config import StalePolicy
from shared.stale.records import ExternalState, Guest

SUCCESS_TRACKING_SINCE = datetime(2023, 12, 1, tzinfo=UTC)  # lastSuccessfulSignInDateTime exists from here


class Category(StrEnum):
    STALE = "stale"
    NEVER_REDEEMED = "never-redeemed"
    DISABLED_LONG = "disabled-long"
    EXEMPT = "exempt"
    ACTIVE = "active"
    UNKNOWN = "unknown"


class Verdict(msgspec.Struct, frozen=True, gc=False):
    """A category and the facts it rests on. `reason`, the sentence an admin reads in the plan, the report
    and the audit log, is written from them on demand: most guests are active and nobody reads theirs."""

    category: Category
    last_active: datetime | None = None  # for a pending invitation: when it was sent
    days: int = 0  # whole days since last_active
    limit_days: int = 0  # the policy limit it was judged against
    invited: bool = False  # judged as a pending invitation, not by sign-ins
    note: str = ""  # the exemption rule, why the category is unknown, or what guestctl did before

    @property
    def reason(self) -> str:
        if self.category is Category.EXEMPT:
            return f"exempt: {self.note}"
        if self.category is Category.UNKNOWN or self.last_active is None:
            return self.note
        since = day(self.last_active)
        if self.category is Category.ACTIVE:
            if self.invited:
                return f"invited {since}, {self.days} days ago"
            return f"last active {since} ({self.days} days ago)"
        if self.invited:
            sentence = f"invitation not redeemed since {since} ({self.days} days; limit {self.limit_days})"
        else:
            sentence = f"last active {since} ({self.days} days; limit {self.limit_days})"
        return f"{self.note}; {sentence}" if self.note else sentence


def sign_in_evidence(guest: Guest) -> datetime | None:
    """The latest sign-in that shows the guest was really active (rules 1 and 2), or None."""
    sign_in = guest.sign_in
    if sign_in is None:
        return None
    if sign_in.successful is not None:
        return sign_in.successful
    latest = None
    for moment in (sign_in.interactive, sign_in.non_interactive):
        if moment is not None and moment < SUCCESS_TRACKING_SINCE and (latest is None or moment > latest):
            latest = moment
    return latest


def last_activity(guest: Guest) -> datetime | None:
    """Latest of real sign-in, redemption and creation (rule 3); None only if Graph gave none of them
    (createdDateTime is null for some users created before June 2018)."""
    latest = guest.created
    for moment in (guest.state_changed, sign_in_evidence(guest)):
        if moment is not None and (latest is None or moment > latest):
            latest = moment
    return latest


def day(moment: datetime) -> str:
    """2026-11-27: how dates appear in reasons."""
    return str(moment.date())


@cache
def _days(count: int) -> timedelta:
    return timedelta(days=count)


def categorise(guest: Guest, policy: StalePolicy, now: datetime, exempt_because: str | None = None) -> Verdict:
    """The guest's category. `exempt_because` names the exemption rule that matched, if any.

    "Inactive for more than N days" is exact to the second: N days and an hour is more than N days.
    """
    if exempt_because:
        return Verdict(Category.EXEMPT, note=exempt_because)
    if guest.state == ExternalState.PENDING:
        invited = guest.state_changed or guest.created
        if invited is None:
            return Verdict(Category.UNKNOWN, note="pending invitation without an invitation or creation date")
        waiting = now - invited
        limit = policy.never_redeemed_days
        category = Category.NEVER_REDEEMED if waiting > _days(limit) else Category.ACTIVE
        return Verdict(category, invited, waiting.days, limit, invited=True)
    if guest.sign_in is None:
        return Verdict(Category.UNKNOWN, note="Graph returned no signInActivity for this guest")
    seen = last_activity(guest)
    if seen is None:
        return Verdict(Category.UNKNOWN, note="no sign-in, redemption or creation date to judge by")
    idle = now - seen
    limit = policy.inactive_days
    return Verdict(Category.STALE if idle > _days(limit) else Category.ACTIVE, seen, idle.days, limit)
