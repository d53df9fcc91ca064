"""Recognising existing users by every address Graph holds for them, and planning rows on that basis."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from shared.config import InvitationPolicy
from shared.graph.odata import IN_CHUNK
from shared.invitations.fetch import address_filters, held_addresses, holders_of
from shared.invitations.plan import Directory, DirectoryUser, InvitationOutcome, RowPlan, plan_invitations
from shared.invitations.rows import InvitationRow


def graph_user(user_id: str, user_type: str = "Guest", **fields: Any) -> dict[str, Any]:
    """A user object as Graph returns it with fetch's $select (absent collections come back empty)."""
    return {
        "id": user_id,
        "userType": user_type,
        "mail": None,
        "userPrincipalName": f"{user_id}#EXT#@contoso.onmicrosoft.com",
        "externalUserState": "Accepted",
        "otherMails": [],
        "proxyAddresses": [],
        "identities": [],
        **fields,
    }


def otp(address: str, issuer: str = "mail") -> dict[str, str]:
    return {"signInType": "federated", "issuer": issuer, "issuerAssignedId": address}


@pytest.mark.parametrize(
    ("user", "address", "where"),
    [
        pytest.param(graph_user("u", mail="Ann@Fabrikam.com"), "ann@fabrikam.com", "mail", id="mail-any-case"),
        pytest.param(
            graph_user("u", "Member", userPrincipalName="ann@contoso.com"),
            "ann@contoso.com",
            "userPrincipalName",
            id="upn",
        ),
        pytest.param(
            graph_user("u", otherMails=["x@y.com", "ann.private@mail.com"]),
            "ann.private@mail.com",
            "otherMails",
            id="other-mails",
        ),
        pytest.param(
            graph_user("u", proxyAddresses=["SMTP:ann@fabrikam.com"]),
            "ann@fabrikam.com",
            "proxyAddresses",
            id="proxy-primary-upper-smtp",
        ),
        pytest.param(
            graph_user("u", proxyAddresses=["smtp:ann.lee@fabrikam.com"]),
            "ANN.LEE@fabrikam.com",
            "proxyAddresses",
            id="proxy-alias-lower-smtp",
        ),
        pytest.param(
            graph_user("u", proxyAddresses=["Smtp:ann@fabrikam.com"]), "ann@fabrikam.com", "proxyAddresses", id="mixed"
        ),
        pytest.param(
            graph_user("u", proxyAddresses=["SIP:ann@fabrikam.com", "X500:/o=x/cn=ann@fabrikam.com"]),
            "ann@fabrikam.com",
            None,
            id="non-smtp-proxy-ignored",
        ),
        pytest.param(
            graph_user("u", identities=[otp("ann@gmail.example")]),
            "ann@gmail.example",
            "identities (mail)",
            id="otp-identity",
        ),
        pytest.param(
            graph_user("u", identities=[otp("ann@partner.example", issuer="partner.example")]),
            "ann@partner.example",
            "identities (partner.example)",
            id="federated-identity-any-issuer",
        ),
        pytest.param(
            graph_user("u", identities=[{"signInType": "federated", "issuer": "ExternalAzureAD"}]),
            "ann@fabrikam.com",
            None,
            id="identity-without-id",
        ),
        pytest.param(
            graph_user(
                "u",
                identities=[
                    {"signInType": "userPrincipalName", "issuer": "c.onmicrosoft.com", "issuerAssignedId": "a@b.com"}
                ],
            ),
            "a@b.com",
            None,
            id="upn-identity-not-an-alias",
        ),
        pytest.param(graph_user("u", mail="ann@fabrikam.com"), "ann@fabrikam.co", None, id="no-prefix-match"),
        pytest.param(
            graph_user("u", mail="ann@fabrikam.com", otherMails=["ann@fabrikam.com"]),
            "ann@fabrikam.com",
            "mail",
            id="mail-named-before-other-mails",
        ),
        pytest.param(
            graph_user("u", otherMails=None, proxyAddresses=None, identities=None),
            "ann@fabrikam.com",
            None,
            id="null-collections",
        ),
    ],
)
def test_held_addresses(user: dict[str, Any], address: str, where: str | None) -> None:
    assert held_addresses(user).get(address.lower()) == where


