"""Guests as partner discovery reads them, and what it learns about each one and each partner tenant.

`Guest` is decoded straight from Graph's bytes (msgspec) with Graph's property names. Everything else is
guestctl's: where a guest comes from (`Home`), what their account gives them (`Usage`), the cross-tenant
settings that apply to a partner (`DirectConnect`) and the sign-ins seen from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import msgspec

from shared.stale.records import SignIn

# What discovery reads per guest (docs/graph-contract.md#users). signInActivity needs AuditLog.Read.All and
# Entra ID P1, and caps pages at 500 (docs/graph-contract.md#sign-in-activity); without it: the same less it.
GUEST_SELECT = "id,mail,otherMails,identities,userType,externalUserState,createdDateTime,signInActivity"
GUEST_SELECT_WITHOUT_SIGN_IN = GUEST_SELECT.removesuffix(",signInActivity")
ACCEPTED = "Accepted"


class Identity(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    sign_in_type: str | None = msgspec.field(default=None, name="signInType")
    issuer: str | None = None
    issuer_assigned_id: str | None = msgspec.field(default=None, name="issuerAssignedId")


class Guest(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    id: str
    mail: str | None = None
    other_mails: list[str] = msgspec.field(default_factory=list, name="otherMails")
    upn: str | None = msgspec.field(default=None, name="userPrincipalName")  # migration only
    identities: list[Identity] = msgspec.field(default_factory=list)
    user_type: str | None = msgspec.field(default=None, name="userType")
    state: str | None = msgspec.field(default=None, name="externalUserState")
    created: datetime | None = msgspec.field(default=None, name="createdDateTime")
    sign_in: SignIn | None = msgspec.field(default=None, name="signInActivity")


class GuestPage(msgspec.Struct, gc=False):
    value: list[Guest] = []
    next_link: str | None = msgspec.field(default=None, name="@odata.nextLink")


@dataclass(frozen=True, slots=True)
class TenantInfo:
    """What `findTenantInformationByDomainName` says about a domain's tenant."""

    tenant_id: str
    display_name: str | None
    default_domain: str | None


@dataclass(frozen=True, slots=True)
class Home:
    """Where a guest comes from: a tenant (`tenant` set) or the "no tenant" bucket with its reason."""

    domain: str | None
    tenant: TenantInfo | None
    no_tenant: str | None = None  # "consumer mail", "non-Entra identity (mail)", "no tenant for the domain"


@dataclass(frozen=True, slots=True)
class Usage:
    """What a guest's account gives them: team groups, other groups, apps, and a directory role."""

    teams: int = 0
    other_groups: int = 0
    apps: int = 0
    role_holder: bool = False


@dataclass(frozen=True, slots=True)
class DirectConnect:
    """Our cross-tenant settings for one partner, as they apply: inbound / outbound direct connect
    (`allowed`, `some` users or apps, `blocked`) and whether they come from an explicit partner
    configuration or are inherited from the default."""

    inbound: str
    outbound: str
    explicit: bool
