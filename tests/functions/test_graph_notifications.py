"""The Graph webhook through real azure.functions objects: handshake, clientState, refusals, queue messages."""

from __future__ import annotations

import json
import logging
from typing import Any

import azure.functions as func
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.notifications.inbox import proof_of
from tests.support.functions import CapturedOut, bindings, http_bindings

SECRET = "s3cr3t-client-state-0123456789"


def notification(user_id: str = "1f2e3d4c-0000-4000-8000-000000000001", **changes: Any) -> dict[str, Any]:
    """A users notification as Graph sends it (docs/graph-contract.md#change-notifications)."""
    return {
        "id": "lsgTZMr9KwAAA",
        "subscriptionId": "7f105c7d-2dc5-4530-97cd-4e7ae6534c07",
        "subscriptionExpirationDateTime": "2026-12-20T11:00:00.0000000Z",
        "clientState": SECRET,
        "changeType": "updated",
        "resource": f"Users/{user_id}",
        "tenantId": "84bd8158-6d4d-4958-8b9f-9d6445542f95",
        "resourceData": {"@odata.type": "#Microsoft.Graph.User", "@odata.id": f"Users/{user_id}", "id": user_id},
        **changes,
    }


def post(
    functions: dict[str, func.FunctionBuilder],
    body: bytes = b"",
    *,
    params: dict[str, str] | None = None,
    name: str = "graph_notifications",
) -> tuple[func.HttpResponse, CapturedOut]:
    queue = CapturedOut()
    request = func.HttpRequest(method="POST", url="/api/graph/notifications", body=body, params=params or {})
    return functions[name].get_user_function()(request, queue), queue


def queued(queue: CapturedOut) -> list[dict[str, Any]]:
    return [item for message in (queue.value or []) for item in json.loads(message)["value"]]


@pytest.fixture(autouse=True)
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUESTCTL_NOTIFICATION_SECRET", SECRET)


@pytest.mark.parametrize(
    ("name", "route"),
    [("graph_notifications", "graph/notifications"), ("graph_lifecycle", "graph/lifecycle")],
)
def test_bindings_queue_the_notifications(functions: dict[str, func.FunctionBuilder], name: str, route: str) -> None:
    queue_binding = {
        "direction": "OUT",
        "type": "queue",
        "name": "queue",
        "queueName": "graph-notifications",
        "connection": "AzureWebJobsStorage",
    }
    assert bindings(functions, name) == [queue_binding, *http_bindings("POST", route)]


@pytest.mark.parametrize("name", ["graph_notifications", "graph_lifecycle"])
def test_validation_answers_the_decoded_token_as_plain_text(
    functions: dict[str, func.FunctionBuilder], name: str
) -> None:
    token = "Validation: Testing client application reachability for subscription Request-Id: 6c1e1b06"
    response, queue = post(functions, params={"validationToken": token}, name=name)
    assert (response.status_code, response.mimetype, response.get_body().decode()) == (200, "text/plain", token)
    assert not queue.was_set


@pytest.mark.parametrize(
    ("token", "problem"),
    [
        pytest.param("", "validationToken is empty", id="empty"),
        pytest.param("x" * 1_025, "validationToken is 1,025 characters", id="oversized"),
        pytest.param("a\r\nSet-Cookie: x", "control characters", id="header-injection"),
    ],
)
def test_bad_validation_tokens_are_refused(
    functions: dict[str, func.FunctionBuilder], token: str, problem: str
) -> None:
    response, queue = post(functions, params={"validationToken": token})
    assert response.status_code == 400
    assert problem in json.loads(response.get_body())["error"]
    assert not queue.was_set


def test_our_notifications_are_queued_trimmed_and_answered_202(functions: dict[str, func.FunctionBuilder]) -> None:
    body = json.dumps({"value": [notification(), notification("1f2e3d4c-0000-4000-8000-000000000002")]}).encode()
    response, queue = post(functions, body)
    assert response.status_code == 202
    items = queued(queue)
    assert [i["resourceData"] for i in items] == [
        {"id": "1f2e3d4c-0000-4000-8000-000000000001"},
        {"id": "1f2e3d4c-0000-4000-8000-000000000002"},
    ]
    assert SECRET not in json.dumps(queue.value)  # the queue carries a proof of it instead
    assert set(items[0]) == {
        "subscriptionId",
        "clientStateProof",
        "changeType",
        "resource",
        "tenantId",
        "subscriptionExpirationDateTime",
        "resourceData",
    }


