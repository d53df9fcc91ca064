"""What the CLI calls to configure trust: plan, apply, rollback, the partner's instructions; typed results.

Planning reads Graph only. Applying re-reads everything it acts on (`trust_apply`); rolling back is the
core's restore of the run's audit entries (`trust_effects.UNDO`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.clock import Clock, utc_now
from shared.config import PartnerTrust, Policy, Settings, load_policy
from shared.core.apply import ActionResult, Outcome, outcome_counts
from shared.core.plan_files import read_signed_plan, signed_plan_json
from shared.core.restore import Restored, restore
from shared.errors import ConfigError, InputError, PolicyError, RefusedError
from shared.graph import Graph, graph_options
from shared.graph.odata import is_object_id
from shared.partners.trust import PartnerPlan, Plan, make_plan
from shared.partners.trust_apply import RESTORABLE, apply_plan, check_trust_plan, run_id_for
from shared.partners.trust_effects import find_tenant, read_default, read_partners
from shared.partners.trust_instructions import Parties, instruction_blocks, to_html, to_markdown
from shared.store import Store, open_state

Named = list[tuple[str, str, PartnerTrust]]  # (tenant id, label, the policy's entry)


async def resolve_named(graph: Graph, policy: Policy, *, our_tenant: str | None) -> Named:
    """Each partner the policy names, by tenant id (a domain is looked up); one tenant named twice is an error."""
    named: Named = []
    seen: dict[str, str] = {}
    for entry in policy.partners.tenants:
        tenant_id = entry.tenant
        if not is_object_id(tenant_id):
            tenant_id = str((await find_tenant(graph, domain=entry.tenant))["tenantId"]).lower()
        label = entry.name or entry.tenant
        if tenant_id in seen:
            raise PolicyError(
                f"partners.tenants: {seen[tenant_id]} and {entry.tenant} are the same tenant ({tenant_id})",
                hint="name each partner tenant once",
            )
        if our_tenant is not None and tenant_id == our_tenant.lower():
            raise PolicyError(f"partners.tenants: {entry.tenant} is our own tenant", hint="name partner tenants only")
        seen[tenant_id] = entry.tenant
        named.append((tenant_id, label, entry))
    return named


async def plan_trust(graph: Graph, policy: Policy, *, tenant_id: str | None, clock: Clock = utc_now) -> Plan:
    """The plan: every named partner's diff and the policy's size before and after. Reads Graph only."""
    plan, _ = await _plan_named(graph, policy, tenant_id=tenant_id, clock=clock)
    return plan


async def _plan_named(graph: Graph, policy: Policy, *, tenant_id: str | None, clock: Clock) -> tuple[Plan, Named]:
    named = await resolve_named(graph, policy, our_tenant=tenant_id)
    default = await read_default(graph)
    partners = await read_partners(graph)
    notes = []
    if not named:
        notes.append("the policy names no partners (partners.tenants): nothing to configure")
    plan = make_plan(
        now=clock(),
        tenant_id=tenant_id,
        policy_digest=policy.digest(),
        default=default,
        partners_now=partners,
        named=named,
        notes=notes,
    )
    return plan, named


async def plan_file_json(store: Store, plan: Plan) -> dict[str, Any]:
    """A plan as guestctl writes it to a file: its JSON, its digest and a signature by the store's key."""
    return await signed_plan_json(store, plan)


async def read_plan_file(store: Store, text: str, *, name: str) -> Plan:
    """A partners plan from a file guestctl wrote with this store; an edited one is refused whole (exit 3)."""
    return await read_signed_plan(store, text, Plan.from_json, name=name, made_by="guestctl partners plan --out FILE")


@dataclass(frozen=True, slots=True)
class TrustRun:
    run_id: str
    results: list[ActionResult[PartnerPlan]]

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "outcomes": outcome_counts(self.results),
            "partners": [
                {
                    "tenant_id": r.action.tenant_id,
                    "label": r.action.label,
                    "action": r.action.kind.value if r.action.kind else "none",
                    "outcome": r.outcome.value,
                    "detail": r.detail,
                }
                for r in self.results
            ],
        }

    def failed(self) -> bool:
        return any(r.outcome is Outcome.FAILED for r in self.results)


async def apply_trust(
    plan: Plan,
    graph: Graph,
    store: Store,
    policy: Policy,
    *,
    tenant_id: str | None,
    actor: str,
    clock: Clock = utc_now,
    on_done: Callable[[ActionResult[PartnerPlan]], None] | None = None,
) -> TrustRun:
    """Apply a plan: checked whole (refused, age, tenant, policy, the size with Graph's data now), then each
    partner re-read and changed only if it is still as planned."""
    check_trust_plan(plan, policy, tenant_id=tenant_id, now=clock())
    fresh, named = await _plan_named(graph, policy, tenant_id=tenant_id, clock=clock)
    if fresh.refused:
        raise RefusedError(f"the policy as Graph holds it now: {fresh.refused}", hint="nothing was changed")
    entries = {tenant: entry for tenant, _, entry in named}
    results = await apply_plan(plan, graph, store, entries, actor=actor, clock=clock, on_done=on_done)
    return TrustRun(run_id_for(plan), results)


