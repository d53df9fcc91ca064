"""Cross-tenant access policy objects: default shape, partner shape, inheritance.

See docs/graph-contract.md#cross-tenant-access.
"""

from __future__ import annotations

import copy
from typing import Any

B2B_SETTINGS = (
    "b2bCollaborationInbound",
    "b2bCollaborationOutbound",
    "b2bDirectConnectInbound",
    "b2bDirectConnectOutbound",
)
PARTNER_FIELDS = (
    *B2B_SETTINGS,
    "inboundTrust",
    "automaticUserConsentSettings",
    "isServiceProvider",
    "isInMultiTenantOrganization",
    "tenantRestrictions",
)
POLICY_SIZE_LIMIT = 25 * 1024  # docs/graph-contract.md#cross-tenant-access: the whole policy object is limited to 25 KB
ACCESS_TYPES = ("allowed", "blocked", "unknownFutureValue")
TARGET_TYPES = ("user", "group", "application", "unknownFutureValue")


def _b2b(access: str) -> dict[str, Any]:
    return {
        "usersAndGroups": {"accessType": access, "targets": [{"target": "AllUsers", "targetType": "user"}]},
        "applications": {"accessType": access, "targets": [{"target": "AllApplications", "targetType": "application"}]},
    }


def default_policy() -> dict[str, Any]:
    """The service default: B2B collaboration allowed both ways, B2B direct connect blocked both ways."""
    return {
        "isServiceDefault": True,
        "inboundTrust": {
            "isMfaAccepted": False,
            "isCompliantDeviceAccepted": False,
            "isHybridAzureADJoinedDeviceAccepted": False,
        },
        "b2bCollaborationOutbound": _b2b("allowed"),
        "b2bCollaborationInbound": _b2b("allowed"),
        "b2bDirectConnectOutbound": _b2b("blocked"),
        "b2bDirectConnectInbound": _b2b("blocked"),
        "automaticUserConsentSettings": {"inboundAllowed": False, "outboundAllowed": False},
        "tenantRestrictions": None,
        "invitationRedemptionIdentityProviderConfiguration": {
            "primaryIdentityProviderPrecedenceOrder": [
                "externalFederation",
                "azureActiveDirectory",
                "socialIdentityProviders",
            ],
            "fallbackIdentityProvider": "defaultConfiguredIdp",
        },
    }


def new_partner(tenant_id: str) -> dict[str, Any]:
    """A partner configuration: every setting null, i.e. inherited from the default."""
    return {
        "tenantId": tenant_id,
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


def effective(default: dict[str, Any], partner: dict[str, Any] | None, name: str) -> Any:
    """A null partner property inherits the default policy."""
    if partner is not None and partner.get(name) is not None:
        value = partner[name]
        if name in B2B_SETTINGS:
            merged = copy.deepcopy(default.get(name) or {})
            for part in ("usersAndGroups", "applications"):
                if value.get(part) is not None:
                    merged[part] = value[part]
            return merged
        return value
    return default.get(name)


def allows_user(setting: dict[str, Any] | None, object_ids: set[str]) -> bool:
    """Does a B2B setting's usersAndGroups admit one of these object ids (or all users)?"""
    if not setting:
        return False
    target = setting.get("usersAndGroups") or {}
    listed = {t.get("target", "").lower() for t in target.get("targets") or []}
    hit = "allusers" in listed or bool(listed & {i.lower() for i in object_ids})
    return hit if target.get("accessType") == "allowed" else not hit


def validate_b2b_setting(name: str, value: Any) -> str | None:
    """Return an error message when a crossTenantAccessPolicyB2BSetting is malformed."""
    if value is None:
        return None
    if not isinstance(value, dict):
        return f"'{name}' must be an object or null."
    for part, value_part in value.items():
        if part not in ("usersAndGroups", "applications"):
            return f"'{name}' has an unknown property '{part}'."
        if value_part is None:
            continue
        if not isinstance(value_part, dict) or value_part.get("accessType") not in ACCESS_TYPES:
            return f"'{name}.{part}.accessType' must be one of {', '.join(ACCESS_TYPES)}."
        targets = value_part.get("targets")
        if not isinstance(targets, list):
            return f"'{name}.{part}.targets' must be an array."
        for target in targets:
            if (
                not isinstance(target, dict)
                or not isinstance(target.get("target"), str)
                or target.get("targetType") not in TARGET_TYPES
            ):
                return f"'{name}.{part}.targets' entries need 'target' and a valid 'targetType'."
    return None
