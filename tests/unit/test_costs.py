"""Request costs follow the documented identity throttling table (docs/graph-contract.md#throttling)."""

from __future__ import annotations

import pytest

from shared.graph.costs import Cost, request_cost


@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        pytest.param("GET", "/users", None, Cost(2), id="list-users-2"),
        pytest.param("GET", "/users", {"$select": "id"}, Cost(1), id="select-lowers-by-1"),
        pytest.param("GET", "/users/abc", None, Cost(1), id="other-get-1"),
        pytest.param("GET", "/users/abc", {"$select": "id"}, Cost(1), id="minimum-is-1"),
        pytest.param("GET", "/groups/g/members", {"$expand": "x"}, Cost(4), id="members-3-expand-plus-1"),
        pytest.param("GET", "/groups/g/members", {"$top": "10"}, Cost(2), id="top-below-20-lowers"),
        pytest.param("GET", "/groups/g/transitiveMembers", None, Cost(5), id="transitive-members-5"),
        pytest.param("POST", "/users/u/checkMemberGroups", None, Cost(4), id="check-member-groups-4-no-write"),
        pytest.param("POST", "/directoryObjects/getByIds", None, Cost(5), id="get-by-ids-5"),
        pytest.param("PATCH", "/users/u", None, Cost(1, 1), id="patch-is-a-write"),
        pytest.param("DELETE", "/groups/g/members/u/$ref", None, Cost(1, 1), id="remove-member-is-a-write"),
        pytest.param("POST", "/invitations", None, Cost(1, 1), id="invite-is-a-write"),
        pytest.param("GET", "/auditLogs/signIns", None, Cost(0, 0, 1), id="sign-in-logs-use-reports-budget"),
        pytest.param(
            "GET",
            "/users",
            {"$select": "id,signInActivity"},
            Cost(1, sign_in_activity=1),
            id="user-list-with-signInActivity-budgeted",
        ),
        pytest.param("GET", "/users/abc", {"$select": "id,signInActivity"}, Cost(1), id="single-user-recheck-not"),
    ],
)
def test_request_cost(method: str, path: str, query: dict[str, str] | None, expected: Cost) -> None:
    assert request_cost(method, path, query) == expected
