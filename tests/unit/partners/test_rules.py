"""Partner rules: where a guest comes from, what keeps a guest account, and the recommendation per partner."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from shared.partners.records import DirectConnect, Guest, Usage
from shared.partners.rules import (
    PartnerFacts,
    Use,
    Verdict,
    access_state,
    direct_connect,
    home_domain,
    is_active,
    no_tenant_reason,
    recommend,
    use_of,
)
from shared.stale.records import SignIn

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
BLOCKED = DirectConnect("blocked", "blocked", explicit=False)
CONFIGURED = DirectConnect("allowed", "blocked", explicit=True)
ALLOWED_ALL = {
    "usersAndGroups": {"accessType": "allowed", "targets": [{"target": "AllUsers", "targetType": "user"}]},
    "applications": {"accessType": "allowed", "targets": [{"target": "AllApplications", "targetType": "application"}]},
}
SOME_USERS = {
    "usersAndGroups": {"accessType": "allowed", "targets": [{"target": "0f0e…", "targetType": "group"}]},
    "applications": {"accessType": "allowed", "targets": [{"target": "Office365", "targetType": "application"}]},
}


def guest(**fields: Any) -> Guest:
    """A guest as Graph returns it (Graph's property names)."""
    document = {"id": "1", "userType": "Guest", "externalUserState": "Accepted", "mail": "ann@fabrikam.com", **fields}
    return msgspec.convert(document, Guest)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param({}, "fabrikam.com", id="mail"),
        pytest.param({"mail": None, "otherMails": ["Ann@Tailspin.COM"]}, "tailspin.com", id="otherMails-lowercased"),
        pytest.param(
            {
                "mail": None,
                "identities": [{"signInType": "federated", "issuer": "mail", "issuerAssignedId": "a@x.org"}],
            },
            "x.org",
            id="identity-address",
        ),
        pytest.param({"mail": None}, None, id="no-address-no-domain"),
    ],
)
def test_home_domain(fields: dict, expected: str | None) -> None:
    assert home_domain(guest(**fields)) == expected


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param({}, None, id="company-domain-may-have-a-tenant"),
        pytest.param({"mail": "ann@gmail.com"}, "consumer mail", id="consumer-mail"),
        pytest.param({"mail": None}, "no mail domain", id="no-domain"),
        pytest.param(
            {"identities": [{"signInType": "federated", "issuer": "mail"}]},
            "non-Entra identity (mail)",
            id="one-time-passcode-guest",
        ),
        pytest.param(
            {"identities": [{"signInType": "federated", "issuer": "ExternalAzureAD"}]}, None, id="entra-guest"
        ),
        pytest.param(
            {"externalUserState": "PendingAcceptance", "identities": [{"signInType": "federated", "issuer": "mail"}]},
            None,
            id="pending-guest-judged-by-domain",
        ),
    ],
)
def test_no_tenant_reason(fields: dict, expected: str | None) -> None:
    one = guest(**fields)
    assert no_tenant_reason(one, home_domain(one)) == expected


@pytest.mark.parametrize(
    ("sign_in", "expected"),
    [
        pytest.param(None, False, id="unknown-is-not-active"),
        pytest.param(SignIn(successful=NOW - timedelta(days=89)), True, id="89-days"),
        pytest.param(SignIn(successful=NOW - timedelta(days=91)), False, id="91-days"),
        pytest.param(SignIn(non_interactive=NOW - timedelta(days=3)), True, id="token-refresh-counts"),
    ],
)
def test_is_active(sign_in: SignIn | None, expected: bool) -> None:
    assert is_active(sign_in, NOW) is expected


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        pytest.param(Usage(teams=2), Use.TEAMS_ONLY, id="teams-only"),
        pytest.param(Usage(teams=2, apps=1), Use.APPS, id="an-app-keeps-the-account"),
        pytest.param(Usage(teams=1, other_groups=1), Use.GROUPS, id="another-group-keeps-the-account"),
        pytest.param(Usage(teams=1, role_holder=True), Use.ROLE, id="role-holders-never-migrate"),
        pytest.param(Usage(), Use.NOTHING, id="no-access-is-not-a-candidate"),
    ],
)
def test_use_of(usage: Usage, expected: Use) -> None:
    assert use_of(usage) is expected


@pytest.mark.parametrize(
    ("facts", "verdict", "reasons"),
    [
        pytest.param(
            PartnerFacts(45, {Use.TEAMS_ONLY: 40, Use.APPS: 5}, BLOCKED),
            Verdict.MIGRATE,
            ("40 of 45 guests are Teams-only", "direct connect not yet configured", "5 use apps"),
            id="mostly-teams-only-migrates",
        ),
        pytest.param(
            PartnerFacts(12, {Use.APPS: 12}, BLOCKED), Verdict.KEEP_GUESTS, ("12 use apps",), id="apps-keep-guests"
        ),
        pytest.param(
            PartnerFacts(10, {Use.TEAMS_ONLY: 4, Use.GROUPS: 6}, BLOCKED),
            Verdict.KEEP_GUESTS,
            ("only 4 of 10 guests are Teams-only", "6 use other groups"),
            id="teams-only-minority-keeps-guests",
        ),
        pytest.param(
            PartnerFacts(3, {}, None, no_tenant="consumer mail"),
            Verdict.NO_TENANT,
            ("consumer mail",),
            id="no-tenant",
        ),
        pytest.param(
            PartnerFacts(2, {Use.TEAMS_ONLY: 2}, CONFIGURED, direct_connect_sign_ins=3),
            Verdict.ALREADY_CONFIGURED,
            (
                "direct connect inbound allowed by a partner configuration",
                "3 direct connect sign-ins from them",
                "2 of 2 guests are Teams-only",
            ),
            id="configured-and-used",
        ),
        pytest.param(
            PartnerFacts(3, {Use.TEAMS_ONLY: 3}, CONFIGURED),
            Verdict.AWAITING_PARTNER,
            (
                "direct connect inbound allowed by a partner configuration",
                "no direct connect sign-ins from them yet: their outbound setting may not allow us",
                "3 of 3 guests are Teams-only",
            ),
            id="configured-but-never-used",
        ),
    ],
)
def test_recommend(facts: PartnerFacts, verdict: Verdict, reasons: tuple[str, ...]) -> None:
    made = recommend(facts)
    assert (made.verdict, made.reasons) == (verdict, reasons)


@pytest.mark.parametrize(
    ("direction", "expected"),
    [
        pytest.param(None, "blocked", id="unset-is-blocked"),
        pytest.param(ALLOWED_ALL, "allowed", id="all-users-all-apps"),
        pytest.param(SOME_USERS, "some", id="named-groups"),
        pytest.param({**ALLOWED_ALL, "applications": {"accessType": "blocked"}}, "blocked", id="apps-blocked"),
    ],
)
def test_access_state(direction: dict | None, expected: str) -> None:
    assert access_state(direction) == expected


def test_a_partner_setting_left_null_inherits_the_default() -> None:
    default = {"b2bDirectConnectInbound": ALLOWED_ALL, "b2bDirectConnectOutbound": None}
    assert direct_connect(default, None) == DirectConnect("allowed", "blocked", explicit=False)
    partner = {"b2bDirectConnectInbound": None, "b2bDirectConnectOutbound": SOME_USERS}
    assert direct_connect(default, partner) == DirectConnect("allowed", "some", explicit=False)
    assert direct_connect({}, {"b2bDirectConnectInbound": SOME_USERS}).explicit is True
