"""Staged removal planning: which action each guest gets, exemptions, the blast-radius cap."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta

import msgspec
import pytest

from shared.config import Policy
from shared.stale.plan import ActionKind, Exemptions, GuestStage, Lifecycle, Plan, Planner, plan_problems, why_not
from shared.stale.records import ExternalState, Guest, SignIn
from tests.support.stale import NOW

POLICY = Policy.model_validate(
    {
        "stale": {"inactive_days": 90, "disable_after_days": 14, "delete_after_days": 30},
        "safety": {"max_actions": 50, "max_percent": 50},
    }
)


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def guest(
    gid: str = "g1",
    *,
    active_days_ago: float | None = 200,
    enabled: bool = True,
    state: ExternalState = ExternalState.ACCEPTED,
    mail: str = "ann@fabrikam.com",
    state_changed: datetime | None = None,
) -> Guest:
    sign_in = None if active_days_ago is None else SignIn(successful=ago(active_days_ago))
    return Guest(
        id=gid,
        display_name="Ann",
        mail=mail,
        user_type="Guest",
        created=ago(800),
        state=state,
        state_changed=state_changed or ago(799),
        enabled=enabled,
        sign_in=sign_in,
    )


def plan_for(
    guests: list[Guest],
    lifecycle: dict[str, Lifecycle] | None = None,
    exemptions: Exemptions | None = None,
    policy: Policy = POLICY,
    available: bool = True,
):
    planner = Planner(
        policy,
        NOW,
        lifecycle=lifecycle or {},
        exemptions=exemptions or Exemptions(),
        sign_in_activity_available=available,
    )
    planner.add(guests)
    return planner.finish()


@pytest.mark.parametrize(
    ("subject", "stage", "expected"),
    [
        pytest.param(guest(), None, ActionKind.FLAG, id="stale-is-flagged-first"),
        pytest.param(guest(active_days_ago=10), None, None, id="active-untouched"),
        pytest.param(guest(active_days_ago=None), None, None, id="unknown-never-acted-on"),
        pytest.param(guest(), Lifecycle(GuestStage.FLAGGED, ago(15)), ActionKind.DISABLE, id="flag-grace-over-disable"),
        pytest.param(guest(), Lifecycle(GuestStage.FLAGGED, ago(13)), None, id="flag-grace-running"),
        pytest.param(
            guest(enabled=False),
            Lifecycle(GuestStage.DISABLED, ago(60), ago(31)),
            ActionKind.DELETE,
            id="disabled-past-grace-deleted",
        ),
        pytest.param(
            guest(enabled=False), Lifecycle(GuestStage.DISABLED, ago(40), ago(20)), None, id="disabled-grace-running"
        ),
        pytest.param(
            guest(active_days_ago=2),
            Lifecycle(GuestStage.FLAGGED, ago(5)),
            ActionKind.UNFLAG,
            id="signed-in-while-flagged",
        ),
        pytest.param(
            guest(active_days_ago=None, enabled=False, state=ExternalState.PENDING, state_changed=ago(1)),
            Lifecycle(GuestStage.DISABLED, ago(40), ago(20)),
            ActionKind.ENABLE,
            id="re-invited-while-disabled",
        ),
        pytest.param(guest(enabled=False), None, None, id="disabled-by-someone-else-not-flagged"),
        pytest.param(
            guest(),
            Lifecycle(GuestStage.FLAGGED, ago(1), let_go="let go by Lee on 2026-11-27"),
            ActionKind.DISABLE,
            id="let-go-skips-the-flag-grace",
        ),
        pytest.param(
            guest(active_days_ago=0.5),
            Lifecycle(GuestStage.FLAGGED, ago(1), let_go="let go by Lee on 2026-11-27"),
            ActionKind.UNFLAG,
            id="let-go-but-signed-in-since-unflagged",
        ),
    ],
)
def test_action_per_guest(subject: Guest, stage: Lifecycle | None, expected: ActionKind | None) -> None:
    plan = plan_for([subject], {subject.id: stage} if stage else None)
    assert [a.kind for a in plan.actions] == ([expected] if expected else [])


@pytest.mark.parametrize(
    ("exemptions", "subject", "reason"),
    [
        pytest.param(Exemptions(role_holders=frozenset({"g1"})), guest(), "holds a directory role", id="role"),
        pytest.param(
            Exemptions(group_members={"g1": "Board Advisors"}), guest(), "exemption group Board Advisors", id="group"
        ),
        pytest.param(Exemptions(users=frozenset({"ann@fabrikam.com"})), guest(), "exemptions.users", id="user"),
        pytest.param(
            Exemptions(domains=frozenset({"fabrikam.com"})),
            guest(mail="a@eu.fabrikam.com"),
            "domain eu.fabrikam.com",
            id="subdomain",
        ),
        pytest.param(
            Exemptions(domains=frozenset({"fabrikam.com"})),
            msgspec.structs.replace(
                guest(mail=None), user_principal_name="ann_fabrikam.com#EXT#@contoso.onmicrosoft.com"
            ),
            "domain fabrikam.com",
            id="domain-from-the-guest-upn-without-mail",
        ),
        pytest.param(
            Exemptions(attested_until={"ann@fabrikam.com": date(2027, 1, 1)}),
            guest(),
            "attested the guest is needed until 2027-01-01",
            id="attested-future",
        ),
    ],
)
def test_exempt_guests_are_counted_not_acted_on(exemptions: Exemptions, subject: Guest, reason: str) -> None:
    plan = plan_for([subject], exemptions=exemptions)
    assert plan.actions == ()
    assert plan.counts["exempt"] == 1
    assert reason in (exemptions.reason(subject, NOW.date()) or "")


def test_a_kept_guest_is_exempt_with_the_sponsors_name_and_unflagged_with_it_as_the_reason() -> None:
    kept = Exemptions(kept={"g1": (date(2027, 5, 26), "Lee Sponsor")})
    assert plan_for([guest()], exemptions=kept).counts["exempt"] == 1
    (action,) = plan_for([guest()], {"g1": Lifecycle(GuestStage.FLAGGED, ago(3))}, kept).actions
    assert (action.kind, action.reason) == (ActionKind.UNFLAG, "exempt: kept by Lee Sponsor until 2027-05-26")
    expired = Exemptions(kept={"g1": (date(2026, 11, 26), "Lee Sponsor")})
    assert [a.kind for a in plan_for([guest()], exemptions=expired).actions] == [ActionKind.FLAG]


def test_expired_attestation_no_longer_protects() -> None:
    plan = plan_for([guest()], exemptions=Exemptions(attested_until={"g1": date(2026, 11, 1)}))
    assert [a.kind for a in plan.actions] == [ActionKind.FLAG]


def test_without_sign_in_activity_no_inactivity_actions_and_the_plan_says_why() -> None:
    pending = guest("g2", active_days_ago=None, state=ExternalState.PENDING, state_changed=ago(60))
    plan = plan_for([guest(), pending], available=False)
    assert [(a.kind, a.target_id) for a in plan.actions] == [(ActionKind.FLAG, "g2")]
    assert plan.counts["unknown"] == 1
    assert "signInActivity is not available" in plan.notes[0]


@pytest.mark.parametrize(
    ("safety", "disables", "guests", "refused"),
    [
        pytest.param({"max_actions": 3, "max_percent": 100}, 3, 10, None, id="at-the-cap"),
        pytest.param({"max_actions": 3, "max_percent": 100}, 4, 10, "exceed safety.max_actions (3)", id="over-count"),
        pytest.param(
            {"max_actions": 100, "max_percent": 10}, 2, 10, "over safety.max_percent (10.0%)", id="over-share"
        ),
    ],
)
def test_blast_radius_cap_refuses_the_whole_plan(safety: dict, disables: int, guests: int, refused: str | None):
    policy = Policy.model_validate({**POLICY.model_dump(mode="json"), "safety": safety})
    population = [guest(f"g{i}") for i in range(guests)]
    lifecycle = {f"g{i}": Lifecycle(GuestStage.FLAGGED, ago(20)) for i in range(disables)}
    plan = plan_for(population, lifecycle, policy=policy)
    assert plan.destructive() == disables
    assert (plan.refused is None) if refused is None else (refused in plan.refused)


def test_plan_digest_changes_with_any_action() -> None:
    assert plan_for([guest()]).digest() == plan_for([guest()]).digest()
    assert plan_for([guest()]).digest() != plan_for([guest(active_days_ago=10)]).digest()


def test_a_saved_plan_reads_back_identical_and_shows_graphs_facts() -> None:
    pending = guest("g2", active_days_ago=None, state=ExternalState.PENDING, state_changed=ago(60))
    plan = plan_for([guest("g1"), pending])
    body = json.loads(json.dumps(plan.to_json()))
    evidence = body["actions"][0]["evidence"]
    assert evidence["id"] == "g1"
    assert evidence["signInActivity"]["lastSuccessfulSignInDateTime"] == ago(200).isoformat().replace("+00:00", "Z")
    assert Plan.from_json(body) == plan
    assert Plan.from_json(body).digest() == plan.digest() == body["digest"]


@pytest.mark.parametrize(
    ("edit", "error"),
    [
        pytest.param(lambda body: body["actions"][0].update(kind="delete"), "does not match its digest", id="edited"),
        pytest.param(lambda body: body["actions"][0].update(kind="purge"), "Invalid enum value 'purge'", id="bad-kind"),
        pytest.param(lambda body: body.pop("created_at"), "missing required field `created_at`", id="missing"),
    ],
)
def test_a_changed_or_broken_plan_is_refused_with_the_reason(edit: Callable[[dict], object], error: str) -> None:
    body = json.loads(json.dumps(plan_for([guest("g1")]).to_json()))
    edit(body)
    with pytest.raises(ValueError, match=re.escape(error)):
        Plan.from_json(body)


# What apply asks of each action with fresh data: the rules' answer now, or why not (a plan is a request).
@pytest.mark.parametrize(
    ("kind", "subject", "stage", "reason"),
    [
        pytest.param(ActionKind.FLAG, guest(), None, None, id="flag-stale-guest"),
        pytest.param(ActionKind.FLAG, guest(active_days_ago=3), None, "the rules give no action", id="flag-active"),
        pytest.param(ActionKind.FLAG, guest(), Lifecycle(GuestStage.FLAGGED, ago(3)), "flagged on", id="flag-twice"),
        pytest.param(ActionKind.DISABLE, guest(), Lifecycle(GuestStage.FLAGGED, ago(15)), None, id="disable-due"),
        pytest.param(ActionKind.DISABLE, guest(), None, "guestctl has not flagged this guest", id="disable-unflagged"),
        pytest.param(
            ActionKind.DISABLE,
            guest(),
            Lifecycle(GuestStage.FLAGGED, ago(0.001)),
            "disable is not due before 2026-12-11",
            id="disable-flagged-seconds-ago",
        ),
        pytest.param(
            ActionKind.DISABLE,
            guest(active_days_ago=1),
            Lifecycle(GuestStage.FLAGGED, ago(15)),
            "the rules give unflag now",
            id="disable-signed-in-since",
        ),
        pytest.param(
            ActionKind.DELETE,
            guest(enabled=False),
            Lifecycle(GuestStage.DISABLED, ago(60), ago(31)),
            None,
            id="delete-due",
        ),
        pytest.param(
            ActionKind.DELETE,
            guest(enabled=False),
            None,
            "guestctl has no record of disabling this account",
            id="delete-disabled-by-someone-else",
        ),
        pytest.param(
            ActionKind.DELETE,
            guest(),
            Lifecycle(GuestStage.FLAGGED, ago(60)),
            "guestctl has no record of disabling this account",
            id="delete-only-flagged",
        ),
        pytest.param(
            ActionKind.DELETE,
            guest(enabled=False),
            Lifecycle(GuestStage.DISABLED, ago(40), ago(20)),
            "delete is not due before 2026-12-07",
            id="delete-grace-running",
        ),
        pytest.param(ActionKind.ENABLE, guest(enabled=False), None, "no record of disabling", id="enable-not-ours"),
        pytest.param(ActionKind.UNFLAG, guest(active_days_ago=1), None, "has not flagged", id="unflag-not-flagged"),
        pytest.param(
            ActionKind.UNFLAG, guest(active_days_ago=1), Lifecycle(GuestStage.FLAGGED, ago(3)), None, id="unflag-active"
        ),
    ],
)
def test_apply_carries_out_only_what_the_rules_give_now(
    kind: ActionKind, subject: Guest, stage: Lifecycle | None, reason: str | None
) -> None:
    found = why_not(kind, subject, stage, POLICY, NOW, Exemptions())
    assert (found is None) if reason is None else (reason in (found or "")), found


def test_apply_never_acts_on_a_guest_exempt_now() -> None:
    found = why_not(
        ActionKind.DISABLE,
        guest(),
        Lifecycle(GuestStage.FLAGGED, ago(20)),
        POLICY,
        NOW,
        Exemptions(role_holders={"g1"}),
    )
    assert found == "re-checked just before acting: the rules give unflag now (exempt: holds a directory role)"


def honest() -> Plan:
    return plan_for(
        [guest("g1"), guest("g2"), guest("g3", active_days_ago=2)], {"g2": Lifecycle(GuestStage.FLAGGED, ago(20))}
    )


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        pytest.param(lambda p: p, None, id="as-made"),
        pytest.param(lambda p: msgspec.structs.replace(p, created_at=NOW + timedelta(minutes=4)), None, id="skew"),
        pytest.param(
            lambda p: msgspec.structs.replace(p, created_at=NOW + timedelta(hours=1)),
            "dated in the future",
            id="future",
        ),
        pytest.param(
            lambda p: msgspec.structs.replace(p, created_at=NOW.replace(tzinfo=None)), "no time zone", id="naive"
        ),
        pytest.param(lambda p: msgspec.structs.replace(p, guests=30), "add up to 3, not its 30 guests", id="guests"),
        pytest.param(
            lambda p: msgspec.structs.replace(p, counts={**p.counts, "stale": 1, "active": 2}),
            "2 actions for its 1 stale and never-redeemed guests",
            id="counts-moved",
        ),
        pytest.param(
            lambda p: msgspec.structs.replace(p, counts={**p.counts, "gone": 0}), "unknown categories", id="category"
        ),
        pytest.param(
            lambda p: msgspec.structs.replace(p, actions=(*p.actions[:1], p.actions[0])),
            "more than one action for guest g1",
            id="repeated",
        ),
        pytest.param(
            lambda p: msgspec.structs.replace(p, actions=(msgspec.structs.replace(p.actions[0], target_id="g9"),)),
            "evidence of its action on g9 is about another user",
            id="target-swapped",
        ),
        pytest.param(
            lambda p: msgspec.structs.replace(
                p, actions=tuple(msgspec.structs.replace(a, kind=ActionKind.DELETE) for a in p.actions)
            ),
            "2 actions for its 0 disabled-long guests",
            id="kinds-changed",
        ),
    ],
)
def test_a_plan_that_disagrees_with_itself_or_time_has_problems(edit: Callable[[Plan], Plan], problem: str | None):
    problems = plan_problems(edit(honest()), NOW)
    assert (problems == []) if problem is None else any(problem in p for p in problems), problems
