"""Pure planning: rows + what the directory already holds + policy → one outcome per row. No I/O.

Order of judgement for a row (the first that applies wins), as docs/invitations.md tabulates:
unreadable row, bad address, or a value beyond Graph's or the store's limits → invalid;
same address as an earlier row → invalid (duplicate);
domain refused by the policy → blocked-domain; unknown or ambiguous group or sponsor → invalid;
the address is held by two or more users (mail, otherMails, proxyAddresses, identities) → invalid, naming them;
the address belongs to a member → already-member (never invite a member's address);
to a guest → already-guest (adopt: groups and sponsors are still ensured); otherwise → invite.
A plan changes nothing, so its reasons say what apply will do.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum

from shared.config import InvitationPolicy
from shared.graph.odata import GroupRef, matching_groups
from shared.invitations.rows import InvitationRow, cut
from shared.invitations.rules import domain_block_reason, normalise_email, row_problem, url_problem

DEFAULT_MESSAGE_TEMPLATE = "{message}\n\nAccept the invitation: {redeem_url}\n"


class InvitationOutcome(StrEnum):
    INVITE = "invite"
    ALREADY_GUEST = "already-guest"
    ALREADY_MEMBER = "already-member"
    INVALID = "invalid"
    BLOCKED_DOMAIN = "blocked-domain"


@dataclass(frozen=True, slots=True)
class DirectoryUser:
    id: str
    user_type: str  # "Guest" or "Member"
    mail: str | None = None
    user_principal_name: str | None = None
    external_user_state: str | None = None
    matched_by: str | None = None  # the property holding the row's address: mail, otherMails, proxyAddresses, …


DirectoryGroup = GroupRef  # a group as the directory holds it (dynamic: Graph refuses added members)


@dataclass(frozen=True, slots=True)
class Directory:
    """What fetch found for the file's addresses, groups and sponsors (keys lower-case)."""

    users_by_address: dict[str, DirectoryUser] = field(default_factory=dict)
    groups_by_key: dict[str, list[DirectoryGroup]] = field(default_factory=dict)  # id or name → matches
    sponsors_by_key: dict[str, DirectoryUser] = field(default_factory=dict)  # id or UPN → user
    # Addresses that two or more users hold (say one's mail, another's otherMails): not guessed between.
    ambiguous_addresses: dict[str, tuple[DirectoryUser, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RowPlan:
    row: int
    email: str
    outcome: InvitationOutcome
    reason: str
    key: str = ""  # normalised address: with the batch id, the row's idempotency key
    user_id: str | None = None  # existing user (already-guest / already-member)
    group_ids: tuple[str, ...] = ()
    sponsor_ids: tuple[str, ...] = ()
    display_name: str | None = None
    redirect_url: str | None = None
    send_email: bool = True
    custom_message: str | None = None  # set: our own email (a draft, then sent) instead of Microsoft's
    resend: bool = False  # already-guest with --resend: a new invitation email

    @property
    def kind(self) -> InvitationOutcome:
        """What apply does with the row (the core applier's action kind)."""
        return self.outcome

    @property
    def target_id(self) -> str:
        return self.key


@dataclass(frozen=True, slots=True)
class InvitationPlan:
    batch_id: str
    source: str
    tenant_id: str | None
    policy_digest: str
    created_at: datetime
    rows: tuple[RowPlan, ...]

    def counts(self) -> dict[str, int]:
        counts = {outcome.value: 0 for outcome in InvitationOutcome}
        for row in self.rows:
            counts[row.outcome.value] += 1
        return counts

    def to_json(self) -> dict[str, object]:
        return {
            "batch_id": self.batch_id,
            "source": self.source,
            "tenant_id": self.tenant_id,
            "policy_digest": self.policy_digest,
            "created_at": self.created_at.isoformat(),
            "counts": self.counts(),
            "rows": [asdict(row) for row in self.rows],
        }

    def digest(self) -> str:
        body = json.dumps({**self.to_json(), "created_at": None}, sort_keys=True, default=str)
        return "sha256:" + hashlib.sha256(body.encode()).hexdigest()


def plan_invitations(
    rows: list[InvitationRow],
    directory: Directory,
    policy: InvitationPolicy,
    *,
    batch_id: str,
    source: str,
    tenant_id: str | None,
    policy_digest: str,
    now: datetime,
    resend: bool = False,
) -> InvitationPlan:
    first_row_of: dict[str, int] = {}
    planned = []
    for row in rows:
        planned.append(_plan_row(row, directory, policy, first_row_of, resend))
    return InvitationPlan(batch_id, source, tenant_id, policy_digest, now, tuple(planned))


def _plan_row(
    row: InvitationRow,
    directory: Directory,
    policy: InvitationPolicy,
    first_row_of: dict[str, int],
    resend: bool,
) -> RowPlan:
    def invalid(reason: str) -> RowPlan:
        return RowPlan(row.row, row.email, InvitationOutcome.INVALID, reason)

    if problem := row_problem(row):
        return invalid(problem)
    key = normalise_email(row.email)
    if key in first_row_of:
        return invalid(f"duplicate of row {first_row_of[key]} ({key})")
    first_row_of[key] = row.row
    if blocked := domain_block_reason(key, policy):
        return RowPlan(row.row, row.email, InvitationOutcome.BLOCKED_DOMAIN, blocked, key)

    redirect_url = row.redirect_url or str(policy.redirect_url)
    if problem := url_problem(redirect_url, "the policy's invitations.redirect_url"):
        return invalid(problem)
    group_ids, group_problem = _resolve_groups(row.groups, directory)
    if group_problem:
        return invalid(group_problem)
    sponsor_ids = []
    for sponsor in row.sponsors:
        found = directory.sponsors_by_key.get(sponsor.lower())
        if found is None:
            return invalid(f'sponsor "{cut(sponsor)}" not found')
        sponsor_ids.append(found.id)
    send_email = row.send_email if row.send_email is not None else policy.send_email
    custom_message = None
    if send_email and (row.message or policy.message_template):
        if not policy.sender_mailbox:
            return invalid(
                "a custom message needs invitations.sender_mailbox in the policy (app-only invitations "
                "cannot carry one, so guestctl sends its own email)"
            )
        template = policy.message_template or DEFAULT_MESSAGE_TEMPLATE
        custom_message = template.replace("{message}", row.message or "")

    common = {
        "key": key,
        "group_ids": tuple(dict.fromkeys(group_ids)),
        "sponsor_ids": tuple(dict.fromkeys(sponsor_ids)),
        "display_name": row.display_name,
        "redirect_url": redirect_url,
        "send_email": send_email,
        "custom_message": custom_message,
    }
    if holders := directory.ambiguous_addresses.get(key):
        return invalid(ambiguous_reason(key, holders))
    existing = directory.users_by_address.get(key)
    if existing is not None and existing.user_type != "Guest":
        return RowPlan(
            row.row,
            row.email,
            InvitationOutcome.ALREADY_MEMBER,
            f"{key} belongs to member {existing.user_principal_name or existing.id}{_held_by(existing)}; "
            "members are never invited",
            key,
            user_id=existing.id,
        )
    if existing is not None:
        state = existing.external_user_state or "unknown"
        return RowPlan(
            row.row,
            row.email,
            InvitationOutcome.ALREADY_GUEST,
            f"guest {existing.id} exists ({state}){_held_by(existing)}; apply will adopt it: groups and sponsors "
            "ensured, " + adopt_email_action(resend=resend and send_email),
            user_id=existing.id,
            resend=resend and send_email,
            **common,  # type: ignore[arg-type]
        )
    return RowPlan(row.row, row.email, InvitationOutcome.INVITE, "new guest", **common)  # type: ignore[arg-type]


def ambiguous_reason(key: str, holders: tuple[DirectoryUser, ...]) -> str:
    """Why a row whose address several users hold is not planned: naming them lets the admin clean up."""
    named = "; ".join(
        f"{'guest' if u.user_type == 'Guest' else 'member'} {u.id} ({u.matched_by or 'address'})" for u in holders
    )
    return (
        f"{key} is held by {len(holders)} users: {named}; guestctl will not guess which one this row means. "
        "Remove the address from all but one of them, then plan again"
    )


def _held_by(user: DirectoryUser) -> str:
    """Say which property holds the address when it is an alias, not the user's mail or UPN."""
    if user.matched_by in (None, "mail", "userPrincipalName"):
        return ""
    return f", found by its {user.matched_by}"


def adopt_email_action(*, resend: bool) -> str:
    """What adopting an existing guest does about email (plan and apply word it the same way)."""
    return "a new invitation email (--resend)" if resend else "no new invitation email"


def _resolve_groups(names: tuple[str, ...], directory: Directory) -> tuple[list[str], str | None]:
    ids = []
    for name in names:
        matches = matching_groups(name, directory.groups_by_key)
        if not matches:
            return [], f'group "{cut(name)}" not found'
        if len(matches) > 1:
            return [], f'group name "{cut(name)}" is ambiguous ({len(matches)} groups); use the group id'
        if matches[0].dynamic:
            return [], f'group "{cut(name)}" has dynamic membership; guests cannot be added to it'
        ids.append(matches[0].id)
    return ids, None
