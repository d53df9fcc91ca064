"""Pure planning of the staged removal: guests + what we did before + policy + now → a Plan. No I/O.

Stages (docs/architecture.md#safety-rules): flag (sponsor notified) → disable after `disable_after_days` → delete after
`delete_after_days`. A flagged or disabled guest who is active again (signed in, re-invited) is un-flagged
and, if we disabled them, re-enabled. Only guests are ever planned; members and directory-role holders
never. A plan with more disable/delete actions than the blast-radius cap is refused whole, not trimmed.

The planner takes guests page by page, so a 100,000-guest scan never holds every guest in memory: it keeps
the counts and the actions only.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import cached_property
from typing import Any, NamedTuple

import msgspec

from shared.config import Policy
from shared.core.plan_files import EditedPlanError
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


class GuestStage(StrEnum):
    FLAGGED = "flagged"
    DISABLED = "disabled"
    DELETED = "deleted"  # finished: kept for the record and for restore


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """What guestctl did to one guest before (from the store)."""

    stage: GuestStage
    flagged_at: datetime
    disabled_at: datetime | None = None
    let_go: str | None = None  # a sponsor let the flagged guest go: "let go by Ann Lee on 2026-11-28"


@dataclass(frozen=True, slots=True)
class Exemptions:
    """The policy's exemptions, resolved against the directory (ids are lower-case)."""

    role_holders: frozenset[str] = frozenset()
    group_members: dict[str, str] = field(default_factory=dict)  # member id → exempting group's name
    domains: frozenset[str] = frozenset()
    users: frozenset[str] = frozenset()  # ids, UPNs or mail addresses, lower-case
    attested_until: dict[str, date] = field(default_factory=dict)  # id or mail (lower-case) → date
    kept: dict[str, tuple[date, str]] = field(default_factory=dict)  # id → (until, who): shared.attestation

    @classmethod
    def from_policy(
        cls,
        policy: Policy,
        *,
        role_holders: Iterable[str] = (),
        group_members: dict[str, str] | None = None,
        kept: Mapping[str, tuple[date, str]] | None = None,
    ) -> Exemptions:
        rules = policy.exemptions
        return cls(
            role_holders=frozenset(i.lower() for i in role_holders),
            group_members={k.lower(): v for k, v in (group_members or {}).items()},
            domains=frozenset(d.lower() for d in rules.domains),
            users=frozenset(u.lower() for u in rules.users),
            attested_until={k.lower(): v for k, v in rules.attested_until.items()},
            kept={k.lower(): v for k, v in (kept or {}).items()},
        )

    def reason(self, guest: Guest, today: date) -> str | None:
        """The first exemption rule that protects this guest, or None (runs for every guest: keep it cheap)."""
        user_id = guest.id.lower()
        if user_id in self.role_holders:
            return "holds a directory role"
        if user_id in self.group_members:
            return f"member of exemption group {self.group_members[user_id]}"
        if self.kept and (kept := self.kept.get(user_id)) is not None and kept[0] >= today:
            return f"kept by {kept[1]} until {kept[0]:%Y-%m-%d}"
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


class Unsponsored(msgspec.Struct, frozen=True, gc=False):
    """A guest an HR offboarding left with no sponsor: listed by the sweep for people, never acted on here."""

    id: str
    name: str  # display name and address
    reason: str  # "sponsor lee@contoso.com left on 2025-06-02 (HR system=workday event=…): …"


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
    unsponsored: tuple[Unsponsored, ...] = ()  # no action: shown so admins give them a sponsor (or let them go)

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
        fields = {key: value for key, value in body.items() if key not in ("digest", "signature")}
        plan = msgspec.convert(fields, cls)
        if plan.digest() != body.get("digest"):
            raise EditedPlanError("the plan's content does not match its digest: it was changed after it was made")
        return plan


def cap_refusal(policy: Policy, *, destructive: int, guests: int, what: str = "disable/delete actions") -> str | None:
    """Why `destructive` actions (`what` they are) among `guests` guests break the blast-radius cap, or None."""
    safety = policy.safety
    if destructive > safety.max_actions:
        return f"{destructive} {what} exceed safety.max_actions ({safety.max_actions}); nothing will be applied"
    if destructive > safety.max_percent / 100 * guests:
        return (
            f"{destructive} {what} are {destructive / max(guests, 1):.1%} of {guests} guests, "
            f"over safety.max_percent ({safety.max_percent}%); nothing will be applied"
        )
    return None


class Step(NamedTuple):
    """The action a guest is due now, with the reason an admin reads."""

    kind: ActionKind
    reason: str


