"""Retire migrated guests' accounts: read the facts, apply a plan through the stale capability's effects.

- `RetireFacts` reads what the rules (retire.py) need, the same way at plan time and just before each
  action: the guest's home tenant (the cached domain lookup of discovery), what the account gives (teams,
  other groups, app roles; directory roles from one tenant-wide lookup), whether the person was seen
  signing in through direct connect (table `partnersignins`, kept by verification; one query per partner),
  the home object ids migration linked each guest to (`migration_links`: its runs' audit entries), and when
  our trust for their tenant was applied (the audit log of `guestctl partners apply`).
- A plan is refused whole when it is old, for another tenant or policy, refused at plan time, or over the
  blast-radius cap counted against Graph's guests now; each action is then derived again (`why_not`).
- Changes are the stale capability's (`GuestEffects`: `guest.disable`, `guest.delete`, audited just before
  they are made), with the stages kept in their own partition (`retire`) of table `staleguests`; the core
  applier keeps one record per action in `partnerretireactions`. `RESTORABLE` gives the core restore the
  stale capability's undoes, so `guestctl partners rollback --run retire-…` re-enables and restores.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable
from datetime import datetime, timedelta
from typing import Any

from shared.clock import Clock, utc_now
from shared.config import Policy
from shared.core.apply import ActionResult as CoreResult
from shared.core.apply import Outcome, Progress, apply_actions
from shared.core.audit import RunAudit
from shared.core.plan_files import check_saved_plan
from shared.core.restore import Restorable, UndoHandler, Undoing, happened
from shared.errors import GraphError, NotFoundError, RefusedError
from shared.graph import Graph
from shared.partners.fetch import guest_usage, team_ids
from shared.partners.migrate_apply import ADDED as MEMBER_ADDED
from shared.partners.records import Usage
from shared.partners.retire import (
    Candidate,
    RetirePlan,
    SignedIn,
    TenantSignIns,
    direct_evidence,
    home_address,
    why_not,
)
from shared.partners.rules import CONSUMER_DOMAINS
from shared.partners.verify import PERSON_ROW, SIGN_INS_TABLE
from shared.stale.effects import GUESTS_TABLE, UNDO, GuestEffects, forget_guest, lifecycle_of
from shared.stale.fetch import GUEST_SELECT_WITHOUT_SIGN_IN, count_guests
from shared.stale.plan import Action, ActionKind, Exemptions, GuestStage, cap_refusal
from shared.stale.records import Guest, UnreadableUserError, decode_guest
from shared.store import AuditEntry, Store
from shared.store.registry import PARTNER_MIGRATE_ACTIONS, PARTNER_RETIRE_ACTIONS

ACTIONS_TABLE = PARTNER_RETIRE_ACTIONS
RETIRE_PARTITION = "retire"  # table staleguests: retirement's stages, apart from the sweep's
ACTIONS_IN_FLIGHT = 8
TRUST_CHANGES = ("partner.create", "partner.update", "partner.delete", "partner.revert")

ActionResult = CoreResult[Action]


def run_id_for(plan: RetirePlan) -> str:
    return run_id_of(plan.plan_id())


def run_id_of(plan_id: str) -> str:
    return "retire-" + plan_id


async def signed_in(store: Store, home: str) -> TenantSignIns:
    """Everyone of a partner tenant `verify` kept as seen signing in through direct connect (one query)."""
    rows = [r.data async for r in store.query(SIGN_INS_TABLE, home.lower(), row_prefix=PERSON_ROW)]
    return TenantSignIns(SignedIn(str(r["upn"]), r.get("user_id"), str(r["last_direct"])) for r in rows)


async def migration_links(store: Store) -> dict[str, set[tuple[str, str]]]:
    """Guest id → (home tenant id, home object id) that migration linked it to, from its audit entries.

    Each membership `guestctl partners migrate` planned for a guest is audited (`channel.member.add`) with
    the guest id, home tenant and home object id its id file gave; a refused add is audited too (followed
    by `.failed`), and its link holds all the same. One query finds the runs (the partitions of
    `partnermigrateactions`), then one audit read per run, from its first record on.
    """
    links: dict[str, set[tuple[str, str]]] = {}
    async for member in migrated_members(store):
        if member.get("guest_id") and member.get("home_id"):
            home = (str(member.get("tenant_id") or "").lower(), str(member["home_id"]).lower())
            links.setdefault(str(member["guest_id"]).lower(), set()).add(home)
    return links


async def migrated_members(store: Store) -> AsyncIterator[dict[str, Any]]:
    """Each shared channel membership migration planned (`channel.member.add`'s `member`), refused or not."""
    runs: dict[str, str] = {}
    async for record in store.query(PARTNER_MIGRATE_ACTIONS):
        started = str(record.data.get("started_at") or "")
        runs[record.partition] = min(runs.get(record.partition, started), started)
    for run_id, started in runs.items():
        since = datetime.fromisoformat(started) - timedelta(days=1) if started else None  # clocks of hosts differ
        async for entry in store.read_audit(run_id=run_id, since=since):
            if entry.action == MEMBER_ADDED and (member := (entry.after or {}).get("member")):
                yield member


async def trusted_since(store: Store, tenant_id: str) -> datetime | None:
    """When our trust for a partner was (last) applied and not rolled back since, from the audit log."""
    since = None
    entries = [
        e async for e in store.read_audit(target_id=tenant_id) if e.action.removesuffix(".failed") in TRUST_CHANGES
    ]
    for entry in happened(entries):
        if entry.action in ("partner.delete", "partner.revert"):
            since = None
        elif since is None:
            since = entry.at
    return since


class RetireFacts:
    """What the retirement rules are given about guests of the named partners (tenant id → label)."""

    def __init__(self, graph: Graph, store: Store, named: dict[str, str], now: datetime) -> None:
        self.graph, self.store, self.named, self.now = graph, store, named, now
        self.teams: set[str] = set()
        self.seen: dict[str, TenantSignIns] = {}
        self.links: dict[str, set[tuple[str, str]]] = {}
        self.trusted: dict[str, datetime | None] = {}

    async def prepare(self) -> None:
        self.teams = await team_ids(self.graph)
        for tenant_id in self.named:
            self.seen[tenant_id] = await signed_in(self.store, tenant_id)
            self.trusted[tenant_id] = await trusted_since(self.store, tenant_id)
        self.links = await migration_links(self.store)

    async def homes(self, guests: Iterable[Guest]) -> dict[str, str]:
        """Guest id → named partner tenant id, for the guests of named partners (domains looked up, cached)."""
        from shared.partners.service import lookup_tenants

        domains = {g.id: g.domain for g in guests if g.domain and g.domain not in CONSUMER_DOMAINS}
        tenants, _ = await lookup_tenants(self.graph, self.store, sorted(set(domains.values())), self.now)
        found = {}
        for user_id, domain in domains.items():
            tenant = tenants.get(domain)
            if tenant is not None and tenant.tenant_id.lower() in self.named:
                found[user_id] = tenant.tenant_id.lower()
        return found

    async def candidates(self, guests: list[Guest], role_holders: frozenset[str]) -> list[Candidate]:
        homes = await self.homes(guests)
        wanted = [g for g in guests if g.id in homes]
        readable = [g.id for g in wanted if g.id.lower() not in role_holders]
        usage = await guest_usage(self.graph, readable, self.teams) if readable else {}
        return [self._candidate(g, homes[g.id], usage.get(g.id, Usage(role_holder=True))) for g in wanted]

    def _candidate(self, guest: Guest, tenant_id: str, usage: Usage) -> Candidate:
        links = self.links.get(guest.id.lower(), set())
        evidence = direct_evidence(tenant_id, links, home_address(guest), self.seen)
        return Candidate(guest, tenant_id, self.named[tenant_id], usage, evidence, self.trusted.get(tenant_id))


async def check_applicable(
    plan: RetirePlan, graph: Graph, policy: Policy, *, tenant_id: str | None, now: datetime
) -> None:
    """Whether a plan may be applied now, as a whole; raises the RefusedError that says why not."""
    if plan.created_at > now + timedelta(minutes=5):
        raise RefusedError("the plan is dated in the future", hint="make a new plan; nothing was changed")
    check_saved_plan(plan, policy, tenant_id=tenant_id, now=now)
    if plan.refused:
        raise RefusedError(f"the plan was refused: {plan.refused}", hint="nothing was changed")
    if destructive := plan.destructive():
        counted = await count_guests(graph)
        deletes = sum(1 for a in plan.actions if a.kind is ActionKind.DELETE)
        guests = plan.guests if counted is None else min(plan.guests, counted + deletes)
        if over := cap_refusal(policy, destructive=destructive, guests=guests):
            raise RefusedError(f"the plan is over the blast-radius cap: {over}", hint="nothing was changed")


async def apply_retirement(
    plan: RetirePlan,
    graph: Graph,
    store: Store,
    policy: Policy,
    named: dict[str, str],
    exemptions: Exemptions,
    *,
    actor: str,
    tenant_id: str | None,
    clock: Clock = utc_now,
) -> list[ActionResult]:
    """Carry out a retirement plan's actions, each only if the rules give it now."""
    await check_applicable(plan, graph, policy, tenant_id=tenant_id, now=clock())
    facts = RetireFacts(graph, store, named, clock())
    await facts.prepare()
    retirer = _Retirer(plan, graph, store, policy, facts, exemptions, actor, clock)
    return await apply_actions(
        plan.actions,
        retirer.carry_out,
        store=store,
        table=ACTIONS_TABLE,
        run_id=retirer.run_id,
        clock=clock,
        failures=(GraphError, UnreadableUserError),
        limit=ACTIONS_IN_FLIGHT,
    )


class _Retirer:
    def __init__(
        self,
        plan: RetirePlan,
        graph: Graph,
        store: Store,
        policy: Policy,
        facts: RetireFacts,
        exemptions: Exemptions,
        actor: str,
        clock: Clock,
    ) -> None:
        self.graph, self.store, self.policy, self.facts, self.exemptions, self.clock = (
            graph, store, policy, facts, exemptions, clock
        )  # fmt: skip
        self.run_id = run_id_for(plan)
        self.audit = RunAudit(store, self.run_id, actor, plan.digest(), clock)
        self.effects = GuestEffects(graph, store, self.audit, clock, self.run_id, partition=RETIRE_PARTITION)

    async def carry_out(self, action: Action, progress: Progress) -> tuple[Outcome, str]:
        """Read the guest and every fact again, derive the action again, then do it."""
        user_id = action.target_id
        current = await self._read_guest(user_id)
        if current is None:
            if action.kind is ActionKind.DELETE and progress.resumed and await self.audit.has(user_id, "guest.delete"):
                await self.effects.set_stage(user_id, GuestStage.DELETED, deleted_at=self.clock().isoformat())
                return Outcome.DONE, "found deleted by the interrupted run"
            return Outcome.SKIPPED, "the user no longer exists"
        record = await self.store.get(GUESTS_TABLE, RETIRE_PARTITION, user_id)
        if progress.resumed and (done := await self._finished_before(action, current, record)):
            return Outcome.DONE, done
        stage = lifecycle_of(record.data) if record is not None else None
        found = await self.facts.candidates([current], self.exemptions.role_holders)
        if not found:
            return Outcome.SKIPPED, "re-checked just before acting: not a guest of a partner the policy names"
        if reason := why_not(action.kind, found[0], stage, self.policy, self.clock(), self.exemptions):
            return Outcome.SKIPPED, reason
        return await self.effects.by_kind[action.kind](action, current, progress.resumed)

    async def _finished_before(self, action: Action, current: Guest, record: object) -> str | None:
        data = getattr(record, "data", None) or {}
        if action.kind is ActionKind.FLAG and data.get("run_id") == self.run_id and data.get("stage") == "flagged":
            return "flagged by the interrupted run"
        disabled = action.kind is ActionKind.DISABLE and current.enabled is False
        if disabled and await self.audit.has(action.target_id, "guest.disable"):
            await self.effects.set_stage(action.target_id, GuestStage.DISABLED, disabled_at=self.clock().isoformat())
            return "disabled by the interrupted run"
        return None

    async def _read_guest(self, user_id: str) -> Guest | None:
        try:
            response = await self.graph.request(
                "GET", f"/users/{user_id}", params={"$select": GUEST_SELECT_WITHOUT_SIGN_IN}
            )
        except NotFoundError:
            return None
        return decode_guest(response.content)


def _forgetting(name: str) -> UndoHandler:
    """The stale capability's undo of `name`, then the retirement's stage record dropped too."""
    stale_undo = UNDO[name]

    async def undo(entry: AuditEntry, undoing: Undoing) -> tuple[Outcome, str]:
        outcome, detail = await stale_undo(entry, undoing)
        if outcome in (Outcome.DONE, Outcome.ALREADY_DONE):
            await forget_guest(undoing.store, entry.target_id, RETIRE_PARTITION)
        return outcome, detail

    return undo


RESTORABLE = Restorable(
    noun="retirement",
    run_id=re.compile(r"retire-[0-9a-f]{16}"),
    example="retire-0123456789abcdef (partners retire --apply prints it)",
    printed_by="`guestctl partners retire --apply`",
    actions_table=ACTIONS_TABLE,
    undo={name: _forgetting(name) for name in UNDO},
)
