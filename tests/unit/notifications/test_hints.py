"""The queue worker's reading of a message: webhook deliveries and Event Grid CloudEvents, checked again."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.errors import InputError
from shared.notifications.hints import Hint, read_hints
from shared.notifications.inbox import proof_of, sort_delivery

SECRET = "client-state-secret"
SUBSCRIPTION = "7f105c7d-2dc5-4530-97cd-4e7ae6534c07"
USER = "1f2e3d4c-0000-4000-8000-000000000001"


def notification(**changes: Any) -> dict[str, Any]:
    return {
        "subscriptionId": SUBSCRIPTION,
        "clientState": SECRET,
        "changeType": "updated",
        "resource": f"Users/{USER}",
        "resourceData": {"id": USER},
        **changes,
    }


def cloud_event(event_type: str, **data: Any) -> dict[str, Any]:
    """A CloudEvent as Event Grid writes Graph's notifications (docs/graph-contract.md#event-grid)."""
    return {
        "id": "e1",
        "type": event_type,
        "source": "/tenants/t/applications/a",
        "subject": f"Users/{USER}",
        "specversion": "1.0",
        "datacontenttype": "application/json",
        "data": {**notification(), **data},
    }


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        pytest.param({"value": [notification()]}, [Hint(SUBSCRIPTION, None, USER)], id="webhook-change"),
        pytest.param(
            {"value": [notification(lifecycleEvent="reauthorizationRequired", resource=None)]},
            [Hint(SUBSCRIPTION, "reauthorizationRequired", USER)],
            id="webhook-lifecycle",
        ),
        pytest.param(cloud_event("Microsoft.Graph.UserUpdated"), [Hint(SUBSCRIPTION, None, USER)], id="user-updated"),
        pytest.param(cloud_event("Microsoft.Graph.UserDeleted"), [Hint(SUBSCRIPTION, None, USER)], id="user-deleted"),
        pytest.param(
            cloud_event("Microsoft.Graph.SubscriptionReauthorizationRequired", resource=None, resourceData=None),
            [Hint(SUBSCRIPTION, "reauthorizationRequired", None)],
            id="event-grid-reauthorization",
        ),
        pytest.param(
            cloud_event("microsoft.graph.subscriptionremoved", resource=None),
            [Hint(SUBSCRIPTION, "subscriptionRemoved", USER)],
            id="event-grid-removed-any-case",
        ),
    ],
)
def test_hints_are_read_from_both_shapes(message: dict[str, Any], expected: list[Hint]) -> None:
    read = read_hints(json.dumps(message), SECRET, SUBSCRIPTION)
    assert (read.hints, read.dropped) == (expected, {})


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        pytest.param({"value": [notification(clientState="forged")]}, "clientState does not match", id="forged"),
        pytest.param(
            cloud_event("Microsoft.Graph.UserUpdated", clientState="x"), "clientState does not match", id="forged-event"
        ),
        pytest.param({"value": [notification(subscriptionId="other")]}, "not our subscription", id="other-sub"),
        pytest.param({"value": [notification(clientState=None)]}, "no clientState", id="no-client-state"),
        pytest.param(
            {**cloud_event("Microsoft.Graph.UserUpdated"), "data": "x"}, "not an object", id="data-not-object"
        ),
    ],
)
def test_what_is_not_ours_is_dropped_and_counted(message: dict[str, Any], reason: str) -> None:
    read = read_hints(json.dumps(message), SECRET, SUBSCRIPTION)
    assert (read.hints, read.dropped) == ([], {reason: 1})


def test_without_a_recorded_subscription_nothing_is_ours() -> None:
    read = read_hints(json.dumps({"value": [notification()]}), SECRET, None)
    assert read.dropped == {"not our subscription": 1}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        pytest.param("not json", "not JSON", id="not-json"),
        pytest.param("[1]", "neither a CloudEvent", id="a-list"),
        pytest.param('{"specversion": "0.3"}', "neither a CloudEvent", id="old-cloud-event"),
        pytest.param("x" * 70_001, "at most 64 KiB", id="too-long"),
    ],
)
def test_messages_of_neither_shape_are_refused(text: str, problem: str) -> None:
    with pytest.raises(InputError, match=problem):
        read_hints(text, SECRET, SUBSCRIPTION)


def test_the_webhook_queues_a_proof_the_worker_accepts_and_never_the_client_state() -> None:
    """Regression (tests/reliability/test_secrets.py): the queue carried the clientState secret in clear."""
    (message,) = sort_delivery(json.dumps({"value": [notification()]}).encode(), SECRET).messages
    assert SECRET not in message
    assert read_hints(message, SECRET, SUBSCRIPTION).hints == [Hint(SUBSCRIPTION, None, USER)]
    forged = json.loads(message)
    forged["value"][0]["clientStateProof"] = proof_of("another-secret", SUBSCRIPTION)
    moved = json.loads(message)
    moved["value"][0]["subscriptionId"] = "another-subscription"
    assert read_hints(json.dumps(forged), SECRET, SUBSCRIPTION).dropped == {"clientState does not match": 1}
    assert read_hints(json.dumps(moved), SECRET, "another-subscription").dropped == {"clientState does not match": 1}
