"""Pure: the desired direct connect settings of each partner, the diff against what Graph has, the plan.

Someone asking "why would guestctl change this partner's settings?" reads this module and nothing else:
each partner named in the policy (`partners.tenants`) owns at most three properties of its partner
configuration — `b2bDirectConnectInbound` always, `inboundTrust` when `trust` is set,
`b2bDirectConnectOutbound` when `outbound` is set. Nothing else of the configuration, no partner the policy
does not name and never the default policy is changed. A plan whose cross-tenant access policy would grow
past Graph's 25 KB limit is refused whole (docs/graph-contract.md#cross-tenant-access).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from shared.config import DirectConnectScope, InboundTrust, PartnerTrust
from shared.core.plan_files import EditedPlanError

POLICY_SIZE_LIMIT: Final = 25 * 1024  # bytes: the whole cross-tenant access policy object
PLAN_KIND: Final = "guestctl.partners.plan"
PLAN_VERSION: Final = 1
INBOUND, TRUST, OUTBOUND = "b2bDirectConnectInbound", "inboundTrust", "b2bDirectConnectOutbound"
OWNED: Final = (INBOUND, TRUST, OUTBOUND)
B2B_PARTS: Final = ("usersAndGroups", "applications")
TRUST_FLAGS: Final = {
    "mfa": "isMfaAccepted",
    "compliant_device": "isCompliantDeviceAccepted",
    "hybrid_joined": "isHybridAzureADJoinedDeviceAccepted",
}
# A partner configuration as Graph creates it (every setting null: inherited), for the size estimate only.
NEW_PARTNER_SHAPE: Final = {
    "tenantId": None,
    "isServiceProvider": None,
    "isInMultiTenantOrganization": False,
    "inboundTrust": None,
    "b2bCollaborationOutbound": None,
    "b2bCollaborationInbound": None,
    "b2bDirectConnectOutbound": None,
    "b2bDirectConnectInbound": None,
    "tenantRestrictions": None,
    "automaticUserConsentSettings": {"inboundAllowed": None, "outboundAllowed": None},
}


class ActionKind(StrEnum):
    CREATE = "create"  # POST a partner configuration with our properties
    UPDATE = "update"  # PATCH the properties that differ


# -- desired state --------------------------------------------------------------------------------------------
def target_configuration(access: str, targets: list[tuple[str, str]]) -> dict[str, Any]:
    return {"accessType": access, "targets": [{"target": t, "targetType": kind} for t, kind in targets]}


def b2b_setting(scope: DirectConnectScope) -> dict[str, Any]:
    """One direction of B2B direct connect: these users and groups, these applications, allowed."""
    if scope.users == "all":
        who = [("AllUsers", "user")]
    else:
        who = [(user, "user") for user in scope.users] + [(group, "group") for group in scope.groups]
    return {
        "usersAndGroups": target_configuration("allowed", who),
        "applications": target_configuration("allowed", [(app, "application") for app in scope.applications]),
    }


def inbound_trust(trust: InboundTrust) -> dict[str, bool]:
    return {graph_name: getattr(trust, ours) for ours, graph_name in TRUST_FLAGS.items()}


def desired_settings(partner: PartnerTrust) -> dict[str, Any]:
    """The properties this partner's entry owns, as Graph spells them."""
    desired: dict[str, Any] = {INBOUND: b2b_setting(partner.inbound)}
    if partner.trust is not None:
        desired[TRUST] = inbound_trust(partner.trust)
    if partner.outbound is not None:
        desired[OUTBOUND] = b2b_setting(partner.outbound)
    return desired


# -- comparing -------------------------------------------------------------------------------------------------
def as_read(configuration: dict[str, Any]) -> dict[str, Any]:
    """A configuration as Graph returned it, without OData annotations: what plans and the audit keep."""
    return {key: value for key, value in configuration.items() if not key.startswith("@")}


