"""Address rules (Graph's invitedUserEmailAddress rules), row limits, and the policy's domain lists."""

from __future__ import annotations

import pytest

from shared.config import InvitationPolicy
from shared.invitations.rows import InvitationRow
from shared.invitations.rules import domain_block_reason, email_problem, row_problem
from tests.support.invitations import address_of_length


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


# --- limits: whatever the plan accepts, Graph and the store can take (issue 9 §4) --------------------------

LONG_LOCAL = "a" * 64


def full_row(**fields: object) -> InvitationRow:
    return InvitationRow(1, "ann@fabrikam.com", **fields)  # type: ignore[arg-type]


def test_address_helper_lengths() -> None:
    assert len(address_of_length(254)) == 254
    assert len(address_of_length(263)) == 263


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param(full_row(), None, id="plain-row"),
        pytest.param(InvitationRow(1, address_of_length(254)), None, id="email-254-ok"),
        pytest.param(InvitationRow(1, f"{LONG_LOCAL}@fabrikam.com"), None, id="user-name-64-ok"),
        pytest.param(
            InvitationRow(1, address_of_length(263)), "email is 263 characters long, the limit is 254", id="email-263"
        ),
        pytest.param(
            InvitationRow(1, f"{LONG_LOCAL}b@fabrikam.com"),
            "the user name is 65 characters long, the limit is 64",
            id="user-name-65",
        ),
        pytest.param(
            InvitationRow(1, "ann\x01@fabrikam.com"), "control or invalid character", id="control-char-in-email"
        ),
        pytest.param(
            InvitationRow(1, "ann\ud800@fabrikam.com"), "control or invalid character", id="lone-surrogate-in-email"
        ),
        pytest.param(full_row(display_name="x" * 256), None, id="display-name-256-ok"),
        pytest.param(full_row(display_name="x" * 257), "display_name: 'xxxx", id="display-name-257"),
        pytest.param(
            full_row(display_name="Ann\x00Lee"),
            "display_name: 'Ann\\x00Lee' contains a control",
            id="nul-in-display-name",
        ),
        pytest.param(
            full_row(display_name="Ann\uffff"),
            "contains a control or invalid character",
            id="noncharacter-in-display-name",
        ),
        pytest.param(full_row(redirect_url="https://x.example/" + "p" * 2030), None, id="redirect-2048-ok"),
        pytest.param(
            full_row(redirect_url="https://x.example/" + "p" * 2031),
            "redirect_url is 2049 characters long",
            id="redirect-2049",
        ),
        pytest.param(full_row(redirect_url="http://[::1/x"), "is not an absolute http(s) URL", id="redirect-bad-ipv6"),
        pytest.param(
            full_row(redirect_url="ftp://x.example"), "is not an absolute http(s) URL", id="redirect-not-http"
        ),
        pytest.param(full_row(redirect_url="https://x.example/a b"), "contains a space", id="redirect-space"),
        pytest.param(
            full_row(message="Hello\n\tthere\r\n" + "x" * 9_985), None, id="message-10000-with-line-breaks-ok"
        ),
        pytest.param(
            full_row(message="x" * 10_001), "message is 10,001 characters long, the limit is 10,000", id="message-10001"
        ),
        pytest.param(full_row(message="a\x07b"), "message contains a control", id="bell-in-message"),
        pytest.param(full_row(groups=tuple(f"g{i}" for i in range(20))), None, id="20-groups-ok"),
        pytest.param(
            full_row(groups=tuple(f"g{i}" for i in range(21))),
            "groups lists 21, the limit is 20 per row",
            id="21-groups",
        ),
        pytest.param(full_row(groups=("g" * 257,)), "groups: 'gggg", id="group-name-257"),
        pytest.param(
            full_row(groups=("Fin\x1fance",)), "groups: 'Fin\\x1fance' contains a control", id="control-in-group"
        ),
        pytest.param(
            full_row(sponsors=tuple(f"s{i}@contoso.com" for i in range(6))),
            "sponsors lists 6, the limit is 5",
            id="6-sponsors",
        ),
        pytest.param(full_row(message="\U0001f600" * 10_000), "the row is 40,", id="row-too-big-for-a-queue-message"),
        pytest.param(
            InvitationRow(1, "", problems=("send_email must be true or false",)),
            "send_email must be",
            id="read-problem-first",
        ),
    ],
)
def test_row_problem(given: InvitationRow, expected: str | None) -> None:
    problem = row_problem(given)
    if expected is None:
        assert problem is None
    else:
        assert problem is not None
        assert expected in problem
        assert len(problem) < 300, "quoted values are cut"
