"""Pure: where a guest comes from, what their account is used for, and what to do about each partner.

Someone asking "why is this partner recommended for direct connect?" reads this file. B2B direct connect
gives access to Teams shared channels only (docs/partners.md), so only a guest whose account is used for
Teams and nothing else can give it up; anyone using another group, an app or holding a directory role keeps
the guest account, and role holders are never migrated.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from shared.partners.records import ACCEPTED, DirectConnect, Guest, Usage
from shared.stale.records import SignIn

# Mail domains anyone can sign up to: a guest from one has no organisation to trust (docs/partners.md).
CONSUMER_DOMAINS = frozenset(
    {
        "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "msn.com", "yahoo.com",
        "ymail.com", "aol.com", "icloud.com", "me.com", "mac.com", "proton.me", "protonmail.com", "gmx.com",
        "gmx.de", "gmx.net", "web.de", "mail.com", "yandex.com", "yandex.ru", "zoho.com", "qq.com", "163.com",
        "hotmail.co.uk", "outlook.fr", "hotmail.fr", "yahoo.co.uk", "yahoo.fr", "live.co.uk", "free.fr",
        "orange.fr", "t-online.de", "libero.it",
    }
)  # fmt: skip
ENTRA_ISSUER = "ExternalAzureAD"  # docs/graph-contract.md#users: a B2B guest from another Entra tenant
ACTIVE_DAYS = 90
MIGRATE_SHARE = 0.5  # at least half of a partner's guests Teams-only: worth setting up direct connect
CONSUMER = "consumer mail"
NO_DOMAIN = "no mail domain"


class Verdict(StrEnum):
    MIGRATE = "migrate"
    AWAITING_PARTNER = "awaiting partner"
    ALREADY_CONFIGURED = "already configured"
    KEEP_GUESTS = "keep guests"
    NO_TENANT = "no tenant"


RANK = {verdict: place for place, verdict in enumerate(Verdict)}


def _domain(address: str | None) -> str | None:
    if not address or "@" not in address:
        return None
    return address.rsplit("@", 1)[-1].strip().lower() or None


def home_domain(guest: Guest) -> str | None:
    """The guest's home mail domain: `mail`, else the first of `otherMails`, else a sign-in identity."""
    for address in (guest.mail, *guest.other_mails, *(i.issuer_assigned_id for i in guest.identities)):
        if (domain := _domain(address)) is not None:
            return domain
    return None


def no_tenant_reason(guest: Guest, domain: str | None) -> str | None:
    """Why this guest has no home tenant to trust, before any lookup; None if its domain may have one.

    A redeemed guest who signs in with a one-time passcode, a Microsoft account or a social identity has no
    Entra home account, whatever their domain: direct connect needs one.
    """
    if domain is None:
        return NO_DOMAIN
    if domain in CONSUMER_DOMAINS:
        return CONSUMER
    issuers = {i.issuer for i in guest.identities if i.sign_in_type == "federated" and i.issuer}
    if guest.state == ACCEPTED and issuers and ENTRA_ISSUER not in issuers:
        return f"non-Entra identity ({', '.join(sorted(issuers))})"
    return None


def is_active(sign_in: SignIn | None, now: datetime, days: int = ACTIVE_DAYS) -> bool:
    """Signed in (interactively or by token refresh) within `days`; unknown activity is not activity."""
    if sign_in is None:
        return False
    moments = [m for m in (sign_in.successful, sign_in.interactive, sign_in.non_interactive) if m is not None]
    return bool(moments) and max(moments) >= now - timedelta(days=days)


class Use(StrEnum):
    TEAMS_ONLY = "teams only"
    ROLE = "directory role"
    APPS = "apps"
    GROUPS = "other groups"
    NOTHING = "nothing"


def use_of(usage: Usage) -> Use:
    """What keeps a guest account, in order of weight; Teams-only is the one that direct connect covers."""
    if usage.role_holder:
        return Use.ROLE
    if usage.apps:
        return Use.APPS
    if usage.other_groups:
        return Use.GROUPS
    if usage.teams:
        return Use.TEAMS_ONLY
    return Use.NOTHING


