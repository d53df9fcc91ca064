"""Address rules (Graph's invitedUserEmailAddress rules, graph-facts §1) and the policy's domain lists."""

from __future__ import annotations

import pytest

from shared.config import InvitationPolicy
from shared.invitations.rules import domain_block_reason, email_problem


@pytest.mark.parametrize(
    "email",
    [
        pytest.param("ann@fabrikam.com", id="plain"),
        pytest.param("ann.lee@fabrikam.co.uk", id="dot-inside"),
        pytest.param("_ann_@fabrikam.com", id="underscore-anywhere"),
        pytest.param("ann-lee@sub.fabrikam.com", id="hyphen-inside-subdomain"),
        pytest.param("Ann@Fabrikam.COM", id="upper-case"),
    ],
)
def test_acceptable_addresses(email: str) -> None:
    assert email_problem(email) is None


@pytest.mark.parametrize(
    ("email", "expected"),
    [
        pytest.param("", "empty", id="empty"),
        pytest.param("ann fabrikam.com", "space", id="space"),
        pytest.param("ann.fabrikam.com", "exactly one @", id="no-at"),
        pytest.param("a@b@fabrikam.com", "exactly one @", id="two-ats"),
        pytest.param("ann+tag@fabrikam.com", "contains +", id="plus-not-allowed"),
        pytest.param("o'neil#x@fabrikam.com", "contains #", id="hash-not-allowed"),
        pytest.param(".ann@fabrikam.com", "must not start or end", id="leading-dot"),
        pytest.param("ann-@fabrikam.com", "must not start or end", id="trailing-hyphen"),
        pytest.param("@fabrikam.com", "no user name", id="no-local-part"),
        pytest.param("ann@localhost", "not a valid domain", id="single-label-domain"),
        pytest.param("ann@fab_rikam.com", "not a valid domain", id="underscore-in-domain"),
    ],
)
def test_refused_addresses(email: str, expected: str) -> None:
    assert expected in (email_problem(email) or "")


@pytest.mark.parametrize(
    ("allowed", "denied", "email", "expected"),
    [
        pytest.param([], [], "a@gmail.com", None, id="no-lists-allow-all"),
        pytest.param([], ["gmail.com"], "a@GMAIL.com", "denied by the policy", id="denied"),
        pytest.param([], ["fabrikam.com"], "a@eu.fabrikam.com", "denied", id="subdomain-of-denied"),
        pytest.param(["fabrikam.com"], [], "a@contoso.com", "not in the policy", id="not-allowed"),
        pytest.param(["fabrikam.com"], [], "a@eu.fabrikam.com", None, id="subdomain-of-allowed"),
        pytest.param(["fabrikam.com"], ["fabrikam.com"], "a@fabrikam.com", "denied", id="deny-wins"),
        pytest.param([], ["fabrikam.com"], "a@notfabrikam.com", None, id="suffix-is-not-subdomain"),
    ],
)
def test_domain_lists(allowed: list[str], denied: list[str], email: str, expected: str | None) -> None:
    policy = InvitationPolicy(allowed_domains=allowed, denied_domains=denied)
    reason = domain_block_reason(email, policy)
    assert (reason is None) if expected is None else (expected in (reason or ""))
