"""Pure rules for one invitation row: is the address acceptable to Graph and to our policy?

Graph's rules for `invitedUserEmailAddress` (graph-facts §1): none of ~ ! # $ % ^ & * ( ) + = [ ] { } \\ / | ;
: " < > ? , ; a `.` or `-` anywhere in the user name except its first or last character; `_` anywhere.
Checking them here turns Graph's 400 into a row-level reason before anything is sent.
"""

from __future__ import annotations

import re

from shared.config import InvitationPolicy

FORBIDDEN_IN_ADDRESS = frozenset('~!#$%^&*()+=[]{}\\/|;:"<>?,')
_DOMAIN_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def normalise_email(email: str) -> str:
    """The form used for de-duplication and idempotency keys: trimmed, lower-case."""
    return email.strip().lower()


def email_problem(email: str) -> str | None:
    """Why Graph would refuse this address, or None if it is acceptable."""
    if not email:
        return "email is empty"
    if any(ch.isspace() for ch in email):
        return f"email {email!r} contains a space"
    if email.count("@") != 1:
        return f"email {email!r} must contain exactly one @"
    local, domain = email.split("@")
    bad = sorted({ch for ch in email if ch in FORBIDDEN_IN_ADDRESS})
    if bad:
        return f"email {email!r} contains {' '.join(bad)}, which Graph does not allow"
    if not local:
        return f"email {email!r} has no user name before the @"
    if local[0] in ".-" or local[-1] in ".-":
        return f"email {email!r}: the user name must not start or end with . or -"
    labels = domain.lower().split(".")
    if len(labels) < 2 or not all(_DOMAIN_LABEL.match(label) for label in labels):
        return f"email {email!r}: {domain!r} is not a valid domain"
    return None


def domain_of(email: str) -> str:
    return email.rsplit("@", 1)[-1].strip().lower()


def domain_block_reason(email: str, policy: InvitationPolicy) -> str | None:
    """Why the policy refuses this address's domain (deny wins over allow; subdomains match), or None."""
    domain = domain_of(email)

    def listed(domains: list[str]) -> str | None:
        return next((d for d in domains if domain == d or domain.endswith("." + d)), None)

    if denied := listed(policy.denied_domains):
        return f"domain {domain} is denied by the policy (invitations.denied_domains: {denied})"
    if policy.allowed_domains and not listed(policy.allowed_domains):
        return f"domain {domain} is not in the policy's invitations.allowed_domains"
    return None
