"""Pure: which of a partner's guests join which shared channels, by their home identity.

Someone asking "why is (or isn't) this person added to that channel?" reads this module. A guest of the
partner is a candidate only when their account is used for Teams and nothing else (rules.use_of). A
candidate is matched to a user of the partner's id file (written by `guestctl partners accept` in their
tenant) by mail, userPrincipalName or otherMails; each team they are in that the policy maps
(`partners.tenants[].channels`) gives one shared channel; they join it with their home tenant id and home
object id (docs/graph-contract.md#teams-channels). Someone already a member is not added again.

A mapping `{create: NAME}` whose team has no channel of that name plans the shared channel's creation, once,
before the adds that need it (and only when someone is to be added). A plan that moves more people than the
migration's own blast-radius cap (`partners.max_moves`) is refused whole.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from shared.config import Policy
from shared.partners.accept import HomeUser, IdsFile
from shared.partners.records import Guest, Usage
from shared.partners.rules import Use, use_of

RUN_PREFIX: Final = "partners-migrate-"
BLOCKED_OUTBOUND: Final = "blocked: partner outbound not enabled"


def move_refusal(policy: Policy, moving: int) -> str | None:
    """Why moving `moving` people breaks the migration's cap (`partners.max_moves`), or None.

    Its own cap, apart from `safety`: a migration adds access (rollback removes it), so the sweep's caps on
    disables and deletes are the wrong size for it."""
    cap = policy.partners.max_moves
    if moving > cap:
        return (
            f"{moving} people to move into shared channels exceed partners.max_moves ({cap}); nothing will be applied"
        )
    return None


class ActionKind(StrEnum):
    CREATE = "create channel"  # create the shared channel a mapping names, when the team has none of that name
    ADD = "add"  # add the home identity to a shared channel


class Status(StrEnum):
    """Where one person stands, as the plan and the report say it."""

    ADD = "add"
    MEMBER = "already a member"
    NO_HOME_ID = "no home id"
    NO_CHANNEL = "no shared channel for their teams"
    KEEPS_GUEST = "keeps guest account"
    INBOUND_BLOCKED = "blocked: our inbound does not allow them"


@dataclass(frozen=True, slots=True)
class SharedChannel:
    """A shared channel the policy maps a team to, with who is in it now ((tenant id, user id), lower case).

    `create`: it does not exist yet and the policy allows creating it (`channel_id` is "" until then), with
    this description."""

    team_id: str
    team_name: str
    channel_id: str
    channel_name: str
    members: frozenset[tuple[str, str]] = frozenset()
    create: bool = False
    description: str | None = None


@dataclass(frozen=True, slots=True)
class ChannelCreate:
    """One shared channel to create in a team (named by the policy's `{create: NAME}`)."""

    team_id: str
    team_name: str
    channel_name: str
    description: str | None

    @property
    def kind(self) -> ActionKind:
        return ActionKind.CREATE

    @property
    def target_id(self) -> str:
        """The channel's natural key before it has an id: its team and its name (unique there, any case)."""
        return f"{self.team_id}/{self.channel_name.lower()}"

    def to_json(self) -> dict[str, Any]:
        return {
            "team_id": self.team_id,
            "team": self.team_name,
            "channel": self.channel_name,
            "description": self.description,
        }


@dataclass(frozen=True, slots=True)
class MemberAdd:
    """One membership to add: `home_id` of tenant `tenant_id` into a shared channel (for guest `guest_id`)."""

    guest_id: str
    mail: str | None
    tenant_id: str
    home_id: str
    team_id: str
    channel_id: str  # "" while the channel is still to be created (the applier fills it in)
    channel_name: str

    @property
    def kind(self) -> ActionKind:
        return ActionKind.ADD

    @property
    def target_id(self) -> str:
        """The membership's natural key (a person may join several channels: one audit target each)."""
        return f"{self.channel_id or self.team_id + '/' + self.channel_name.lower()}/{self.home_id}"

    def to_json(self) -> dict[str, Any]:
        return {
            "guest_id": self.guest_id,
            "tenant_id": self.tenant_id,
            "home_id": self.home_id,
            "team_id": self.team_id,
            "channel_id": self.channel_id,
            "channel": self.channel_name,
            "mail": self.mail,  # how HR offboarding finds a direct connect user's memberships (by email)
        }


@dataclass(frozen=True, slots=True)
class Person:
    """One guest of the partner: what the plan says about them and why."""

    guest_id: str
    mail: str | None
    status: Status
    reason: str
    home_id: str | None = None
    channels: tuple[str, ...] = ()  # the shared channels they are added to (or already in)

    def to_json(self) -> dict[str, Any]:
        return {
            "guest_id": self.guest_id,
            "mail": self.mail,
            "home_id": self.home_id,
            "status": self.status.value,
            "reason": self.reason,
            "channels": list(self.channels),
        }


@dataclass(frozen=True, slots=True)
class MigrationPlan:
    created_at: datetime
    partner_tenant: str
    partner_label: str
    run_id: str
    people: list[Person]
    actions: list[MemberAdd]
    notes: list[str] = field(default_factory=list)
    creates: list[ChannelCreate] = field(default_factory=list)  # made before the adds
    guests: int = 0  # every guest of the tenant: what safety.max_percent is a share of
    refused: str | None = None  # over the blast-radius cap: nothing is applied

    def moving(self) -> int:
        """How many people the plan moves (what the blast-radius cap counts)."""
        return len({action.guest_id for action in self.actions})

    def counts(self) -> dict[str, int]:
        counted: dict[str, int] = {}
        for person in self.people:
            counted[person.status.value] = counted.get(person.status.value, 0) + 1
        return counted

    def to_json(self) -> dict[str, Any]:
        return {
            "created_at": self.created_at.isoformat(),
            "partner_tenant": self.partner_tenant,
            "partner": self.partner_label,
            "run_id": self.run_id,
            "people": [person.to_json() for person in self.people],
            "creates": [create.to_json() for create in self.creates],
            "actions": [action.to_json() for action in self.actions],
            "counts": self.counts(),
            "guests": self.guests,
            "refused": self.refused,
            "notes": list(self.notes),
        }


def run_id_for(partner_tenant: str, ids: IdsFile, policy_digest: str) -> str:
    """The same id file under the same policy is the same run: a rerun finishes it and retries nothing it
    already settled (a person blocked by the partner's outbound is tried again only with a new id file)."""
    digest = hashlib.sha256(f"{partner_tenant}\n{ids.digest()}\n{policy_digest}".encode()).hexdigest()
    return RUN_PREFIX + digest[:16]


def guest_addresses(guest: Guest) -> list[str]:
    """The addresses a guest is known by: mail, otherMails, and the one its #EXT# userPrincipalName encodes."""
    found = [a for a in (guest.mail, *guest.other_mails) if a]
    if guest.upn and "#EXT#" in guest.upn.upper():
        local = guest.upn[: guest.upn.upper().index("#EXT#")]
        if "_" in local:
            name, _, domain = local.rpartition("_")
            found.append(f"{name}@{domain}")
    return [a.strip().lower() for a in found]


def home_index(users: tuple[HomeUser, ...]) -> dict[str, HomeUser]:
    """Address → home user; an address two users share matches nobody (never guess a person)."""
    index: dict[str, HomeUser] = {}
    shared: set[str] = set()
    for user in users:
        for address in user.addresses():
            if address in index and index[address].id != user.id:
                shared.add(address)
            index[address] = user
    return {address: user for address, user in index.items() if address not in shared}


def match_home(guest: Guest, index: dict[str, HomeUser]) -> HomeUser | None:
    for address in guest_addresses(guest):
        if (user := index.get(address)) is not None:
            return user
    return None


def plan_person(
    guest: Guest,
    usage: Usage,
    teams: frozenset[str],
    home: HomeUser | None,
    channels: dict[str, SharedChannel],
    *,
    partner_tenant: str,
    inbound_allowed: bool,
) -> tuple[Person, list[MemberAdd]]:
    """One guest: a candidate (Teams-only) with a home id gets the mapped channels they are not yet in."""
    use = use_of(usage)
    if use is not Use.TEAMS_ONLY:
        return Person(guest.id, guest.mail, Status.KEEPS_GUEST, f"uses {use.value}"), []
    if home is None:
        reason = "their mail, userPrincipalName and otherMails match no enabled home user of the partner"
        return Person(guest.id, guest.mail, Status.NO_HOME_ID, reason), []
    mapped = sorted((channels[team] for team in teams if team in channels), key=lambda c: c.channel_name)
    if not mapped:
        return Person(
            guest.id, guest.mail, Status.NO_CHANNEL, "none of their teams is in the policy's channels", home.id
        ), []
    names = tuple(f"{c.team_name}/{c.channel_name}{' (to create)' if c.create else ''}" for c in mapped)
    if not inbound_allowed:
        reason = "our b2bDirectConnectInbound for the partner blocks them: run `guestctl partners plan`/`apply` first"
        return Person(guest.id, guest.mail, Status.INBOUND_BLOCKED, reason, home.id, names), []
    adds = [
        MemberAdd(guest.id, guest.mail, partner_tenant, home.id, c.team_id, c.channel_id, c.channel_name)
        for c in mapped
        if (partner_tenant, home.id) not in c.members
    ]
    if not adds:
        return Person(guest.id, guest.mail, Status.MEMBER, "in every mapped shared channel already", home.id, names), []
    reason = f"Teams-only guest: joins {len(adds)} shared channel(s) with their home identity"
    return Person(guest.id, guest.mail, Status.ADD, reason, home.id, names), adds


def plan_migration(
    *,
    now: datetime,
    partner_tenant: str,
    partner_label: str,
    run_id: str,
    ids: IdsFile,
    guests: list[tuple[Guest, Usage, frozenset[str]]],
    channels: dict[str, SharedChannel],
    inbound_allowed: bool,
    policy: Policy,
    all_guests: int,
) -> MigrationPlan:
    """The whole plan for one partner: every guest of theirs with a status, the shared channels to create,
    the memberships to add, and whether the cap refuses it."""
    index = home_index(ids.users)
    people: list[Person] = []
    actions: list[MemberAdd] = []
    for guest, usage, teams in sorted(guests, key=lambda g: (g[0].mail or "", g[0].id)):
        person, adds = plan_person(
            guest,
            usage,
            teams,
            match_home(guest, index),
            channels,
            partner_tenant=partner_tenant,
            inbound_allowed=inbound_allowed,
        )
        people.append(person)
        actions.extend(adds)
    notes = []
    if not ids.outbound_applied:
        notes.append(
            "the id file says the partner did not apply `guestctl partners accept --apply`: adds are refused "
            "until their b2bDirectConnectOutbound allows us (reported as blocked)"
        )
    needed = {(a.team_id, a.channel_name) for a in actions if not a.channel_id}
    creates = [
        ChannelCreate(c.team_id, c.team_name, c.channel_name, c.description)
        for c in sorted(channels.values(), key=lambda c: (c.team_name, c.channel_name))
        if c.create and (c.team_id, c.channel_name) in needed
    ]
    moving = len({a.guest_id for a in actions})
    refused = move_refusal(policy, moving)
    return MigrationPlan(
        now, partner_tenant, partner_label, run_id, people, actions, notes, creates, all_guests, refused
    )