def normalised(value: Any) -> Any:
    """For comparing only: target lists as sets (Graph need not keep their order), ids in lower case."""
    if isinstance(value, dict):
        if "targets" in value and isinstance(value["targets"], list):
            listed = [t for t in value["targets"] if isinstance(t, dict)]
            targets = sorted((str(t.get("targetType")), str(t.get("target")).lower()) for t in listed)
            return {**{k: normalised(v) for k, v in value.items() if k != "targets"}, "targets": targets}
        return {k: normalised(v) for k, v in value.items() if not k.startswith("@")}
    if isinstance(value, list):
        return [normalised(item) for item in value]
    return value


def same(first: Any, second: Any) -> bool:
    return canonical(normalised(first)) == canonical(normalised(second))


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Change:
    """One property of one partner configuration: from what, to what. `from_` None: unset (inherited)."""

    property: str
    from_: Any
    to: Any

    def to_json(self) -> dict[str, Any]:
        return {"property": self.property, "from": self.from_, "to": self.to}


def property_changes(current: dict[str, Any] | None, desired: dict[str, Any]) -> list[Change]:
    """Exactly which properties change: per part of a B2B setting and per trust flag where one is set, the
    whole property where it is unset (inherited from the default)."""
    changes: list[Change] = []
    for name, wanted in desired.items():
        now = (current or {}).get(name)
        if now is None:
            changes.append(Change(name, None, wanted))
            continue
        for part, value in wanted.items():
            if not same(now.get(part), value):
                changes.append(Change(f"{name}.{part}", now.get(part), value))
    return changes


def changed_properties(current: dict[str, Any] | None, desired: dict[str, Any]) -> dict[str, Any]:
    """What a POST or PATCH sends: each owned top-level property with a change, whole."""
    touched = {change.property.split(".", 1)[0] for change in property_changes(current, desired)}
    return {name: value for name, value in desired.items() if name in touched}


def configuration_after(tenant_id: str, current: dict[str, Any] | None, body: dict[str, Any]) -> dict[str, Any]:
    """The configuration Graph should hold once the change is made (a new one: Graph's shape, ours set)."""
    base = dict(current) if current is not None else {**NEW_PARTNER_SHAPE, "tenantId": tenant_id}
    return {**base, **body}


def policy_size(default: dict[str, Any], partners: list[dict[str, Any]]) -> int:
    """guestctl's measure of the policy: the compact JSON of the default and every partner configuration as
    Graph returns them. Graph does not document its own measure, so this is an estimate."""
    whole = {"default": as_read(default), "partners": [as_read(p) for p in partners]}
    return len(json.dumps(whole, separators=(",", ":")).encode())


