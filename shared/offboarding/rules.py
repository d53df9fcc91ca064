"""Pure rules of HR offboarding: who the worker is, what may be changed, who inherits their guests.

"Why was this guest disabled / re-sponsored / flagged?" is answered here and nowhere else.
"""

from __future__ import annotations

from enum import StrEnum

from shared.offboarding.records import Group, Person, Sponsored

GUEST = "Guest"


class WorkerKind(StrEnum):
    GUEST = "guest"  # a B2B guest account here: disabled, memberships removed, deleted after the grace
    MEMBER = "member"  # a member of our tenant: never disabled here, only their sponsorships move
    DIRECT_CONNECT = "direct-connect"  # no object here: the shared channels guestctl added them to


def kind_of(worker: Person | None) -> WorkerKind:
    if worker is None:
        return WorkerKind.DIRECT_CONNECT
    return WorkerKind.GUEST if worker.user_type == GUEST else WorkerKind.MEMBER


def why_not_disable(worker: Person, exempt: str | None) -> str | None:
    """Why this worker's guest account must not be disabled (None: it may be)."""
    if worker.user_type != GUEST:
        # The identity team's leaver process disables members; guestctl never changes a member.
        return f"not a guest (userType {worker.user_type}): guestctl never disables members"
    if exempt:
        return f"exempt: {exempt}"
    return None


def why_keep_membership(group: Group) -> str | None:
    """Why a direct membership is left in place (None: remove it with `$ref`)."""
    if group.dynamic:
        return f"dynamic group {group.display_name or group.id}: its rule decides membership, it cannot be removed"
    return None


def new_sponsor(leaver: Person, manager: Person | None, fallback: Person | None) -> tuple[Person | None, str]:
    """Who inherits the leaver's guests, and why: the manager, else the policy's fallback sponsor."""
    for candidate, role in ((manager, "manager"), (fallback, "offboarding.fallback_sponsor")):
        if candidate is None or candidate.id.lower() == leaver.id.lower():
            continue
        if candidate.enabled is False:
            continue  # a disabled sponsor is no sponsor
        return candidate, f"the leaver's {role}" if role == "manager" else role
    if manager is None and fallback is None:
        return None, "the leaver has no manager and offboarding.fallback_sponsor is not set"
    return None, "neither the leaver's manager nor offboarding.fallback_sponsor can sponsor (disabled)"


def sponsors_left(guest: Sponsored, leaver_id: str, added: str | None) -> frozenset[str]:
    """The guest's sponsors once the leaver is removed (and the new sponsor added)."""
    left = guest.sponsor_ids - {leaver_id.lower()}
    return left | {added.lower()} if added else left
