"""Guests as the stale-guest rules see them: small immutable records decoded straight from Graph's JSON.

The records are msgspec structs whose fields carry Graph's property names, so a page of 500 users goes
from bytes to typed records (datetimes parsed) in one C pass, faster than `json.loads` builds dicts
(bench/sweep_scan.py). Unknown properties are ignored; a property of the wrong type is an error that
names its place in the page (`$.value[12].createdDateTime`).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import msgspec
from msgspec.structs import force_setattr

from shared.errors import ExitCode, GuestctlError

# $select for the scan: only what the rules and the report use (docs/graph-contract.md#sign-in-activity;
# signInActivity needs AuditLog.Read.All and Entra ID P1, and pages of at most 500).
GUEST_SELECT = (
    "id,displayName,mail,userPrincipalName,userType,creationType,externalUserState,"
    "externalUserStateChangeDateTime,createdDateTime,accountEnabled,companyName,signInActivity"
)


class ExternalState(StrEnum):
    """externalUserState's documented values; anything else (null: not an invited guest) is kept as is."""

    PENDING = "PendingAcceptance"
    ACCEPTED = "Accepted"


def _placeholder(moment: datetime | None) -> bool:
    """Graph writes 0001-01-01T00:00:00Z for "never" in some date properties: that is no date."""
    return moment is not None and moment.year == 1


class SignIn(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """signInActivity as Graph returned it; every field may be missing."""

    # lastSignInDateTime: last interactive attempt, successful or not
    interactive: datetime | None = msgspec.field(default=None, name="lastSignInDateTime")
    # lastNonInteractiveSignInDateTime: successful or not
    non_interactive: datetime | None = msgspec.field(default=None, name="lastNonInteractiveSignInDateTime")
    # lastSuccessfulSignInDateTime: since 2023-12-01, not backfilled
    successful: datetime | None = msgspec.field(default=None, name="lastSuccessfulSignInDateTime")

    def __post_init__(self) -> None:
        if _placeholder(self.interactive):
            force_setattr(self, "interactive", None)
        if _placeholder(self.non_interactive):
            force_setattr(self, "non_interactive", None)
        if _placeholder(self.successful):
            force_setattr(self, "successful", None)


class Guest(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    id: str
    display_name: str | None = msgspec.field(default=None, name="displayName")
    mail: str | None = None
    user_principal_name: str | None = msgspec.field(default=None, name="userPrincipalName")
    user_type: str | None = msgspec.field(default=None, name="userType")
    # createdDateTime is null for some users created before June 2018 (Graph's user resource docs)
    created: datetime | None = msgspec.field(default=None, name="createdDateTime")
    state: str | None = msgspec.field(default=None, name="externalUserState")  # see ExternalState
    # externalUserStateChangeDateTime: e.g. when the invitation was redeemed
    state_changed: datetime | None = msgspec.field(default=None, name="externalUserStateChangeDateTime")
    enabled: bool | None = msgspec.field(default=True, name="accountEnabled")  # null: treated as enabled
    company: str | None = msgspec.field(default=None, name="companyName")
    # None: Graph returned no signInActivity (unknown, never "never signed in")
    sign_in: SignIn | None = msgspec.field(default=None, name="signInActivity")

    def __post_init__(self) -> None:
        if _placeholder(self.state_changed):
            force_setattr(self, "state_changed", None)
        if _placeholder(self.created):
            force_setattr(self, "created", None)

    @property
    def pending(self) -> bool:
        return self.state == ExternalState.PENDING

    @property
    def domain(self) -> str | None:
        """The guest's home domain: from `mail`, else from a B2B UPN (`ann_fabrikam.com#EXT#@contoso…`)."""
        if self.mail and "@" in self.mail:
            return self.mail.rsplit("@", 1)[-1].lower()
        local = (self.user_principal_name or "").partition("#EXT#")[0]
        if local != (self.user_principal_name or "") and "_" in local:
            return local.rsplit("_", 1)[-1].lower() or None
        return None


class GuestPage(msgspec.Struct, gc=False):
    """One page of `GET /users` as the scan reads it."""

    value: list[Guest] = []
    next_link: str | None = msgspec.field(default=None, name="@odata.nextLink")


_page_decoder = msgspec.json.Decoder(GuestPage)
_guest_decoder = msgspec.json.Decoder(Guest)


class UnreadableUserError(GuestctlError):
    """Graph sent a user (or a page) that does not fit the documented types; the message says where."""

    exit_code = ExitCode.UNAVAILABLE
    http_status = 502

    def __init__(self, message: str) -> None:
        super().__init__(message, hint="nothing was changed; report it with the user id if it persists")


def decode_page(content: bytes) -> GuestPage:
    try:
        return _page_decoder.decode(content)
    except msgspec.DecodeError as error:  # ValidationError included
        raise UnreadableUserError(f"a page of users from Graph could not be read: {error}") from None


def decode_guest(content: bytes) -> Guest:
    try:
        return _guest_decoder.decode(content)
    except msgspec.DecodeError as error:  # ValidationError included
        raise UnreadableUserError(f"a user from Graph could not be read: {error}") from None
