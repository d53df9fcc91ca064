"""Event Grid delivery: EventGrid: subscriptions write CloudEvents into an Azurite storage queue.

Everything goes over real HTTP (Graph and the control API) and a real queue, read back as the Functions
host would read it (host.json's messageEncoding).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from emulator.clock import format_datetime
from emulator.testing import EmulatorServer, WebhookReceiver
from tests.support.emulator import small_tenant
from tests.support.queues import AzuriteQueue, decode_message, host_message_encoding, is_base64

SECRET = "event-grid-client-state"
UPDATED, DELETED = "Microsoft.Graph.UserUpdated", "Microsoft.Graph.UserDeleted"


def event_grid_url(topic: str, **override: str) -> str:
    parameters = {
        "azuresubscriptionid": "8d3b1f5a-0000-4000-8000-000000000001",
        "resourcegroup": "rg-guestctl",
        "partnertopic": topic,
        "location": "westeurope",
        **override,
    }
    return "EventGrid:?" + "&".join(f"{key}={value}" for key, value in parameters.items() if value is not None)


def subscribe(client: httpx.Client, emulator: EmulatorServer, url: str, **extra: object) -> httpx.Response:
    body = {
        "changeType": "updated,deleted",
        "notificationUrl": url,
        "lifecycleNotificationUrl": url,
        "resource": "users",
        "expirationDateTime": format_datetime(emulator.tenant.now() + timedelta(days=1)),
        "clientState": SECRET,
        **extra,
    }
    return client.post("/subscriptions", json=body)


def a_guest(emulator: EmulatorServer) -> str:
    return next(u.id for u in emulator.tenant.users.values() if u.userType == "Guest")


@pytest.fixture
def topic() -> str:
    return f"guestctl-users-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def queue(azurite: str, emulator: EmulatorServer, topic: str) -> Iterator[AzuriteQueue]:
    """A fresh queue that the partner topic `topic` delivers into (mapped after the emulator's reset)."""
    with AzuriteQueue(azurite) as created:
        emulator.control.map_event_grid_topic(topic, azurite, created.name)
        yield created


# ---- the subscription request -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        pytest.param(event_grid_url("t", azuresubscriptionid=None), id="no-azuresubscriptionid"),
        pytest.param(event_grid_url("t", resourcegroup=None), id="no-resourcegroup"),
        pytest.param(event_grid_url("t", partnertopic=None), id="no-partnertopic"),
        pytest.param(event_grid_url("t", location=""), id="empty-location"),
        pytest.param("EventGrid:partnertopic=t", id="no-query"),
    ],
)
def test_event_grid_url_needs_every_parameter(emulator: EmulatorServer, graph_http: httpx.Client, url: str) -> None:
    response = subscribe(graph_http, emulator, url, lifecycleNotificationUrl=None)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "InvalidRequest"
    assert "Event Grid" in error["message"]
    assert set(error["innerError"]) >= {"date", "request-id", "client-request-id"}
    assert emulator.tenant.subscriptions == {}


