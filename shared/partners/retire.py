"""Pure: when a migrated person's guest account is retired, through the stale capability's stages.

Someone asking "why was this guest account disabled?" reads this file. A guest account is retired only if
1. it is a guest of a partner the policy names (`partners.tenants`), by its home tenant;
2. it is **Teams-only** (discovery's rule, `rules.use_of`): in at least one team and in no other group, no
   app role assignment, no directory role — direct connect reaches shared channels and nothing else, so
   an account that grants anything more is kept;
3. the person has **moved**: their home identity was seen signing in through direct connect (`direct_evidence`:
   by the home object id migration linked the guest to, else by mail / UPN; only sign-ins from the guest's
   own home tenant count), or `partners.retire_after_days` have passed since our trust for their tenant was
   applied (0: only the sign-in counts);
4. no exemption of the policy protects it (the stale capability's `Exemptions`).
Then the stale capability's stages apply: flag → disable after `stale.disable_after_days` → delete after
`stale.delete_after_days`, capped by `safety.max_actions` / `max_percent` (over the cap: nothing), audited
and restorable. The same rule (`retire_step`) makes the plan and re-checks each action just before it is
carried out (`why_not`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

import msgspec

from shared.config import Policy
from shared.core.plan_files import EditedPlanError
from shared.partners.records import Usage
from shared.partners.rules import Use, use_of
from shared.stale.plan import (
    DESTRUCTIVE,
    REQUIRED_STAGE,
    Action,
    ActionKind,
    Exemptions,
    GuestStage,
    Lifecycle,
    Step,
    cap_refusal,
)
from shared.stale.records import Guest
from shared.stale.rules import day

RETIRE_KINDS = frozenset({ActionKind.FLAG, ActionKind.DISABLE, ActionKind.DELETE})


@dataclass(frozen=True, slots=True)
class SignedIn:
    """One person of a partner tenant seen signing in through direct connect (`verify` keeps them)."""

    upn: str  # the userPrincipalName the log gave, lower case
    user_id: str | None  # their home object id (the log's userId), lower case
    last_direct: str  # the last day, YYYY-MM-DD


class TenantSignIns:
    """Everyone of one partner tenant seen signing in through direct connect, by home id and by address."""

    def __init__(self, people: Iterable[SignedIn]) -> None:
        self.by_id: dict[str, SignedIn] = {}
        self.by_upn: dict[str, SignedIn] = {}
        for person in people:
            _keep_latest(self.by_upn, person.upn.lower(), person)
            if person.user_id:  # a renamed person has a row per UPN, each with the same home id
                _keep_latest(self.by_id, person.user_id.lower(), person)


def _keep_latest(index: dict[str, SignedIn], key: str, person: SignedIn) -> None:
    if key not in index or index[key].last_direct < person.last_direct:
        index[key] = person


@dataclass(frozen=True, slots=True)
class Evidence:
    """Why we believe the person signs in through direct connect: the last day, and what matched."""

    day: str
    by: str  # HOME_ID or ADDRESS
    who: str  # the home object id, or the address

    def __str__(self) -> str:
        return f"direct connect sign-in on {self.day} by {self.by} {self.who}"


HOME_ID = "home id"
ADDRESS = "address"


def home_address(guest: Guest) -> set[str]:
    """The addresses the person may sign in with at home: mail, and the one inside a B2B UPN."""
    found = {guest.mail.lower()} if guest.mail else set()
    local = (guest.user_principal_name or "").partition("#EXT#")[0]
    if local != (guest.user_principal_name or "") and "_" in local:
        name, _, domain = local.rpartition("_")
        found.add(f"{name}@{domain}".lower())
    return found


def direct_evidence(
    tenant_id: str, links: Iterable[tuple[str, str]], addresses: Iterable[str], seen: Mapping[str, TenantSignIns]
) -> Evidence | None:
    """The strongest evidence that this guest's person signs in through direct connect, or None.

    1. By home id: migration linked the guest account to home object ids (`links`: (tenant id, home id));
       a sign-in by one of them from that tenant counts whatever UPN it carries (people are renamed, a
       guest's mail may be an alias).
    2. By address: a sign-in whose UPN is one of the guest's `addresses` — unless that sign-in's home id is
       known and is not one migration linked: the address now belongs to someone else.
    Only sign-ins from the guest's own home tenant (`tenant_id`) count, and only links of that tenant.
    """
    tenant = tenant_id.lower()
    people = seen.get(tenant)
    if people is None:
        return None
    linked = {home.lower() for linked_tenant, home in links if linked_tenant.lower() == tenant}
    by_id = [people.by_id[home] for home in linked if home in people.by_id]
    if by_id:
        latest = max(by_id, key=lambda p: (p.last_direct, p.user_id or ""))
        return Evidence(latest.last_direct, HOME_ID, latest.user_id or "")
    by_address = [
        person
        for address in addresses
        if (person := people.by_upn.get(address.lower())) is not None and not (linked and person.user_id)
    ]
    if by_address:
        latest = max(by_address, key=lambda p: (p.last_direct, p.upn))
        return Evidence(latest.last_direct, ADDRESS, latest.upn)
    return None


@dataclass(frozen=True, slots=True)
class Candidate:
    """What retirement knows about one guest of a named partner, read from Graph and the store."""

    guest: Guest
    tenant_id: str  # the partner's home tenant
    label: str
    usage: Usage
    seen_direct: Evidence | None  # their home identity's last direct connect sign-in, and what matched
    trusted_since: datetime | None  # when our trust for their tenant was applied (audit log), if it was


def moved(candidate: Candidate, policy: Policy, now: datetime) -> str | None:
    """Why the person counts as moved to direct connect, or None."""
    if candidate.seen_direct is not None:
        return str(candidate.seen_direct)
    grace = policy.partners.retire_after_days
    since = candidate.trusted_since
    if grace and since is not None and now >= since + timedelta(days=grace):
        return f"direct connect trust applied {day(since)}, over partners.retire_after_days ({grace})"
    return None


def keeps_account(candidate: Candidate, exemptions: Exemptions, now: datetime) -> str | None:
    """Why the guest account must stay whatever the person does, or None."""
    guest = candidate.guest
    if guest.user_type != "Guest":
        return f"not a guest (userType {guest.user_type}): guestctl acts on guests only"
    if candidate.usage.role_holder or guest.id.lower() in exemptions.role_holders:
        return "holds a directory role"
    use = use_of(candidate.usage)
    if use is not Use.TEAMS_ONLY:
        return f"the guest account gives more than Teams: {use.value}" if use is not Use.NOTHING else "in no team"
    return exemptions.reason(guest, now.date())


def retire_step(
    candidate: Candidate, stage: Lifecycle | None, policy: Policy, now: datetime, exemptions: Exemptions
) -> Step | None:
    """The stage this guest account is due now, with its reason, or None."""
    if keeps_account(candidate, exemptions, now) is not None:
        return None
    why = moved(candidate, policy, now)
    if why is None:
        return None
    reason = f"{candidate.label}: moved to direct connect ({why}); the guest account is Teams-only"
    if stage is None:
        return Step(ActionKind.FLAG, reason) if candidate.guest.enabled is not False else None
    if stage.stage is GuestStage.FLAGGED and now >= stage.flagged_at + timedelta(days=policy.stale.disable_after_days):
        return Step(ActionKind.DISABLE, f"flagged on {day(stage.flagged_at)}; {reason}")
    disabled = stage.disabled_at
    if (
        stage.stage is GuestStage.DISABLED
        and disabled
        and now >= disabled + timedelta(days=policy.stale.delete_after_days)
    ):
        return Step(ActionKind.DELETE, f"disabled on {day(disabled)}; {reason}")
    return None


def why_not(
    kind: ActionKind,
    candidate: Candidate,
    stage: Lifecycle | None,
    policy: Policy,
    now: datetime,
    exemptions: Exemptions,
) -> str | None:
    """Why the rules would not give `kind` for this guest now (None: they would): a saved plan is a request."""
    have = stage.stage if stage is not None else None
    if have is not REQUIRED_STAGE[kind]:
        return f"guestctl's retirement record shows {have.value if have else 'nothing'}: no {kind.value} now"
    if kept := keeps_account(candidate, exemptions, now):
        return f"re-checked just before acting: {kept}"
    step = retire_step(candidate, stage, policy, now, exemptions)
    if step is not None and step.kind is kind:
        return None
    if moved(candidate, policy, now) is None:
        return "re-checked just before acting: not seen signing in through direct connect, and no grace has passed"
    return f"re-checked just before acting: {kind.value} is not due yet"


class RetirePlan(msgspec.Struct, frozen=True, dict=True):
    """Which guest accounts of which partners move to their next stage; signed and checked like the sweep's."""

    tenant_id: str | None
    policy_digest: str
    created_at: datetime
    guests: int  # every guest of the tenant: the base of safety.max_percent
    candidates: int  # guests of named partners looked at
    kept: dict[str, int]  # why guests of named partners keep their account, counted
    actions: tuple[Action, ...]
    refused: str | None
    notes: tuple[str, ...] = ()

    def destructive(self) -> int:
        return sum(1 for a in self.actions if a.kind in DESTRUCTIVE)

    def digest(self) -> str:
        return self._digest

    @cached_property
    def _digest(self) -> str:
        return "sha256:" + hashlib.sha256(msgspec.json.encode(self, order="sorted")).hexdigest()

    def plan_id(self) -> str:
        return self.digest().removeprefix("sha256:")[:16]

    def to_json(self) -> dict[str, Any]:
        body = msgspec.to_builtins(self)
        body["digest"] = self.digest()
        return body

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> RetirePlan:
        """A saved plan; refuses one whose content no longer matches its digest, or with other kinds."""
        if not isinstance(body, dict):
            raise ValueError(f"expected a JSON object, got {type(body).__name__}")
        plan = msgspec.convert({k: v for k, v in body.items() if k not in ("digest", "signature")}, cls)
        if plan.digest() != body.get("digest"):
            raise EditedPlanError("the plan's content does not match its digest: it was changed after it was made")
        if any(action.kind not in RETIRE_KINDS for action in plan.actions):
            raise ValueError("a retirement plan flags, disables and deletes only")
        return plan


def make_plan(
    candidates: list[Candidate],
    lifecycle: dict[str, Lifecycle],
    policy: Policy,
    exemptions: Exemptions,
    *,
    now: datetime,
    tenant_id: str | None,
    guests: int,
    notes: tuple[str, ...] = (),
) -> RetirePlan:
    """Every candidate's next stage; refused whole when its disables and deletes break the cap."""
    actions: list[Action] = []
    kept: dict[str, int] = {}
    for candidate in candidates:
        stage = lifecycle.get(candidate.guest.id)
        step = retire_step(candidate, stage, policy, now, exemptions)
        if step is not None:
            display = (
                f"{candidate.guest.display_name or ''} <{candidate.guest.mail or candidate.guest.user_principal_name}>"
            )
            actions.append(Action(step.kind, candidate.guest.id, display.strip(), step.reason, candidate.guest))
            continue
        why = keeps_account(candidate, exemptions, now) or (
            "not moved yet" if moved(candidate, policy, now) is None else "next stage not due"
        )
        key = why.split(":")[0]
        kept[key] = kept.get(key, 0) + 1
    destructive = sum(1 for a in actions if a.kind in DESTRUCTIVE)
    return RetirePlan(
        tenant_id=tenant_id,
        policy_digest=policy.digest(),
        created_at=now,
        guests=guests,
        candidates=len(candidates),
        kept=dict(sorted(kept.items())),
        actions=tuple(actions),
        refused=cap_refusal(policy, destructive=destructive, guests=guests),
        notes=notes,
    )
