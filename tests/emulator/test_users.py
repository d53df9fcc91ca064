"""GET /users: paging caps, default and explicit $select, filters, ConsistencyLevel rules, $count, errors."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from emulator.schema import USER_DEFAULT_SELECT
from emulator.testing import EmulatorServer
from tests.support.emulator import follow, guest_ids

EVENTUAL = {"ConsistencyLevel": "eventual"}


def error_code(response: httpx.Response) -> str:
    return response.json()["error"]["code"]


@pytest.mark.parametrize(
    ("params", "status"),
    [
        pytest.param({"$top": "999"}, 200, id="top-999-is-the-maximum"),
        pytest.param({"$top": "1000"}, 400, id="top-above-999-rejected"),
        pytest.param({"$top": "0"}, 400, id="top-zero-rejected"),
        pytest.param({"$top": "500", "$select": "id,signInActivity"}, 200, id="signInActivity-top-500-ok"),
        pytest.param({"$top": "501", "$select": "id,signInActivity"}, 400, id="signInActivity-top-above-500-rejected"),
        pytest.param({"$top": "abc"}, 400, id="top-not-a-number"),
    ],
)
def test_page_size_caps(graph_http: httpx.Client, params: dict[str, str], status: int) -> None:
    response = graph_http.get("/users", params=params)
    assert response.status_code == status, response.text
    if status == 400:
        assert error_code(response) in ("Request_UnsupportedQuery", "Request_BadRequest")


def test_default_page_is_100_and_next_link_carries_the_query(
    emulator: EmulatorServer, graph_http: httpx.Client
) -> None:
    emulator.control.generate_guests(80)  # 152 users in all
    first = graph_http.get("/users", params={"$filter": "userType eq 'Guest'", "$select": "id,mail"})
    body = first.json()
    assert len(body["value"]) == 100
    link = body["@odata.nextLink"]
    parts = urlsplit(link)
    assert link.startswith(emulator.base_url + "/users?")
    query = parse_qs(parts.query)
    assert query["$filter"] == ["userType eq 'Guest'"]
    assert query["$select"] == ["id,mail"]
    assert "$skiptoken" in query
    everyone = follow(graph_http, first)
    assert {u["id"] for u in everyone} == guest_ids(emulator.tenant)
    assert len(everyone) == len({u["id"] for u in everyone})


def test_paging_with_top_visits_every_user_once(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    items = follow(graph_http, graph_http.get("/users", params={"$top": "7", "$select": "id"}))
    assert sorted(u["id"] for u in items) == sorted(emulator.tenant.users)


def test_default_selection_is_graphs_default_set(graph_http: httpx.Client) -> None:
    user = graph_http.get("/users", params={"$top": "1"}).json()["value"][0]
    assert set(user) == set(USER_DEFAULT_SELECT)
    assert "userType" not in user
    assert "signInActivity" not in user


def test_select_returns_exactly_the_selected_properties_plus_id(graph_http: httpx.Client) -> None:
    user = graph_http.get("/users", params={"$select": "displayName,userType", "$top": "1"}).json()["value"][0]
    assert set(user) == {"displayName", "userType", "id"}


def test_select_unknown_property_is_400(graph_http: httpx.Client) -> None:
    response = graph_http.get("/users", params={"$select": "id,shoeSize"})
    assert response.status_code == 400
    assert "shoeSize" in response.json()["error"]["message"]


def test_single_user_only_property_on_a_list_is_501(graph_http: httpx.Client) -> None:
    assert graph_http.get("/users", params={"$select": "id,skills"}).status_code == 501


def test_sign_in_activity_is_left_out_for_users_without_activity(
    emulator: EmulatorServer, graph_http: httpx.Client
) -> None:
    kinds = emulator.control.ground_truth()["guest_kinds"]
    users = follow(graph_http, graph_http.get("/users", params={"$select": "id,signInActivity", "$top": "500"}))
    for user in users:
        if kinds.get(user["id"]) in ("no_activity", "pending_recent", "pending_stale"):
            assert "signInActivity" not in user
        if kinds.get(user["id"]) == "null_activity":
            assert set(user["signInActivity"].values()) == {None}
        if kinds.get(user["id"]) == "legacy_stale":
            assert user["signInActivity"]["lastSuccessfulSignInDateTime"] is None
            assert user["signInActivity"]["lastSignInDateTime"] < "2023-12-01"


def expected(emulator: EmulatorServer, predicate) -> set[str]:
    return {u.id for u in emulator.tenant.users.values() if predicate(u)}


DEFAULT_FILTERS = [
    pytest.param("userType eq 'Guest'", lambda u: u.userType == "Guest", id="userType-eq"),
    pytest.param("userType in ('Guest','Member')", lambda u: True, id="userType-in"),
    pytest.param("creationType eq 'Invitation'", lambda u: u.creationType == "Invitation", id="creationType-eq"),
    pytest.param(
        "externalUserState eq 'PendingAcceptance'",
        lambda u: u.externalUserState == "PendingAcceptance",
        id="externalUserState-eq",
    ),
    pytest.param("accountEnabled eq false", lambda u: u.accountEnabled is False, id="accountEnabled-eq"),
    pytest.param(
        "createdDateTime le 2024-01-01T00:00:00Z",
        lambda u: u.createdDateTime <= "2024-01-01T00:00:00Z",
        id="createdDateTime-le",
    ),
    pytest.param(
        "createdDateTime ge 2025-06-01T00:00:00Z and userType eq 'Guest'",
        lambda u: u.createdDateTime >= "2025-06-01T00:00:00Z" and u.userType == "Guest",
        id="createdDateTime-ge-and-userType",
    ),
    pytest.param(
        "startsWith(displayName,'a')",
        lambda u: u.displayName.lower().startswith("a"),
        id="startsWith-is-case-insensitive",
    ),
    pytest.param(
        "userType eq 'Member' or externalUserState eq 'Accepted'",
        lambda u: u.userType == "Member" or u.externalUserState == "Accepted",
        id="or",
    ),
    pytest.param(
        "(userType eq 'Guest') and (accountEnabled eq true)",
        lambda u: u.userType == "Guest" and u.accountEnabled,
        id="parentheses",
    ),
    pytest.param(
        "identities/any(c:c/issuer eq 'mail')",
        lambda u: any(i[1] == "mail" for i in u.identities),
        id="identities-issuer-mail",
    ),
    pytest.param(
        "otherMails/any(x:startsWith(x,'a'))",
        lambda u: any(m.lower().startswith("a") for m in u.otherMails),
        id="otherMails-any-startsWith",
    ),
]


@pytest.mark.parametrize(("text", "predicate"), DEFAULT_FILTERS)
def test_default_filters_work_without_consistency_level(
    emulator: EmulatorServer, graph_http: httpx.Client, text: str, predicate
) -> None:
    items = follow(graph_http, graph_http.get("/users", params={"$filter": text, "$select": "id", "$top": "999"}))
    assert {u["id"] for u in items} == expected(emulator, predicate)


def test_filter_on_mail_eq_is_case_insensitive_and_indexed(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    guest = next(u for u in emulator.tenant.users.values() if u.userType == "Guest")
    response = graph_http.get("/users", params={"$filter": f"mail eq '{guest.mail.upper()}'"})
    assert [u["id"] for u in response.json()["value"]] == [guest.id]


ADVANCED_FILTERS = [
    pytest.param(
        "endsWith(mail,'@fabrikam.com')",
        lambda u: (u.mail or "").endswith("@fabrikam.com"),
        id="endsWith-needs-eventual",
    ),
    pytest.param("userType ne 'Guest'", lambda u: u.userType != "Guest", id="ne-needs-eventual"),
    pytest.param("not(userType eq 'Guest')", lambda u: u.userType != "Guest", id="not-needs-eventual"),
    pytest.param("companyName eq 'Fabrikam'", lambda u: u.companyName == "Fabrikam", id="companyName-is-advanced-only"),
    pytest.param(
        "externalUserState ne 'Accepted'",
        lambda u: u.externalUserState != "Accepted",
        id="externalUserState-ne-needs-eventual",
    ),
]


@pytest.mark.parametrize(("text", "predicate"), ADVANCED_FILTERS)
def test_advanced_filters_need_consistency_level(
    emulator: EmulatorServer, graph_http: httpx.Client, text: str, predicate
) -> None:
    refused = graph_http.get("/users", params={"$filter": text})
    assert refused.status_code == 400
    assert error_code(refused) == "Request_UnsupportedQuery"
    params = {"$filter": text, "$count": "true", "$select": "id", "$top": "999"}
    first = graph_http.get("/users", params=params, headers=EVENTUAL)
    wanted = expected(emulator, predicate)
    assert first.json()["@odata.count"] == len(wanted)
    assert {u["id"] for u in follow(graph_http, first, EVENTUAL)} == wanted


def test_next_link_without_consistency_level_is_refused_for_advanced_query(
    emulator: EmulatorServer, graph_http: httpx.Client
) -> None:
    # The SDK does not carry ConsistencyLevel to nextLink pages; the emulator must notice.
    first = graph_http.get("/users", params={"$filter": "userType ne 'Member'", "$top": "5"}, headers=EVENTUAL)
    link = first.json()["@odata.nextLink"]
    assert graph_http.get(link).status_code == 400
    assert graph_http.get(link, headers=EVENTUAL).status_code == 200


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(
            "signInActivity/lastSignInDateTime le 2025-01-01T00:00:00Z and userType eq 'Guest'",
            id="signInActivity-and-userType",
        ),
        pytest.param(
            "userType eq 'Guest' or signInActivity/lastSuccessfulSignInDateTime ge 2025-01-01T00:00:00Z",
            id="signInActivity-or-userType",
        ),
        pytest.param(
            "signInActivity/lastSignInDateTime le 2025-01-01T00:00:00Z and accountEnabled eq true",
            id="signInActivity-and-accountEnabled",
        ),
    ],
)
def test_sign_in_activity_filter_cannot_be_combined(graph_http: httpx.Client, text: str) -> None:
    for headers in ({}, EVENTUAL):
        response = graph_http.get("/users", params={"$filter": text}, headers=headers)
        assert response.status_code == 400
        assert error_code(response) == "Request_UnsupportedQuery"


def test_sign_in_activity_filter_alone_works(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    cutoff = "2025-12-01T00:00:00Z"
    items = follow(
        graph_http,
        graph_http.get(
            "/users",
            params={"$filter": f"signInActivity/lastSignInDateTime le {cutoff}", "$select": "id,signInActivity"},
        ),
    )
    wanted = expected(emulator, lambda u: u.sign_in is not None and u.sign_in[0] is not None and u.sign_in[0] <= cutoff)
    assert {u["id"] for u in items} == wanted


@pytest.mark.parametrize(
    ("text", "code"),
    [
        pytest.param("createdDateTime gt 2024-01-01T00:00:00Z", "Request_UnsupportedQuery", id="gt-not-supported"),
        pytest.param("createdDateTime ge '2024-01-01'", "Request_BadRequest", id="quoted-datetime-incompatible"),
        pytest.param(
            "externalUserStateChangeDateTime ge 2024-01-01T00:00:00Z",
            "Request_UnsupportedQuery",
            id="externalUserStateChangeDateTime-has-no-range",
        ),
        pytest.param("shoeSize eq 'x'", "Request_BadRequest", id="unknown-property"),
        pytest.param("userType eq", "Request_BadRequest", id="syntax-error"),
        pytest.param("contains(displayName,'a')", "Request_UnsupportedQuery", id="contains-not-supported"),
        pytest.param(
            "identities/any(c:c/issuerAssignedId eq 'a@b.com')",
            "Request_UnsupportedQuery",
            id="issuerAssignedId-needs-issuer",
        ),
        pytest.param("accountEnabled eq 'true'", "Request_BadRequest", id="boolean-as-string"),
    ],
)
def test_invalid_filters(graph_http: httpx.Client, text: str, code: str) -> None:
    response = graph_http.get("/users", params={"$filter": text}, headers=EVENTUAL)
    assert response.status_code == 400
    assert error_code(response) == code


def test_count_true_without_consistency_level_is_ignored(graph_http: httpx.Client) -> None:
    response = graph_http.get("/users", params={"$count": "true"})
    assert response.status_code == 200
    assert "@odata.count" not in response.json()


def test_count_segment_needs_consistency_level(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    refused = graph_http.get("/users/$count")
    assert refused.status_code == 400
    assert "$count is not currently supported" in refused.json()["error"]["message"]
    counted = graph_http.get("/users/$count", params={"$filter": "userType eq 'Guest'"}, headers=EVENTUAL)
    assert counted.status_code == 200
    assert counted.headers["content-type"].startswith("text/plain")
    assert int(counted.text) == len(guest_ids(emulator.tenant))


def test_expand_sponsors_returns_sponsor_objects(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    guest = next(u for u in emulator.tenant.users.values() if u.sponsors)
    body = graph_http.get(f"/users/{guest.id}", params={"$expand": "sponsors($select=id,displayName)"}).json()
    assert [s["id"] for s in body["sponsors"]] == list(guest.sponsors)
    assert set(body["sponsors"][0]) <= {"@odata.type", "id", "displayName"}


def test_expand_is_refused_with_an_advanced_query(graph_http: httpx.Client) -> None:
    response = graph_http.get("/users", params={"$expand": "sponsors", "$count": "true"}, headers=EVENTUAL)
    assert response.status_code == 400


def test_orderby_display_name(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    items = follow(
        graph_http,
        graph_http.get("/users", params={"$orderby": "displayName", "$select": "id,displayName", "$top": "20"}),
    )
    names = [u["displayName"].lower() for u in items]
    assert names == sorted(names)
    assert len(items) == len(emulator.tenant.users)


def test_get_user_by_id_and_by_guest_upn_with_encoded_hash(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    guest = next(u for u in emulator.tenant.users.values() if u.userType == "Guest")
    by_id = graph_http.get(f"/users/{guest.id}", params={"$select": "id,userPrincipalName,userType"})
    assert by_id.json()["userPrincipalName"] == guest.userPrincipalName
    encoded = guest.userPrincipalName.replace("#", "%23")
    assert "#EXT#" in guest.userPrincipalName
    assert graph_http.get(f"/users/{encoded}").json()["id"] == guest.id
    # An unencoded '#' starts a URL fragment: the request reaches Graph without the rest of the UPN.
    assert graph_http.get(f"/users/{guest.userPrincipalName}").status_code == 404


def test_missing_user_is_404_with_graph_error_body(graph_http: httpx.Client) -> None:
    response = graph_http.get(
        "/users/00000000-0000-0000-0000-000000000000", headers={"client-request-id": "my-client-id"}
    )
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "Request_ResourceNotFound"
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}
    assert error["innerError"]["client-request-id"] == "my-client-id"
    assert response.headers["client-request-id"] == "my-client-id"
    assert response.headers["request-id"] == error["innerError"]["request-id"]


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-authorization-header"),
        pytest.param({"Authorization": "Bearer"}, id="empty-bearer-token"),
        pytest.param({"Authorization": "Basic dXNlcjpwYXNz"}, id="not-a-bearer-token"),
    ],
)
def test_requests_without_a_bearer_token_get_401(emulator: EmulatorServer, headers: dict[str, str]) -> None:
    response = httpx.get(f"{emulator.base_url}/users", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_unknown_segment_and_version(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    assert graph_http.get("/nonsense").status_code == 400
    response = httpx.get(f"{emulator.root_url}/beta/users", headers={"Authorization": "Bearer t"})
    assert response.status_code == 400


def test_patch_user_validates_properties(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    guest = next(u for u in emulator.tenant.users.values() if u.userType == "Guest")
    assert graph_http.patch(f"/users/{guest.id}", json={"accountEnabled": False}).status_code == 204
    assert emulator.tenant.users[guest.id].accountEnabled is False
    assert graph_http.patch(f"/users/{guest.id}", json={"createdDateTime": "2020-01-01T00:00:00Z"}).status_code == 400
    assert graph_http.patch(f"/users/{guest.id}", json={"shoeSize": 44}).status_code == 400
    assert graph_http.patch(f"/users/{guest.id}", json={"accountEnabled": "no"}).status_code == 400


def test_response_headers_and_resource_units(graph_http: httpx.Client) -> None:
    response = graph_http.get("/users", params={"$top": "1"})
    assert response.headers["x-ms-resource-unit"] == "1"  # GET users 2 RU, $top < 20 -1
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["@odata.context"].endswith("$metadata#users")
