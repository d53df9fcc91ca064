"""The pure sign-in aggregation: which entries count, where MFA was satisfied, failures by code."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from shared.partners.verify_rules import Aggregation, Mfa, facts_of, mfa_of, window_start

T = "aaaaaaaa-0000-4000-8000-000000000001"


def entry(kind: str = "b2bDirectConnect", *, error: int = 0, upn: str = "Ann@Fabrikam.com", **more: Any) -> dict:
    return {
        "createdDateTime": "2026-01-31T10:00:00Z",
        "crossTenantAccessType": kind,
        "homeTenantId": T.upper(),
        "userPrincipalName": upn,
        "userId": "u1",
        "status": {"errorCode": error},
        **more,
    }


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, Mfa.UNKNOWN),
        ({"authenticationRequirement": "singleFactorAuthentication"}, Mfa.NONE),
        ({"authenticationRequirement": "multiFactorAuthentication"}, Mfa.HERE),
        (
            {
                "authenticationRequirement": "multiFactorAuthentication",
                "authenticationDetails": [
                    {"authenticationStepResultDetail": "MFA requirement satisfied by claim in the token"}
                ],
            },
            Mfa.HOME,
        ),
        ({"authenticationDetails": [{"authenticationMethod": "Satisfied by token"}]}, Mfa.HOME),
        (
            {
                "authenticationRequirement": "singleFactorAuthentication",
                "authenticationDetails": [
                    {"authenticationStepResultDetail": "First factor requirement satisfied by claim in the token"}
                ],
            },
            Mfa.NONE,
        ),
    ],
)
def test_where_mfa_was_satisfied(fields: dict, expected: Mfa) -> None:
    assert mfa_of(entry(**fields)) is expected


@pytest.mark.parametrize(
    ("changed", "counted"),
    [
        ({"crossTenantAccessType": "none"}, False),
        ({"crossTenantAccessType": None}, False),
        ({"homeTenantId": None}, False),
        ({"crossTenantAccessType": "b2bCollaboration"}, True),
    ],
)
def test_only_cross_tenant_sign_ins_count(changed: dict, counted: bool) -> None:
    assert (facts_of({**entry(), **changed}) is not None) is counted


def test_tallies_per_day_and_person_with_failures_by_code() -> None:
    tally = Aggregation()
    for one in (
        entry(authenticationRequirement="multiFactorAuthentication"),
        entry(error=90071),
        entry("b2bCollaboration", upn="bob@fabrikam.com"),
        entry("none"),
    ):
        tally.add(one)
    day = tally.days[(T, "2026-01-31")].to_json()
    assert day == {
        "direct_connect": 2,
        "guest": 1,
        "direct_connect_failed": 1,
        "guest_failed": 0,
        "mfa": {"here": 1, "unknown": 1},
        "errors": {"90071": 1},
    }
    ann = tally.people[(T, "ann@fabrikam.com")]
    assert (ann.tally.direct, ann.first_direct, ann.last_direct) == (2, "2026-01-31", "2026-01-31")
    assert tally.people[(T, "bob@fabrikam.com")].first_direct is None
    assert tally.entries == 4


def test_the_window_is_whole_days() -> None:
    now = datetime(2026, 1, 31, 15, 30, tzinfo=UTC)
    assert window_start(now, 1) == datetime(2026, 1, 31, tzinfo=UTC)
    assert window_start(now, 30) == datetime(2026, 1, 2, tzinfo=UTC)