def test_a_bad_event_grid_lifecycle_url_is_refused_too(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    response = subscribe(
        graph_http, emulator, event_grid_url("t"), lifecycleNotificationUrl=event_grid_url("t", location=None)
    )
    assert response.status_code == 400
    assert "lifecycleNotificationUrl" in response.json()["error"]["message"]


def test_event_grid_subscription_is_created_without_a_handshake(
    emulator: EmulatorServer, graph_http: httpx.Client, topic: str
) -> None:
    url = event_grid_url(topic)
    response = subscribe(graph_http, emulator, url)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["notificationUrl"] == url
    assert created["lifecycleNotificationUrl"] == url
    assert emulator.control.validations() == []
    listed = graph_http.get("/subscriptions").json()["value"]
    assert [(s["id"], s["notificationUrl"]) for s in listed] == [(created["id"], url)]


def test_event_grid_notifications_with_a_webhook_lifecycle_url(
    emulator: EmulatorServer, graph_http: httpx.Client, topic: str
) -> None:
    with WebhookReceiver() as lifecycle:
        created = subscribe(graph_http, emulator, event_grid_url(topic), lifecycleNotificationUrl=lifecycle.url)
        assert created.status_code == 201, created.text
        assert len(lifecycle.validations) == 1  # only the webhook is validated
        emulator.control.lifecycle(created.json()["id"])
        [event] = lifecycle.wait_for(1)
    assert event["lifecycleEvent"] == "reauthorizationRequired"


def test_patch_can_move_a_subscription_to_event_grid(
    emulator: EmulatorServer, graph_http: httpx.Client, topic: str
) -> None:
    with WebhookReceiver() as hook:
        created = subscribe(graph_http, emulator, hook.url, lifecycleNotificationUrl=None).json()
    path = f"/subscriptions/{created['id']}"
    assert graph_http.patch(path, json={"notificationUrl": event_grid_url(topic, location=None)}).status_code == 400
    moved = graph_http.patch(path, json={"notificationUrl": event_grid_url(topic)})
    assert moved.status_code == 200
    assert moved.json()["notificationUrl"] == event_grid_url(topic)
    graph_http.patch(f"/users/{a_guest(emulator)}", json={"jobTitle": "after the move"})
    [record] = emulator.control.wait_for_deliveries(1)
    assert record["channel"] == "eventGrid"
    assert record["partnerTopic"] == topic


def test_subscriptions_are_listed_per_app(emulator: EmulatorServer, graph_http: httpx.Client, topic: str) -> None:
    mine = subscribe(graph_http, emulator, event_grid_url(topic)).json()
    other_app = {"Authorization": "Bearer another-application"}
    theirs = graph_http.post(
        "/subscriptions",
        headers=other_app,
        json={
            "changeType": "updated",
            "notificationUrl": event_grid_url("their-topic"),
            "resource": "users",
            "expirationDateTime": format_datetime(emulator.tenant.now() + timedelta(days=1)),
        },
    ).json()
    assert [s["id"] for s in graph_http.get("/subscriptions").json()["value"]] == [mine["id"]]
    assert [s["id"] for s in graph_http.get("/subscriptions", headers=other_app).json()["value"]] == [theirs["id"]]
    assert mine["applicationId"] != theirs["applicationId"]


def test_reauthorize_and_renew_an_event_grid_subscription(
    emulator: EmulatorServer, graph_http: httpx.Client, topic: str
) -> None:
    created = subscribe(graph_http, emulator, event_grid_url(topic)).json()
    path = f"/subscriptions/{created['id']}"
    assert graph_http.post(f"{path}/reauthorize").status_code == 204
    later = format_datetime(emulator.tenant.now() + timedelta(minutes=41_000))
    renewed = graph_http.patch(path, json={"expirationDateTime": later})
    assert renewed.status_code == 200
    assert renewed.json()["expirationDateTime"] == later
    assert graph_http.delete(path).status_code == 204
    assert graph_http.post(f"{path}/reauthorize").status_code == 404
    assert graph_http.get(path).status_code == 404


# ---- changes in the queue ---------------------------------------------------------------------------


@pytest.mark.azurite
def test_each_change_is_one_cloud_event_in_the_queue(
    emulator: EmulatorServer, graph_http: httpx.Client, queue: AzuriteQueue, topic: str
) -> None:
    subscription = subscribe(graph_http, emulator, event_grid_url(topic)).json()
    invited = graph_http.post(
        "/invitations",
        json={"invitedUserEmailAddress": "noor@fabrikam.com", "inviteRedirectUrl": "https://myapps.microsoft.com"},
    )
    user_id = invited.json()["invitedUser"]["id"]
    steps = [
        lambda: None,  # the invitation above created the guest
        lambda: graph_http.patch(f"/users/{user_id}", json={"jobTitle": "Auditor"}),
        lambda: graph_http.delete(f"/users/{user_id}"),
        lambda: graph_http.delete(f"/directory/deletedItems/{user_id}"),
    ]
    for count, step in enumerate(steps, start=1):
        step()
        assert len(queue.wait_for(count)) == count
    assert emulator.control.wait_until_idle()
    assert queue.receive() == []  # exactly one message per change

    events = queue.events()
    assert [e["type"] for e in events] == [UPDATED, UPDATED, UPDATED, DELETED]
    assert [e["data"]["changeType"] for e in events] == ["updated", "updated", "updated", "deleted"]
    tenant_id = emulator.tenant.id
    for event in events:
        assert event["specversion"] == "1.0"
        assert event["datacontenttype"] == "application/json"
        assert event["source"] == f"/tenants/{tenant_id}/applications/{subscription['applicationId']}"
        assert event["subject"] == f"Users/{user_id}"
        assert event["time"].endswith("Z")
        data = event["data"]
        assert data["clientState"] == SECRET
        assert data["resource"] == f"Users/{user_id}"
        assert data["subscriptionId"] == subscription["id"]
        assert data["subscriptionExpirationDateTime"] == subscription["expirationDateTime"]
        assert data["tenantId"] == tenant_id
        resource_data = data["resourceData"]
        assert resource_data["@odata.type"] == "#Microsoft.Graph.User"
        assert resource_data["@odata.id"] == f"Users/{user_id}"
        assert resource_data["id"] == user_id
        assert resource_data["organizationId"] == tenant_id
        assert set(resource_data) == {"@odata.type", "@odata.id", "id", "organizationId", "eventTime", "sequenceNumber"}
    assert len({e["id"] for e in events}) == 4
    sequence = [e["data"]["resourceData"]["sequenceNumber"] for e in events]
    assert sequence == sorted(sequence)
    assert len(set(sequence)) == 4
    records = [d for d in emulator.control.deliveries() if d.get("channel") == "eventGrid"]
    assert [(r["ok"], r["queue"], r["eventType"]) for r in records] == [(True, queue.name, e["type"]) for e in events]


@pytest.mark.azurite
def test_only_the_subscribed_change_types_are_written(
    emulator: EmulatorServer, graph_http: httpx.Client, queue: AzuriteQueue, topic: str
) -> None:
    subscribe(graph_http, emulator, event_grid_url(topic), changeType="deleted")
    guest = a_guest(emulator)
    graph_http.patch(f"/users/{guest}", json={"jobTitle": "not heard"})
    graph_http.delete(f"/users/{guest}")
    graph_http.delete(f"/directory/deletedItems/{guest}")
    [message] = queue.wait_for(1)
    assert emulator.control.wait_until_idle()
    assert queue.receive() == []
    assert message.json()["type"] == DELETED
    assert message.json()["data"]["resourceData"]["id"] == guest


@pytest.mark.azurite
def test_messages_are_base64_as_host_json_expects(
    emulator: EmulatorServer, graph_http: httpx.Client, queue: AzuriteQueue, topic: str
) -> None:
    encoding = host_message_encoding()
    assert encoding == "base64"  # the Functions app decodes queue messages as base64 (host.json)
    subscribe(graph_http, emulator, event_grid_url(topic))
    graph_http.patch(f"/users/{a_guest(emulator)}", json={"jobTitle": "Encoded"})
    [message] = queue.wait_for(1)
    assert is_base64(message.raw)
    with pytest.raises(json.JSONDecodeError):
        json.loads(message.raw)  # not plain JSON: a host with messageEncoding "none" would get base64 text
    assert json.loads(decode_message(message.raw, encoding)) == message.json()
    assert json.loads(base64.b64decode(message.raw))["type"] == UPDATED


# ---- lifecycle events -------------------------------------------------------------------------------


@pytest.mark.azurite
@pytest.mark.parametrize(
    ("event", "event_type"),
    [
        pytest.param(
            "reauthorizationRequired", "Microsoft.Graph.SubscriptionReauthorizationRequired", id="reauthorization"
        ),
        pytest.param("missed", "Microsoft.Graph.SubscriptionMissed", id="missed"),
    ],
)
def test_lifecycle_events_arrive_on_the_same_channel(
    emulator: EmulatorServer, graph_http: httpx.Client, queue: AzuriteQueue, topic: str, event: str, event_type: str
) -> None:
    subscription = subscribe(graph_http, emulator, event_grid_url(topic)).json()
    emulator.control.lifecycle(subscription["id"], event)
    [message] = queue.wait_for(1)
    cloud_event = message.json()
    assert cloud_event["type"] == event_type
    assert cloud_event["specversion"] == "1.0"
    assert cloud_event["data"]["lifecycleEvent"] == event
    assert cloud_event["data"]["clientState"] == SECRET
    assert cloud_event["data"]["subscriptionId"] == subscription["id"]
    assert cloud_event["data"]["tenantId"] == emulator.tenant.id
    assert graph_http.get(f"/subscriptions/{subscription['id']}").status_code == 200


@pytest.mark.azurite
def test_subscription_removed_event_then_404(
    emulator: EmulatorServer, graph_http: httpx.Client, queue: AzuriteQueue, topic: str
) -> None:
    subscription = subscribe(graph_http, emulator, event_grid_url(topic)).json()
    emulator.control.lifecycle(subscription["id"], "subscriptionRemoved")
    [message] = queue.wait_for(1)
    assert message.json()["type"] == "Microsoft.Graph.SubscriptionRemoved"
    assert graph_http.get(f"/subscriptions/{subscription['id']}").status_code == 404
    graph_http.patch(f"/users/{a_guest(emulator)}", json={"jobTitle": "after removal"})
    assert emulator.control.wait_until_idle()
    assert queue.receive() == []


def test_unknown_lifecycle_event_is_refused(emulator: EmulatorServer, graph_http: httpx.Client, topic: str) -> None:
    subscription = subscribe(graph_http, emulator, event_grid_url(topic)).json()
    with pytest.raises(RuntimeError, match="unknown lifecycle event"):
        emulator.control.lifecycle(subscription["id"], "somethingElse")


# ---- partner topics and failures --------------------------------------------------------------------


@pytest.mark.azurite
def test_unmapped_partner_topic_drops_and_counts_events(
    emulator: EmulatorServer, graph_http: httpx.Client, queue: AzuriteQueue, topic: str
) -> None:
    subscribe(graph_http, emulator, event_grid_url("not-activated"))
    graph_http.patch(f"/users/{a_guest(emulator)}", json={"jobTitle": "into the void"})
    [record] = emulator.control.wait_for_deliveries(1)
    assert record["dropped"] is True
    assert record["ok"] is False
    assert record["partnerTopic"] == "not-activated"
    assert emulator.control.wait_until_idle()
    topics = {t["partnerTopic"]: t for t in emulator.control.event_grid_topics()}
    assert topics["not-activated"]["active"] is False
    assert topics["not-activated"]["dropped"] == 1
    assert topics[topic]["active"] is True
    assert queue.receive() == []


@pytest.mark.azurite
def test_queue_errors_are_retried_until_the_queue_accepts(
    azurite: str, emulator: EmulatorServer, graph_http: httpx.Client, topic: str
) -> None:
    missing = AzuriteQueue(azurite)  # not created yet: writes fail with QueueNotFound
    emulator.control.map_event_grid_topic(topic, azurite, missing.name)
    emulator.control.set_limits(time_scale=0.01)  # retries after 0.1 s, 0.3 s, 0.6 s, 3 s, 6 s
    subscribe(graph_http, emulator, event_grid_url(topic))
    graph_http.patch(f"/users/{a_guest(emulator)}", json={"jobTitle": "retried"})
    [failed, *_] = emulator.control.wait_for_deliveries(1)
    assert failed["ok"] is False
    assert failed["attempt"] == 1
    assert failed["error"]
    with missing:
        [message] = missing.wait_for(1)
        assert emulator.control.wait_until_idle()
        assert missing.receive() == []
    assert message.json()["data"]["changeType"] == "updated"
    records = emulator.control.deliveries()
    assert records[-1]["ok"] is True
    assert records[-1]["attempt"] > 1
    assert [r["ok"] for r in records[:-1]] == [False] * (len(records) - 1)


def test_partner_topic_mapping_is_managed_through_the_control_api(emulator: EmulatorServer) -> None:
    connection = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=c2VjcmV0;QueueEndpoint=x"
    listed = emulator.control.map_event_grid_topic("Topic-A", connection, "graph-users")
    assert listed == [
        {
            "partnerTopic": "topic-a",
            "queue": "graph-users",
            "account": "devstoreaccount1",
            "active": True,
            "delivered": 0,
            "failed": 0,
            "dropped": 0,
            "discarded": 0,
        }
    ]
    assert "c2VjcmV0" not in json.dumps(emulator.control.event_grid_topics())
    assert emulator.control.unmap_event_grid_topic("topic-a") == []
    with pytest.raises(RuntimeError):
        emulator.control.unmap_event_grid_topic("topic-a")
    with pytest.raises(RuntimeError):
        emulator.control.map_event_grid_topic("topic-b", connection, "")
    emulator.control.map_event_grid_topic("topic-c", connection, "q")
    emulator.control.reset()
    assert emulator.control.event_grid_topics() == []  # a reset forgets run-time mappings


@pytest.mark.azurite
def test_create_app_maps_partner_topics_to_queues(azurite: str, topic: str) -> None:
    with (
        AzuriteQueue(azurite) as queue,
        EmulatorServer(small_tenant(), event_grid={"connection_string": azurite, "queues": {topic: queue.name}}) as em,
        httpx.Client(base_url=em.base_url, headers={"Authorization": "Bearer t"}) as client,
    ):
        em.reset(small_tenant())  # configured topics survive a reset
        assert [t["partnerTopic"] for t in em.control.event_grid_topics()] == [topic]
        assert subscribe(client, em, event_grid_url(topic)).status_code == 201
        client.patch(f"/users/{a_guest(em)}", json={"jobTitle": "configured"})
        [message] = queue.wait_for(1)
    assert message.json()["type"] == UPDATED
