"""Subscriptions on users: validation handshake, limits, change notifications, lifecycle events."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from emulator.clock import format_datetime
from emulator.testing import EmulatorServer, WebhookReceiver

SECRET = "s3cret-client-state"


@pytest.fixture(scope="module")
def shared_receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as hook:
        yield hook


@pytest.fixture
def receiver(emulator: EmulatorServer, shared_receiver: WebhookReceiver) -> WebhookReceiver:
    """A webhook that echoes the handshake and answers 202; reset after the emulator (so nothing leaks in)."""
    return shared_receiver.reset()


def expiry(emulator: EmulatorServer, minutes: float) -> str:
    return format_datetime(emulator.tenant.now() + timedelta(minutes=minutes))


def subscribe(client: httpx.Client, emulator: EmulatorServer, url: str, **extra: object) -> httpx.Response:
    body = {
        "changeType": "updated,deleted",
        "notificationUrl": url,
        "resource": "users",
        "expirationDateTime": expiry(emulator, 60 * 24),
        "clientState": SECRET,
        **extra,
    }
    return client.post("/subscriptions", json=body)


def a_guest(emulator: EmulatorServer) -> str:
    return next(u.id for u in emulator.tenant.users.values() if u.userType == "Guest")


def test_create_performs_the_validation_handshake(
    emulator: EmulatorServer, graph_http: httpx.Client, receiver: WebhookReceiver
) -> None:
    response = subscribe(graph_http, emulator, receiver.url)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["resource"] == "users"
    assert body["clientState"] == SECRET
    assert body["changeType"] == "updated,deleted"
    [token] = receiver.validations
    assert " " in token
    assert ":" in token
    assert graph_http.get(f"/subscriptions/{body['id']}").status_code == 200


@pytest.mark.parametrize(
    "mode",
    [
        pytest.param("encoded", id="url-encoded-echo-fails"),
        pytest.param("wrong", id="wrong-body-fails"),
        pytest.param("json", id="non-text-plain-fails"),
        pytest.param("error", id="error-status-fails"),
    ],
)
def test_bad_handshake_fails_the_create(emulator: EmulatorServer, graph_http: httpx.Client, mode: str) -> None:
    with WebhookReceiver(mode=mode) as hook:
        response = subscribe(graph_http, emulator, hook.url)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "ValidationError"
    assert emulator.tenant.subscriptions == {}


def test_handshake_after_the_deadline_fails(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    emulator.control.set_limits(time_scale=0.01)  # the 10 s deadline becomes 0.1 s
    with WebhookReceiver(delay=0.3) as hook:
        response = subscribe(graph_http, emulator, hook.url)
    assert response.status_code == 400
    assert "within" in response.json()["error"]["message"]


def test_lifecycle_url_is_validated_too(
    emulator: EmulatorServer, graph_http: httpx.Client, receiver: WebhookReceiver
) -> None:
    with WebhookReceiver(mode="wrong") as bad:
        response = subscribe(graph_http, emulator, receiver.url, lifecycleNotificationUrl=bad.url)
    assert response.status_code == 400
    same = subscribe(graph_http, emulator, receiver.url, lifecycleNotificationUrl=receiver.url)
    assert same.status_code == 201
    assert len(receiver.validations) == 3  # one for the first attempt, two when both URLs are the same


@pytest.mark.parametrize(
    ("minutes", "status"),
    [
        pytest.param(41_760, 201, id="41760-minutes-allowed"),
        pytest.param(41_761, 400, id="beyond-41760-minutes-rejected"),
        pytest.param(-5, 400, id="past-rejected"),
    ],
)
def test_expiration_limit_for_users(
    emulator: EmulatorServer, graph_http: httpx.Client, receiver: WebhookReceiver, minutes: int, status: int
) -> None:
    emulator.control.set_clock(frozen=True)
    response = subscribe(graph_http, emulator, receiver.url, expirationDateTime=expiry(emulator, minutes))
    assert response.status_code == status, response.text


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        pytest.param({"changeType": "created,updated"}, "changeType", id="created-not-accepted-for-users"),
        pytest.param({"includeResourceData": True}, "Rich", id="no-rich-notifications-for-users"),
        pytest.param({"clientState": "x" * 129}, "128", id="clientState-at-most-128"),
        pytest.param({"notificationUrl": "http://example.com/hook"}, "HTTPS", id="https-required"),
        pytest.param({"resource": "groups"}, "users", id="users-only"),
    ],
)
def test_invalid_subscriptions(
    emulator: EmulatorServer, graph_http: httpx.Client, receiver: WebhookReceiver, extra: dict, reason: str
) -> None:
    response = subscribe(graph_http, emulator, receiver.url, **extra)
    assert response.status_code == 400
    assert reason in response.json()["error"]["message"]


def test_user_change_is_delivered_as_updated(
    emulator: EmulatorServer, graph_http: httpx.Client, receiver: WebhookReceiver
) -> None:
    subscription = subscribe(graph_http, emulator, receiver.url).json()
    guest = a_guest(emulator)
    graph_http.patch(f"/users/{guest}", json={"accountEnabled": False})
    [note] = receiver.wait_for(1)
    assert note["changeType"] == "updated"
    assert note["clientState"] == SECRET
    assert note["subscriptionId"] == subscription["id"]
    assert note["tenantId"] == emulator.tenant.id
    assert note["resourceData"]["id"] == guest
    assert note["resourceData"]["@odata.type"] == "#Microsoft.Graph.User"
    assert set(note["resourceData"]) == {"@odata.type", "@odata.id", "id", "organizationId"}
    [delivery] = emulator.control.wait_for_deliveries(1)
    assert delivery["ok"] is True
    assert delivery["status"] == 202
    assert delivery["slow"] is False
    assert delivery["latency_ms"] >= 0


def test_creation_and_soft_delete_notify_updated_and_permanent_delete_notifies_deleted(
    emulator: EmulatorServer, graph_http: httpx.Client, receiver: WebhookReceiver
) -> None:
    subscribe(graph_http, emulator, receiver.url)
    invited = graph_http.post(
        "/invitations",
        json={"invitedUserEmailAddress": "kim@fabrikam.com", "inviteRedirectUrl": "https://myapps.microsoft.com"},
    )
    new_id = invited.json()["invitedUser"]["id"]
    receiver.wait_for(1)
    graph_http.delete(f"/users/{new_id}")
    receiver.wait_for(2)
    graph_http.delete(f"/directory/deletedItems/{new_id}")
    notes = receiver.wait_for(3)
    assert [(n["changeType"], n["resourceData"]["id"]) for n in notes] == [
        ("updated", new_id),
        ("updated", new_id),
        ("deleted", new_id),
    ]


def test_changes_close_together_are_batched_in_one_post(
    emulator: EmulatorServer, graph_http: httpx.Client, receiver: WebhookReceiver
) -> None:
    subscribe(graph_http, emulator, receiver.url)
    guests = [u.id for u in emulator.tenant.users.values() if u.userType == "Guest"][:3]
    requests = [
        {
            "id": str(i),
            "method": "PATCH",
            "url": f"/users/{g}",
            "headers": {"Content-Type": "application/json"},
            "body": {"jobTitle": "Batched"},
        }
        for i, g in enumerate(guests)
    ]
    graph_http.post("/$batch", json={"requests": requests})
    notes = receiver.wait_for(3)
    assert sorted(n["resourceData"]["id"] for n in notes) == sorted(guests)
    assert len(receiver.deliveries) == 1


def test_subscription_on_one_user_only_hears_that_user(
    emulator: EmulatorServer, graph_http: httpx.Client, receiver: WebhookReceiver
) -> None:
    guests = [u.id for u in emulator.tenant.users.values() if u.userType == "Guest"][:2]
    subscribe(graph_http, emulator, receiver.url, resource=f"users/{guests[1]}")
    graph_http.patch(f"/users/{guests[0]}", json={"jobTitle": "ignored"})
    graph_http.patch(f"/users/{guests[1]}", json={"jobTitle": "heard"})
    receiver.wait_for(1)
    emulator.control.wait_until_idle()
    assert [n["resourceData"]["id"] for n in receiver.notifications] == [guests[1]]


def test_failed_deliveries_are_retried_then_discarded(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    emulator.control.set_limits(time_scale=0.002)  # retry delays 10 s, 60 s, 600 s -> 20, 120, 1200 ms
    with WebhookReceiver(status=500) as hook:
        subscribe(graph_http, emulator, hook.url)
        graph_http.patch(f"/users/{a_guest(emulator)}", json={"jobTitle": "x"})
        records = emulator.control.wait_for_deliveries(5, timeout=10)
    attempts = [(r["attempt"], r.get("discarded", False)) for r in records]
    assert attempts == [(1, False), (2, False), (3, False), (4, False), (4, True)]
    assert all(r["ok"] is False for r in records)
    # Each attempt failed: a 500, or (on a busy machine) the scaled 6 ms timeout.
    assert {r["status"] for r in records} <= {500, None}
    assert 500 in {r["status"] for r in records}


def test_slow_webhook_is_recorded_against_the_3_second_rule(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    with WebhookReceiver() as hook:
        assert subscribe(graph_http, emulator, hook.url).status_code == 201
        emulator.control.set_limits(time_scale=0.02)  # 3 s timeout -> 60 ms
        hook.delay = 0.25
        graph_http.patch(f"/users/{a_guest(emulator)}", json={"jobTitle": "x"})
        [first, *_] = emulator.control.wait_for_deliveries(1)
    assert first["ok"] is False
    assert first["error"] == "timeout"


def test_reauthorization_required_lifecycle_event(
    emulator: EmulatorServer, graph_http: httpx.Client, receiver: WebhookReceiver
) -> None:
    with WebhookReceiver() as lifecycle:
        subscription = subscribe(graph_http, emulator, receiver.url, lifecycleNotificationUrl=lifecycle.url).json()
        emulator.control.lifecycle(subscription["id"])
        [event] = lifecycle.wait_for(1)
    assert event["lifecycleEvent"] == "reauthorizationRequired"
    assert event["subscriptionId"] == subscription["id"]
    assert event["clientState"] == SECRET
    assert receiver.notifications == []
    assert graph_http.post(f"/subscriptions/{subscription['id']}/reauthorize").status_code == 204


def test_lifecycle_trigger_needs_a_lifecycle_url(
    emulator: EmulatorServer, graph_http: httpx.Client, receiver: WebhookReceiver
) -> None:
    subscription = subscribe(graph_http, emulator, receiver.url).json()
    with pytest.raises(RuntimeError):
        emulator.control.lifecycle(subscription["id"])


def test_renew_and_delete(emulator: EmulatorServer, graph_http: httpx.Client, receiver: WebhookReceiver) -> None:
    subscription = subscribe(graph_http, emulator, receiver.url).json()
    url = f"/subscriptions/{subscription['id']}"
    renewed = graph_http.patch(url, json={"expirationDateTime": expiry(emulator, 40_000)})
    assert renewed.status_code == 200
    assert renewed.json()["expirationDateTime"] == expiry(emulator, 40_000)
    assert graph_http.patch(url, json={"expirationDateTime": expiry(emulator, 50_000)}).status_code == 400
    assert graph_http.patch(url, json={"clientState": "new"}).status_code == 400
    assert graph_http.delete(url).status_code == 204
    assert graph_http.get(url).status_code == 404
    graph_http.patch(f"/users/{a_guest(emulator)}", json={"jobTitle": "after delete"})
    emulator.control.wait_until_idle()
    assert receiver.notifications == []


def test_expired_subscriptions_disappear(
    emulator: EmulatorServer, graph_http: httpx.Client, receiver: WebhookReceiver
) -> None:
    subscription = subscribe(graph_http, emulator, receiver.url).json()
    emulator.control.advance(days=2)
    graph_http.patch(f"/users/{a_guest(emulator)}", json={"jobTitle": "too late"})
    emulator.control.wait_until_idle()
    assert receiver.notifications == []
    assert graph_http.get(f"/subscriptions/{subscription['id']}").status_code == 404


def test_at_most_100_subscriptions_per_app(
    emulator: EmulatorServer, graph_http: httpx.Client, receiver: WebhookReceiver
) -> None:
    for _ in range(100):
        assert subscribe(graph_http, emulator, receiver.url).status_code == 201
    response = subscribe(graph_http, emulator, receiver.url)
    assert response.status_code == 403
    listed = graph_http.get("/subscriptions").json()["value"]
    assert len(listed) == 100


def test_endpoint_slow_for_15_percent_of_100_notifications_gets_dropped(
    emulator: EmulatorServer, graph_http: httpx.Client, receiver: WebhookReceiver
) -> None:
    subscribe(graph_http, emulator, receiver.url)
    emulator.control.set_limits(time_scale=0.001)  # slow above 2.9 ms, retries after 10 ms
    receiver.reset(delay=0.02)
    guests = [u.id for u in emulator.tenant.users.values() if u.userType == "Guest"]
    for start in range(0, 100, 20):
        requests = [
            {
                "id": str(i),
                "method": "PATCH",
                "url": f"/users/{guests[i % len(guests)]}",
                "headers": {"Content-Type": "application/json"},
                "body": {"jobTitle": f"t{start}-{i}"},
            }
            for i in range(start, start + 20)
        ]
        graph_http.post("/$batch", json={"requests": requests})
    assert emulator.control.wait_until_idle()
    stats = next(iter(emulator.control.notifier()["urls"].values()))
    assert stats["total"] >= 100
    assert stats["slowRatio"] >= 0.15
    graph_http.patch(f"/users/{guests[0]}", json={"jobTitle": "after the endpoint went slow"})
    dropped = emulator.control.wait_for_deliveries(1, where=lambda d: d.get("dropped"))
    assert dropped
    assert dropped[0]["ok"] is False
