"""Throttling (resource units, writes, reports, signInActivity), headers, time scale, and fault injection."""

from __future__ import annotations

import time

import httpx
import pytest

from emulator.testing import EmulatorServer

TINY = {"S": 10, "M": 10, "L": 10}


@pytest.mark.parametrize(
    ("method", "path", "params", "units"),
    [
        pytest.param("GET", "/users", {}, 2, id="list-users-2"),
        pytest.param("GET", "/users", {"$select": "id"}, 1, id="select-minus-1"),
        pytest.param("GET", "/users", {"$top": "19"}, 1, id="top-below-20-minus-1"),
        pytest.param("GET", "/users", {"$top": "20"}, 2, id="top-20-no-discount"),
        pytest.param("GET", "/users", {"$select": "id", "$top": "5"}, 1, id="minimum-is-1"),
        pytest.param("GET", "/users", {"$expand": "sponsors"}, 3, id="expand-plus-1"),
        pytest.param("GET", "/users/{guest}", {}, 1, id="other-get-1"),
        pytest.param("GET", "/groups/{group}/members", {}, 3, id="group-members-3"),
        pytest.param("GET", "/groups/{group}/transitiveMembers", {}, 5, id="transitive-members-5"),
        pytest.param("GET", "/users/{guest}/transitiveMemberOf", {}, 2, id="transitiveMemberOf-2"),
        pytest.param("PATCH", "/users/{guest}", {}, 1, id="write-1"),
    ],
)
def test_resource_unit_costs(
    emulator: EmulatorServer, graph_http: httpx.Client, method: str, path: str, params: dict[str, str], units: int
) -> None:
    guest = next(u.id for u in emulator.tenant.users.values() if u.userType == "Guest")
    group = emulator.control.ground_truth()["groups"]["All Partners"]
    url = path.format(guest=guest, group=group)
    kwargs = {"json": {"jobTitle": "x"}} if method == "PATCH" else {}
    response = graph_http.request(method, url, params=params, **kwargs)
    assert response.status_code in (200, 204), response.text
    assert response.headers["x-ms-resource-unit"] == str(units)


