"""Guests as the stale-guest rules see them: small immutable records decoded once from Graph's JSON."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

# $select for the scan: only what the rules and the report use (graph-facts §2; signInActivity needs
# AuditLog.Read.All and Entra ID P1, and pages of at most 500).
GUEST_SELECT = (
    "id,displayName,mail,userPrincipalName,userType,creationType,externalUserState,"
    "externalUserStateChangeDateTime,createdDateTime,accountEnabled,companyName,signInActivity"
)


class ExternalState(StrEnum):
    PENDING = "PendingAcceptance"
    ACCEPTED = "Accepted"
    NONE = "none"  # not an invited guest (e.g. a guest created another way)


@dataclass(frozen=True, slots=True)
class SignIn:
    """signInActivity as Graph returned it; every field may be missing."""

    interactive: datetime | None = None  # lastSignInDateTime: last interactive attempt, successful or not
    non_interactive: datetime | None = None  # lastNonInteractiveSignInDateTime: successful or not
    successful: datetime | None = None  # lastSuccessfulSignInDateTime: since 2023-12-01, not backfilled


@dataclass(frozen=True, slots=True)
class Guest:
    id: str
    display_name: str | None
    mail: str | None
    user_principal_name: str | None
    created: datetime
    state: ExternalState
    state_changed: datetime | None  # externalUserStateChangeDateTime: e.g. when the invitation was redeemed
    enabled: bool
    company: str | None = None
    sign_in: SignIn | None = None  # None: Graph returned no signInActivity (unknown, never "never signed in")

    @property
    def domain(self) -> str | None:
        address = self.mail or ""
        return address.rsplit("@", 1)[-1].lower() if "@" in address else None


_STATES = {"PendingAcceptance": ExternalState.PENDING, "Accepted": ExternalState.ACCEPTED}


def parse_time(value: str | None) -> datetime | None:
    """Graph's ISO 8601 UTC timestamps (with Z) → aware datetimes; Graph's 0001-01-01 placeholder → None."""
    if not value or value.startswith("0001-01-01"):
        return None
    return datetime.fromisoformat(value)  # Python 3.11 reads the trailing Z itself


def guest_from_graph(item: dict[str, Any]) -> Guest:
    activity = item.get("signInActivity")
    sign_in = None
    if isinstance(activity, dict):
        sign_in = SignIn(
            interactive=parse_time(activity.get("lastSignInDateTime")),
            non_interactive=parse_time(activity.get("lastNonInteractiveSignInDateTime")),
            successful=parse_time(activity.get("lastSuccessfulSignInDateTime")),
        )
    state = item.get("externalUserState")
    created = parse_time(item.get("createdDateTime"))
    if created is None:
        raise ValueError(f"user {item.get('id')} has no createdDateTime")
    return Guest(
        id=item["id"],
        display_name=item.get("displayName"),
        mail=item.get("mail"),
        user_principal_name=item.get("userPrincipalName"),
        created=created,
        state=_STATES.get(state, ExternalState.NONE),  # type: ignore[arg-type]
        state_changed=parse_time(item.get("externalUserStateChangeDateTime")),
        enabled=item.get("accountEnabled") is not False,
        company=item.get("companyName"),
        sign_in=sign_in,
    )
