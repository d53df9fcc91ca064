"""Pure: the facts about a leaving worker + policy + the effective moment → a plan of actions.

No I/O, no clock, and nothing depends on the order Graph lists groups or guests in (the same facts always
make the same plan, byte for byte). Every action carries the HR event's provenance (`Plan.provenance`, copied into each
audit entry's reason), a reason a person can read, and its evidence.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import msgspec

from shared.config import Policy
from shared.offboarding.records import Facts
from shared.offboarding.rules import (
    WorkerKind,
    kind_of,
    new_sponsor,
    sponsors_left,
    why_keep_membership,
    why_not_disable,
)


class ActionKind(StrEnum):
    ADD_SPONSOR = "add-sponsor"  # first, so a guest is never left without a sponsor in between
    REMOVE_SPONSOR = "remove-sponsor"
    FLAG = "flag-unsponsored"  # a guest left with no sponsor at all: recorded for review and the sweep
    REMOVE_MEMBER = "remove-member"
    REMOVE_CHANNEL_MEMBER = "remove-channel-member"
    DISABLE = "disable"
    SCHEDULE_DELETE = "schedule-delete"
    NOTIFY = "notify"  # last: the new sponsor's one email lists what they did inherit
    DELETE = "delete"  # carried out by `run_due` once the scheduled date has passed


ORDER = {kind: index for index, kind in enumerate(ActionKind)}


class Action(msgspec.Struct, frozen=True, kw_only=True):
    kind: ActionKind
    target_id: str  # the object changed: the user, the group, the guest re-sponsored, the channel
    other_id: str = ""  # the member removed, the sponsor added or removed, the home identity
    reason: str
    evidence: dict[str, Any] = msgspec.field(default_factory=dict)
    due_at: datetime | None = None

    @property
    def key(self) -> str:
        return f"{self.kind.value}:{self.target_id}:{self.other_id}"


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    run_id: str
    identifier: tuple[str, str]
    effective: datetime
    provenance: dict[str, Any]  # source system, event id, type
    worker_id: str | None = None
    worker: str | None = None  # for people: mail or UPN
    kind: WorkerKind | None = None
    review: str | None = None  # nobody is acted on; a person decides
    actions: list[Action] = msgspec.field(default_factory=list)
    notes: list[str] = msgspec.field(default_factory=list)  # what is left alone, and why

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for action in self.actions:
            counts[action.kind.value] = counts.get(action.kind.value, 0) + 1
        return counts

    def to_json(self) -> dict[str, Any]:
        return msgspec.to_builtins(self)


def run_id_for(request: str) -> str:
    """The same HR event (or manual request) is the same run: a redelivery continues it, never repeats it."""
    return "offboard-" + hashlib.sha256(request.encode()).hexdigest()[:16]


def provenance_text(provenance: dict[str, Any]) -> str:
    parts = [f"{k}={v}" for k, v in provenance.items() if v]
    return "HR " + " ".join(parts)


def plan_offboarding(
    facts: Facts, policy: Policy, *, run_id: str, effective: datetime, provenance: dict[str, Any]
) -> Plan:
    """What offboarding the worker named by `facts` means now (see rules.py for each decision)."""
    name, value = facts.identifier
    base = {"run_id": run_id, "identifier": facts.identifier, "effective": effective, "provenance": provenance}
    if facts.review:
        return Plan(**base, review=facts.review)
    why = f"{provenance_text(provenance)}: worker {value} ({name}) leaves on {effective:%Y-%m-%d}"
    worker = facts.worker
    kind = kind_of(worker)
    if worker is None:
        return Plan(**base, kind=kind, actions=_channels(facts, why))
    shown = worker.mail or worker.user_principal_name or worker.id
    plan = {**base, "worker_id": worker.id, "worker": shown, "kind": kind}
    if kind is WorkerKind.GUEST and facts.exempt:
        # never touched at all: a guest holding a directory role is an administrator's matter
        return Plan(**plan, review=f"guest {shown} is exempt: {facts.exempt}")
    actions, notes = _sponsorships(facts, policy, why)
    if kind is WorkerKind.GUEST:
        actions += _guest(facts, policy, why, effective, notes)
    elif not facts.sponsored:
        notes.append(f"{shown} is a member who sponsors no guests: nothing to do (members are never disabled here)")
    actions.sort(key=lambda a: ORDER[a.kind])
    return Plan(**plan, actions=actions, notes=notes)


def _guest(facts: Facts, policy: Policy, why: str, effective: datetime, notes: list[str]) -> list[Action]:
    worker = facts.worker
    assert worker is not None
    actions = []
    if (refused := why_not_disable(worker, facts.exempt)) is not None:
        notes.append(refused)
        return []
    if worker.enabled is not False:
        actions.append(
            Action(kind=ActionKind.DISABLE, target_id=worker.id, reason=why, evidence={"accountEnabled": True})
        )
    for group in sorted(facts.groups, key=lambda g: g.id):
        if (kept := why_keep_membership(group)) is not None:
            notes.append(kept)
            continue
        evidence = {"group": group.display_name, "direct": True}
        actions.append(
            Action(kind=ActionKind.REMOVE_MEMBER, target_id=group.id, other_id=worker.id, reason=why, evidence=evidence)
        )
    due = effective + timedelta(days=policy.offboarding.delete_after_days)
    actions.append(
        Action(
            kind=ActionKind.SCHEDULE_DELETE,
            target_id=worker.id,
            reason=f"{why}; soft deletion after offboarding.delete_after_days ({policy.offboarding.delete_after_days})",
            due_at=due,
        )
    )
    return actions


def _sponsorships(facts: Facts, policy: Policy, why: str) -> tuple[list[Action], list[str]]:
    """Each guest the leaver sponsors gets the new sponsor (if any), loses the leaver; none left → flagged."""
    leaver = facts.worker
    assert leaver is not None
    actions: list[Action] = []
    notes: list[str] = []
    if not facts.sponsored:
        return actions, notes
    heir, because = new_sponsor(leaver, facts.manager, facts.fallback)
    inherited = []
    for guest in sorted(facts.sponsored, key=lambda g: g.id):
        added = heir.id if heir is not None and heir.id.lower() not in guest.sponsor_ids else None
        evidence = {"guest": guest.display, "sponsors": sorted(guest.sponsor_ids)}
        if added:
            reason = f"{why}; {heir.mail or heir.user_principal_name or heir.id} ({because}) inherits the guest"
            actions.append(
                Action(
                    kind=ActionKind.ADD_SPONSOR, target_id=guest.id, other_id=added, reason=reason, evidence=evidence
                )
            )
            inherited.append(guest.display)
        actions.append(
            Action(
                kind=ActionKind.REMOVE_SPONSOR, target_id=guest.id, other_id=leaver.id, reason=why, evidence=evidence
            )
        )
        if not sponsors_left(guest, leaver.id, heir.id if heir else None):
            reason = f"{why}; no sponsor left: {because}"
            flagged = {**evidence, "no_sponsor": because}
            actions.append(
                Action(kind=ActionKind.FLAG, target_id=guest.id, other_id=leaver.id, reason=reason, evidence=flagged)
            )
    if heir is not None and inherited:
        if policy.invitations.sender_mailbox and (heir.mail or heir.user_principal_name):
            evidence = {"guests": inherited, "to": heir.mail or heir.user_principal_name}
            actions.append(
                Action(kind=ActionKind.NOTIFY, target_id=heir.id, other_id=leaver.id, reason=why, evidence=evidence)
            )
        else:
            notes.append("the new sponsor is not emailed: invitations.sender_mailbox is not set")
    return actions, notes


def _channels(facts: Facts, why: str) -> list[Action]:
    return [
        Action(
            kind=ActionKind.REMOVE_CHANNEL_MEMBER,
            target_id=str(member["channel_id"]),
            other_id=str(member["home_id"]),
            reason=f"{why}; a direct connect user guestctl added to {member.get('channel')}",
            evidence={"member": member},
        )
        for member in facts.channels
    ]