@dataclass(frozen=True, slots=True)
class PartnerFacts:
    """What the recommendation for one partner is made from."""

    guests: int
    uses: dict[Use, int]
    direct_connect: DirectConnect | None  # None: the "no tenant" bucket
    direct_connect_sign_ins: int = 0
    no_tenant: str | None = None


@dataclass(frozen=True, slots=True)
class Recommendation:
    verdict: Verdict
    reasons: tuple[str, ...]

    def text(self) -> str:
        return f"{self.verdict.value}: " + "; ".join(self.reasons)


def _keeping(uses: dict[Use, int]) -> list[str]:
    """Why guests keep their account: "12 use apps", "1 holds a directory role"."""
    said = {Use.ROLE: "hold a directory role", Use.APPS: "use apps", Use.GROUPS: "use other groups"}
    return [f"{uses[use]} {said[use]}" for use in said if uses.get(use)]


def recommend(facts: PartnerFacts) -> Recommendation:
    """migrate / awaiting partner / already configured / keep guests / no tenant, with the reasons."""
    if facts.direct_connect is None:
        return Recommendation(Verdict.NO_TENANT, (facts.no_tenant or "no home tenant",))
    teams_only = facts.uses.get(Use.TEAMS_ONLY, 0)
    share = f"{teams_only} of {facts.guests} guests are Teams-only"
    keeping = _keeping(facts.uses)
    inbound = facts.direct_connect.inbound
    if inbound != "blocked":
        where = "a partner configuration" if facts.direct_connect.explicit else "the default policy"
        configured = f"direct connect inbound {inbound} by {where}"
        if facts.direct_connect_sign_ins:
            seen = f"{facts.direct_connect_sign_ins} direct connect sign-ins from them"
            return Recommendation(Verdict.ALREADY_CONFIGURED, (configured, seen, share, *keeping))
        waiting = "no direct connect sign-ins from them yet: their outbound setting may not allow us"
        return Recommendation(Verdict.AWAITING_PARTNER, (configured, waiting, share, *keeping))
    if teams_only and teams_only >= MIGRATE_SHARE * facts.guests:
        return Recommendation(Verdict.MIGRATE, (share, "direct connect not yet configured", *keeping))
    if not teams_only:
        return Recommendation(Verdict.KEEP_GUESTS, (*(keeping or ["no guest uses Teams alone"]),))
    return Recommendation(Verdict.KEEP_GUESTS, (f"only {share}", *keeping))


def access_state(direction: dict | None) -> str:
    """`allowed`, `some` (named users/groups or apps only) or `blocked`, from one direction's settings
    (`{usersAndGroups: {accessType, targets}, applications: {...}}`, docs/graph-contract.md#cross-tenant-access)."""
    if not direction:
        return "blocked"
    states = []
    for part in ("usersAndGroups", "applications"):
        setting = direction.get(part) or {}
        if setting.get("accessType") != "allowed":
            return "blocked"
        targets = {t.get("target") for t in setting.get("targets") or []}
        states.append("allowed" if targets & {"AllUsers", "AllApplications", "Office365"} else "some")
    return "allowed" if all(s == "allowed" for s in states) else "some"


def direct_connect(default: dict, partner: dict | None) -> DirectConnect:
    """The direct connect settings that apply to a partner: its own where set, else the default's."""
    inbound = (partner or {}).get("b2bDirectConnectInbound")
    outbound = (partner or {}).get("b2bDirectConnectOutbound")
    return DirectConnect(
        inbound=access_state(inbound if inbound is not None else default.get("b2bDirectConnectInbound")),
        outbound=access_state(outbound if outbound is not None else default.get("b2bDirectConnectOutbound")),
        explicit=partner is not None and inbound is not None,
    )


def rank_key(verdict: Verdict, teams_only: int, guests: int, name: str) -> tuple[int, int, int, str]:
    """Migration candidates first, most Teams-only guests first; "no tenant" last."""
    return RANK[verdict], -teams_only, -guests, name


def count_uses(uses: Iterable[Use]) -> dict[Use, int]:
    counted: dict[Use, int] = {}
    for use in uses:
        counted[use] = counted.get(use, 0) + 1
    return counted