async def rollback_trust(graph: Graph, store: Store, run_id: str, *, actor: str) -> list[Restored]:
    """Put back what a partners run changed: created configurations deleted, patched ones patched back;
    memberships a migration run added removed; or, for a retirement run, the guest accounts it disabled
    re-enabled and those it deleted restored."""
    from shared.partners.migrate_apply import RESTORABLE as MIGRATION
    from shared.partners.retire_apply import RESTORABLE as RETIREMENT

    kinds = (RESTORABLE, MIGRATION, RETIREMENT)
    if not any(kind.run_id.fullmatch(run_id) for kind in kinds):
        raise InputError(
            f"{run_id[:80]!r} is not a partners run id",
            hint=f"run ids look like {', '.join(kind.example for kind in kinds)}",
        )
    return await restore(graph, store, actor=actor, run_id=run_id)


def plan_tenant(settings: Settings) -> str | None:
    """Our tenant id, which plans carry; required outside the emulator."""
    if settings.tenant_id:
        return settings.tenant_id.lower()
    if settings.auth == "emulator":
        return None
    raise ConfigError(
        "GUESTCTL_TENANT_ID is not set: partners plans name the tenant they are for",
        hint="set GUESTCTL_TENANT_ID (or --tenant-id) to your tenant's id",
    )


# -- what the CLI calls: Settings in, typed results out ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Planned:
    plan: Plan
    run_id: str
    file: dict[str, Any]  # the signed plan as a file holds it


async def plan_partners(settings: Settings, *, clock: Clock = utc_now) -> Planned:
    policy = load_policy(settings.policy)
    tenant_id = plan_tenant(settings)
    graph = Graph(graph_options(settings))
    try:
        plan = await plan_trust(graph, policy, tenant_id=tenant_id, clock=clock)
        async with open_state(settings) as store:
            return Planned(plan, run_id_for(plan), await plan_file_json(store, plan))
    finally:
        await graph.close()


async def apply_partners(
    settings: Settings,
    text: str,
    *,
    name: str,
    on_done: Callable[[ActionResult[PartnerPlan]], None] | None = None,
) -> TrustRun:
    policy = load_policy(settings.policy)
    tenant_id = plan_tenant(settings)
    graph = Graph(graph_options(settings))
    try:
        async with open_state(settings) as store:
            plan = await read_plan_file(store, text, name=name)
            return await apply_trust(
                plan, graph, store, policy, tenant_id=tenant_id, actor="guestctl partners apply", on_done=on_done
            )
    finally:
        await graph.close()


async def rollback_partners(settings: Settings, run_id: str) -> list[Restored]:
    graph = Graph(graph_options(settings))
    try:
        async with open_state(settings) as store:
            return await rollback_trust(graph, store, run_id, actor="guestctl partners rollback")
    finally:
        await graph.close()


@dataclass(frozen=True, slots=True)
class PartnerInstructions:
    parties: Parties
    markdown: str
    html: str


async def partner_instructions(settings: Settings, tenant: str) -> PartnerInstructions:
    """The document for the admin of `tenant` (an id or domain the policy names): what to set, why, checks."""
    policy = load_policy(settings.policy)
    if not settings.tenant_id:
        raise ConfigError(
            "GUESTCTL_TENANT_ID is not set: the partner's admin needs our tenant id",
            hint="set GUESTCTL_TENANT_ID (or --tenant-id) to your tenant's id",
        )
    our_id = settings.tenant_id.lower()
    wanted = tenant.strip().lower()
    graph = Graph(graph_options(settings))
    try:
        named = await resolve_named(graph, policy, our_tenant=our_id)
        found = [(tid, label, entry) for tid, label, entry in named if wanted in (tid, entry.tenant)]
        if not found and not is_object_id(wanted) and "." in wanted:  # another domain of a named tenant
            resolved = str((await find_tenant(graph, domain=wanted))["tenantId"]).lower()
            found = [(tid, label, entry) for tid, label, entry in named if tid == resolved]
        if not found:
            raise InputError(
                f"{tenant[:80]!r} is not a partner the policy names (partners.tenants)",
                hint="give a tenant id or domain listed in partners.tenants",
            )
        (partner_id, label, entry), *_ = found
        ours = await find_tenant(graph, tenant_id=our_id)
    finally:
        await graph.close()
    parties = Parties(our_id, str(ours.get("displayName") or our_id), partner_id, label)
    blocks = instruction_blocks(parties, entry)
    return PartnerInstructions(parties, to_markdown(blocks), to_html(blocks))
