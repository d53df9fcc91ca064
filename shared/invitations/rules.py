"""Pure rules for one invitation row: is it acceptable to Graph, to the store and to our policy?

Graph's rules for `invitedUserEmailAddress`: none of ~ ! # $ % ^ & * ( ) + = [ ] { } \\ / | ;
: " < > ? , ; a `.` or `-` anywhere in the user name except its first or last character; `_` anywhere.
Checking them here turns Graph's 400 into a row-level reason before anything is sent.

The limits below make "planned" mean "can be applied": whatever the plan accepts fits Graph's properties,
a store key (the lower-cased address, at most 255 characters, no control characters) and record, and one
queue message. A row beyond them is `invalid` at plan time, with its row number, instead of failing the
apply. docs/invitations.md lists them.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from urllib.parse import urlsplit

from shared.config import InvitationPolicy
from shared.invitations.rows import InvitationRow, shown

FORBIDDEN_IN_ADDRESS = frozenset('~!#$%^&*()+=[]{}\\/|;:"<>?,')
_DOMAIN_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")

MAX_EMAIL_CHARS = 254  # an SMTP path's limit; Graph refuses longer addresses
MAX_USER_NAME_CHARS = 64  # the part before the @ (RFC 5321)
MAX_DISPLAY_NAME_CHARS = 256  # Graph's limit for a user's displayName
MAX_REDIRECT_URL_CHARS = 2048
MAX_MESSAGE_CHARS = 10_000  # our own email's personal message; sized so a row fits one queue message
MAX_GROUPS = 20  # per row: one `$batch` of references
MAX_SPONSORS = 5  # Entra ID allows five sponsors per user
MAX_REFERENCE_CHARS = 256  # a group's display name (Graph's limit) or id; a sponsor's UPN or id
# A queue message holds 64 KiB, 48 KiB of it before base64 (host.json messageEncoding); one row's JSON stays
# well under that, leaving room for the chunk's batch id and source name.
MAX_ROW_BYTES = 40_000
# C0 and C1 control characters: Azure Tables refuses them in keys and Graph in names. The message may
# have line breaks and tabs.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_CONTROL_IN_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_NONCHARACTER = re.compile("[\ufffe\uffff\ud800-\udfff]")  # lone surrogates come from JSON "\ud800"


def normalise_email(email: str) -> str:
    """The form used for de-duplication and idempotency keys: trimmed, lower-case."""
    return email.strip().lower()


def email_problem(email: str) -> str | None:
    """Why Graph would refuse this address, or None if it is acceptable."""
    if not email:
        return "email is empty"
    quoted = shown(email)
    if len(email) > MAX_EMAIL_CHARS or len(normalise_email(email)) > MAX_EMAIL_CHARS:
        return f"email is {len(email)} characters long, the limit is {MAX_EMAIL_CHARS}: {quoted}"
    if _CONTROL.search(email) or _NONCHARACTER.search(email):
        return f"email {quoted} contains a control or invalid character"
    if any(ch.isspace() for ch in email):
        return f"email {quoted} contains a space"
    if email.count("@") != 1:
        return f"email {quoted} must contain exactly one @"
    local, domain = email.split("@")
    bad = sorted({ch for ch in email if ch in FORBIDDEN_IN_ADDRESS})
    if bad:
        return f"email {quoted} contains {' '.join(bad)}, which Graph does not allow"
    if not local:
        return f"email {quoted} has no user name before the @"
    if len(local) > MAX_USER_NAME_CHARS:
        return f"email {quoted}: the user name is {len(local)} characters long, the limit is {MAX_USER_NAME_CHARS}"
    if local[0] in ".-" or local[-1] in ".-":
        return f"email {quoted}: the user name must not start or end with . or -"
    labels = domain.lower().split(".")
    if len(labels) < 2 or not all(_DOMAIN_LABEL.match(label) for label in labels):
        return f"email {quoted}: {shown(domain)} is not a valid domain"
    return None


def url_problem(url: str, what: str = "redirect_url") -> str | None:
    """Why `url` cannot be an invitation's redirect URL, or None."""
    if len(url) > MAX_REDIRECT_URL_CHARS:
        return f"{what} is {len(url)} characters long, the limit is {MAX_REDIRECT_URL_CHARS}: {shown(url)}"
    if _CONTROL.search(url) or _NONCHARACTER.search(url) or any(ch.isspace() for ch in url):
        return f"{what} {shown(url)} contains a space, control or invalid character"
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("https", "http") or not parts.netloc:
        return f"{what} {shown(url)} is not an absolute http(s) URL"
    return None


def row_problem(row: InvitationRow) -> str | None:
    """Why this row cannot be invited as given, judged without the directory or the policy; None if it can."""
    if row.problems:
        return "; ".join(row.problems)
    if problem := email_problem(row.email):
        return problem
    if row.display_name is not None and (problem := _text_problem("display_name", row.display_name)):
        return problem
    if row.redirect_url is not None and (problem := url_problem(row.redirect_url)):
        return problem
    if row.message is not None:
        if len(row.message) > MAX_MESSAGE_CHARS:
            return f"message is {len(row.message):,} characters long, the limit is {MAX_MESSAGE_CHARS:,}"
        if _CONTROL_IN_TEXT.search(row.message) or _NONCHARACTER.search(row.message):
            return "message contains a control or invalid character"
    for column, names, most in (("groups", row.groups, MAX_GROUPS), ("sponsors", row.sponsors, MAX_SPONSORS)):
        if len(names) > most:
            return f"{column} lists {len(names)}, the limit is {most} per row"
        for name in names:
            if problem := _text_problem(column, name, limit=MAX_REFERENCE_CHARS):
                return problem
    size = len(json.dumps(asdict(row), ensure_ascii=False).encode("utf-8"))
    if size > MAX_ROW_BYTES:
        return f"the row is {size:,} bytes as UTF-8, the limit is {MAX_ROW_BYTES:,}; shorten the message"
    return None


def _text_problem(column: str, value: str, limit: int = MAX_DISPLAY_NAME_CHARS) -> str | None:
    if len(value) > limit:
        return f"{column}: {shown(value)} is {len(value)} characters long, the limit is {limit}"
    if _CONTROL.search(value) or _NONCHARACTER.search(value):
        return f"{column}: {shown(value)} contains a control or invalid character"
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