def test_resource_unit_bucket_throttles_with_graph_headers(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    emulator.control.set_limits(enabled=True, ru_quota=TINY)
    statuses = [graph_http.get("/users").status_code for _ in range(6)]  # 2 RU each, 10 RU per 10 s
    assert statuses == [200] * 5 + [429]
    throttled = graph_http.get("/users")
    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == "TooManyRequests"
    retry_after = throttled.headers["retry-after"]
    assert retry_after.isdigit()
    assert int(retry_after) >= 1
    assert throttled.headers["x-ms-throttle-information"] == "ResourceUnitLimitExceeded"
    assert throttled.headers["x-ms-throttle-scope"].startswith("Tenant_Application/ReadWrite/")
    assert emulator.tenant.id in throttled.headers["x-ms-throttle-scope"]


def test_limit_percentage_header_above_80_percent(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    emulator.control.set_limits(enabled=True, ru_quota=TINY)
    seen = [graph_http.get("/users").headers.get("x-ms-throttle-limit-percentage") for _ in range(5)]
    assert seen[:3] == [None, None, None]  # 2, 4, 6 of 10 RU used
    assert seen[4] is not None
    assert float(seen[4]) > 0.8


def test_distinct_tokens_are_distinct_apps(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    emulator.control.set_limits(enabled=True, ru_quota=TINY)
    for _ in range(5):
        graph_http.get("/users")
    assert graph_http.get("/users").status_code == 429
    other = httpx.get(f"{emulator.base_url}/users", headers={"Authorization": "Bearer another-app"})
    assert other.status_code == 200


def test_write_quota(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    emulator.control.set_limits(enabled=True, write_quota=3)
    guest = next(u.id for u in emulator.tenant.users.values() if u.userType == "Guest")
    statuses = [graph_http.patch(f"/users/{guest}", json={"jobTitle": f"t{i}"}).status_code for i in range(4)]
    assert statuses == [204, 204, 204, 429]
    response = graph_http.patch(f"/users/{guest}", json={"jobTitle": "t"})
    assert response.headers["x-ms-throttle-information"] == "WriteLimitExceeded"
    assert graph_http.get(f"/users/{guest}").status_code == 200  # reads still pass


def test_sign_in_log_reports_limit_is_5_per_10_seconds(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    emulator.control.set_limits(enabled=True)
    statuses = [graph_http.get("/auditLogs/signIns", params={"$top": "1"}).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    assert graph_http.get("/users").status_code == 200  # identity buckets are separate


@pytest.mark.parametrize(
    ("sign_in_activity_limit", "expected"),
    [
        pytest.param(True, [200] * 10 + [429], id="signInActivity-10-per-minute"),
        pytest.param(False, [200] * 11, id="signInActivity-limit-switched-off"),
    ],
)
def test_sign_in_activity_limit(
    emulator: EmulatorServer, graph_http: httpx.Client, sign_in_activity_limit: bool, expected: list[int]
) -> None:
    emulator.control.set_limits(enabled=True, sign_in_activity_limit=sign_in_activity_limit)
    params = {"$select": "id,signInActivity", "$top": "5"}
    assert [graph_http.get("/users", params=params).status_code for _ in range(11)] == expected


def test_time_scale_shrinks_windows_and_retry_after(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    emulator.control.set_limits(enabled=True, ru_quota=TINY, time_scale=0.1)  # 10 s window -> 1 s
    for _ in range(50):
        throttled = graph_http.get("/users")
        if throttled.status_code == 429:
            break
    assert throttled.status_code == 429
    retry_after = float(throttled.headers["retry-after"])
    assert 0 < retry_after < 1  # scaled, so decimal seconds
    time.sleep(retry_after + 0.05)
    assert graph_http.get("/users").status_code == 200


def test_limits_off_by_default_in_the_test_server(graph_http: httpx.Client) -> None:
    assert all(graph_http.get("/users").status_code == 200 for _ in range(30))


def test_batch_items_are_throttled_one_by_one(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    emulator.control.set_limits(enabled=True, ru_quota=TINY)
    requests = [{"id": str(i), "method": "GET", "url": "/users"} for i in range(7)]
    response = graph_http.post("/$batch", json={"requests": requests})
    assert response.status_code == 200
    by_id = {r["id"]: r for r in response.json()["responses"]}
    assert sorted(r["status"] for r in by_id.values()) == [200] * 5 + [429] * 2
    for item in by_id.values():
        if item["status"] == 429:
            assert int(item["headers"]["Retry-After"]) >= 1
            assert item["body"]["error"]["code"] == "TooManyRequests"


# ---- faults --------------------------------------------------------------------------------------


def test_fault_sequence_forces_the_next_statuses(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    emulator.control.set_faults(sequence=[503, 429, 500])
    responses = [graph_http.get("/users", params={"$top": "1"}) for _ in range(4)]
    assert [r.status_code for r in responses] == [503, 429, 500, 200]
    assert "retry-after" in responses[0].headers
    assert "retry-after" in responses[1].headers
    assert responses[1].headers["x-ms-throttle-information"] == "CPULimitExceeded"
    assert responses[2].json()["error"]["code"] == "InternalServerError"


def test_fault_rates_are_deterministic_by_seed(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    def run(seed: int) -> list[int]:
        emulator.control.set_faults(seed=seed, rate_429=0.2, rate_500=0.1, rate_503=0.1, rate_504=0.1)
        return [graph_http.get("/users", params={"$top": "1"}).status_code for _ in range(40)]

    first, again, other = run(11), run(11), run(12)
    assert first == again
    assert first != other
    assert {429, 500, 503, 504, 200} <= set(first) | set(other)


def test_fault_path_prefix(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    emulator.control.set_faults(rate_503=1.0, path_prefix="/groups")
    assert graph_http.get("/users").status_code == 200
    assert graph_http.get("/groups").status_code == 503


def test_fault_method(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    emulator.control.set_faults(rate_503=1.0, method="delete", path_prefix="/groups")
    assert graph_http.get("/groups").status_code == 200
    assert graph_http.delete("/users/00000000-0000-0000-0000-000000000000").status_code == 404
    assert graph_http.delete("/groups/00000000-0000-0000-0000-000000000000").status_code == 503
    assert [f["kind"] for f in emulator.control.injected_faults()] == ["503"]


def test_dropped_connection(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    emulator.control.set_faults(drop_rate=1.0)
    with pytest.raises(httpx.RemoteProtocolError):
        graph_http.get("/users")
    assert [f["kind"] for f in emulator.control.injected_faults()] == ["drop"]
    emulator.control.clear_faults()
    assert graph_http.get("/users").status_code == 200


def test_dropped_answer_without_a_body_is_lost_too(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    """A 204 has no body to cut short (HTTP ends it at the headers): its answer must not arrive at all."""
    user = next(iter(emulator.tenant.users.values()))
    emulator.control.set_faults(drop_rate=1.0, method="PATCH")
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        graph_http.patch(f"/users/{user.id}", json={"displayName": "Changed"})
    assert user.displayName == "Changed"  # the change was made
    missing = graph_http.patch("/users/00000000-0000-0000-0000-000000000000", json={"displayName": "X"})
    assert missing.status_code == 404  # a refusal changed nothing: answered, and not listed as a drop
    assert [f["kind"] for f in emulator.control.injected_faults()] == ["drop"]


def test_reset_connection_changes_nothing(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    emulator.control.set_faults(reset_rate=1.0)
    before = len(emulator.tenant.users)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        graph_http.post(
            "/invitations",
            json={
                "invitedUserEmailAddress": "reset@partner.example",
                "inviteRedirectUrl": "https://myapps.microsoft.com",
            },
        )
    assert len(emulator.tenant.users) == before, "a reset comes before the request is handled"
    assert [f["kind"] for f in emulator.control.injected_faults()] == ["reset"]


def test_timeout_makes_the_change_and_holds_the_response(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    emulator.control.set_faults(timeout_rate=1.0)
    before = len(emulator.tenant.users)
    with pytest.raises(httpx.ReadTimeout):
        graph_http.post(
            "/invitations",
            json={
                "invitedUserEmailAddress": "late@partner.example",
                "inviteRedirectUrl": "https://myapps.microsoft.com",
            },
            timeout=0.3,
        )
    assert len(emulator.tenant.users) == before + 1, "the invitation was made; only the answer never came"
    assert [f["kind"] for f in emulator.control.injected_faults()] == ["timeout"]
    emulator.control.clear_faults()
    assert graph_http.get("/users", params={"$top": "1"}).status_code == 200


def test_slow_responses(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    emulator.control.set_faults(slow_rate=1.0, slow_ms=30)
    assert graph_http.get("/users", params={"$top": "1"}).status_code == 200
    assert [f["delay_ms"] for f in emulator.control.injected_faults()] == [30.0]


def test_latency_is_drawn_from_the_configured_range(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    emulator.control.set_faults(latency_ms=[20, 40], seed=3)
    for _ in range(5):
        assert graph_http.get("/users", params={"$top": "1"}).status_code == 200
    delays = [f["delay_ms"] for f in emulator.control.injected_faults()]
    assert len(delays) == 5
    assert all(20 <= d <= 40 for d in delays)
