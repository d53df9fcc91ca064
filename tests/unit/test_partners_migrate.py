"""Pure migration rules: who matches a home user, and what the plan says about each guest."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from shared.config import Policy
from shared.partners.accept import HomeUser, IdsFile, home_user
from shared.partners.home_ids import candidate_addresses, ids_from_app
from shared.partners.migrate import (
    MigrationPlan,
    SharedChannel,
    Status,
    home_index,
    match_home,
    plan_migration,
    plan_person,
)
from shared.partners.records import Guest, Usage

TENANT = "aaaaaaaa-0000-4000-8000-000000000001"
HOME = "eeeeeeee-0000-4000-8000-000000000001"
TEAM = "cccccccc-0000-4000-8000-000000000001"
CHANNEL = SharedChannel(TEAM, "Project X", "19:x@thread.tacv2", "Partners")
TEAMS_ONLY = Usage(teams=1)


@pytest.mark.parametrize(
    "guest",
    [
        pytest.param(Guest(id="g", mail="Ann@Fabrikam.com"), id="mail-any-case"),
        pytest.param(Guest(id="g", other_mails=["ann@fabrikam.com"]), id="otherMails"),
        pytest.param(Guest(id="g", upn="ann_fabrikam.com#EXT#@contoso.onmicrosoft.com"), id="ext-upn"),
    ],
)
def test_a_guest_matches_its_home_user(guest: Guest) -> None:
    assert match_home(guest, home_index((HomeUser(HOME, "ann@fabrikam.com", "ann@fabrikam.com"),))) is not None


def test_an_address_two_home_users_share_matches_nobody() -> None:
    users = (HomeUser(HOME, "team@fabrikam.com", None), HomeUser(TENANT, "team@fabrikam.com", None))
    assert match_home(Guest(id="g", mail="team@fabrikam.com"), home_index(users)) is None


@pytest.mark.parametrize(
    ("usage", "home", "members", "inbound", "expected", "adds"),
    [
        pytest.param(TEAMS_ONLY, HOME, frozenset(), True, Status.ADD, 1, id="teams-only-added"),
        pytest.param(TEAMS_ONLY, HOME, frozenset({(TENANT, HOME)}), True, Status.MEMBER, 0, id="already-member"),
        pytest.param(TEAMS_ONLY, None, frozenset(), True, Status.NO_HOME_ID, 0, id="no-home-id"),
        pytest.param(Usage(teams=1, apps=1), HOME, frozenset(), True, Status.KEEPS_GUEST, 0, id="apps-keep"),
        pytest.param(Usage(role_holder=True), HOME, frozenset(), True, Status.KEEPS_GUEST, 0, id="role-never"),
        pytest.param(TEAMS_ONLY, HOME, frozenset(), False, Status.INBOUND_BLOCKED, 0, id="our-inbound-blocks"),
    ],
)
def test_plan_person(
    usage: Usage, home: str | None, members: frozenset, inbound: bool, expected: Status, adds: int
) -> None:
    channel = SharedChannel(TEAM, "Project X", CHANNEL.channel_id, "Partners", members)
    user = HomeUser(home, "ann@fabrikam.com", None) if home else None
    person, planned = plan_person(
        Guest(id="g", mail="ann@fabrikam.com"), usage, frozenset({TEAM}), user, {TEAM: channel},
        partner_tenant=TENANT, inbound_allowed=inbound,
    )  # fmt: skip
    assert (person.status, len(planned)) == (expected, adds)
    assert all((a.tenant_id, a.home_id, a.channel_id) == (TENANT, HOME, CHANNEL.channel_id) for a in planned)


def test_a_team_without_a_mapped_channel() -> None:
    person, planned = plan_person(
        Guest(id="g"), TEAMS_ONLY, frozenset({"other"}), HomeUser(HOME, None, None), {TEAM: CHANNEL},
        partner_tenant=TENANT, inbound_allowed=True,
    )  # fmt: skip
    assert (person.status, planned) == (Status.NO_CHANNEL, [])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param({"kind": "other"}, "not a partner id file", id="kind"),
        pytest.param({"tenant_id": "fabrikam.com"}, "tenant_id is not a tenant id", id="tenant"),
        pytest.param({"users": [{"id": "nope"}]}, "users[0]: id is not an object id", id="user-id"),
    ],
)
def test_a_bad_id_file_is_refused(change: dict, message: str) -> None:
    good = {"kind": "guestctl.partners.ids", "version": 1, "tenant_id": TENANT, "resource_tenant": HOME,
            "created_at": "2026-03-01T00:00:00+00:00", "users": []}  # fmt: skip
    IdsFile.from_json(good)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        IdsFile.from_json({**good, **change})


def _plan(channel: SharedChannel, people: int, policy: Policy) -> MigrationPlan:
    guests = [(Guest(id=f"g{n}", mail=f"p{n}@fabrikam.com"), TEAMS_ONLY, frozenset({TEAM})) for n in range(people)]
    users = tuple(HomeUser(f"eeeeeeee-0000-4000-8000-{n:012d}", f"p{n}@fabrikam.com", None) for n in range(people))
    ids = IdsFile(TENANT, HOME, datetime(2026, 3, 1, tzinfo=UTC), {"users": "all"}, True, users)
    return plan_migration(
        now=datetime(2026, 3, 2, tzinfo=UTC), partner_tenant=TENANT, partner_label="Fabrikam", run_id="r", ids=ids,
        guests=guests, channels={TEAM: channel}, inbound_allowed=True, policy=policy, all_guests=100,
    )  # fmt: skip


def test_a_channel_to_create_is_planned_once_before_the_adds_that_need_it() -> None:
    to_create = SharedChannel(TEAM, "Project X", "", "Project X Partners", create=True, description="with them")
    plan = _plan(to_create, 3, Policy())
    assert [(c.team_id, c.channel_name, c.description) for c in plan.creates] == [
        (TEAM, "Project X Partners", "with them")
    ]
    assert [a.channel_id for a in plan.actions] == ["", "", ""]  # the applier fills in the new channel's id
    assert len({a.target_id for a in plan.actions}) == 3
    assert plan.people[0].channels == ("Project X/Project X Partners (to create)",)
    assert _plan(to_create, 0, Policy()).creates == []  # nobody to add: nothing is created


@pytest.mark.parametrize(
    ("partners", "people", "refused"),
    [
        pytest.param({"max_moves": 3}, 3, None, id="at-max-moves"),
        pytest.param({"max_moves": 3}, 4, "4 people to move into shared channels exceed partners.max_moves (3)",
                     id="over-max-moves"),
        pytest.param({}, 200, None, id="default-200-whatever-the-sweep-caps"),
        pytest.param({}, 201, "201 people to move into shared channels exceed partners.max_moves (200)",
                     id="over-default"),
    ],
)  # fmt: skip
def test_the_blast_radius_cap_counts_people_moved(partners: dict, people: int, refused: str | None) -> None:
    sweep_caps = {"max_actions": 1, "max_percent": 1}  # the sweep's caps do not apply to migrations
    plan = _plan(CHANNEL, people, Policy.model_validate({"safety": sweep_caps, "partners": partners}))
    assert (plan.refused is None) == (refused is None)
    assert (plan.refused or "").startswith(refused or "")


@pytest.mark.parametrize(
    ("home_ids", "ok"),
    [
        pytest.param(None, "file", id="default-file"),
        pytest.param("app", "app", id="app"),
        pytest.param("both", None, id="unknown-refused"),
        pytest.param("App", None, id="exact-spelling"),
    ],
)
def test_home_ids_policy_key(home_ids: str | None, ok: str | None) -> None:
    entry = {"tenant": TENANT, "inbound": {"users": "all"}, **({"home_ids": home_ids} if home_ids else {})}
    data = {"partners": {"tenants": [entry]}}
    if ok is None:
        with pytest.raises(ValidationError, match="home_ids"):
            Policy.model_validate(data)
    else:
        assert Policy.model_validate(data).partners.tenants[0].home_ids == ok


@pytest.mark.parametrize(
    ("item", "kept"),
    [
        pytest.param({"id": HOME, "mail": "a@f.com", "accountEnabled": True, "userType": "Member"}, True, id="member"),
        pytest.param({"id": HOME, "mail": "a@f.com"}, True, id="unselected-properties-mean-kept"),
        pytest.param({"id": HOME, "mail": "a@f.com", "accountEnabled": False}, False, id="disabled"),
        pytest.param({"id": HOME, "mail": "a@f.com", "userType": "Guest"}, False, id="their-guest"),
        pytest.param({"id": HOME, "@odata.type": "#microsoft.graph.group"}, False, id="not-a-user"),
    ],
)
def test_home_user_is_an_enabled_member(item: dict, kept: bool) -> None:
    assert (home_user(item) is not None) is kept


def test_ids_from_app_are_one_run_per_answer_and_day() -> None:
    users = [HomeUser(HOME, "ann@fabrikam.com", "ann@fabrikam.com")]
    morning = ids_from_app(TENANT, None, users, datetime(2025, 3, 1, 8, tzinfo=UTC))
    evening = ids_from_app(TENANT, None, users, datetime(2025, 3, 1, 23, 59, tzinfo=UTC))
    tomorrow = ids_from_app(TENANT, None, users, datetime(2025, 3, 2, 0, 1, tzinfo=UTC))
    assert morning.digest() == evening.digest() != tomorrow.digest()
    assert ids_from_app(TENANT, None, [], datetime(2025, 3, 1, 8, tzinfo=UTC)).digest() != morning.digest()
    guests = [Guest(id="g", mail="Ann@Fabrikam.com", upn="ann_fabrikam.com#EXT#@contoso.onmicrosoft.com"),
              Guest(id="h", other_mails=["bo@fabrikam.com"])]  # fmt: skip
    assert candidate_addresses(guests) == ["ann@fabrikam.com", "bo@fabrikam.com"]
