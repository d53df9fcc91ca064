"""Users as delta returns them, and guestctl's record of each guest's redemption.

`DeltaUser` is decoded straight from Graph's bytes (msgspec), with Graph's property names; a removed user
is only `{"id", "@removed": {"reason"}}`. `Tracked` is what the store keeps per guest (table
`redemptions`), from which reports and reminders are made.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import msgspec

# What redemption tracking reads (docs/graph-contract.md#delta): a change to anything else does not bring a
# user back in delta, so the round stays small.
DELTA_SELECT = (
    "id,displayName,userType,externalUserState,externalUserStateChangeDateTime,accountEnabled,mail,otherMails,"
    "createdDateTime"
)
GUEST = "Guest"
ACCEPTED = "Accepted"
PENDING = "PendingAcceptance"


class Removed(msgspec.Struct, frozen=True):
    reason: str = "changed"  # "changed": soft-deleted (restorable), "deleted": gone for good


class DeltaUser(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    display_name: str | None = msgspec.field(default=None, name="displayName")
    user_type: str | None = msgspec.field(default=None, name="userType")
    state: str | None = msgspec.field(default=None, name="externalUserState")
    state_changed: datetime | None = msgspec.field(default=None, name="externalUserStateChangeDateTime")
    enabled: bool | None = msgspec.field(default=None, name="accountEnabled")
    mail: str | None = None
    other_mails: list[str] | None = msgspec.field(default=None, name="otherMails")
    created: datetime | None = msgspec.field(default=None, name="createdDateTime")
    removed: Removed | None = msgspec.field(default=None, name="@removed")


class DeltaPage(msgspec.Struct, frozen=True):
    value: list[DeltaUser] = []
    next_link: str | None = msgspec.field(default=None, name="@odata.nextLink")
    delta_link: str | None = msgspec.field(default=None, name="@odata.deltaLink")


class GuestState(StrEnum):
    PENDING = "pending"  # invited, not redeemed
    REDEEMED = "redeemed"
    GONE = "gone"  # deleted (soft or for good), or no longer a guest


class Source(StrEnum):
    BATCH = "batch"  # invited by `guestctl invite` or the Functions app
    EXTERNAL = "external"  # invited some other way; found by delta


class Tracked(msgspec.Struct, frozen=True, kw_only=True):
    """One guest's redemption as guestctl knows it (table `redemptions`, row = the user's id)."""

    user_id: str
    email: str | None = None
    display_name: str | None = None
    state: GuestState = GuestState.PENDING
    source: Source = Source.EXTERNAL
    batch_id: str | None = None
    invited_at: datetime | None = None
    redeemed_at: datetime | None = None
    enabled: bool | None = None
    removed: str | None = None  # why it is gone: "changed" (soft delete), "deleted", "not a guest"
    reminders_sent: tuple[int, ...] = ()  # reminder days already sent (policy invitations.reminders)
    updated_at: datetime | None = None

    @property
    def seconds_to_redeem(self) -> float | None:
        if self.redeemed_at is None or self.invited_at is None:
            return None
        return max((self.redeemed_at - self.invited_at).total_seconds(), 0.0)
