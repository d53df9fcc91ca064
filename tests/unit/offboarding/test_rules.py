"""The offboarding rules, one decision per test: who the worker is, what may change, who inherits."""

from __future__ import annotations

import pytest

from shared.offboarding.records import Group, Person, Ref, Sponsored
from shared.offboarding.rules import (
    WorkerKind,
    kind_of,
    new_sponsor,
    sponsors_left,
    why_keep_membership,
    why_not_disable,
)


def person(
    user_id: str = "u-worker", *, user_type: str = "Member", enabled: bool | None = True, mail: str | None = None
) -> Person:
    return Person(id=user_id, user_type=user_type, enabled=enabled, mail=mail or f"{user_id}@contoso.com")


def guest(user_id: str = "g-1", *sponsors: str) -> Sponsored:
    return Sponsored(id=user_id, user_type="Guest", mail=f"{user_id}@fabrikam.com", sponsors=[Ref(s) for s in sponsors])


LEAVER = person("u-leaver")
BOSS = person("u-boss")
FALLBACK = person("u-it")


@pytest.mark.parametrize(
    ("worker", "kind"),
    [
        pytest.param(person(user_type="Guest"), WorkerKind.GUEST, id="guest-account-is-a-guest-worker"),
        pytest.param(person(user_type="Member"), WorkerKind.MEMBER, id="member-is-a-member"),
        pytest.param(None, WorkerKind.DIRECT_CONNECT, id="no-object-here-is-direct-connect"),
    ],
)
def test_kind_of(worker: Person | None, kind: WorkerKind) -> None:
    assert kind_of(worker) is kind


def test_why_not_disable_a_member_never() -> None:
    refused = why_not_disable(person(user_type="Member"), None)
    assert refused == "not a guest (userType Member): guestctl never disables members"


def test_why_not_disable_an_exempt_guest() -> None:
    assert why_not_disable(person(user_type="Guest"), "holds directory role Directory Readers") == (
        "exempt: holds directory role Directory Readers"
    )


def test_why_not_disable_a_plain_guest_may_be_disabled() -> None:
    assert why_not_disable(person(user_type="Guest"), None) is None


def test_why_keep_membership_dynamic_group_is_kept_with_its_name() -> None:
    kept = why_keep_membership(Group(id="grp-d", display_name="All guests", group_types=["DynamicMembership"]))
    assert kept is not None
    assert kept.startswith("dynamic group All guests")


def test_why_keep_membership_assigned_group_is_removed() -> None:
    assert why_keep_membership(Group(id="grp-s", display_name="Project X", group_types=["Unified"])) is None


@pytest.mark.parametrize(
    ("manager", "fallback", "heir", "because"),
    [
        pytest.param(BOSS, FALLBACK, BOSS, "the leaver's manager", id="manager-first"),
        pytest.param(None, FALLBACK, FALLBACK, "offboarding.fallback_sponsor", id="fallback-when-no-manager"),
        pytest.param(
            person("u-boss", enabled=False), FALLBACK, FALLBACK, "offboarding.fallback_sponsor", id="disabled-manager"
        ),
        pytest.param(LEAVER, FALLBACK, FALLBACK, "offboarding.fallback_sponsor", id="leaver-is-own-fallback-no"),
        pytest.param(
            None,
            None,
            None,
            "the leaver has no manager and offboarding.fallback_sponsor is not set",
            id="nobody-left-says-why",
        ),
        pytest.param(
            person("u-boss", enabled=False),
            None,
            None,
            "neither the leaver's manager nor offboarding.fallback_sponsor can sponsor (disabled)",
            id="only-a-disabled-manager-says-why",
        ),
    ],
)
def test_new_sponsor(manager: Person | None, fallback: Person | None, heir: Person | None, because: str) -> None:
    assert new_sponsor(LEAVER, manager, fallback) == (heir, because)


def test_sponsors_left_without_the_leaver_with_the_heir() -> None:
    assert sponsors_left(guest("g-1", "U-LEAVER", "u-other"), "u-leaver", "u-boss") == {"u-other", "u-boss"}


def test_sponsors_left_none_when_the_leaver_was_the_only_one_and_no_heir() -> None:
    assert sponsors_left(guest("g-1", "u-leaver"), "u-leaver", None) == frozenset()
