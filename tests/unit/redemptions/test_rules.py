"""Redemption rules: what a user seen in delta does to our record, and which reminder is due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from shared.redemptions.records import DeltaUser, GuestState, Source, Tracked
from shared.redemptions.rules import ChangeKind, due_reminder, next_reminder, observe

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
INVITED = NOW - timedelta(days=10)
REDEEMED_AT = NOW - timedelta(days=2)
ID = "1f2e3d4c-0000-4000-8000-000000000001"


def seen(**fields: Any) -> DeltaUser:
    """A user as delta returns it (Graph's property names)."""
    document = {
        "id": ID,
        "userType": "Guest",
        "externalUserState": "PendingAcceptance",
        "mail": "ann@fabrikam.com",
        "displayName": "Ann",
        "accountEnabled": True,
        "createdDateTime": INVITED.isoformat(),
        **fields,
    }
    return msgspec.convert(document, DeltaUser, strict=False)


def tracked(**fields: Any) -> Tracked:
    base = {
        "user_id": ID,
        "email": "ann@fabrikam.com",
        "display_name": "Ann",
        "enabled": True,
        "invited_at": INVITED,
        "state": GuestState.PENDING,
        "source": Source.BATCH,
        "updated_at": NOW - timedelta(days=1),  # delta has seen it before
    }
    return Tracked(**{**base, **fields})


REDEEMED = {"externalUserState": "Accepted", "externalUserStateChangeDateTime": REDEEMED_AT.isoformat()}


@pytest.mark.parametrize(
    ("before", "user", "kind", "state"),
    [
        pytest.param(None, seen(), ChangeKind.NEW, GuestState.PENDING, id="new-pending-guest"),
        pytest.param(None, seen(**REDEEMED), ChangeKind.NEW, GuestState.REDEEMED, id="new-redeemed-guest"),
        pytest.param(tracked(), seen(**REDEEMED), ChangeKind.REDEEMED, GuestState.REDEEMED, id="pending-redeems"),
        pytest.param(
            tracked(state=GuestState.REDEEMED, redeemed_at=REDEEMED_AT, reminders_sent=(3,)),
            seen(),
            ChangeKind.REINVITED,
            GuestState.PENDING,
            id="redemption-reset",
        ),
        pytest.param(tracked(), seen(mail="ann.lee@fabrikam.com"), ChangeKind.CHANGED, GuestState.PENDING, id="mail"),
        pytest.param(tracked(), seen(accountEnabled=False), ChangeKind.CHANGED, GuestState.PENDING, id="disabled"),
        pytest.param(
            tracked(),
            seen(**{"@removed": {"reason": "changed"}}),
            ChangeKind.REMOVED,
            GuestState.GONE,
            id="soft-deleted",
        ),
        pytest.param(
            tracked(),
            seen(**{"@removed": {"reason": "deleted"}}),
            ChangeKind.REMOVED,
            GuestState.GONE,
            id="deleted-for-good",
        ),
        pytest.param(tracked(), seen(userType="Member"), ChangeKind.REMOVED, GuestState.GONE, id="became-member"),
        pytest.param(
            tracked(state=GuestState.GONE, removed="changed"),
            seen(),
            ChangeKind.RESTORED,
            GuestState.PENDING,
            id="restored",
        ),
    ],
)
def test_observe(before: Tracked | None, user: DeltaUser, kind: ChangeKind, state: GuestState) -> None:
    change = observe(before, user, NOW)
    assert change is not None
    assert (change[0], change[1].state) == (kind, state)


@pytest.mark.parametrize(
    ("before", "user"),
    [
        pytest.param(tracked(), seen(), id="nothing-changed"),
        pytest.param(None, seen(userType="Member"), id="a-member"),
        pytest.param(None, seen(**{"@removed": {"reason": "deleted"}}), id="removed-untracked"),
        pytest.param(
            tracked(state=GuestState.GONE, removed="deleted"),
            seen(**{"@removed": {"reason": "deleted"}}),
            id="removed-again",
        ),
        pytest.param(tracked(), DeltaUser(id=ID), id="partial-user"),
    ],
)
def test_observe_changes_nothing(before: Tracked | None, user: DeltaUser) -> None:
    assert observe(before, user, NOW) is None


def test_a_guest_invitations_recorded_is_new_when_delta_first_sees_it() -> None:
    change = observe(tracked(updated_at=None, display_name=None, enabled=None), seen(), NOW)
    assert change is not None
    assert (change[0], change[1].source, change[1].display_name) == (ChangeKind.NEW, Source.BATCH, "Ann")


def test_a_redemption_replayed_is_not_counted_twice() -> None:
    first = observe(tracked(), seen(**REDEEMED), NOW)
    assert first is not None
    assert observe(first[1], seen(**REDEEMED), NOW + timedelta(hours=1)) is None


def test_redemption_time_and_time_to_redeem_come_from_graph() -> None:
    change = observe(tracked(), seen(**REDEEMED), NOW)
    assert change is not None
    assert change[1].redeemed_at == REDEEMED_AT
    assert change[1].seconds_to_redeem == timedelta(days=8).total_seconds()


def test_a_redemption_without_a_change_time_is_dated_when_seen() -> None:
    change = observe(tracked(), seen(externalUserState="Accepted"), NOW)
    assert change is not None
    assert change[1].redeemed_at == NOW


def test_a_new_guest_found_by_delta_is_external_and_dated_by_its_creation() -> None:
    change = observe(None, seen(), NOW)
    assert change is not None
    assert (change[1].source, change[1].invited_at) == (Source.EXTERNAL, INVITED)


def test_a_batch_guest_keeps_its_batch_and_invitation_time() -> None:
    change = observe(tracked(batch_id="inv-1", invited_at=INVITED + timedelta(hours=1)), seen(**REDEEMED), NOW)
    assert change is not None
    assert (change[1].source, change[1].batch_id, change[1].invited_at) == (
        Source.BATCH,
        "inv-1",
        INVITED + timedelta(hours=1),
    )


REMINDERS = (3, 7, 14)


@pytest.mark.parametrize(
    ("guest", "expected"),
    [
        pytest.param(tracked(invited_at=NOW - timedelta(days=2)), None, id="none-due-yet"),
        pytest.param(tracked(invited_at=NOW - timedelta(days=3)), 3, id="first-due-on-the-day"),
        pytest.param(tracked(invited_at=NOW - timedelta(days=4), reminders_sent=(3,)), None, id="first-sent"),
        pytest.param(tracked(invited_at=NOW - timedelta(days=8), reminders_sent=(3,)), 7, id="second-due"),
        pytest.param(tracked(invited_at=NOW - timedelta(days=9)), 7, id="only-the-latest-of-two-due"),
        pytest.param(tracked(invited_at=NOW - timedelta(days=30), reminders_sent=(3, 7, 14)), None, id="all-sent"),
        pytest.param(tracked(state=GuestState.REDEEMED), None, id="redeemed"),
        pytest.param(tracked(state=GuestState.GONE), None, id="gone"),
        pytest.param(tracked(source=Source.EXTERNAL), None, id="not-invited-by-guestctl"),
        pytest.param(tracked(enabled=False), None, id="disabled"),
        pytest.param(tracked(invited_at=None), None, id="no-invitation-time"),
    ],
)
def test_due_reminder(guest: Tracked, expected: int | None) -> None:
    assert due_reminder(guest, REMINDERS, NOW) == expected


@pytest.mark.parametrize(
    ("guest", "expected"),
    [
        pytest.param(tracked(), INVITED + timedelta(days=3), id="first"),
        pytest.param(tracked(reminders_sent=(3, 7)), INVITED + timedelta(days=14), id="last"),
        pytest.param(tracked(reminders_sent=(14,)), None, id="none-left"),
        pytest.param(tracked(state=GuestState.REDEEMED), None, id="redeemed"),
    ],
)
def test_next_reminder(guest: Tracked, expected: datetime | None) -> None:
    assert next_reminder(guest, REMINDERS) == expected