def test_lifecycle_notifications_are_queued(functions: dict[str, func.FunctionBuilder]) -> None:
    lifecycle = notification(lifecycleEvent="reauthorizationRequired")
    del lifecycle["resource"], lifecycle["resourceData"], lifecycle["changeType"]
    response, queue = post(functions, json.dumps({"value": [lifecycle]}).encode(), name="graph_lifecycle")
    assert response.status_code == 202
    assert [i["lifecycleEvent"] for i in queued(queue)] == ["reauthorizationRequired"]


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        pytest.param(notification(clientState="guess"), "clientState does not match", id="wrong-client-state"),
        pytest.param(notification(clientState=SECRET[:-1]), "clientState does not match", id="prefix-of-secret"),
        pytest.param(notification(clientState=None), "no clientState", id="no-client-state"),
        pytest.param(notification(subscriptionId=""), "no subscriptionId", id="no-subscription"),
        pytest.param(notification(resource=None), "no resource", id="no-resource"),
        pytest.param(notification(changeType=["updated"]), "changeType is not a short string", id="list-change-type"),
        pytest.param(notification(resource="U" * 2_000), "resource is not a short string", id="huge-resource"),
        pytest.param("updated", "not an object", id="not-an-object"),
    ],
)
def test_notifications_that_are_not_ours_are_dropped_and_counted(
    functions: dict[str, func.FunctionBuilder], caplog: pytest.LogCaptureFixture, item: Any, reason: str
) -> None:
    body = json.dumps({"value": [item, notification()]}).encode()
    with caplog.at_level(logging.INFO, logger="guestctl.functions.graph"):
        response, queue = post(functions, body)
    assert response.status_code == 202  # Graph must not retry what it will never get right
    assert len(queued(queue)) == 1
    assert f"'{reason}': 1" in caplog.text
    assert SECRET not in caplog.text
    assert "guess" not in caplog.text


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        pytest.param(b"not json", "the body is not JSON", id="not-json"),
        pytest.param(b"\xff\xfe", "the body is not JSON", id="not-utf8"),
        pytest.param(b"[]", 'no "value" list', id="a-list"),
        pytest.param(b'{"value": {}}', 'no "value" list', id="value-not-a-list"),
        pytest.param(b'{"value": [' + b"{}," * 1_000 + b"{}]}", "1,001 notifications", id="too-many"),
        pytest.param(b" " * 1_048_577, "1,048,577 bytes", id="over-1-MB"),
    ],
)
def test_a_body_that_is_not_a_delivery_is_refused_and_nothing_queued(
    functions: dict[str, func.FunctionBuilder], body: bytes, problem: str
) -> None:
    response, queue = post(functions, body)
    assert response.status_code == 400
    assert problem in json.loads(response.get_body())["error"]
    assert not queue.was_set


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        pytest.param(None, "GUESTCTL_NOTIFICATION_SECRET is not set", id="unset"),
        pytest.param("@Microsoft.KeyVault(SecretUri=https://v/secrets/s)", "unresolved Key Vault", id="unresolved"),
        pytest.param("x" * 129, "129 characters", id="too-long"),
    ],
)
def test_without_a_usable_secret_every_delivery_is_refused_with_503(
    functions: dict[str, func.FunctionBuilder], monkeypatch: pytest.MonkeyPatch, value: str | None, problem: str
) -> None:
    if value is None:
        monkeypatch.delenv("GUESTCTL_NOTIFICATION_SECRET")
    else:
        monkeypatch.setenv("GUESTCTL_NOTIFICATION_SECRET", value)
    response, queue = post(functions, json.dumps({"value": [notification()]}).encode())
    assert response.status_code == 503
    assert problem in json.loads(response.get_body())["error"]
    assert not queue.was_set


def test_a_large_delivery_is_split_into_queue_sized_messages(functions: dict[str, func.FunctionBuilder]) -> None:
    items = [notification(f"1f2e3d4c-0000-4000-8000-{i:012d}") for i in range(1_000)]
    response, queue = post(functions, json.dumps({"value": items}).encode())
    assert response.status_code == 202
    assert len(queue.value) > 1
    assert all(len(message.encode()) <= 46_000 for message in queue.value)
    assert [i["resourceData"]["id"] for i in queued(queue)] == [i["resourceData"]["id"] for i in items]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=20), inner, max_size=5),
    max_leaves=30,
)
notification_like = st.fixed_dictionaries(
    {},
    optional={
        "subscriptionId": json_values,
        "clientState": st.sampled_from([SECRET, "guess", ""]) | json_values,
        "changeType": json_values,
        "resource": json_values,
        "resourceData": json_values,
        "lifecycleEvent": json_values,
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.binary(max_size=300)
    | json_values.map(lambda v: json.dumps(v).encode())
    | st.lists(notification_like | json_values, max_size=8).map(lambda v: json.dumps({"value": v}).encode())
)
def test_any_body_gets_a_short_answer_and_only_ours_is_queued(
    functions: dict[str, func.FunctionBuilder], body: bytes
) -> None:
    response, queue = post(functions, body)
    assert response.status_code in (202, 400)
    if response.status_code == 400:
        assert not queue.was_set
        error = json.loads(response.get_body())["error"]
        assert "\n" not in error
        assert len(error) < 300
    for item in queued(queue):
        assert item["clientStateProof"] == proof_of(SECRET, item["subscriptionId"])
        assert isinstance(item["subscriptionId"], str)
