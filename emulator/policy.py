"""Cross-tenant access policy objects: default shape, partner shape, inheritance.

See docs/graph-contract.md#cross-tenant-access.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from emulator.tenant import Tenant

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
# AADSTS codes of a B2B direct connect sign-in refused by cross-tenant access settings
OUTBOUND_REFUSED = 500212  # the user's home tenant does not allow outbound access to the resource tenant
INBOUND_REFUSED = 500213  # the resource tenant's inbound settings do not admit the user
# application targets that admit Microsoft Teams (1fec8e78-…: the Teams app id)
TEAMS_APP_TARGETS = {"allapplications", "office365", "1fec8e78-bce4-4aaf-ab1b-5451cc387264"}


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


def _admits(setting: dict[str, Any] | None, part: str, ids: set[str]) -> bool:
    """Does a B2B setting's `part` (usersAndGroups or applications) admit one of these lower-case ids?"""
    if not setting:
        return False
    target = setting.get(part) or {}
    listed = {t.get("target", "").lower() for t in target.get("targets") or []}
    hit = bool(listed & ids)
    return hit if target.get("accessType") == "allowed" else not hit


def allows_user(setting: dict[str, Any] | None, object_ids: set[str]) -> bool:
    """Does a B2B setting's usersAndGroups admit one of these object ids (or all users)?"""
    return _admits(setting, "usersAndGroups", {"allusers", *(i.lower() for i in object_ids)})


def direct_connect_refusal(tenant: Tenant, home_tenant_id: str, user_id: str) -> int | None:
    """Why B2B direct connect (Teams shared channels) of a partner's user into `tenant` is refused, or None.

    Both sides must allow it (docs/graph-contract.md#cross-tenant-access): the partner's outbound setting
    (AADSTS500212), then our effective b2bDirectConnectInbound for the user and the Teams app (AADSTS500213).
    """
    home = home_tenant_id.lower()
    external = tenant.external_tenants.get(home)
    if external is None or not external.direct_connect_outbound:
        return OUTBOUND_REFUSED
    inbound = effective(tenant.policy_default, tenant.policy_partners.get(home), "b2bDirectConnectInbound")
    if not allows_user(inbound, {user_id}) or not _admits(inbound, "applications", TEAMS_APP_TARGETS):
        return INBOUND_REFUSED
    return None


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
