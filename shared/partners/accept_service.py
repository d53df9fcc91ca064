"""What `guestctl partners accept` calls, in the PARTNER's tenant: plan (and apply) their outbound setting for
the resource tenant, and export the home ids of the users in scope.

Planning reads only. Applying goes through the core applier (table `partnertrustactions`, run id
`partners-…`) with trust's effects, so the change is audited once and `guestctl partners rollback --run`
in their tenant puts their configuration back exactly, like any trust run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from shared.clock import Clock, utc_now
from shared.config import DirectConnectScope, Settings
from shared.core.apply import ActionResult, Outcome, Progress, apply_actions
from shared.core.audit import RunAudit
from shared.errors import ConfigError, InputError, NotFoundError
from shared.graph import Graph, graph_options
from shared.graph.odata import is_object_id
from shared.partners.accept import HomeUser, IdsFile, accept_run_id, home_user, plan_outbound
from shared.partners.trust import ActionKind, PartnerPlan, same
from shared.partners.trust_effects import EFFECTS, read_partner
from shared.store import Store, open_state
from shared.store.registry import PARTNER_TRUST_ACTIONS

USER_SELECT: Final = "id,mail,userPrincipalName,otherMails,userType,accountEnabled"
DONE: Final = (Outcome.DONE, Outcome.ALREADY_DONE)
MEMBERS_FILTER: Final = "userType eq 'Member'"  # their own people: never their guests


async def users_in_scope(graph: Graph, scope: DirectConnectScope) -> list[HomeUser]:
    """Every enabled member user of the tenant (`users: all`), or of the named groups (transitively), once each."""
    found: dict[str, HomeUser] = {}
    if scope.users == "all":
        sources = [("/users", {"$filter": MEMBERS_FILTER, "$select": USER_SELECT, "$top": 999})]
    else:
        sources = [
            (f"/groups/{group}/transitiveMembers", {"$select": USER_SELECT, "$top": 999}) for group in scope.groups
        ]
    for path, params in sources:
        try:
            async for page in graph.pages(path, params=params):
                for item in page.items:
                    if (user := home_user(item)) is not None:
                        found.setdefault(user.id, user)
        except NotFoundError:
            raise InputError(
                f"group {path.split('/')[2]} does not exist in this tenant", hint="nothing was changed"
            ) from None
    return sorted(found.values(), key=lambda user: user.id)


@dataclass(frozen=True, slots=True)
class Accepted:
    """The plan of the outbound change (kind None: already as wanted), the ids file, and the run if applied."""

    plan: PartnerPlan
    run_id: str
    ids: IdsFile
    results: list[ActionResult[PartnerPlan]] | None  # None: planned only

    def to_json(self) -> dict[str, Any]:
        applied = None
        if self.results is not None:
            applied = [{"outcome": r.outcome.value, "detail": r.detail} for r in self.results]
        return {
            "run_id": self.run_id,
            "resource_tenant": self.plan.tenant_id,
            "action": self.plan.kind.value if self.plan.kind else "none",
            "changes": [change.to_json() for change in self.plan.changes],
            "applied": applied,
            "users": len(self.ids.users),
        }

    def failed(self) -> bool:
        return any(r.outcome is Outcome.FAILED for r in self.results or [])


async def accept_with(
    graph: Graph,
    store: Store,
    *,
    own_tenant: str,
    resource_tenant: str,
    scope: DirectConnectScope,
    apply: bool,
    actor: str = "guestctl partners accept",
    clock: Clock = utc_now,
) -> Accepted:
    """Plan the outbound setting for `resource_tenant`, apply it when asked, and collect the users in scope."""
    resource = _check_tenants(own_tenant, resource_tenant)
    plan = plan_outbound(resource, resource, await read_partner(graph, resource), scope)
    users = await users_in_scope(graph, scope)
    run_id = accept_run_id(plan)
    results = None
    if apply:
        results = await _apply(graph, store, plan, run_id, actor, clock) if plan.kind is not None else []
    # The file says whether their outbound setting is in place: already as wanted, or applied just now.
    applied = plan.kind is None or (bool(results) and all(r.outcome in DONE for r in results or []))
    shown_scope: dict[str, Any] = {"users": "all"} if scope.users == "all" else {"groups": list(scope.groups)}
    ids = IdsFile(own_tenant.lower(), resource, clock(), shown_scope, applied, tuple(users))
    return Accepted(plan, run_id, ids, results)


def _check_tenants(own_tenant: str, resource_tenant: str) -> str:
    resource = resource_tenant.strip().lower()
    if not is_object_id(resource):
        raise InputError(
            f"--resource-tenant {resource_tenant[:80]!r} is not a tenant id", hint="give the GUID they sent you"
        )
    if resource == own_tenant.lower():
        raise InputError(
            "--resource-tenant is this tenant itself", hint="give the tenant id of the organisation inviting you"
        )
    return resource


async def _apply(
    graph: Graph, store: Store, plan: PartnerPlan, run_id: str, actor: str, clock: Clock
) -> list[ActionResult[PartnerPlan]]:
    audit = RunAudit(store, run_id, actor, None, clock)

    async def carry_out(action: PartnerPlan, progress: Progress) -> tuple[Outcome, str]:
        current = await read_partner(graph, action.tenant_id)
        if same(current, action.after()):
            return Outcome.ALREADY_DONE, "already as planned"
        if not same(current, action.before):
            return Outcome.SKIPPED, "the configuration changed since it was read: run accept again"
        assert action.kind is not None
        return await EFFECTS[ActionKind(action.kind)](graph, audit, action, progress.resumed)

    return await apply_actions(
        [plan], carry_out, store=store, table=PARTNER_TRUST_ACTIONS, run_id=run_id, clock=clock, limit=1
    )


async def accept_partner(
    settings: Settings, resource_tenant: str, scope: DirectConnectScope, *, apply: bool
) -> Accepted:
    """`accept_with` for the CLI: this tenant's id from GUESTCTL_TENANT_ID (the id file carries it)."""
    if not settings.tenant_id:
        raise ConfigError(
            "GUESTCTL_TENANT_ID is not set: the id file must say which tenant its users are from",
            hint="set GUESTCTL_TENANT_ID (or --tenant-id) to your tenant's id",
        )
    graph = Graph(graph_options(settings))
    try:
        async with open_state(settings) as store:
            return await accept_with(
                graph, store, own_tenant=settings.tenant_id, resource_tenant=resource_tenant, scope=scope, apply=apply
            )
    finally:
        await graph.close()
