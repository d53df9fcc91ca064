"""Last activity and categories: the table of cases in docs/stale.md, one row per test."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from shared.config import StalePolicy
from shared.stale.records import ExternalState, Guest, SignIn, UnreadableUserError, decode_guest, decode_page
from shared.stale.rules import Category, categorise, last_activity
from tests.support.stale import NOW

POLICY = StalePolicy(inactive_days=90, never_redeemed_days=30)


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def on(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)


INVITED = datetime(2022, 1, 10, tzinfo=UTC)
REDEEMED = datetime(2022, 1, 11, tzinfo=UTC)
NO_SIGN_INS = SignIn()


def guest(
    *,
    created: datetime | None = INVITED,
    state: ExternalState = ExternalState.ACCEPTED,
    state_changed: datetime | None = REDEEMED,
    sign_in: SignIn | None = NO_SIGN_INS,
) -> Guest:
    return Guest(
        id="g1",
        display_name="Ann Lee",
        mail="ann@fabrikam.com",
        user_principal_name="ann_fabrikam.com#EXT#@contoso.onmicrosoft.com",
        user_type="Guest",
        created=created,
        state=state,
        state_changed=state_changed,
        enabled=True,
        company="Fabrikam",
        sign_in=sign_in,
    )


@pytest.mark.parametrize(
    ("sign_in", "created", "state_changed", "expected"),
    [
        pytest.param(
            SignIn(successful=days_ago(5)), on(2022, 1, 10), on(2022, 1, 11), days_ago(5), id="successful-sign-in-wins"
        ),
        pytest.param(
            SignIn(interactive=days_ago(2), successful=days_ago(200)),
            on(2022, 1, 10),
            on(2022, 1, 11),
            days_ago(200),
            id="failed-only-interactive-attempt-is-not-activity",
        ),
        pytest.param(
            SignIn(non_interactive=days_ago(3), interactive=days_ago(300), successful=days_ago(3)),
            on(2022, 1, 10),
            on(2022, 1, 11),
            days_ago(3),
            id="token-refresh-counts-via-successful",
        ),
        pytest.param(
            SignIn(non_interactive=on(2023, 11, 20)),
            on(2022, 1, 10),
            on(2022, 1, 11),
            on(2023, 11, 20),
            id="non-interactive-only-before-dec-2023-counts",
        ),
        pytest.param(
            SignIn(interactive=on(2023, 6, 1), non_interactive=on(2023, 9, 1)),
            on(2022, 1, 10),
            on(2022, 1, 11),
            on(2023, 9, 1),
            id="dates-before-2023-12-01-latest-of-both",
        ),
        pytest.param(
            SignIn(interactive=on(2024, 3, 1)),
            on(2022, 1, 10),
            on(2022, 1, 11),
            on(2022, 1, 11),
            id="attempt-after-2023-12-01-without-success-was-a-failure",
        ),
        pytest.param(SignIn(), days_ago(3), days_ago(1), days_ago(1), id="redeemed-yesterday-no-sign-ins"),
        pytest.param(SignIn(), days_ago(400), None, days_ago(400), id="all-null-falls-back-to-creation"),
        pytest.param(
            SignIn(successful=on(2024, 1, 5)), on(2024, 6, 1), None, on(2024, 6, 1), id="never-earlier-than-creation"
        ),
        pytest.param(SignIn(), None, on(2019, 3, 4), on(2019, 3, 4), id="no-creation-date-uses-redemption"),
        pytest.param(SignIn(successful=days_ago(7)), None, None, days_ago(7), id="no-creation-date-uses-sign-in"),
        pytest.param(SignIn(), None, None, None, id="no-date-at-all"),
    ],
)
def test_last_activity(
    sign_in: SignIn, created: datetime | None, state_changed: datetime | None, expected: datetime | None
) -> None:
    assert last_activity(guest(sign_in=sign_in, created=created, state_changed=state_changed)) == expected


@pytest.mark.parametrize(
    ("subject", "expected", "reason"),
    [
        pytest.param(guest(sign_in=None), Category.UNKNOWN, "no signInActivity", id="no-signInActivity-is-unknown"),
        pytest.param(
            guest(sign_in=SignIn(successful=days_ago(5))), Category.ACTIVE, "last active", id="recent-success"
        ),
        pytest.param(
            guest(sign_in=SignIn(successful=days_ago(91))),
            Category.STALE,
            "(91 days; limit 90)",
            id="just-over-the-limit",
        ),
        pytest.param(
            guest(sign_in=SignIn(successful=days_ago(89))), Category.ACTIVE, "89 days ago", id="just-under-the-limit"
        ),
        pytest.param(
            guest(sign_in=SignIn(interactive=days_ago(1), successful=days_ago(400))),
            Category.STALE,
            "last active",
            id="failed-attempt-does-not-rescue",
        ),
        pytest.param(
            guest(sign_in=SignIn(interactive=on(2023, 5, 1))),
            Category.STALE,
            "2023-05-01",
            id="legacy-pre-2023-data-only",
        ),
        pytest.param(
            guest(sign_in=SignIn(), created=days_ago(3), state_changed=days_ago(1)),
            Category.ACTIVE,
            "last active",
            id="redeemed-yesterday-not-stale",
        ),
        pytest.param(
            guest(state=ExternalState.PENDING, created=days_ago(45), state_changed=days_ago(45), sign_in=None),
            Category.NEVER_REDEEMED,
            "not redeemed since",
            id="pending-too-long",
        ),
        pytest.param(
            guest(state=ExternalState.PENDING, created=days_ago(10), state_changed=days_ago(10), sign_in=None),
            Category.ACTIVE,
            "invited",
            id="pending-recently",
        ),
        pytest.param(
            guest(sign_in=SignIn(), created=None, state_changed=None),
            Category.UNKNOWN,
            "no sign-in, redemption or creation date",
            id="no-date-at-all-is-unknown",
        ),
        pytest.param(
            guest(state=ExternalState.PENDING, created=None, state_changed=None, sign_in=None),
            Category.UNKNOWN,
            "pending invitation without",
            id="pending-without-dates-is-unknown",
        ),
    ],
)
def test_categorise(subject: Guest, expected: Category, reason: str) -> None:
    verdict = categorise(subject, POLICY, NOW)
    assert verdict.category is expected
    assert reason in verdict.reason


def test_exemption_wins_and_names_the_rule() -> None:
    verdict = categorise(guest(sign_in=SignIn(successful=days_ago(500))), POLICY, NOW, "group Board Advisors")
    assert (verdict.category, verdict.reason) == (Category.EXEMPT, "exempt: group Board Advisors")


@pytest.mark.parametrize(
    ("activity", "expected"),
    [
        pytest.param(None, None, id="property-absent"),
        pytest.param({"lastSignInDateTime": None, "lastNonInteractiveSignInDateTime": None}, SignIn(), id="all-null"),
        pytest.param(
            {"lastSuccessfulSignInDateTime": "2025-02-03T04:05:06Z"},
            SignIn(successful=datetime(2025, 2, 3, 4, 5, 6, tzinfo=UTC)),
            id="z-suffix",
        ),
        pytest.param({"lastSignInDateTime": "0001-01-01T00:00:00Z"}, SignIn(), id="placeholder-date-is-none"),
    ],
)
def test_decoding_sign_in_activity(activity: dict | None, expected: SignIn | None) -> None:
    item = {"id": "x", "createdDateTime": "2024-01-01T00:00:00Z", "externalUserState": "Accepted"}
    if activity is not None:
        item["signInActivity"] = activity
    assert decode_guest(json.dumps(item).encode()).sign_in == expected


def test_a_page_decodes_to_records_with_graphs_names_and_ignores_other_properties() -> None:
    page = decode_page(
        b'{"@odata.nextLink": "https://graph.microsoft.com/v1.0/users?$skiptoken=x", "value": ['
        b'{"id": "g1", "userType": "Guest", "createdDateTime": null, "externalUserState": "Accepted",'
        b' "externalUserStateChangeDateTime": "2019-03-04T05:06:07Z", "accountEnabled": null,'
        b' "onPremisesSyncEnabled": true, "signInActivity": {"lastSignInRequestId": "r1"}}]}'
    )
    assert page.next_link == "https://graph.microsoft.com/v1.0/users?$skiptoken=x"
    (only,) = page.value
    assert (only.id, only.user_type, only.created, only.enabled, only.sign_in) == ("g1", "Guest", None, None, SignIn())
    assert only.state_changed == datetime(2019, 3, 4, 5, 6, 7, tzinfo=UTC)
    assert not only.pending


@pytest.mark.parametrize(
    ("content", "where"),
    [
        pytest.param(b'{"value": [{"id": "a"}, {"id": "b", "accountEnabled": "yes"}]}', "$.value[1].accountEnabled"),
        pytest.param(b'{"value": [{"displayName": "no id"}]}', "missing required field `id`"),
        pytest.param(b'{"value": [{"id": "a", "signInActivity": {"lastSignInDateTime": 5}}]}', "lastSignInDateTime"),
        pytest.param(b"<html>gateway error</html>", "malformed"),
    ],
)
def test_an_unreadable_page_is_an_error_that_says_where(content: bytes, where: str) -> None:
    with pytest.raises(UnreadableUserError) as raised:
        decode_page(content)
    assert where in raised.value.one_line()
    assert "nothing was changed" in raised.value.one_line()


def test_a_placeholder_creation_date_is_no_date() -> None:
    subject = decode_guest(
        json.dumps(
            {"id": "x", "userType": "Guest", "createdDateTime": "0001-01-01T00:00:00Z", "signInActivity": {}}
        ).encode()
    )
    assert subject.created is None
    assert categorise(subject, POLICY, NOW).category is Category.UNKNOWN
