"""The Graph side of configuring trust: reading cross-tenant settings, creating and patching a partner
configuration, and their undoes.

Only `/policies/crossTenantAccessPolicy/partners/{tenantId}` is ever written; the default policy is read
(for the size estimate), never changed. Each change is audited just before it is made (`RunAudit.change`)
with the partner's exact configuration before it and the one expected after it; `UNDO` is what the core's
restore (`shared.core.restore`) calls for each change a run made.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import quote

from shared.config import domain_name
from shared.core.apply import Outcome
from shared.core.audit import RunAudit
from shared.core.restore import UndoHandler, Undoing
from shared.errors import InputError, NotFoundError, cap
from shared.graph import Graph
from shared.partners.trust import OWNED, ActionKind, PartnerPlan, as_read, same
from shared.store import AuditEntry

POLICY_PATH: Final = "/policies/crossTenantAccessPolicy"
DEFAULT_PATH: Final = f"{POLICY_PATH}/default"
PARTNERS_PATH: Final = f"{POLICY_PATH}/partners"
CREATED, UPDATED = "partner.create", "partner.update"  # audit entry names of our changes
DELETED, REVERTED = "partner.delete", "partner.revert"  # ... and of their undoes


def partner_path(tenant_id: str) -> str:
    return f"{PARTNERS_PATH}/{quote(tenant_id)}"


async def read_default(graph: Graph) -> dict[str, Any]:
    return as_read(await graph.get_json(DEFAULT_PATH))


async def read_partners(graph: Graph) -> list[dict[str, Any]]:
    """Every partner configuration (all of them: the size estimate needs the whole policy)."""
    return [as_read(item) async for page in graph.pages(PARTNERS_PATH) for item in page.items]


async def read_partner(graph: Graph, tenant_id: str) -> dict[str, Any] | None:
    """The partner's configuration as Graph has it now, or None when there is none."""
    try:
        return as_read(await graph.get_json(partner_path(tenant_id)))
    except NotFoundError:
        return None


async def find_tenant(graph: Graph, *, domain: str | None = None, tenant_id: str | None = None) -> dict[str, Any]:
    """tenantInformation (tenantId, displayName, defaultDomainName) by a domain of the tenant or its id. A domain
    is checked first: a person's `--tenant` value goes into the URL (control characters made it an
    unexpected InvalidURL, exit 70)."""
    if domain is not None:
        try:
            domain = domain_name(domain)
        except ValueError:
            raise InputError(
                f"{cap(repr(domain), 100)} is not a tenant id (a GUID) or a domain name",
                hint="give a domain such as fabrikam.com",
            ) from None
    call = (
        f"findTenantInformationByDomainName(domainName='{domain}')"
        if domain is not None
        else f"findTenantInformationByTenantId(tenantId='{tenant_id}')"
    )
    try:
        return await graph.get_json(f"/tenantRelationships/{call}")
    except NotFoundError:
        raise InputError(
            f"no Microsoft Entra tenant has {'the domain ' + str(domain) if domain else 'the id ' + str(tenant_id)}",
            hint="check partners.tenants in the policy (a domain must be one the partner verified)",
        ) from None


def audit_states(action: PartnerPlan) -> tuple[dict[str, Any], dict[str, Any]]:
    """The audit entry's before (the exact configuration read) and after (the one expected)."""
    return {"configuration": action.before}, {"configuration": action.after(), "properties": sorted(action.body)}


async def create_partner(graph: Graph, audit: RunAudit, action: PartnerPlan, resumed: bool) -> tuple[Outcome, str]:
    before, after = audit_states(action)

    async def send() -> None:
        await graph.request("POST", PARTNERS_PATH, json_body={"tenantId": action.tenant_id, **action.body})

    reason = f"partners plan: direct connect with {action.label}"
    await audit.change(action.tenant_id, CREATED, reason=reason, before=before, after=after, send=send, resumed=resumed)
    return Outcome.DONE, "created: " + ", ".join(change.property for change in action.changes)


async def update_partner(graph: Graph, audit: RunAudit, action: PartnerPlan, resumed: bool) -> tuple[Outcome, str]:
    before, after = audit_states(action)

    async def send() -> None:
        await graph.request("PATCH", partner_path(action.tenant_id), json_body=action.body, idempotent=True)

    reason = f"partners plan: direct connect with {action.label}"
    await audit.change(action.tenant_id, UPDATED, reason=reason, before=before, after=after, send=send, resumed=resumed)
    return Outcome.DONE, "updated: " + ", ".join(change.property for change in action.changes)


EFFECTS: Final = {ActionKind.CREATE: create_partner, ActionKind.UPDATE: update_partner}


async def _undo_create(entry: AuditEntry, undoing: Undoing) -> tuple[Outcome, str]:
    """A partner configuration the run created is deleted, unless someone changed it since."""
    current = await read_partner(undoing.graph, entry.target_id)
    if current is None:
        return Outcome.ALREADY_DONE, "no partner configuration (already deleted)"
    expected = (entry.after or {}).get("configuration") or {}
    if not same(current, expected):
        return Outcome.SKIPPED, "changed since the run created it: left as it is (delete it by hand if wanted)"

    async def send() -> None:
        # retried after a lost answer, it may find the partner gone: the Graph client counts that as done
        await undoing.graph.request("DELETE", partner_path(entry.target_id), idempotent=True)

    await undoing.change(entry, DELETED, send)
    return Outcome.DONE, "partner configuration deleted (the run created it)"


async def _undo_update(entry: AuditEntry, undoing: Undoing) -> tuple[Outcome, str]:
    """The properties the run patched are patched back to their exact values before it."""
    current = await read_partner(undoing.graph, entry.target_id)
    if current is None:
        return Outcome.SKIPPED, "the partner configuration no longer exists: nothing to put back"
    after = entry.after or {}
    properties = [name for name in after.get("properties", []) if name in OWNED]
    before = (entry.before or {}).get("configuration") or {}
    expected = after.get("configuration") or {}
    if all(same(current.get(name), before.get(name)) for name in properties):
        return Outcome.ALREADY_DONE, "already as before the run"
    if not all(same(current.get(name), expected.get(name)) for name in properties):
        return Outcome.SKIPPED, f"{', '.join(properties)} changed since the run: left as they are"
    body = {name: before.get(name) for name in properties}

    async def send() -> None:
        await undoing.graph.request("PATCH", partner_path(entry.target_id), json_body=body, idempotent=True)

    await undoing.change(entry, REVERTED, send)
    return Outcome.DONE, "put back: " + ", ".join(properties)


UNDO: Final[dict[str, UndoHandler]] = {CREATED: _undo_create, UPDATED: _undo_update}
