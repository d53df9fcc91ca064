"""Pure: the partner's side of direct connect — the outbound setting for the resource tenant, and the id file.

`guestctl partners accept` runs in the PARTNER's tenant: it plans (and with `--apply` makes) their partner
configuration for our tenant allow their users in scope **outbound** (`b2bDirectConnectOutbound`), and
writes the home object ids of those users to a file they send back. Our `guestctl partners migrate` reads
that file: a person joins a shared channel by their home tenant id and home object id
(docs/graph-contract.md#teams-channels), which our guest account of them does not carry.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from shared.config import DirectConnectScope
from shared.graph.odata import is_object_id
from shared.partners.trust import (
    OUTBOUND,
    PartnerPlan,
    as_read,
    b2b_setting,
    canonical,
    changed_properties,
    property_changes,
)

IDS_KIND: Final = "guestctl.partners.ids"
IDS_VERSION: Final = 1
ACCEPT_RUN_PREFIX: Final = "partners-"  # `guestctl partners rollback` in their tenant undoes it like a trust run


def plan_outbound(
    resource_tenant: str, label: str, current: dict[str, Any] | None, scope: DirectConnectScope
) -> PartnerPlan:
    """Their partner configuration for our tenant: only `b2bDirectConnectOutbound` is owned; nothing else moves."""
    desired = {OUTBOUND: b2b_setting(scope)}
    before = as_read(current) if current is not None else None
    return PartnerPlan(
        resource_tenant, label, before, property_changes(before, desired), changed_properties(before, desired)
    )


def accept_run_id(action: PartnerPlan) -> str:
    """The same change from the same state is the same run: a rerun finishes it, never redoes it."""
    digest = hashlib.sha256(canonical(action.to_json()).encode()).hexdigest()
    return ACCEPT_RUN_PREFIX + digest[:16]


@dataclass(frozen=True, slots=True)
class HomeUser:
    """One user of the partner's tenant in scope: the home object id, and the addresses we match guests on."""

    id: str
    mail: str | None
    upn: str | None
    other_mails: tuple[str, ...] = ()

    def addresses(self) -> set[str]:
        return {a.strip().lower() for a in (self.mail, self.upn, *self.other_mails) if a and "@" in a}

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "mail": self.mail, "userPrincipalName": self.upn, "otherMails": list(self.other_mails)}


USER_TYPE: Final = "#microsoft.graph.user"


def home_user(item: dict[str, Any]) -> HomeUser | None:
    """A Graph user of the partner's tenant as a home identity, or None: only their own people (members, not
    their guests) whose account is enabled — a disabled account is someone who cannot sign in to join."""
    if item.get("@odata.type", USER_TYPE) != USER_TYPE or item.get("userType", "Member") != "Member":
        return None
    if item.get("accountEnabled") is False:
        return None
    others = tuple(item.get("otherMails") or ())
    return HomeUser(str(item["id"]).lower(), item.get("mail"), item.get("userPrincipalName"), others)


@dataclass(frozen=True, slots=True)
class IdsFile:
    """What the partner sends back: who they are, for whom, which users, and whether outbound was applied."""

    tenant_id: str  # the partner's (home) tenant
    resource_tenant: str  # ours
    created_at: datetime
    scope: dict[str, Any]  # {"users": "all"} or {"groups": [...]}
    outbound_applied: bool
    users: tuple[HomeUser, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": IDS_KIND,
            "version": IDS_VERSION,
            "tenant_id": self.tenant_id,
            "resource_tenant": self.resource_tenant,
            "created_at": self.created_at.isoformat(),
            "scope": self.scope,
            "outbound_applied": self.outbound_applied,
            "users": [user.to_json() for user in self.users],
        }

    def digest(self) -> str:
        return hashlib.sha256(canonical(self.to_json()).encode()).hexdigest()

    @classmethod
    def from_json(cls, data: Any) -> IdsFile:
        """Checked strictly: a wrong kind, version, tenant id or user id is a ValueError naming it."""
        if not isinstance(data, dict) or data.get("kind") != IDS_KIND:
            raise ValueError(f"not a partner id file (its kind is not {IDS_KIND})")
        if data.get("version") != IDS_VERSION:
            raise ValueError(f"id file format version {data.get('version')!r} is not {IDS_VERSION}")
        for key in ("tenant_id", "resource_tenant"):
            if not is_object_id(str(data.get(key))):
                raise ValueError(f"{key} is not a tenant id: {str(data.get(key))[:60]!r}")
        users = []
        for index, item in enumerate(data.get("users") or []):
            if not isinstance(item, dict) or not is_object_id(str(item.get("id"))):
                raise ValueError(f"users[{index}]: id is not an object id")
            others = tuple(str(a) for a in item.get("otherMails") or [])
            users.append(HomeUser(str(item["id"]).lower(), item.get("mail"), item.get("userPrincipalName"), others))
        return cls(
            tenant_id=str(data["tenant_id"]).lower(),
            resource_tenant=str(data["resource_tenant"]).lower(),
            created_at=datetime.fromisoformat(str(data["created_at"])),
            scope=dict(data.get("scope") or {}),
            outbound_applied=bool(data.get("outbound_applied")),
            users=tuple(users),
        )
