"""Pure: one row per partner tenant (or "no tenant" bucket) from what discovery gathered, ranked."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.partners.records import ACCEPTED, DirectConnect, Home, TenantInfo, Usage
from shared.partners.rules import PartnerFacts, Recommendation, Use, count_uses, rank_key, recommend, use_of


@dataclass(frozen=True, slots=True)
class Seen:
    """One guest, as much as the report needs (kept small: discovery may hold 100,000 of them)."""

    user_id: str
    home: Home
    accepted: bool
    created: datetime | None
    active: bool


@dataclass(frozen=True, slots=True)
class Partner:
    """One row of the discovery: a partner tenant, or a "no tenant" bucket (`tenant_id` None)."""

    tenant_id: str | None
    display_name: str
    domains: tuple[str, ...]
    guests: int
    uses: dict[Use, int]
    active_90_days: int
    redeemed: int
    pending: int
    median_tenure_days: int | None
    oldest_guest_since: datetime | None
    direct_connect: DirectConnect | None
    sign_ins: dict[str, int]  # by crossTenantAccessType, in the window read
    recommendation: Recommendation
    usage_read: bool = True  # False: below --min-guests, what its guests use was not read

    @property
    def teams_only(self) -> int:
        return self.uses.get(Use.TEAMS_ONLY, 0)

    def to_json(self) -> dict[str, Any]:
        dc = self.direct_connect
        return {
            "tenant_id": self.tenant_id,
            "display_name": self.display_name,
            "domains": list(self.domains),
            "guests": self.guests,
            "teams_only": self.teams_only,
            "uses": {use.value: self.uses.get(use, 0) for use in Use} if self.usage_read else None,
            "active_90_days": self.active_90_days,
            "redeemed": self.redeemed,
            "pending": self.pending,
            "median_tenure_days": self.median_tenure_days,
            "oldest_guest_since": self.oldest_guest_since.isoformat() if self.oldest_guest_since else None,
            "direct_connect": None
            if dc is None
            else {"inbound": dc.inbound, "outbound": dc.outbound, "explicit": dc.explicit},
            "sign_ins": dict(self.sign_ins),
            "recommendation": self.recommendation.verdict.value,
            "reasons": list(self.recommendation.reasons),
        }


@dataclass(slots=True)
class Discovery:
    """A whole discovery: the ranked partners and how it was made."""

    generated_at: datetime
    partners: list[Partner]
    guests: int
    domains: int
    lookups: int  # findTenantInformationByDomainName calls made in this run
    lookups_cached: int  # domains answered from the store's cache
    sign_in_activity: bool  # False: activity unknown (no licence / permission), every guest counts inactive
    sign_in_log: bool  # False: the sign-in log could not be read
    sign_in_days: int
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "generated_at": self.generated_at.isoformat(),
            "guests": self.guests,
            "domains": self.domains,
            "tenant_lookups": self.lookups,
            "tenant_lookups_cached": self.lookups_cached,
            "sign_in_activity": self.sign_in_activity,
            "sign_in_log": self.sign_in_log,
            "sign_in_days": self.sign_in_days,
            "notes": list(self.notes),
            "partners": [p.to_json() for p in self.partners],
        }


def bucket_key(home: Home) -> str:
    return home.tenant.tenant_id if home.tenant is not None else f"no tenant: {home.no_tenant}"


def build_partner(
    key: str,
    seen: list[Seen],
    usage: dict[str, Usage] | None,
    settings: DirectConnect | None,
    sign_ins: Counter[str] | None,
    now: datetime,
) -> Partner:
    """One partner's row; `usage` None when it was not read (below --min-guests, or a "no tenant" bucket)."""
    tenant: TenantInfo | None = seen[0].home.tenant
    uses = count_uses(use_of(usage.get(s.user_id, Usage())) for s in seen) if usage is not None else {}
    created = sorted(s.created for s in seen if s.created is not None)
    tenure = [(now - c).days for c in created]
    counts = dict(sign_ins or {})
    facts = PartnerFacts(
        guests=len(seen),
        uses=uses,
        direct_connect=settings,
        direct_connect_sign_ins=counts.get("b2bDirectConnect", 0),
        no_tenant=seen[0].home.no_tenant,
    )
    return Partner(
        tenant_id=tenant.tenant_id if tenant else None,
        display_name=(tenant.display_name or tenant.default_domain or key) if tenant else key,
        domains=tuple(sorted({s.home.domain for s in seen if s.home.domain})),
        guests=len(seen),
        uses=uses,
        active_90_days=sum(s.active for s in seen),
        redeemed=sum(s.accepted for s in seen),
        pending=sum(not s.accepted for s in seen),
        median_tenure_days=int(statistics.median(tenure)) if tenure else None,
        oldest_guest_since=created[0] if created else None,
        direct_connect=settings,
        sign_ins=counts,
        recommendation=recommend(facts),
        usage_read=usage is not None,
    )


def ranked(partners: Iterable[Partner]) -> list[Partner]:
    return sorted(
        partners, key=lambda p: rank_key(p.recommendation.verdict, p.teams_only, p.guests, p.display_name.lower())
    )


def is_accepted(state: str | None) -> bool:
    return state == ACCEPTED