# -- the plan ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PartnerPlan:
    """One named partner: its configuration as read (None: none yet), the changes and the request body."""

    tenant_id: str
    label: str  # the policy's name, or the domain or id it gave
    before: dict[str, Any] | None
    changes: list[Change]
    body: dict[str, Any]

    @property
    def kind(self) -> ActionKind | None:
        if not self.changes:
            return None
        return ActionKind.CREATE if self.before is None else ActionKind.UPDATE

    @property
    def target_id(self) -> str:
        return self.tenant_id

    def after(self) -> dict[str, Any]:
        return configuration_after(self.tenant_id, self.before, self.body)

    def to_json(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "label": self.label,
            "action": self.kind.value if self.kind else "none",
            "before": self.before,
            "changes": [change.to_json() for change in self.changes],
            "body": self.body,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PartnerPlan:
        changes = [Change(c["property"], c["from"], c["to"]) for c in data["changes"]]
        plan = cls(str(data["tenant_id"]), str(data["label"]), data["before"], changes, dict(data["body"]))
        if (plan.kind.value if plan.kind else "none") != data["action"]:
            raise ValueError(f"partner {plan.tenant_id}: its action does not match its changes")
        return plan


def plan_partner(tenant_id: str, label: str, current: dict[str, Any] | None, partner: PartnerTrust) -> PartnerPlan:
    desired = desired_settings(partner)
    before = as_read(current) if current is not None else None
    return PartnerPlan(tenant_id, label, before, property_changes(before, desired), changed_properties(before, desired))


def size_refusal(after: int, limit: int = POLICY_SIZE_LIMIT) -> str | None:
    if after <= limit:
        return None
    return (
        f"the cross-tenant access policy would be {after:,} bytes, over Graph's limit of {limit:,} bytes (25 KB): "
        "name fewer users and groups, or fewer partners"
    )


@dataclass(frozen=True, slots=True)
class Plan:
    created_at: datetime
    tenant_id: str | None  # ours
    policy_digest: str
    partners: list[PartnerPlan]
    size_before: int
    size_after: int
    refused: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def actions(self) -> list[PartnerPlan]:
        return [partner for partner in self.partners if partner.kind is not None]

    def body_json(self) -> dict[str, Any]:
        return {
            "kind": PLAN_KIND,
            "version": PLAN_VERSION,
            "created_at": self.created_at.isoformat(),
            "tenant_id": self.tenant_id,
            "policy_digest": self.policy_digest,
            "size": {"before": self.size_before, "after": self.size_after, "limit": POLICY_SIZE_LIMIT},
            "refused": self.refused,
            "notes": list(self.notes),
            "partners": [partner.to_json() for partner in self.partners],
        }

    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(canonical(self.body_json()).encode()).hexdigest()

    def plan_id(self) -> str:
        return self.digest().removeprefix("sha256:")[:16]

    def to_json(self) -> dict[str, Any]:
        return {**self.body_json(), "digest": self.digest()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        if not isinstance(data, dict) or data.get("kind") != PLAN_KIND:
            raise ValueError(f"not a partners plan (its kind is not {PLAN_KIND})")
        if data.get("version") != PLAN_VERSION:
            raise ValueError(f"plan format version {data.get('version')!r} is not {PLAN_VERSION}")
        size = data["size"]
        plan = cls(
            created_at=datetime.fromisoformat(data["created_at"]),
            tenant_id=data["tenant_id"],
            policy_digest=str(data["policy_digest"]),
            partners=[PartnerPlan.from_json(p) for p in data["partners"]],
            size_before=int(size["before"]),
            size_after=int(size["after"]),
            refused=data["refused"],
            notes=[str(n) for n in data["notes"]],
        )
        if plan.digest() != data.get("digest"):
            raise EditedPlanError("the plan's content does not match its digest")
        return plan


def make_plan(
    *,
    now: datetime,
    tenant_id: str | None,
    policy_digest: str,
    default: dict[str, Any],
    partners_now: list[dict[str, Any]],
    named: list[tuple[str, str, PartnerTrust]],
    notes: list[str] | None = None,
) -> Plan:
    """The plan for every named partner (tenant id, label, entry) against the configurations read now."""
    current = {str(p.get("tenantId", "")).lower(): p for p in partners_now}
    planned = [plan_partner(tenant, label, current.get(tenant), entry) for tenant, label, entry in named]
    after = {key: as_read(p) for key, p in current.items()}
    for partner in planned:
        if partner.kind is not None:
            after[partner.tenant_id] = partner.after()
    before_size = policy_size(default, list(current.values()))
    after_size = policy_size(default, list(after.values()))
    return Plan(
        now, tenant_id, policy_digest, planned, before_size, after_size, size_refusal(after_size), list(notes or [])
    )


def describe(value: Any) -> str:
    """A setting as people read it in a table: `unset (inherited)`, `allowed: AllUsers`, `true`."""
    if value is None:
        return "unset (inherited from the default)"
    if isinstance(value, dict) and "accessType" in value:
        targets = [str(t.get("target")) for t in value.get("targets") or [] if isinstance(t, dict)]
        return f"{value.get('accessType')}: {', '.join(targets) or 'none'}"
    if isinstance(value, dict) and set(value) <= set(B2B_PARTS):
        return "; ".join(f"{part} {describe(value.get(part))}" for part in B2B_PARTS if part in value)
    if isinstance(value, dict):
        return ", ".join(f"{key} {describe(item)}" for key, item in value.items())
    return json.dumps(value)
