"""Planning rows against what the directory holds: one outcome per row, with the reason."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.config import InvitationPolicy
from shared.invitations.plan import Directory, DirectoryGroup, DirectoryUser, InvitationOutcome, plan_invitations
from shared.invitations.rows import InvitationRow
from tests.support.invitations import LONG_ADDRESS, NOW

FINANCE = DirectoryGroup("g-fin", "Finance Partners")
SPONSOR = DirectoryUser("u-boss", "Member", "boss@contoso.com", "boss@contoso.com")
DIRECTORY = Directory(
    users_by_address={
        "guest@fabrikam.com": DirectoryUser("u-guest", "Guest", "guest@fabrikam.com", None, "Accepted"),
        "member@contoso.com": DirectoryUser("u-member", "Member", "member@contoso.com", "member@contoso.com"),
    },
    groups_by_key={
        "g-fin": [FINANCE],
        "finance partners": [FINANCE],
        "projects": [DirectoryGroup("g-p1", "Projects"), DirectoryGroup("g-p2", "Projects")],
        "all guests": [DirectoryGroup("g-dyn", "All Guests", dynamic=True)],
    },
    sponsors_by_key={"u-boss": SPONSOR, "boss@contoso.com": SPONSOR},
)
POLICY = InvitationPolicy(denied_domains=["gmail.com"])


def row(email: str, number: int = 1, **fields: object) -> InvitationRow:
    return InvitationRow(number, email, **fields)  # type: ignore[arg-type]


def plan_one(r: InvitationRow, policy: InvitationPolicy = POLICY, resend: bool = False):
    plan = plan_invitations(
        [r],
        DIRECTORY,
        policy,
        batch_id="b1",
        source="t.csv",
        tenant_id="t",
        policy_digest="sha256:x",
        now=NOW,
        resend=resend,
    )
    return plan.rows[0]


@pytest.mark.parametrize(
    ("given", "outcome", "reason"),
    [
        pytest.param(row("new@fabrikam.com"), InvitationOutcome.INVITE, "new guest", id="new-address-invited"),
        pytest.param(
            row("Guest@Fabrikam.com"),
            InvitationOutcome.ALREADY_GUEST,
            "guest u-guest exists (Accepted)",
            id="existing-guest-adopted-case-insensitively",
        ),
        pytest.param(
            row("member@contoso.com"),
            InvitationOutcome.ALREADY_MEMBER,
            "members are never invited",
            id="member-address-never-invited",
        ),
        pytest.param(row("x@gmail.com"), InvitationOutcome.BLOCKED_DOMAIN, "denied by the policy", id="denied-domain"),
        pytest.param(row("bad+x@fabrikam.com"), InvitationOutcome.INVALID, "contains +", id="graph-syntax-rule"),
        pytest.param(
            row("n@fabrikam.com", groups=("Nope",)),
            InvitationOutcome.INVALID,
            'group "Nope" not found',
            id="unknown-group",
        ),
        pytest.param(
            row("n@fabrikam.com", groups=("Projects",)),
            InvitationOutcome.INVALID,
            "ambiguous (2 groups)",
            id="ambiguous-group-name",
        ),
        pytest.param(
            row("n@fabrikam.com", groups=("All Guests",)),
            InvitationOutcome.INVALID,
            "dynamic membership",
            id="dynamic-group-refused",
        ),
        pytest.param(
            row("n@fabrikam.com", sponsors=("who@contoso.com",)),
            InvitationOutcome.INVALID,
            'sponsor "who@contoso.com" not found',
            id="unknown-sponsor",
        ),
        pytest.param(
            row("n@fabrikam.com", problems=("send_email must be true or false (got 'x')",)),
            InvitationOutcome.INVALID,
            "send_email",
            id="row-problem",
        ),
        pytest.param(
            row("n@fabrikam.com", redirect_url="myapps"),
            InvitationOutcome.INVALID,
            "not an absolute",
            id="relative-redirect",
        ),
        pytest.param(
            row("n@fabrikam.com", message="Welcome"),
            InvitationOutcome.INVALID,
            "needs invitations.sender_mailbox",
            id="custom-message-needs-sender",
        ),
    ],
)
def test_outcome_per_row(given: InvitationRow, outcome: InvitationOutcome, reason: str) -> None:
    planned = plan_one(given)
    assert planned.outcome is outcome
    assert reason in planned.reason


def test_groups_and_sponsors_resolve_by_id_or_name() -> None:
    planned = plan_one(row("n@fabrikam.com", groups=("finance partners", "g-fin"), sponsors=("BOSS@contoso.com",)))
    assert planned.group_ids == ("g-fin",)
    assert planned.sponsor_ids == ("u-boss",)


def test_duplicates_name_the_first_row() -> None:
    rows = [row("a@fabrikam.com", 1), row("b@fabrikam.com", 2), row("A@Fabrikam.COM", 3)]
    plan = plan_invitations(
        rows, DIRECTORY, POLICY, batch_id="b", source="s", tenant_id=None, policy_digest="d", now=NOW
    )
    assert [r.outcome for r in plan.rows] == [
        InvitationOutcome.INVITE,
        InvitationOutcome.INVITE,
        InvitationOutcome.INVALID,
    ]
    assert plan.rows[2].reason == "duplicate of row 1 (a@fabrikam.com)"
    assert plan.counts() == {"invite": 2, "already-guest": 0, "already-member": 0, "invalid": 1, "blocked-domain": 0}


def test_custom_message_uses_the_template() -> None:
    policy = InvitationPolicy(
        sender_mailbox="invites@contoso.com", message_template="Hello {display_name}: {message} {redeem_url}"
    )
    planned = plan_one(row("n@fabrikam.com", message="join us"), policy)
    assert planned.custom_message == "Hello {display_name}: join us {redeem_url}"


@pytest.mark.parametrize(("resend", "expected"), [(False, False), (True, True)], ids=["adopt-silently", "resend"])
def test_resend_only_when_asked(resend: bool, expected: bool) -> None:
    assert plan_one(row("guest@fabrikam.com"), resend=resend).resend is expected


def test_send_email_false_in_row_wins_over_policy() -> None:
    assert plan_one(row("n@fabrikam.com", send_email=False)).send_email is False


def test_plan_digest_ignores_creation_time() -> None:
    rows = [row("a@fabrikam.com")]
    args = {"batch_id": "b", "source": "s", "tenant_id": None, "policy_digest": "d"}
    first = plan_invitations(rows, DIRECTORY, POLICY, now=NOW, **args)
    later = plan_invitations(rows, DIRECTORY, POLICY, now=datetime(2027, 1, 1, tzinfo=UTC), **args)
    assert first.digest() == later.digest()


@pytest.mark.parametrize(
    ("resend", "reason"),
    [
        pytest.param(
            False,
            "guest u-guest exists (Accepted); apply will adopt it: groups and sponsors ensured, "
            "no new invitation email",
            id="adopt",
        ),
        pytest.param(
            True,
            "guest u-guest exists (Accepted); apply will adopt it: groups and sponsors ensured, "
            "a new invitation email (--resend)",
            id="adopt-and-resend",
        ),
    ],
)
def test_plan_says_what_apply_will_do_for_an_existing_guest(resend: bool, reason: str) -> None:
    planned = plan_one(row("guest@fabrikam.com"), resend=resend)
    assert (planned.outcome, planned.reason) == (InvitationOutcome.ALREADY_GUEST, reason)


def test_an_overlong_address_is_invalid_with_its_row_and_the_others_are_planned() -> None:
    plan = plan_invitations(
        [row("one@fabrikam.com", 1), row(LONG_ADDRESS, 2), row("two@fabrikam.com", 3)],
        DIRECTORY,
        POLICY,
        batch_id="b1",
        source="t.csv",
        tenant_id="t",
        policy_digest="sha256:x",
        now=NOW,
    )
    assert [(r.row, r.outcome) for r in plan.rows] == [
        (1, InvitationOutcome.INVITE),
        (2, InvitationOutcome.INVALID),
        (3, InvitationOutcome.INVITE),
    ]
    assert plan.rows[1].reason.startswith("email is 263 characters long, the limit is 254: 'aaaa")
    assert len(plan.rows[1].reason) < 160


def test_an_unparseable_redirect_url_is_invalid_not_an_exception() -> None:
    planned = plan_one(row("new@fabrikam.com", redirect_url="http://[::1/x"))
    assert planned.outcome is InvitationOutcome.INVALID
    assert "is not an absolute http(s) URL" in planned.reason
