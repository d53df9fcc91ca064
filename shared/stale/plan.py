"""Pure planning of the staged removal: guests + what we did before + policy + now → a Plan. No I/O.

Stages (ARCHITECTURE §5): flag (sponsor notified) → disable after `disable_after_days` → delete after
`delete_after_days`. A flagged or disabled guest who is active again (signed in, re-invited) is un-flagged
and, if we disabled them, re-enabled. Only guests are ever planned; members and directory-role holders
never. A plan with more disable/delete actions than the blast-radius cap is refused whole, not trimmed.

The planner takes guests page by page, so a 100,000-guest scan never holds every guest in memory: it keeps
the counts and the actions only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import cached_property
from typing import Any

import msgspec

from shared.config import Policy
from shared.stale.records import Guest
from shared.stale.rules import Category, Verdict, categorise, day


class ActionKind(StrEnum):
    FLAG = "flag"  # first stage: recorded, sponsor notified
    DISABLE = "disable"  # accountEnabled=false
    DELETE = "delete"  # soft delete: restorable for 30 days
    UNFLAG = "unflag"  # active again while flagged
    ENABLE = "enable"  # active again (re-invited) after we disabled them


DESTRUCTIVE = frozenset({ActionKind.DISABLE, ActionKind.DELETE})
INACTIVE = frozenset({Category.STALE, Category.NEVER_REDEEMED, Category.DISABLED_LONG})


class Stage(StrEnum):
    FLAGGED = "flagged"
    DISABLED = "disabled"
    DELETED = "deleted"  # finished: kept for the record and for restore


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """What guestctl did to one guest before (from the store)."""

    stage: Stage
    flagged_at: datetime
    disabled_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Exemptions:
    """The policy's exemptions, resolved against the directory (ids are lower-case)."""

    role_holders: frozenset[str] = frozenset()
    group_members: dict[str, str] = field(default_factory=dict)  # member id → exempting group's name
    domains: frozenset[str] = frozenset()
    users: frozenset[str] = frozenset()  # ids, UPNs or mail addresses, lower-case
    attested_until: dict[str, date] = field(default_factory=dict)  # id or mail (lower-case) → date

    @classmethod
    def from_policy(
        cls, policy: Policy, *, role_holders: Iterable[str] = (), group_members: dict[str, str] | None = None
    ) -> Exemptions:
        rules = policy.exemptions
        return cls(
            role_holders=frozenset(i.lower() for i in role_holders),
            group_members={k.lower(): v for k, v in (group_members or {}).items()},
            domains=frozenset(d.lower() for d in rules.domains),
            users=frozenset(u.lower() for u in rules.users),
            attested_until={k.lower(): v for k, v in rules.attested_until.items()},
        )

    def reason(self, guest: Guest, today: date) -> str | None:
        """The first exemption rule that protects this guest, or None (runs for every guest: keep it cheap)."""
        user_id = guest.id.lower()
        if user_id in self.role_holders:
            return "holds a directory role"
        if user_id in self.group_members:
            return f"member of exemption group {self.group_members[user_id]}"
        if self.users or self.attested_until:
            keys = {k.lower() for k in (guest.id, guest.mail, guest.user_principal_name) if k}
            if keys & self.users:
                return "listed in exemptions.users"
        domain = guest.domain if self.domains else None
        if domain and any(domain == d or domain.endswith("." + d) for d in self.domains):
            return f"domain {domain} in exemptions.domains"
        if self.attested_until:
            attested = [self.attested_until[k] for k in keys if k in self.attested_until]
            if attested and max(attested) >= today:
                return f"sponsor attested the guest is needed until {max(attested):%Y-%m-%d}"
        return None


class Action(msgspec.Struct, frozen=True, gc=False):
    kind: ActionKind
    target_id: str
    display: str  # display name and address, for people
    reason: str
    evidence: Guest  # the facts behind it: the user as Graph returned them, with Graph's property names


class Plan(msgspec.Struct, frozen=True, dict=True):  # dict=True: room for the cached digest
    tenant_id: str | None
    policy_digest: str
    created_at: datetime
    guests: int
    counts: dict[str, int]
    actions: tuple[Action, ...]
    sign_in_activity_available: bool
    refused: str | None  # set: the blast-radius cap refused the whole plan
    notes: tuple[str, ...] = ()

    def destructive(self) -> int:
        return sum(1 for a in self.actions if a.kind in DESTRUCTIVE)

    def to_json(self) -> dict[str, Any]:
        body = msgspec.to_builtins(self)
        body["digest"] = self.digest()
        return body

    def digest(self) -> str:
        """sha256 of the plan's canonical JSON (keys sorted): any change to any field changes it."""
        return self._digest

    @cached_property
    def _digest(self) -> str:
        # A plan is frozen, so its digest is worked out once (a first sweep's plan can hold 40,000 actions).
        return "sha256:" + hashlib.sha256(msgspec.json.encode(self, order="sorted")).hexdigest()

    def plan_id(self) -> str:
        """The id a kept plan is stored and approved under: the start of its digest."""
        return self.digest().removeprefix("sha256:")[:16]

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Plan:
        """A saved plan; refuses one whose content no longer matches its digest (edited by hand).

        Raises ValueError (msgspec's ValidationError names the field) for anything that is not a plan.
        """
        if not isinstance(body, dict):
            raise ValueError(f"expected a JSON object, got {type(body).__name__}")
        fields = {key: value for key, value in body.items() if key != "digest"}
        plan = msgspec.convert(fields, cls)
        if plan.digest() != body.get("digest"):
            raise ValueError("the plan's content does not match its digest: it was changed after it was made")
        return plan


