"""Graph → records for planning: who already holds each address, which groups and sponsors exist.

A person is recognised by every address Graph keeps for them, not only `mail` and the UPN: `otherMails`,
the SMTP entries of `proxyAddresses` (`SMTP:` primary, `smtp:` aliases) and the email-one-time-passcode
identity (issuer `mail`). Otherwise someone who exists under an alias would be invited a second time.

Lookups are batched: per chunk of at most IN_CHUNK addresses, one `in (...)` filter each for mail and UPN
and one `or` chain of `any(...)` lambdas each for otherMails, proxyAddresses and identities, up to 20
requests per `$batch` round trip, through the paced Graph client — never one request per row (1,000
rows ≈ 17 round trips for the addresses). Graph refuses more than 15 alternatives in one `in` list or
`or` chain. Every filter here works without `ConsistencyLevel: eventual`, and none is sent: the default
index is read consistently, so a guest invited a minute ago is found, where an advanced query could miss it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from shared.errors import GraphError
from shared.graph import Graph
from shared.graph.batch import BatchRequest
from shared.graph.client import build_url
from shared.graph.odata import (
    GROUP_SELECT,
    GroupRef,
    chunks,
    group_filters,
    index_groups,
    is_object_id,
    literal,
    literals,
)
from shared.invitations.plan import Directory, DirectoryUser
from shared.invitations.rows import InvitationRow
from shared.invitations.rules import normalise_email, row_problem

USER_SELECT = "id,userType,mail,userPrincipalName,externalUserState,otherMails,proxyAddresses,identities"
# Identities can be filtered on issuerAssignedId only together with issuer. `mail` is the issuer of
# email-one-time-passcode guests, whose issuerAssignedId is their address; Entra ID, Microsoft account,
# Google, Facebook and SAML/WS-Fed identities carry no address there (those guests are found by mail and
# otherMails, which an invitation sets to the invited address).
EMAIL_ISSUER = "mail"
SMTP = "smtp:"


def address_filters(addresses: list[str]) -> list[str]:
    """The `$filter`s that find every user holding one of these (at most IN_CHUNK) addresses."""
    return [
        f"mail in ({literals(addresses)})",
        f"userPrincipalName in ({literals(addresses)})",
        " or ".join(f"otherMails/any(x:x eq {literal(a)})" for a in addresses),
        # Graph compares case-insensitively: 'smtp:' matches the primary 'SMTP:' entry and the aliases.
        " or ".join(f"proxyAddresses/any(x:x eq {literal(SMTP + a)})" for a in addresses),
        " or ".join(
            f"identities/any(x:x/issuer eq {literal(EMAIL_ISSUER)} and x/issuerAssignedId eq {literal(a)})"
            for a in addresses
        ),
    ]


def held_addresses(user: Mapping[str, Any]) -> dict[str, str]:
    """Every address a Graph user object answers to (lower-case) → the first property holding it."""
    held: dict[str, str] = {}

    def add(value: object, where: str) -> None:
        if isinstance(value, str) and value.strip():
            held.setdefault(normalise_email(value), where)

    add(user.get("mail"), "mail")
    add(user.get("userPrincipalName"), "userPrincipalName")
    for other in user.get("otherMails") or ():
        add(other, "otherMails")
    for proxy in user.get("proxyAddresses") or ():
        if isinstance(proxy, str) and proxy[: len(SMTP)].lower() == SMTP:  # not X500:, SIP:, …
            add(proxy[len(SMTP) :], "proxyAddresses")
    for identity in user.get("identities") or ():
        if isinstance(identity, Mapping) and identity.get("signInType") != "userPrincipalName":
            add(identity.get("issuerAssignedId"), f"identities ({identity.get('issuer')})")
    return held


def holders_of(address: str, users: Iterable[Mapping[str, Any]]) -> tuple[DirectoryUser, ...]:
    """The distinct users (by id, in the order given) that hold this address, each saying where."""
    key = normalise_email(address)
    found: dict[str, DirectoryUser] = {}
    for item in users:
        where = held_addresses(item).get(key)
        if where is not None and item["id"] not in found:
            found[item["id"]] = replace(_user(item), matched_by=where)
    return tuple(found.values())


async def fetch_directory(graph: Graph, rows: Iterable[InvitationRow]) -> Directory:
    """Everything `plan_invitations` needs to know about the directory for these rows."""
    # Rows the plan will call invalid anyway are not looked up: an overlong value would fail the whole lookup.
    rows = [r for r in rows if row_problem(r) is None]
    addresses = sorted({normalise_email(r.email) for r in rows})
    group_keys = sorted({g for r in rows for g in r.groups})
    sponsor_keys = sorted({s for r in rows for s in r.sponsors})

    lookups: list[tuple[str, str, str]] = []  # (kind, path, filter)
    for chunk in chunks(addresses):
        lookups.extend(("address", "/users", filter_) for filter_ in address_filters(chunk))
    lookups.extend(("group", "/groups", filter_) for filter_ in group_filters(group_keys))
    sponsor_ids = [k for k in sponsor_keys if is_object_id(k)]
    sponsor_names = [k for k in sponsor_keys if not is_object_id(k)]
    for chunk in chunks(sponsor_ids):
        lookups.append(("sponsor", "/users", f"id in ({literals(chunk)})"))
    for chunk in chunks(sponsor_names):
        lookups.append(("sponsor", "/users", f"userPrincipalName in ({literals(chunk)})"))
        lookups.append(("sponsor", "/users", f"mail in ({literals(chunk)})"))

    requests = [
        BatchRequest(
            str(index),
            "GET",
            build_url(
                "", path, {"$filter": filter_, "$select": GROUP_SELECT if kind == "group" else USER_SELECT, "$top": 999}
            ),
        )
        for index, (kind, path, filter_) in enumerate(lookups)
    ]
    responses = await graph.batch(requests)

    found: dict[str, dict[str, Any]] = {}  # id → Graph's user object, from any address lookup
    groups: dict[str, list[GroupRef]] = {}
    sponsors: dict[str, DirectoryUser] = {}
    for index, (kind, _, filter_) in enumerate(lookups):
        response = responses.get(str(index))
        if response is None or not response.ok:
            status = response.status if response else "no response"
            code = ((response.body or {}).get("error") or {}).get("code") if response else None
            raise GraphError(
                f"directory lookup failed ({filter_[:60]}…): {status} {code or ''}".rstrip(),
                status=response.status if response else None,
                code=code,
            )
        for item in (response.body or {}).get("value", []):
            if kind == "group":
                index_groups(groups, [item])
                continue
            if kind == "address":
                found.setdefault(item["id"], item)
                continue
            user = _user(item)
            for key in (user.id, user.mail, user.user_principal_name):
                if key:
                    sponsors[key.lower()] = user
    users: dict[str, DirectoryUser] = {}
    ambiguous: dict[str, tuple[DirectoryUser, ...]] = {}
    for address in addresses:
        holders = holders_of(address, found.values())
        if len(holders) == 1:
            users[address] = holders[0]
        elif holders:
            ambiguous[address] = holders
    return Directory(
        users_by_address=users, groups_by_key=groups, sponsors_by_key=sponsors, ambiguous_addresses=ambiguous
    )


def _user(item: dict[str, Any]) -> DirectoryUser:
    return DirectoryUser(
        id=item["id"],
        user_type=item.get("userType") or "Member",
        mail=item.get("mail"),
        user_principal_name=item.get("userPrincipalName"),
        external_user_state=item.get("externalUserState"),
    )