def judge(
    guest: Guest,
    stage: Lifecycle | None,
    policy: Policy,
    now: datetime,
    exemptions: Exemptions,
    sign_in_activity_available: bool = True,
    today: date | None = None,
) -> Verdict:
    """The guest's category, counting what guestctl did before (a guest it disabled long enough ago)."""
    exempt = exemptions.reason(guest, today or now.date())
    verdict = categorise(guest, policy.stale, now, exempt)
    if verdict.category is Category.STALE and not sign_in_activity_available:
        return Verdict(Category.UNKNOWN, note="signInActivity is not available in this tenant")
    if stage is None:
        return verdict
    if (
        stage.stage is GuestStage.DISABLED
        and stage.disabled_at is not None
        and verdict.category in (Category.STALE, Category.NEVER_REDEEMED)
        and now >= stage.disabled_at + timedelta(days=policy.stale.delete_after_days)
    ):
        return msgspec.structs.replace(
            verdict, category=Category.DISABLED_LONG, note=f"disabled by guestctl on {day(stage.disabled_at)}"
        )
    return verdict


def next_step(guest: Guest, verdict: Verdict, stage: Lifecycle | None, policy: Policy, now: datetime) -> Step | None:
    """The action this guest is due, with its reason, or None. The one rule both plan and apply use."""
    inactive = verdict.category in INACTIVE
    if stage is None:
        # a guest someone else disabled is left to them (accountEnabled null counts as enabled)
        return Step(ActionKind.FLAG, verdict.reason) if inactive and guest.enabled is not False else None
    if not inactive:
        if verdict.category is Category.UNKNOWN:
            return None  # no evidence either way: leave the stage as it is
        if stage.stage is GuestStage.DISABLED:
            if guest.pending or (guest.state_changed and stage.disabled_at and guest.state_changed > stage.disabled_at):
                return Step(ActionKind.ENABLE, f"re-invited after guestctl disabled them: {verdict.reason}")
            return Step(ActionKind.ENABLE, f"active again: {verdict.reason}")
        if verdict.category is Category.EXEMPT:
            return Step(ActionKind.UNFLAG, verdict.reason)  # "exempt: kept by Ann Lee until 2027-03-01"
        return Step(ActionKind.UNFLAG, f"active again: {verdict.reason}")
    if stage.stage is GuestStage.FLAGGED:
        if stage.let_go:
            # A sponsor let the guest go (docs/attestation.md): the flag's grace no longer applies; inactivity
            # is still required (checked above), so a guest who signed in meanwhile is un-flagged instead.
            return Step(ActionKind.DISABLE, f"{stage.let_go}; flagged on {day(stage.flagged_at)}; {verdict.reason}")
        if now >= stage.flagged_at + timedelta(days=policy.stale.disable_after_days):
            # also when already disabled: apply then only records the stage (or leaves it to whoever did it)
            return Step(ActionKind.DISABLE, f"flagged on {day(stage.flagged_at)}; {verdict.reason}")
        return None
    if verdict.category is Category.DISABLED_LONG:
        return Step(ActionKind.DELETE, verdict.reason)
    return None


# The stage guestctl's own records must show before an action of each kind (None: no record).
REQUIRED_STAGE: dict[ActionKind, GuestStage | None] = {
    ActionKind.FLAG: None,
    ActionKind.UNFLAG: GuestStage.FLAGGED,
    ActionKind.DISABLE: GuestStage.FLAGGED,
    ActionKind.DELETE: GuestStage.DISABLED,
    ActionKind.ENABLE: GuestStage.DISABLED,
}


def why_not(
    kind: ActionKind,
    guest: Guest,
    stage: Lifecycle | None,
    policy: Policy,
    now: datetime,
    exemptions: Exemptions,
    *,
    sign_in_activity_available: bool = True,
) -> str | None:
    """Why the rules would not give `kind` for this guest now (None: they would).

    Apply asks this of every action just before carrying it out, with the guest read again from Graph and
    guestctl's own lifecycle record: a saved plan is a request, not an authority.
    """
    required = REQUIRED_STAGE[kind]
    have = stage.stage if stage is not None else None
    if have is not required:
        return _stage_mismatch(kind, stage)
    verdict = judge(guest, stage, policy, now, exemptions, sign_in_activity_available=sign_in_activity_available)
    step = next_step(guest, verdict, stage, policy, now)
    if step is not None and step.kind is kind:
        return None
    if kind is ActionKind.DISABLE and stage is not None and step is None and verdict.category in INACTIVE:
        due = stage.flagged_at + timedelta(days=policy.stale.disable_after_days)
        return f"flagged by guestctl on {day(stage.flagged_at)}: disable is not due before {due:%Y-%m-%d %H:%M} UTC"
    if kind is ActionKind.DELETE and stage is not None and stage.disabled_at is not None and step is None:
        due = stage.disabled_at + timedelta(days=policy.stale.delete_after_days)
        if now < due:
            disabled = day(stage.disabled_at)
            return f"disabled by guestctl on {disabled}: delete is not due before {due:%Y-%m-%d %H:%M} UTC"
    now_due = f"the rules give {step.kind.value} now" if step is not None else "the rules give no action now"
    return f"re-checked just before acting: {now_due} ({verdict.reason or verdict.category.value})"


