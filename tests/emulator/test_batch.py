"""POST /$batch: size limit, ids, relative URLs, dependsOn and 424, per-item evaluation, response order."""

from __future__ import annotations

import httpx
import pytest

from emulator.testing import EmulatorServer


def batch(client: httpx.Client, requests: list[dict]) -> httpx.Response:
    return client.post("/$batch", json={"requests": requests})


def get(item_id: str, url: str = "/users?$top=1", **extra: object) -> dict:
    return {"id": item_id, "method": "GET", "url": url, **extra}


@pytest.mark.parametrize(
    ("requests", "reason"),
    [
        pytest.param([get(str(i)) for i in range(21)], "exceeds", id="more-than-20-requests"),
        pytest.param([get("a"), get("A")], "unique", id="duplicate-ids-case-insensitive"),
        pytest.param([get("1", "https://graph.microsoft.com/v1.0/users")], "relative", id="absolute-url"),
        pytest.param([get("1", dependsOn=["9"])], "unknown", id="depends-on-unknown-id"),
        pytest.param(
            [{"id": "1", "method": "PATCH", "url": "/users/x", "body": {"a": 1}}],
            "Content-Type",
            id="body-without-content-type",
        ),
        pytest.param([], "at least one", id="empty"),
    ],
)
def test_invalid_batches_are_400(graph_http: httpx.Client, requests: list[dict], reason: str) -> None:
    response = batch(graph_http, requests)
    assert response.status_code == 400
    assert reason in response.json()["error"]["message"]


def test_twenty_requests_are_allowed_and_each_answered(graph_http: httpx.Client) -> None:
    response = batch(graph_http, [get(str(i)) for i in range(20)])
    assert response.status_code == 200
    answers = response.json()["responses"]
    assert sorted(int(a["id"]) for a in answers) == list(range(20))
    assert all(a["status"] == 200 and "value" in a["body"] for a in answers)


def test_responses_come_back_in_another_order(graph_http: httpx.Client) -> None:
    ids = [f"r{i}" for i in range(12)]
    answers = batch(graph_http, [get(i) for i in ids]).json()["responses"]
    assert sorted(a["id"] for a in answers) == sorted(ids)
    assert [a["id"] for a in answers] != ids  # "in any order": clients must match by id


def test_failed_dependency_gives_424_and_independent_items_still_run(
    emulator: EmulatorServer, graph_http: httpx.Client
) -> None:
    guest = next(u.id for u in emulator.tenant.users.values() if u.userType == "Guest")
    requests = [
        get("missing", "/users/00000000-0000-0000-0000-000000000000"),
        {
            "id": "after-missing",
            "method": "PATCH",
            "url": f"/users/{guest}",
            "dependsOn": ["missing"],
            "headers": {"Content-Type": "application/json"},
            "body": {"jobTitle": "never"},
        },
        get("chained", f"/users/{guest}", dependsOn=["after-missing"]),
        get("independent", f"/users/{guest}"),
    ]
    by_id = {a["id"]: a for a in batch(graph_http, requests).json()["responses"]}
    assert by_id["missing"]["status"] == 404
    assert by_id["after-missing"]["status"] == 424
    assert by_id["chained"]["status"] == 424
    assert by_id["independent"]["status"] == 200
    assert emulator.tenant.users[guest].jobTitle != "never"


def test_depends_on_runs_in_order(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    guest = next(u.id for u in emulator.tenant.users.values() if u.userType == "Guest")
    requests = [
        get("read", f"/users/{guest}?$select=id,jobTitle", dependsOn=["write"]),
        {
            "id": "write",
            "method": "PATCH",
            "url": f"/users/{guest}",
            "headers": {"Content-Type": "application/json"},
            "body": {"jobTitle": "Partner Engineer"},
        },
    ]
    by_id = {a["id"]: a for a in batch(graph_http, requests).json()["responses"]}
    assert by_id["write"]["status"] == 204
    assert "body" not in by_id["write"]
    assert by_id["read"]["body"]["jobTitle"] == "Partner Engineer"


def test_inner_requests_keep_their_own_headers(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    requests = [
        get("count", "/users/$count", headers={"ConsistencyLevel": "eventual"}),
        get("no-header", "/users/$count"),
    ]
    by_id = {a["id"]: a for a in batch(graph_http, requests).json()["responses"]}
    assert by_id["count"]["status"] == 200
    assert int(by_id["count"]["body"]) == len(emulator.tenant.users)
    assert by_id["no-header"]["status"] == 400


def test_inner_requests_are_logged_and_a_nested_batch_is_refused(
    emulator: EmulatorServer, graph_http: httpx.Client
) -> None:
    emulator.control.clear_requests()
    answers = batch(
        graph_http,
        [
            get("1"),
            {
                "id": "2",
                "method": "POST",
                "url": "/$batch",
                "headers": {"Content-Type": "application/json"},
                "body": {"requests": []},
            },
        ],
    ).json()["responses"]
    assert {a["id"]: a["status"] for a in answers} == {"1": 200, "2": 400}
    logged = emulator.control.requests()
    assert [e["batch"] for e in logged] == [False, True, True]


def test_outer_batch_requires_authentication(emulator: EmulatorServer) -> None:
    response = httpx.post(f"{emulator.base_url}/$batch", json={"requests": [get("1")]})
    assert response.status_code == 401