def cap_refusal(policy: Policy, *, destructive: int, guests: int) -> str | None:
    """Why `destructive` disable/delete actions among `guests` guests break the blast-radius cap, or None."""
    safety = policy.safety
    if destructive > safety.max_actions:
        return (
            f"{destructive} disable/delete actions exceed safety.max_actions ({safety.max_actions}); "
            "nothing will be applied"
        )
    if destructive > safety.max_percent / 100 * guests:
        return (
            f"{destructive} disable/delete actions are {destructive / max(guests, 1):.1%} of {guests} guests, "
            f"over safety.max_percent ({safety.max_percent}%); nothing will be applied"
        )
    return None


class Planner:
    """Feed guests page by page with `add`, then `finish`."""

    def __init__(
        self,
        policy: Policy,
        now: datetime,
        *,
        lifecycle: dict[str, Lifecycle],
        exemptions: Exemptions,
        sign_in_activity_available: bool = True,
        tenant_id: str | None = None,
    ) -> None:
        self.policy = policy
        self.now = now
        self.today = now.date()
        self.lifecycle = lifecycle
        self.exemptions = exemptions
        self.sign_in_activity_available = sign_in_activity_available
        self.tenant_id = tenant_id
        self.counts = {category.value: 0 for category in Category}
        self.actions: list[Action] = []
        self.guests = 0

    def add(self, guests: Iterable[Guest]) -> None:
        counts, actions = self.counts, self.actions
        for guest in guests:
            self.guests += 1
            stage = self.lifecycle.get(guest.id)
            verdict = self._verdict(guest, stage)
            counts[verdict.category] += 1  # a StrEnum member finds its value's key
            step = self._next_step(guest, verdict, stage)
            if step is not None:
                kind, reason = step
                display = f"{guest.display_name or '?'} <{guest.mail or guest.user_principal_name or guest.id}>"
                actions.append(Action(kind, guest.id, display, reason, guest))

    def _verdict(self, guest: Guest, stage: Lifecycle | None) -> Verdict:
        exempt = self.exemptions.reason(guest, self.today)
        verdict = categorise(guest, self.policy.stale, self.now, exempt)
        if verdict.category is Category.STALE and not self.sign_in_activity_available:
            return Verdict(Category.UNKNOWN, note="signInActivity is not available in this tenant")
        if (
            stage is not None
            and stage.stage is Stage.DISABLED
            and verdict.category in (Category.STALE, Category.NEVER_REDEEMED)
        ):
            due = stage.disabled_at + timedelta(days=self.policy.stale.delete_after_days)  # type: ignore[operator]
            if self.now >= due:
                return msgspec.structs.replace(
                    verdict, category=Category.DISABLED_LONG, note=f"disabled by guestctl on {day(stage.disabled_at)}"
                )
        return verdict

    def _next_step(self, guest: Guest, verdict: Verdict, stage: Lifecycle | None) -> tuple[ActionKind, str] | None:
        """The action this guest is due, with its reason, or None."""
        inactive = verdict.category in INACTIVE
        if stage is None:
            # a guest someone else disabled is left to them (accountEnabled null counts as enabled)
            return (ActionKind.FLAG, verdict.reason) if inactive and guest.enabled is not False else None
        if not inactive:
            if verdict.category is Category.UNKNOWN:
                return None  # no evidence either way: leave the stage as it is
            if stage.stage is Stage.DISABLED:
                if guest.pending or (
                    guest.state_changed and stage.disabled_at and guest.state_changed > stage.disabled_at
                ):
                    return ActionKind.ENABLE, f"re-invited after guestctl disabled them: {verdict.reason}"
                return ActionKind.ENABLE, f"active again: {verdict.reason}"
            return ActionKind.UNFLAG, f"active again: {verdict.reason}"
        if stage.stage is Stage.FLAGGED:
            due = stage.flagged_at + timedelta(days=self.policy.stale.disable_after_days)
            if self.now >= due:  # also when already disabled: apply then only records the stage
                return ActionKind.DISABLE, f"flagged on {day(stage.flagged_at)}; {verdict.reason}"
            return None
        if verdict.category is Category.DISABLED_LONG:
            return ActionKind.DELETE, verdict.reason
        return None

    def absorb(self, counts: dict[str, int], guests: int, actions: list[Action]) -> None:
        """Take in what an earlier invocation planned for the pages it finished (resumable sweeps)."""
        for name, count in counts.items():
            self.counts[name] = self.counts.get(name, 0) + count
        self.guests += guests
        self.actions.extend(actions)

    def finish(self) -> Plan:
        notes = []
        if not self.sign_in_activity_available:
            notes.append(
                "signInActivity is not available (needs Entra ID P1/P2 and AuditLog.Read.All): no guest was "
                "judged inactive; only never-redeemed invitations were planned"
            )
        destructive = sum(1 for a in self.actions if a.kind in DESTRUCTIVE)
        refused = cap_refusal(self.policy, destructive=destructive, guests=self.guests)
        return Plan(
            tenant_id=self.tenant_id,
            policy_digest=self.policy.digest(),
            created_at=self.now,
            guests=self.guests,
            counts=dict(self.counts),
            actions=tuple(self.actions),
            sign_in_activity_available=self.sign_in_activity_available,
            refused=refused,
            notes=tuple(notes),
        )