def _stage_mismatch(kind: ActionKind, stage: Lifecycle | None) -> str:
    """The reason an action is skipped because guestctl's own record of the guest does not lead to it."""
    if kind is ActionKind.ENABLE:
        return "guestctl has no record of disabling this account; left as it is"
    if kind is ActionKind.DELETE:
        return "guestctl has no record of disabling this account: it deletes only accounts it disabled itself"
    if stage is not None:
        return f"guestctl's record shows the guest {stage.stage.value} on {day(stage.flagged_at)}: no {kind.value} now"
    if kind is ActionKind.DISABLE:
        return "guestctl has not flagged this guest: it disables only guests it flagged first"
    return "guestctl has not flagged this guest"


CLOCK_SKEW = timedelta(minutes=5)  # how far a plan's creation time may be ahead of this machine's clock


def plan_problems(plan: Plan, now: datetime) -> list[str]:
    """What makes a plan disagree with itself or with time; a plan with any is refused whole.

    guestctl's own plans never have these: they come from a hand edit or a broken file. The rules at apply
    time are the guarantee; these checks make an edited plan fail loudly instead of half-applying.
    """
    if plan.created_at.tzinfo is None:
        return ["created_at has no time zone"]
    problems = []
    if plan.created_at > now + CLOCK_SKEW:
        problems.append(f"it is dated in the future (created_at {plan.created_at:%Y-%m-%dT%H:%M:%SZ})")
    unknown = sorted(set(plan.counts) - {c.value for c in Category})
    if unknown:
        problems.append(f"its counts name unknown categories ({', '.join(unknown)[:80]})")
    if any(count < 0 for count in plan.counts.values()):
        problems.append("its counts include a negative number")
    if sum(plan.counts.values()) != plan.guests:
        problems.append(f"its counts add up to {sum(plan.counts.values())}, not its {plan.guests} guests")
    kinds = Counter(action.kind for action in plan.actions)
    count = plan.counts.get
    inactive = count(Category.STALE.value, 0) + count(Category.NEVER_REDEEMED.value, 0)
    settled = count(Category.ACTIVE.value, 0) + count(Category.EXEMPT.value, 0)
    for actions, most, which in (
        (kinds[ActionKind.FLAG] + kinds[ActionKind.DISABLE], inactive, "stale and never-redeemed"),
        (kinds[ActionKind.DELETE], count(Category.DISABLED_LONG.value, 0), "disabled-long"),
        (kinds[ActionKind.UNFLAG] + kinds[ActionKind.ENABLE], settled, "active and exempt"),
    ):
        if actions > most:
            problems.append(f"it has {actions} actions for its {most} {which} guests")
    targets = Counter(action.target_id.lower() for action in plan.actions)
    if len(targets) != len(plan.actions):
        twice = next(target for target, seen in targets.items() if seen > 1)
        problems.append(f"it has more than one action for guest {twice[:40]}")
    mismatched = next((a for a in plan.actions if a.evidence.id.lower() != a.target_id.lower()), None)
    if mismatched is not None:
        problems.append(f"the evidence of its action on {mismatched.target_id[:40]} is about another user")
    return problems


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
        unsponsored: Mapping[str, str] | None = None,
    ) -> None:
        self.policy = policy
        self.flagged = unsponsored or {}  # lowercased guest id → why it has no sponsor (shared.offboarding)
        self.unsponsored: list[Unsponsored] = []
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
        counts, actions, lifecycle = self.counts, self.actions, self.lifecycle
        policy, now, exemptions = self.policy, self.now, self.exemptions
        available, today, flagged = self.sign_in_activity_available, self.today, self.flagged
        for guest in guests:
            self.guests += 1
            if flagged and (why := flagged.get(guest.id.lower())) is not None:
                self.unsponsored.append(Unsponsored(guest.id, _display(guest), why))
            stage = lifecycle.get(guest.id)
            verdict = judge(guest, stage, policy, now, exemptions, available, today)  # positional: hot loop
            counts[verdict.category] += 1  # a StrEnum member finds its value's key
            step = next_step(guest, verdict, stage, policy, now)
            if step is not None:
                kind, reason = step
                actions.append(Action(kind, guest.id, _display(guest), reason, guest))

    def absorb(
        self, counts: dict[str, int], guests: int, actions: list[Action], unsponsored: Iterable[Unsponsored] = ()
    ) -> None:
        """Take in what an earlier invocation planned for the pages it finished (resumable sweeps)."""
        for name, count in counts.items():
            self.counts[name] = self.counts.get(name, 0) + count
        self.guests += guests
        self.actions.extend(actions)
        self.unsponsored.extend(unsponsored)

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
            unsponsored=tuple(self.unsponsored),
        )


def _display(guest: Guest) -> str:
    return f"{guest.display_name or '?'} <{guest.mail or guest.user_principal_name or guest.id}>"
