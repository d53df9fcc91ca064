"""GET /users/delta: rounds, links, @removed, $select tracking, latest, id filters, 7-day token expiry."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from emulator.testing import EmulatorServer


def round_trip(
    client: httpx.Client, url: str, params: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> tuple[list[dict], str]:
    """Follow nextLinks until a deltaLink; returns (items, deltaLink)."""
    response = client.get(url, params=params, headers=headers)
    items: list[dict] = []
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        items.extend(body["value"])
        if "@odata.deltaLink" in body:
            assert "@odata.nextLink" not in body
            return items, body["@odata.deltaLink"]
        response = client.get(body["@odata.nextLink"], headers=headers)


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/users/delta()", id="sdk-path-with-parentheses"),
        pytest.param("/users/delta", id="path-without-parentheses"),
    ],
)
def test_initial_round_returns_every_user_then_a_delta_link(
    emulator: EmulatorServer, graph_http: httpx.Client, path: str
) -> None:
    items, delta_link = round_trip(
        graph_http, path, {"$select": "id,displayName,userType"}, {"Prefer": "odata.maxpagesize=25"}
    )
    assert sorted(u["id"] for u in items) == sorted(emulator.tenant.users)
    assert "$deltatoken" in parse_qs(urlsplit(delta_link).query)
    assert delta_link.startswith(emulator.base_url)


def test_next_round_is_empty_without_changes(graph_http: httpx.Client) -> None:
    _, link = round_trip(graph_http, "/users/delta()", {"$select": "id,displayName"})
    items, second = round_trip(graph_http, link)
    assert items == []
    assert "$deltatoken" in second


def test_changes_of_selected_properties_surface(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    _, link = round_trip(graph_http, "/users/delta()", {"$select": "id,displayName,accountEnabled"})
    guests = [u for u in emulator.tenant.users.values() if u.userType == "Guest"]
    graph_http.patch(f"/users/{guests[0].id}", json={"accountEnabled": False})
    graph_http.patch(f"/users/{guests[1].id}", json={"jobTitle": "Untracked change"})
    items, _ = round_trip(graph_http, link)
    assert [u["id"] for u in items] == [guests[0].id]
    assert items[0]["accountEnabled"] is False
    assert set(items[0]) == {"id", "displayName", "accountEnabled"}


def test_return_minimal_sends_only_changed_properties(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    _, link = round_trip(graph_http, "/users/delta()", {"$select": "id,displayName,accountEnabled"})
    guest = next(u for u in emulator.tenant.users.values() if u.userType == "Guest")
    graph_http.patch(f"/users/{guest.id}", json={"displayName": "Renamed"})
    response = graph_http.get(link, headers={"Prefer": "return=minimal"})
    assert response.json()["value"] == [{"displayName": "Renamed", "id": guest.id}]
    assert response.headers["preference-applied"] == "return=minimal"


def test_new_invited_guest_appears_in_the_next_round(graph_http: httpx.Client) -> None:
    _, link = round_trip(graph_http, "/users/delta()", {"$select": "id,mail,externalUserState"})
    created = graph_http.post(
        "/invitations",
        json={
            "invitedUserEmailAddress": "new.person@fabrikam.com",
            "inviteRedirectUrl": "https://myapps.microsoft.com",
        },
    )
    items, _ = round_trip(graph_http, link)
    assert items == [
        {
            "id": created.json()["invitedUser"]["id"],
            "mail": "new.person@fabrikam.com",
            "externalUserState": "PendingAcceptance",
        }
    ]


def test_redemption_is_tracked_as_a_change_of_external_user_state(
    emulator: EmulatorServer, graph_http: httpx.Client
) -> None:
    pending = next(u for u in emulator.tenant.users.values() if u.externalUserState == "PendingAcceptance")
    _, link = round_trip(graph_http, "/users/delta()", {"$select": "id,externalUserState"})
    emulator.control.redeem(pending.id)
    items, _ = round_trip(graph_http, link)
    assert items == [{"id": pending.id, "externalUserState": "Accepted"}]


def test_soft_delete_is_removed_changed_and_permanent_delete_is_removed_deleted(
    emulator: EmulatorServer, graph_http: httpx.Client
) -> None:
    guests = [u.id for u in emulator.tenant.users.values() if u.userType == "Guest"][:2]
    _, link = round_trip(graph_http, "/users/delta()", {"$select": "id"})
    for guest_id in guests:
        assert graph_http.delete(f"/users/{guest_id}").status_code == 204
    assert graph_http.delete(f"/directory/deletedItems/{guests[1]}").status_code == 204
    items, link = round_trip(graph_http, link)
    assert items == [
        {"id": guests[0], "@removed": {"reason": "changed"}},
        {"id": guests[1], "@removed": {"reason": "deleted"}},
    ]
    graph_http.post(f"/directory/deletedItems/{guests[0]}/restore")
    items, _ = round_trip(graph_http, link)
    assert items == [{"id": guests[0]}]


def test_delta_token_latest_returns_only_a_delta_link(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    body = graph_http.get("/users/delta()", params={"$deltatoken": "latest"}).json()
    assert body["value"] == []
    assert "@odata.deltaLink" in body
    assert "@odata.nextLink" not in body
    guest = next(u for u in emulator.tenant.users.values() if u.userType == "Guest")
    graph_http.patch(f"/users/{guest.id}", json={"displayName": "Changed after latest"})
    items, _ = round_trip(graph_http, body["@odata.deltaLink"])
    assert [u["id"] for u in items] == [guest.id]


def test_filter_by_ids_limits_the_round(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    ids = list(emulator.tenant.users)[:3]
    text = " or ".join(f"id eq '{i}'" for i in ids)
    items, link = round_trip(graph_http, "/users/delta()", {"$filter": text, "$select": "id,displayName"})
    assert sorted(u["id"] for u in items) == sorted(ids)
    other = list(emulator.tenant.users)[5]
    graph_http.patch(f"/users/{other}", json={"displayName": "outside the filter"})
    graph_http.patch(f"/users/{ids[0]}", json={"displayName": "inside the filter"})
    items, _ = round_trip(graph_http, link)
    assert items == [{"id": ids[0], "displayName": "inside the filter"}]


@pytest.mark.parametrize(
    "params",
    [
        pytest.param(
            {"$filter": " or ".join(f"id eq '{i:08d}-0000-0000-0000-000000000000'" for i in range(51))},
            id="more-than-50-ids",
        ),
        pytest.param({"$filter": "userType eq 'Guest'"}, id="only-id-filters"),
        pytest.param({"$top": "10"}, id="top-not-supported"),
        pytest.param({"$orderby": "displayName"}, id="orderby-not-supported"),
        pytest.param({"$expand": "manager"}, id="expand-not-supported"),
    ],
)
def test_unsupported_delta_queries(graph_http: httpx.Client, params: dict[str, str]) -> None:
    response = graph_http.get("/users/delta()", params=params)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "Request_UnsupportedQuery"


def test_select_together_with_a_token_is_rejected(graph_http: httpx.Client) -> None:
    first = graph_http.get("/users/delta()", params={"$select": "id"}, headers={"Prefer": "odata.maxpagesize=5"})
    link = first.json()["@odata.nextLink"]
    assert graph_http.get(link + "&$select=id,displayName").status_code == 400


@pytest.mark.parametrize(
    ("days", "status"),
    [pytest.param(6.9, 200, id="token-valid-before-7-days"), pytest.param(7.1, 410, id="token-expired-after-7-days")],
)
def test_delta_token_expires_after_seven_days(
    emulator: EmulatorServer, graph_http: httpx.Client, days: float, status: int
) -> None:
    _, link = round_trip(graph_http, "/users/delta()", {"$select": "id,displayName"})
    emulator.control.advance(days=days)
    response = graph_http.get(link)
    assert response.status_code == status
    if status == 410:
        assert response.json()["error"]["code"] == "syncStateNotFound"
        location = response.headers["location"]
        assert "$deltatoken" not in location
        assert parse_qs(urlsplit(location).query)["$select"] == ["id,displayName"]


def test_token_from_another_tenant_is_sync_state_not_found(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    _, link = round_trip(graph_http, "/users/delta()", {"$select": "id"})
    emulator.control.reset(seed=3, guests=5, members=2)
    assert graph_http.get(link).status_code == 410


def test_garbage_token_is_400(graph_http: httpx.Client) -> None:
    assert graph_http.get("/users/delta()", params={"$deltatoken": "!!not-a-token!!"}).status_code == 400


REDEMPTION_SELECT = "id,userType,externalUserState,externalUserStateChangeDateTime,accountEnabled,mail,otherMails"


def test_redemption_tracking_selection_surfaces_redemption_and_removals(
    emulator: EmulatorServer, graph_http: httpx.Client
) -> None:
    """The selection redemption tracking uses: redemption, soft delete and permanent delete in later rounds."""
    emulator.control.set_clock(frozen=True)
    guests = [u for u in emulator.tenant.users.values() if u.userType == "Guest"]
    pending = next(u for u in guests if u.externalUserState == "PendingAcceptance")
    removed = next(u.id for u in guests if u.id != pending.id)
    first, link = round_trip(graph_http, "/users/delta()", {"$select": REDEMPTION_SELECT})
    entry = next(u for u in first if u["id"] == pending.id)
    assert set(entry) == set(REDEMPTION_SELECT.split(","))
    assert entry["externalUserState"] == "PendingAcceptance"

    emulator.control.advance(hours=3)
    emulator.control.redeem(pending.id)
    redeemed_at = emulator.control.clock()["now"]
    assert graph_http.delete(f"/users/{removed}").status_code == 204
    items, link = round_trip(graph_http, link)
    assert {u["id"]: u for u in items} == {
        pending.id: {**entry, "externalUserState": "Accepted", "externalUserStateChangeDateTime": redeemed_at},
        removed: {"id": removed, "@removed": {"reason": "changed"}},
    }
    assert len(items) == 2
    assert graph_http.delete(f"/directory/deletedItems/{removed}").status_code == 204
    items, _ = round_trip(graph_http, link)
    assert items == [{"id": removed, "@removed": {"reason": "deleted"}}]
