"""`plan_offboarding`, pure: facts + policy + the effective moment → actions. One behaviour per test."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from shared.config import Policy
from shared.offboarding.plan import Action, ActionKind, Plan, plan_offboarding, provenance_text
from shared.offboarding.records import Facts, Group, Person, Ref, Sponsored
from shared.offboarding.rules import WorkerKind

EFFECTIVE = datetime(2025, 6, 1, 22, 0, tzinfo=UTC)
PROVENANCE = {"system": "workday", "tenant": "acme", "event": "TERM-1", "type": "worker.terminated"}
POLICY = Policy.model_validate(
    {
        "offboarding": {"delete_after_days": 30, "fallback_sponsor": "u-it"},
        "invitations": {"sender_mailbox": "it@contoso.com"},
    }
)
WORKER = Person(id="u-worker", user_type="Guest", mail="ann@fabrikam.com", enabled=True)
LEAVER = Person(id="u-leaver", user_type="Member", mail="lee@contoso.com", enabled=True)
BOSS = Person(id="u-boss", user_type="Member", mail="boss@contoso.com", enabled=True)
FALLBACK = Person(id="u-it", user_type="Member", mail="it@contoso.com", enabled=True)
STATIC = Group(id="grp-s", display_name="Project X")
DYNAMIC = Group(id="grp-d", display_name="All guests", group_types=["DynamicMembership"])


def sponsored(guest_id: str, *sponsors: str) -> Sponsored:
    return Sponsored(
        id=guest_id, user_type="Guest", mail=f"{guest_id}@fabrikam.com", sponsors=[Ref(s) for s in sponsors]
    )


def facts(**given: Any) -> Facts:
    """A guest worker with no groups, sponsoring nobody: change one thing per test."""
    return Facts(("email", "ann@fabrikam.com"), **{"worker": WORKER, **given})


def plan(made: Facts, policy: Policy = POLICY, provenance: dict[str, Any] = PROVENANCE) -> Plan:
    return plan_offboarding(
        made, policy, run_id="offboard-0123456789abcdef", effective=EFFECTIVE, provenance=provenance
    )


def kinds(made: Plan) -> list[ActionKind]:
    return [a.kind for a in made.actions]


def one(made: Plan, kind: ActionKind) -> Action:
    (found,) = [a for a in made.actions if a.kind is kind]
    return found


# -- a guest worker ------------------------------------------------------------------------------------------
def test_guest_worker_is_disabled() -> None:
    disable = one(plan(facts()), ActionKind.DISABLE)
    assert disable.target_id == "u-worker"


def test_guest_worker_already_disabled_is_not_disabled_again() -> None:
    assert ActionKind.DISABLE not in kinds(plan(facts(worker=msgspec.structs.replace(WORKER, enabled=False))))


def test_guest_worker_each_direct_group_is_removed() -> None:
    other = Group(id="grp-t", display_name="Finance")
    removals = [a for a in plan(facts(groups=(STATIC, other))).actions if a.kind is ActionKind.REMOVE_MEMBER]
    assert {(a.target_id, a.other_id) for a in removals} == {("grp-s", "u-worker"), ("grp-t", "u-worker")}


def test_guest_worker_dynamic_group_is_kept_with_a_note() -> None:
    made = plan(facts(groups=(DYNAMIC,)))
    assert ActionKind.REMOVE_MEMBER not in kinds(made)
    assert made.notes == ["dynamic group All guests: its rule decides membership, it cannot be removed"]


def test_guest_worker_is_removed_as_sponsor_of_other_guests() -> None:
    made = plan(facts(sponsored=(sponsored("g-1", "u-worker", "u-other"),)))
    remove = one(made, ActionKind.REMOVE_SPONSOR)
    assert (remove.target_id, remove.other_id) == ("g-1", "u-worker")


def test_guest_worker_deletion_is_scheduled_after_the_grace_days() -> None:
    scheduled = one(plan(facts()), ActionKind.SCHEDULE_DELETE)
    assert scheduled.due_at == EFFECTIVE + timedelta(days=30)


@pytest.mark.parametrize("days", [1, 30])
def test_replayable_event_never_deletes_at_once(days: int) -> None:
    policy = Policy.model_validate({"offboarding": {"delete_after_days": days}})
    made = plan(facts(), policy, {**PROVENANCE, "replayable": True})
    assert ActionKind.DELETE not in kinds(made)
    assert one(made, ActionKind.SCHEDULE_DELETE).due_at == EFFECTIVE + timedelta(days=days)


def test_guest_worker_actions_come_in_a_safe_order() -> None:
    made = plan(facts(groups=(STATIC,), sponsored=(sponsored("g-1", "u-worker"),), manager=BOSS))
    assert kinds(made) == [
        ActionKind.ADD_SPONSOR,
        ActionKind.REMOVE_SPONSOR,
        ActionKind.REMOVE_MEMBER,
        ActionKind.DISABLE,
        ActionKind.SCHEDULE_DELETE,
        ActionKind.NOTIFY,
    ]


# -- a member sponsor leaving ----------------------------------------------------------------------------
def leaving(**given: Any) -> Facts:
    return Facts(("employeeId", "E7"), **{"worker": LEAVER, "sponsored": (sponsored("g-1", "u-leaver"),), **given})


def test_sponsor_leaving_manager_inherits_first() -> None:
    added = one(plan(leaving(manager=BOSS, fallback=FALLBACK)), ActionKind.ADD_SPONSOR)
    assert (added.target_id, added.other_id) == ("g-1", "u-boss")
    assert "(the leaver's manager) inherits the guest" in added.reason


def test_sponsor_leaving_fallback_sponsor_when_no_manager() -> None:
    added = one(plan(leaving(fallback=FALLBACK)), ActionKind.ADD_SPONSOR)
    assert added.other_id == "u-it"
    assert "(offboarding.fallback_sponsor) inherits the guest" in added.reason


def test_sponsor_leaving_new_sponsor_is_added_before_the_leaver_is_removed() -> None:
    assert kinds(plan(leaving(manager=BOSS)))[:2] == [ActionKind.ADD_SPONSOR, ActionKind.REMOVE_SPONSOR]


def test_sponsor_leaving_no_sponsor_left_is_flagged_with_the_reason() -> None:
    made = plan(leaving())
    assert kinds(made) == [ActionKind.REMOVE_SPONSOR, ActionKind.FLAG]
    assert one(made, ActionKind.FLAG).reason.endswith(
        "no sponsor left: the leaver has no manager and offboarding.fallback_sponsor is not set"
    )


def test_sponsor_leaving_guest_with_another_sponsor_is_not_flagged() -> None:
    made = plan(leaving(sponsored=(sponsored("g-1", "u-leaver", "u-other"),)))
    assert ActionKind.FLAG not in kinds(made)


def test_sponsor_leaving_manager_already_a_sponsor_is_not_added_again() -> None:
    made = plan(leaving(sponsored=(sponsored("g-1", "u-leaver", "U-BOSS"),), manager=BOSS))
    assert kinds(made) == [ActionKind.REMOVE_SPONSOR]


def test_sponsor_leaving_one_email_per_new_sponsor_listing_every_guest() -> None:
    made = plan(leaving(sponsored=(sponsored("g-1", "u-leaver"), sponsored("g-2", "u-leaver")), manager=BOSS))
    notify = one(made, ActionKind.NOTIFY)
    assert notify.target_id == "u-boss"
    assert notify.evidence == {"guests": ["g-1@fabrikam.com", "g-2@fabrikam.com"], "to": "boss@contoso.com"}


def test_sponsor_leaving_no_email_without_a_sender_mailbox_says_so() -> None:
    made = plan(leaving(manager=BOSS), Policy())
    assert ActionKind.NOTIFY not in kinds(made)
    assert made.notes == ["the new sponsor is not emailed: invitations.sender_mailbox is not set"]


def test_member_is_never_disabled() -> None:
    made = plan(leaving(manager=BOSS, groups=(STATIC,)))
    assert made.kind is WorkerKind.MEMBER
    assert {ActionKind.DISABLE, ActionKind.REMOVE_MEMBER, ActionKind.SCHEDULE_DELETE}.isdisjoint(kinds(made))


def test_member_sponsoring_nobody_has_nothing_to_do() -> None:
    made = plan(Facts(("email", "lee@contoso.com"), worker=LEAVER))
    assert made.actions == []
    assert made.notes == [
        "lee@contoso.com is a member who sponsors no guests: nothing to do (members are never disabled here)"
    ]


# -- review: nobody is acted on --------------------------------------------------------------------------
def test_exempt_guest_is_for_review_and_no_action() -> None:
    made = plan(facts(exempt="holds directory role Directory Readers", groups=(STATIC,)))
    assert made.review == "guest ann@fabrikam.com is exempt: holds directory role Directory Readers"
    assert made.actions == []


@pytest.mark.parametrize(
    "why",
    ["ambiguous: 2 users have email ann@fabrikam.com", "no user has email ann@fabrikam.com"],
    ids=["ambiguous", "unknown"],
)
def test_unresolved_identifier_is_for_review_and_no_action(why: str) -> None:
    made = plan(Facts(("email", "ann@fabrikam.com"), review=why))
    assert made.review == why
    assert made.actions == []
    assert made.worker_id is None


# -- direct connect ----------------------------------------------------------------------------------------
def test_direct_connect_user_is_removed_from_each_shared_channel() -> None:
    members = tuple(
        {
            "channel_id": f"19:c{n}@thread.tacv2",
            "team_id": "team",
            "home_id": "h-1",
            "tenant_id": "t",
            "channel": f"C{n}",
        }
        for n in range(2)
    )
    made = plan(Facts(("email", "dc@fabrikam.com"), channels=members))
    assert made.kind is WorkerKind.DIRECT_CONNECT
    assert [(a.kind, a.target_id, a.other_id) for a in made.actions] == [
        (ActionKind.REMOVE_CHANNEL_MEMBER, "19:c0@thread.tacv2", "h-1"),
        (ActionKind.REMOVE_CHANNEL_MEMBER, "19:c1@thread.tacv2", "h-1"),
    ]


# -- every plan --------------------------------------------------------------------------------------------
def test_provenance_starts_every_reason() -> None:
    made = plan(facts(groups=(STATIC,), sponsored=(sponsored("g-1", "u-worker"),)))
    assert len(made.actions) == 5  # remove-sponsor, flag, remove-member, disable, schedule-delete
    assert all(
        a.reason.startswith("HR system=workday tenant=acme event=TERM-1 type=worker.terminated: ") for a in made.actions
    )


def test_provenance_text_leaves_out_empty_fields() -> None:
    assert provenance_text({"system": "hibob", "tenant": None, "event": "e1"}) == "HR system=hibob event=e1"


def test_plan_digest_is_stable_whatever_order_graph_lists_things_in() -> None:
    groups = (
        STATIC,
        Group(id="grp-t", display_name="Finance"),
        DYNAMIC,
        Group(id="grp-e", group_types=["DynamicMembership"]),
    )
    guests = (sponsored("g-2", "u-worker"), sponsored("g-1", "u-worker"), sponsored("g-3", "u-worker", "u-x"))

    def digest(made: Plan) -> str:
        return hashlib.sha256(msgspec.json.encode(made, order="sorted")).hexdigest()

    first = plan(facts(groups=groups, sponsored=guests, manager=BOSS))
    again = plan(facts(groups=groups[::-1], sponsored=guests[::-1], manager=BOSS))
    assert digest(first) == digest(plan(facts(groups=groups, sponsored=guests, manager=BOSS)))
    assert digest(first) == digest(again)
