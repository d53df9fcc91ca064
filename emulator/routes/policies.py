"""Cross-tenant access policy (default, partners, identitySynchronization) and tenant lookups."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from emulator.errors import GraphError, bad_request, not_found
from emulator.http import Ctx, Reply, Route, json_reply, no_content
from emulator.policy import B2B_SETTINGS, PARTNER_FIELDS, POLICY_SIZE_LIMIT, new_partner, validate_b2b_setting

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_DEFAULT_WRITABLE = (
    *B2B_SETTINGS,
    "inboundTrust",
    "invitationRedemptionIdentityProviderConfiguration",
    "tenantRestrictions",
)


def _policy_size(ctx: Ctx, default: dict[str, Any], partners: dict[str, dict[str, Any]]) -> int:
    whole = {"default": default, "partners": list(partners.values())}
    return len(json.dumps(whole, separators=(",", ":")).encode())


def _check_size(ctx: Ctx, default: dict[str, Any], partners: dict[str, dict[str, Any]]) -> None:
    if _policy_size(ctx, default, partners) > POLICY_SIZE_LIMIT:
        # "Failure to update policy due to object limit" (exact code unconfirmed):
        # docs/graph-contract.md#cross-tenant-access.
        raise bad_request(
            "Failure to update policy due to object limit: the cross-tenant access policy is "
            f"limited to {POLICY_SIZE_LIMIT // 1024} KB.",
            code="Request_BadRequest",
        )


def _apply(target: dict[str, Any], payload: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for key, value in payload.items():
        if key.startswith("@"):
            continue
        if key not in allowed:
            raise bad_request(f"Property '{key}' cannot be set on this object.", code="Request_BadRequest")
        if key in B2B_SETTINGS:
            problem = validate_b2b_setting(key, value)
            if problem:
                raise bad_request(problem, code="Request_BadRequest")
        if (
            key == "inboundTrust"
            and value is not None
            and (not isinstance(value, dict) or any(not isinstance(v, bool | None) for v in value.values()))
        ):
            raise bad_request("inboundTrust must be an object of booleans.", code="Request_BadRequest")
        if key in ("isServiceProvider", "isInMultiTenantOrganization") and not isinstance(value, bool | None):
            raise bad_request(f"'{key}' must be a boolean.", code="Request_BadRequest")
        target[key] = copy.deepcopy(value)


async def get_policy(ctx: Ctx) -> Reply:
    tenant = ctx.tenant
    return json_reply(
        {
            "@odata.context": ctx.context_url("policies/crossTenantAccessPolicy/$entity"),
            "id": "crossTenantAccessPolicy",
            "displayName": "CrossTenantAccessPolicy",
            "definition": [],
            "allowedCloudEndpoints": [],
            "sizeInBytes": _policy_size(ctx, tenant.policy_default, tenant.policy_partners),
        }
    )


async def get_default(ctx: Ctx) -> Reply:
    body = {"@odata.context": ctx.context_url("policies/crossTenantAccessPolicy/default/$entity")}
    body.update(copy.deepcopy(ctx.tenant.policy_default))
    return json_reply(body)


async def update_default(ctx: Ctx) -> Reply:
    tenant = ctx.tenant
    payload = ctx.json_object()
    if "automaticUserConsentSettings" in payload:
        raise bad_request("automaticUserConsentSettings is read-only in the default policy.", code="Request_BadRequest")
    updated = copy.deepcopy(tenant.policy_default)
    _apply(updated, payload, _DEFAULT_WRITABLE)
    updated["isServiceDefault"] = False
    _check_size(ctx, updated, tenant.policy_partners)
    tenant.policy_default = updated
    return no_content()


async def reset_default(ctx: Ctx) -> Reply:
    from emulator.policy import default_policy

    ctx.tenant.policy_default = default_policy()
    return no_content()


def _partner_json(ctx: Ctx, partner: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(partner)


async def list_partners(ctx: Ctx) -> Reply:
    partners = [_partner_json(ctx, p) for p in ctx.tenant.policy_partners.values()]
    return json_reply(
        {"@odata.context": ctx.context_url("policies/crossTenantAccessPolicy/partners"), "value": partners}
    )


async def create_partner(ctx: Ctx) -> Reply:
    tenant = ctx.tenant
    payload = ctx.json_object()
    tenant_id = str(payload.get("tenantId", "")).lower()
    if not _GUID.match(tenant_id):
        raise bad_request("tenantId is required and must be a GUID.", code="Request_BadRequest")
    if tenant_id in tenant.policy_partners:
        raise GraphError(
            409,
            "Request_MultipleObjectsWithSameKeyValue",
            f"A partner configuration for tenant '{tenant_id}' already exists.",
        )
    if tenant_id == tenant.id:
        raise bad_request("A partner configuration cannot target your own tenant.", code="Request_BadRequest")
    partner = new_partner(tenant_id)
    _apply(partner, {k: v for k, v in payload.items() if k != "tenantId"}, PARTNER_FIELDS)
    partners = {**tenant.policy_partners, tenant_id: partner}
    _check_size(ctx, tenant.policy_default, partners)
    tenant.policy_partners[tenant_id] = partner
    body = {"@odata.context": ctx.context_url("policies/crossTenantAccessPolicy/partners/$entity")}
    body.update(_partner_json(ctx, partner))
    return json_reply(body, 201)


def _require_partner(ctx: Ctx) -> dict[str, Any]:
    partner = ctx.tenant.policy_partners.get(ctx.params["tenant_id"].lower())
    if partner is None:
        raise not_found("crossTenantAccessPolicyConfigurationPartner", ctx.params["tenant_id"])
    return partner


async def get_partner(ctx: Ctx) -> Reply:
    body = {"@odata.context": ctx.context_url("policies/crossTenantAccessPolicy/partners/$entity")}
    body.update(_partner_json(ctx, _require_partner(ctx)))
    return json_reply(body)


async def update_partner(ctx: Ctx) -> Reply:
    tenant = ctx.tenant
    partner = _require_partner(ctx)
    payload = ctx.json_object()
    if "tenantId" in payload and str(payload["tenantId"]).lower() != partner["tenantId"]:
        raise bad_request("tenantId is read-only after creation.", code="Request_BadRequest")
    updated = copy.deepcopy(partner)
    _apply(updated, {k: v for k, v in payload.items() if k != "tenantId"}, PARTNER_FIELDS)
    partners = {**tenant.policy_partners, partner["tenantId"]: updated}
    _check_size(ctx, tenant.policy_default, partners)
    tenant.policy_partners[partner["tenantId"]] = updated
    return no_content()


async def delete_partner(ctx: Ctx) -> Reply:
    tenant = ctx.tenant
    partner = _require_partner(ctx)
    if partner["tenantId"] in tenant.identity_sync:
        # Delete the user synchronization policy before the partner configuration:
        # docs/graph-contract.md#cross-tenant-access.
        raise bad_request(
            "The partner configuration includes an identity synchronization policy; delete "
            "identitySynchronization first.",
            code="Request_BadRequest",
        )
    del tenant.policy_partners[partner["tenantId"]]
    return no_content()


async def put_identity_sync(ctx: Ctx) -> Reply:
    tenant = ctx.tenant
    partner = _require_partner(ctx)
    payload = ctx.json_object()
    inbound = payload.get("userSyncInbound")
    if inbound is not None and (not isinstance(inbound, dict) or not isinstance(inbound.get("isSyncAllowed"), bool)):
        raise bad_request("userSyncInbound must be an object with a boolean isSyncAllowed.", code="Request_BadRequest")
    tenant.identity_sync[partner["tenantId"]] = {
        "tenantId": partner["tenantId"],
        "displayName": payload.get("displayName"),
        "userSyncInbound": inbound,
    }
    return no_content()


async def get_identity_sync(ctx: Ctx) -> Reply:
    partner = _require_partner(ctx)
    sync = ctx.tenant.identity_sync.get(partner["tenantId"])
    if sync is None:
        raise not_found("crossTenantIdentitySyncPolicyPartner", partner["tenantId"])
    return json_reply(
        {
            "@odata.context": ctx.context_url(
                "policies/crossTenantAccessPolicy/partners('{}')/identitySynchronization/$entity".format(
                    partner["tenantId"]
                )
            ),
            **sync,
        }
    )


async def delete_identity_sync(ctx: Ctx) -> Reply:
    partner = _require_partner(ctx)
    if ctx.tenant.identity_sync.pop(partner["tenantId"], None) is None:
        raise not_found("crossTenantIdentitySyncPolicyPartner", partner["tenantId"])
    return no_content()


_FUNCTION = re.compile(
    r"^(?P<name>findtenantinformationby(?:domainname|tenantid))\((?P<arg>\w+)='(?P<value>[^']*)'\)$", re.IGNORECASE
)


async def tenant_relationship(ctx: Ctx) -> Reply:
    call = ctx.params["call"]
    match = _FUNCTION.match(call)
    if match is None:
        raise bad_request(f"Resource not found for the segment '{call}'.", code="BadRequest")
    name, arg, value = match.group("name").lower(), match.group("arg").lower(), match.group("value").lower()
    tenant = ctx.tenant
    if name.endswith("domainname"):
        if arg != "domainname":
            raise bad_request("findTenantInformationByDomainName takes domainName.", code="BadRequest")
        if value in (tenant.domain, *tenant.verified_domains):
            info = (tenant.id, tenant.display_name, tenant.verified_domains[0])
        else:
            external = tenant.external_tenant_for_domain(value)
            if external is None:
                raise not_found("tenantInformation", value)
            info = (external.tenant_id, external.display_name, external.default_domain)
    else:
        if arg != "tenantid" or not _GUID.match(value):
            raise bad_request("findTenantInformationByTenantId takes a tenantId GUID.", code="BadRequest")
        if value == tenant.id:
            info = (tenant.id, tenant.display_name, tenant.verified_domains[0])
        else:
            external = tenant.external_tenants.get(value)
            if external is None:
                raise not_found("tenantInformation", value)
            info = (external.tenant_id, external.display_name, external.default_domain)
    return json_reply(
        {
            "@odata.context": ctx.context_url("microsoft.graph.tenantInformation"),
            "tenantId": info[0],
            "federationBrandName": None,
            "displayName": info[1],
            "defaultDomainName": info[2],
        }
    )


ROUTES = [
    Route("GET", "/policies/crosstenantaccesspolicy", get_policy),
    Route("GET", "/policies/crosstenantaccesspolicy/default", get_default),
    Route("PATCH", "/policies/crosstenantaccesspolicy/default", update_default),
    Route("POST", "/policies/crosstenantaccesspolicy/default/resettosystemdefault", reset_default),
    Route("GET", "/policies/crosstenantaccesspolicy/partners", list_partners),
    Route("POST", "/policies/crosstenantaccesspolicy/partners", create_partner),
    Route("GET", "/policies/crosstenantaccesspolicy/partners/{tenant_id}", get_partner),
    Route("PATCH", "/policies/crosstenantaccesspolicy/partners/{tenant_id}", update_partner),
    Route("DELETE", "/policies/crosstenantaccesspolicy/partners/{tenant_id}", delete_partner),
    Route("PUT", "/policies/crosstenantaccesspolicy/partners/{tenant_id}/identitysynchronization", put_identity_sync),
    Route("GET", "/policies/crosstenantaccesspolicy/partners/{tenant_id}/identitysynchronization", get_identity_sync),
    Route(
        "DELETE", "/policies/crosstenantaccesspolicy/partners/{tenant_id}/identitysynchronization", delete_identity_sync
    ),
    Route("GET", "/tenantrelationships/{call}", tenant_relationship),
]
