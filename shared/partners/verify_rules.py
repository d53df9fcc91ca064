"""Pure: what one sign-in log entry says about a partner's move to direct connect, and the tallies of many.

Someone asking "did Fabrikam's people really move?" reads this file. Each entry of the sign-in log
(docs/graph-contract.md#sign-in-logs) is reduced to a few facts: the home tenant, direct connect or guest
(`crossTenantAccessType`), success or the error code, and where MFA was satisfied. Entries that are not
cross-tenant (our own members) are dropped. Tallies are kept per partner per day (what the store keeps, so
trends outlive the log's 30 days) and per person (what the report shows and retirement relies on).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

DIRECT = "b2bDirectConnect"
GUEST = "b2bCollaboration"
MFA_REQUIRED = "multiFactorAuthentication"
# authenticationDetails[].authenticationMethod / authenticationStepResultDetail when MFA came with the token
# the home tenant issued, not a prompt of ours (docs/graph-contract.md#sign-in-logs)
BY_TOKEN = "satisfied by token"
BY_CLAIM = "satisfied by claim in the token"


class Mfa(StrEnum):
    HOME = "home"  # required, and satisfied by the MFA claim of their home tenant (inboundTrust.isMfaAccepted)
    HERE = "here"  # required, and done in our tenant
    NONE = "none"  # not required
    UNKNOWN = "unknown"  # the entry does not say (authenticationRequirement missing)


# What an error code means for someone moving to direct connect (docs/partners.md#verify).
KNOWN_ERRORS = {
    90071: "MFA required but their MFA is not trusted (inboundTrust.isMfaAccepted)",
    500212: "their outbound blocks us: their admin runs guestctl partners accept",
    500213: "our inbound does not admit them: guestctl partners plan, then apply",
}


@dataclass(frozen=True, slots=True)
class SignInFacts:
    """One cross-tenant sign-in, reduced to what verification counts."""

    day: str  # 2026-01-31 (UTC)
    home: str  # home tenant id, lower case
    direct: bool  # b2bDirectConnect (else b2bCollaboration: a guest account)
    person: str  # userPrincipalName (lower case), else the user id
    user_id: str
    name: str | None
    error: int  # 0: success
    mfa: Mfa


def mfa_of(entry: dict[str, Any]) -> Mfa:
    """Where MFA was satisfied, from the documented `authenticationRequirement` and `authenticationDetails`.

    Single factor is NONE whatever the steps say (a first factor can be "satisfied by claim in the token" too).
    """
    requirement = entry.get("authenticationRequirement")
    if requirement is not None and requirement != MFA_REQUIRED:
        return Mfa.NONE
    for step in entry.get("authenticationDetails") or []:
        said = " ".join(str(step.get(k) or "") for k in ("authenticationMethod", "authenticationStepResultDetail"))
        if BY_TOKEN in said.lower() or BY_CLAIM in said.lower():
            return Mfa.HOME
    return Mfa.UNKNOWN if requirement is None else Mfa.HERE


def facts_of(entry: dict[str, Any]) -> SignInFacts | None:
    """The facts of a direct connect or guest sign-in; None for any other entry (members, apps, …)."""
    kind = entry.get("crossTenantAccessType")
    home = (entry.get("homeTenantId") or "").lower()
    created = entry.get("createdDateTime") or ""
    if kind not in (DIRECT, GUEST) or not home or len(created) < 10:
        return None
    user_id = (entry.get("userId") or "").lower()
    person = (entry.get("userPrincipalName") or user_id).lower()
    error = int((entry.get("status") or {}).get("errorCode") or 0)
    return SignInFacts(
        created[:10], home, kind == DIRECT, person, user_id, entry.get("userDisplayName"), error, mfa_of(entry)
    )


@dataclass(slots=True)
class Tally:
    """Sign-ins counted one way (a partner's day, a person's window)."""

    direct: int = 0
    guest: int = 0
    direct_failed: int = 0
    guest_failed: int = 0
    mfa: dict[str, int] = field(default_factory=dict)  # successful sign-ins by where MFA was satisfied
    errors: dict[str, int] = field(default_factory=dict)  # failures by error code

    def add(self, facts: SignInFacts) -> None:
        if facts.direct:
            self.direct += 1
        else:
            self.guest += 1
        if facts.error:
            if facts.direct:
                self.direct_failed += 1
            else:
                self.guest_failed += 1
            code = str(facts.error)
            self.errors[code] = self.errors.get(code, 0) + 1
        else:
            self.mfa[facts.mfa.value] = self.mfa.get(facts.mfa.value, 0) + 1

    def merge(self, other: Tally) -> None:
        self.direct += other.direct
        self.guest += other.guest
        self.direct_failed += other.direct_failed
        self.guest_failed += other.guest_failed
        for mine, theirs in ((self.mfa, other.mfa), (self.errors, other.errors)):
            for key, count in theirs.items():
                mine[key] = mine.get(key, 0) + count

    def to_json(self) -> dict[str, Any]:
        return {
            "direct_connect": self.direct,
            "guest": self.guest,
            "direct_connect_failed": self.direct_failed,
            "guest_failed": self.guest_failed,
            "mfa": dict(sorted(self.mfa.items())),
            "errors": dict(sorted(self.errors.items())),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Tally:
        return cls(
            data.get("direct_connect", 0),
            data.get("guest", 0),
            data.get("direct_connect_failed", 0),
            data.get("guest_failed", 0),
            dict(data.get("mfa") or {}),
            dict(data.get("errors") or {}),
        )


@dataclass(slots=True)
class Person:
    """One person of a partner tenant over the window: their tally, and their successful direct connect."""

    user_id: str
    name: str | None
    tally: Tally = field(default_factory=Tally)
    first_direct: str | None = None  # the day of their first successful direct connect sign-in in the window
    last_direct: str | None = None


@dataclass(slots=True)
class Aggregation:
    """Tallies of a stream of sign-in entries: per (home tenant, day) and per (home tenant, person).

    Memory grows with partners × days and with people, never with entries: a million entries of a few
    thousand people fit in a few MB (bench/partners.py).
    """

    days: dict[tuple[str, str], Tally] = field(default_factory=dict)
    people: dict[tuple[str, str], Person] = field(default_factory=dict)
    entries: int = 0  # every entry read, cross-tenant or not

    def add(self, entry: dict[str, Any]) -> None:
        self.entries += 1
        facts = facts_of(entry)
        if facts is None:
            return
        self.days.setdefault((facts.home, facts.day), Tally()).add(facts)
        person = self.people.get((facts.home, facts.person))
        if person is None:
            person = self.people[(facts.home, facts.person)] = Person(facts.user_id, facts.name)
        person.tally.add(facts)
        if facts.direct and not facts.error:
            person.first_direct = min(person.first_direct or facts.day, facts.day)
            person.last_direct = max(person.last_direct or facts.day, facts.day)

    def partner_totals(self) -> dict[str, Tally]:
        """Per home tenant, the whole window."""
        totals: dict[str, Tally] = {}
        for (home, _day), tally in self.days.items():
            totals.setdefault(home, Tally()).merge(tally)
        return totals


def window_start(now: datetime, days: int) -> datetime:
    """Midnight UTC `days - 1` days before today: whole days only, so a day's tally replaces a day's tally."""
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return start.fromordinal(start.toordinal() - (days - 1)).replace(tzinfo=now.tzinfo)


def error_text(code: str) -> str:
    """`90071 (MFA required but …)`: a code with what it means, when guestctl knows."""
    meaning = KNOWN_ERRORS.get(int(code))
    return f"{code} ({meaning})" if meaning else code