@pytest.mark.parametrize(
    ("users", "address", "expected"),
    [
        pytest.param([], "ann@fabrikam.com", [], id="nobody"),
        pytest.param(
            [graph_user("g1", otherMails=["ann@fabrikam.com"]), graph_user("g2", mail="bo@fabrikam.com")],
            "ann@fabrikam.com",
            [("g1", "otherMails")],
            id="one-holder",
        ),
        pytest.param(
            [graph_user("g1", mail="ann@fabrikam.com"), graph_user("g1", mail="ann@fabrikam.com")],
            "ann@fabrikam.com",
            [("g1", "mail")],
            id="same-user-from-two-lookups-once",
        ),
        pytest.param(
            [
                graph_user("g1", mail="ann@fabrikam.com"),
                graph_user("m1", "Member", proxyAddresses=["smtp:ann@fabrikam.com"]),
            ],
            "ann@fabrikam.com",
            [("g1", "mail"), ("m1", "proxyAddresses")],
            id="two-holders",
        ),
    ],
)
def test_holders_of(users: list[dict[str, Any]], address: str, expected: list[tuple[str, str]]) -> None:
    assert [(u.id, u.matched_by) for u in holders_of(address, users)] == expected


def test_address_filters_stay_within_graphs_or_limit() -> None:
    addresses = [f"a{i}@fabrikam.com" for i in range(IN_CHUNK)]
    filters = address_filters(addresses)
    assert [f.split("/")[0].split(" ")[0] for f in filters] == [
        "mail",
        "userPrincipalName",
        "otherMails",
        "proxyAddresses",
        "identities",
    ]
    for text in filters[2:]:
        assert text.count(" or ") == IN_CHUNK - 1  # 15 alternatives: Graph's default maximum
    assert "proxyAddresses/any(x:x eq 'smtp:a0@fabrikam.com')" in filters[3]
    assert "identities/any(x:x/issuer eq 'mail' and x/issuerAssignedId eq 'a0@fabrikam.com')" in filters[4]


def test_address_filters_quote_literals() -> None:
    assert "otherMails/any(x:x eq 'o''neil@fabrikam.com')" in address_filters(["o'neil@fabrikam.com"])[2]


GUEST = DirectoryUser("u-guest", "Guest", "ann@fabrikam.com", None, "Accepted", matched_by="otherMails")
MEMBER = DirectoryUser("u-member", "Member", "bo@contoso.com", "bo@contoso.com", matched_by="proxyAddresses")
TWINS = (
    DirectoryUser("u-1", "Guest", "cy@fabrikam.com", matched_by="mail"),
    DirectoryUser("u-2", "Member", "cy.b@contoso.com", matched_by="otherMails"),
)
DIRECTORY = Directory(
    users_by_address={"ann.alias@fabrikam.com": GUEST, "bo.alias@contoso.com": MEMBER},
    ambiguous_addresses={"cy@fabrikam.com": TWINS},
)


def plan_one(email: str) -> RowPlan:
    plan = plan_invitations(
        [InvitationRow(1, email)],
        DIRECTORY,
        InvitationPolicy(),
        batch_id="b1",
        source="t.csv",
        tenant_id="t",
        policy_digest="sha256:x",
        now=datetime(2026, 11, 27, tzinfo=UTC),
    )
    return plan.rows[0]


@pytest.mark.parametrize(
    ("email", "outcome", "user_id", "reason"),
    [
        pytest.param(
            "Ann.Alias@fabrikam.com",
            InvitationOutcome.ALREADY_GUEST,
            "u-guest",
            "guest u-guest exists (Accepted), found by its otherMails; apply will adopt it",
            id="guest-by-alias-adopted",
        ),
        pytest.param(
            "bo.alias@contoso.com",
            InvitationOutcome.ALREADY_MEMBER,
            "u-member",
            "belongs to member bo@contoso.com, found by its proxyAddresses; members are never invited",
            id="member-by-alias-skipped",
        ),
        pytest.param(
            "cy@fabrikam.com",
            InvitationOutcome.INVALID,
            None,
            "cy@fabrikam.com is held by 2 users: guest u-1 (mail); member u-2 (otherMails)",
            id="two-holders-invalid-naming-both",
        ),
        pytest.param("new@fabrikam.com", InvitationOutcome.INVITE, None, "new guest", id="unknown-invited"),
    ],
)
def test_plan_by_alias(email: str, outcome: InvitationOutcome, user_id: str | None, reason: str) -> None:
    planned = plan_one(email)
    assert (planned.outcome, planned.user_id) == (outcome, user_id)
    assert reason in planned.reason
