"""The HR receiver over real HTTP (FunctionsHost, Azurite queues, the SQLite store): the signature matrix, once-only
storage under concurrent redelivery, an adapter end to end, the status URL, fail-closed secrets, and fuzzing."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import azure.functions as func
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.clock import utc_now
from shared.offboarding.inbox import EVENT_PARTITION, REQUEUE_AFTER, decode_message, requeue_stuck
from shared.offboarding.signatures import sign
from shared.store import open_store
from shared.store.registry import HR_EVENTS
from tests.support.functions import CapturedOut, bindings, http_bindings, timer_schedules
from tests.support.functions_host import FunctionsHost
from tests.support.offboarding import SPEC_SECRET, TERMINATION

QUEUE = "hr-events"
SECRET = SPEC_SECRET
NEXT = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk="  # the next one, during a rotation
WRONG = "whsec_" + "d3JvbmctYnV0LXdlbGwtZm9ybWVkLXNlY3JldCE="
BAMBOO_KEY = "bamboo-private-key"
FIXTURES = Path(__file__).resolve().parents[1] / "unit" / "offboarding" / "fixtures"
EVENT = TERMINATION
BODY = json.dumps(EVENT, separators=(",", ":")).encode()


@pytest.fixture(scope="module")
def host(functions: dict[str, func.FunctionBuilder], azurite: str) -> Iterator[FunctionsHost]:
    with FunctionsHost(functions, azurite) as host:
        yield host


@pytest.fixture
def state(host: FunctionsHost, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A fresh store and an empty queue; the receivers' secrets set (Graph is never called: a dead URL)."""
    host.queue(QUEUE).clear_messages()
    for name, value in {
        "GUESTCTL_STATE": str(tmp_path / "state.db"),
        "GUESTCTL_GRAPH_URL": "http://127.0.0.1:9/v1.0",
        "GUESTCTL_AUTH": "emulator",
        **timer_schedules(),
        "GUESTCTL_HR_WEBHOOK_SECRETS": f"{SECRET} {NEXT}",
        "GUESTCTL_HR_BAMBOOHR_SECRETS": BAMBOO_KEY,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("GUESTCTL_POLICY", raising=False)
    return tmp_path / "state.db"


def stored(state: Path) -> dict[str, dict[str, Any]]:
    async def rows() -> dict[str, dict[str, Any]]:
        async with open_store(str(state)) as store:
            return {r.row: r.data async for r in store.query(HR_EVENTS, EVENT_PARTITION)}

    return asyncio.run(rows())


def queued(host: FunctionsHost) -> list[str]:
    return [host._decode(m.content).decode() for m in host.queue(QUEUE).peek_messages(max_messages=32)]


def signed(
    body: bytes = BODY, *, secret: str = SECRET, msg_id: str = "msg_2Q1nKx7T0bW3", age: int = 0
) -> dict[str, str]:
    return {"Content-Type": "application/json", **sign(secret, msg_id, int(time.time()) - age, body)}


def post(host: FunctionsHost, body: bytes, headers: dict[str, str], route: str = "hr/events") -> httpx.Response:
    return httpx.post(host.url(route), content=body, headers=headers)


def test_the_receiver_is_bound_to_its_routes_and_queue(functions: dict[str, func.FunctionBuilder]) -> None:
    queue = {
        "direction": "OUT",
        "type": "queue",
        "name": "queue",
        "queueName": QUEUE,
        "connection": "AzureWebJobsStorage",
    }
    assert bindings(functions, "hr_events") == [queue, *http_bindings("POST", "hr/events")]
    assert bindings(functions, "hr_adapter") == [queue, *http_bindings("POST", "hr/{system}")]
    assert bindings(functions, "hr_event_status") == http_bindings("GET", "hr/events/{event_id}")


def without(headers: dict[str, str], name: str) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k != name}


NON_UTF8 = b'{"type":"worker.terminated","x":"\xff"}'
INVALID = json.dumps({**EVENT, "data": {**EVENT["data"], "worker": {}}}).encode()
# Headers are made when the test runs (lambdas): signed at collection, they would age past the 5-minute window
# in a long run.
REFUSED = [
    pytest.param(BODY, lambda: signed(secret=WRONG), 401, "not authenticated", id="wrong-secret"),
    pytest.param(BODY, lambda: signed(age=400), 401, "not authenticated", id="expired-timestamp"),
    pytest.param(BODY, lambda: signed(age=-400), 401, "not authenticated", id="future-timestamp"),
    pytest.param(BODY.replace(b"E123", b"E124"), lambda: signed(), 401, "not authenticated", id="tampered-body"),
    pytest.param(BODY, lambda: without(signed(), "webhook-signature"), 401, "not authenticated", id="no-signature"),
    pytest.param(BODY, lambda: without(signed(), "webhook-id"), 401, "not authenticated", id="no-id"),
    pytest.param(BODY, lambda: without(signed(), "webhook-timestamp"), 401, "not authenticated", id="no-timestamp"),
    pytest.param(
        BODY, lambda: {**signed(), "webhook-signature": "v1"}, 401, "not authenticated", id="signature-no-comma"
    ),
    pytest.param(
        BODY, lambda: {**signed(), "webhook-timestamp": "soon"}, 401, "not authenticated", id="timestamp-not-digits"
    ),
    pytest.param(NON_UTF8, lambda: signed(NON_UTF8), 400, "the body is not UTF-8", id="non-utf8-body"),
    pytest.param(INVALID, lambda: signed(INVALID), 400, "data.worker: needs at least one of", id="invalid-event"),
    pytest.param(b"{" * (64 * 1024 + 1), lambda: signed(b"{" * (64 * 1024 + 1)), 413, "65,537 bytes", id="64KiB+1"),
    pytest.param(BODY, lambda: {**signed(), "Content-Type": "text/plain"}, 415, "'text/plain'", id="content-type"),
    pytest.param(BODY, lambda: without(signed(), "Content-Type"), 415, "send application/json", id="no-content-type"),
]


@pytest.mark.parametrize(("body", "headers", "status", "says"), REFUSED)
def test_every_refused_delivery_gets_its_documented_code_and_stores_nothing(
    host: FunctionsHost, state: Path, body: bytes, headers: Callable[[], dict[str, str]], status: int, says: str
) -> None:
    response = post(host, body, headers())
    assert (response.status_code, response.headers.get("location")) == (status, None)
    assert says in response.json()["error"]
    assert stored(state) == {}
    assert queued(host) == []


@pytest.mark.parametrize("secret", [SECRET, NEXT], ids=["current-secret", "next-secret"])
def test_a_valid_delivery_is_stored_and_queued_and_its_status_readable(
    host: FunctionsHost, state: Path, secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    headers = signed(secret=secret)
    response = post(host, BODY, headers)
    assert response.status_code == 202
    receipt = response.json()
    event_id = receipt["id"]
    assert receipt == {"id": event_id, "status": "received", "statusUrl": f"/api/hr/events/{event_id}"}
    assert response.headers["location"] == receipt["statusUrl"]
    assert [decode_message(text).event_id for text in queued(host)] == [event_id]
    row = stored(state)[event_id]
    assert (row["status"], row["system"], row["replayable"]) == ("received", "workday", False)
    assert row["due_at"] == "2026-11-30T23:00:00+00:00"  # 00:00 on 1 December in Berlin

    status = httpx.get(host.url(f"hr/events/{event_id}"))
    assert status.status_code == 200
    assert status.json() == {
        "id": event_id,
        "status": "received",
        "type": "worker.terminated",
        "system": "workday",
        "worker": {"email": "jane@partner.example", "employeeId": "E123"},
        "effectiveDate": "2026-12-01",
        "effectiveTimeZone": "Europe/Berlin",
        "dueAt": "2026-11-30T23:00:00+00:00",
        "receivedAt": row["received_at"],
        "replayable": False,
        "runId": None,
        "outcome": None,
    }
    assert httpx.get(host.url("hr/events/hr-0000000000000000")).status_code == 404
    assert httpx.get(host.url("hr/events/nonsense")).status_code == 404
    for secret_part in (SECRET, NEXT, headers["webhook-signature"], "jane@partner.example"):
        assert secret_part not in caplog.text


async def test_the_same_event_delivered_five_times_at_once_is_stored_and_queued_once(
    host: FunctionsHost, state: Path
) -> None:
    headers = signed()
    async with httpx.AsyncClient() as client:
        answers = await asyncio.gather(
            *(client.post(host.url("hr/events"), content=BODY, headers=headers) for _ in range(5))
        )
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 200, 202]
    assert len({a.text for a in answers}) == 1  # every copy gets the first answer
    assert len(await asyncio.to_thread(stored, state)) == 1
    assert len(queued(host)) == 1


def test_a_bamboohr_termination_is_received_through_its_adapter(host: FunctionsHost, state: Path) -> None:
    body = (FIXTURES / "bamboohr.json").read_bytes()
    stamp = str(int(time.time()))
    mac = hmac.new(BAMBOO_KEY.encode(), body + stamp.encode(), hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-BambooHR-Timestamp": stamp, "X-BambooHR-Signature": mac}
    first = post(host, body, headers, "hr/bamboohr")
    again = post(host, body, headers, "hr/bamboohr")
    assert (first.status_code, again.status_code, again.json()) == (202, 200, first.json())
    (row,) = stored(state).values()  # the second employee changed to Full-Time: not a termination
    assert (row["system"], row["dedupe_key"], row["event"]["data"]["worker"]["employeeId"]) == (
        "bamboohr",
        "bamboohr:12345:2026-12-01",
        "E123",
    )
    assert len(queued(host)) == 1
    assert post(host, body, {**headers, "X-BambooHR-Signature": "0" * 64}, "hr/bamboohr").status_code == 401
    assert post(host, body, headers, "hr/workday").status_code == 404


def test_an_unresolved_key_vault_reference_refuses_every_delivery_and_health_says_so(
    host: FunctionsHost, state: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    reference = "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/hr-webhook/)"
    monkeypatch.setenv("GUESTCTL_HR_WEBHOOK_SECRETS", reference)
    response = post(host, BODY, signed())
    line = "GUESTCTL_HR_WEBHOOK_SECRETS is an unresolved Key Vault reference"
    assert response.status_code == 503
    assert line in response.json()["error"]
    assert (stored(state), queued(host)) == ({}, [])
    health = httpx.get(host.url("health"))
    assert health.status_code == 503
    assert line in health.json()["error"]
    assert "kv.vault.azure.net" not in caplog.text + response.text + health.text

    monkeypatch.setenv("GUESTCTL_HR_WEBHOOK_SECRETS", SECRET)
    receivers = httpx.get(host.url("health")).json()["hr_receivers"]
    assert receivers == {"events": "ready", "bamboohr": "ready", "hibob": "off", "deel": "off", "successfactors": "off"}


async def test_an_event_whose_queue_message_was_lost_is_queued_again_a_few_times(state: Path) -> None:
    from shared.offboarding.events import parse_event
    from shared.offboarding.inbox import MAX_REQUEUES, accept, record

    now = utc_now()
    received = accept("events", signed(), BODY, now)
    assert parse_event(BODY) == received.events[0].event
    async with open_store(str(state)) as store:
        (message,) = (await record(store, "events", received, now)).messages  # and then lost
        assert await requeue_stuck(store, now + REQUEUE_AFTER / 2) == []
        later = [
            await requeue_stuck(store, now + REQUEUE_AFTER + timedelta(minutes=n)) for n in range(MAX_REQUEUES + 1)
        ]
    assert later == [[message]] * MAX_REQUEUES + [[]]


HEADER_NAMES = st.sampled_from(
    ["webhook-id", "webhook-timestamp", "webhook-signature", "Content-Type", "Authorization", "X-BambooHR-Timestamp",
     "X-BambooHR-Signature", "Bob-Signature", "x-deel-signature", "Content-Length"]
)  # fmt: skip


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    route=st.sampled_from(["events", "bamboohr", "hibob", "deel", "successfactors", "workday", ""]),
    headers=st.dictionaries(HEADER_NAMES, st.text(max_size=80), max_size=6),
    body=st.one_of(st.binary(max_size=300), st.just(BODY), st.just(b'"Ping test"')),
    sign_it=st.booleans(),
    content_type=st.sampled_from(["application/json", "text/xml", "text/plain; charset=utf-8", ""]),
)
def test_any_request_gets_a_documented_answer_never_a_500(
    functions: dict[str, func.FunctionBuilder],
    state: Path,
    monkeypatch: pytest.MonkeyPatch,
    route: str,
    headers: dict[str, str],
    body: bytes,
    sign_it: bool,
    content_type: str,
) -> None:
    """In-process, through the real function: random headers and bodies, some correctly signed (so the event
    parser is fuzzed too). Only documented statuses; never an exception."""
    for system in ("HIBOB", "DEEL", "SUCCESSFACTORS"):
        monkeypatch.setenv(f"GUESTCTL_HR_{system}_SECRETS", "vendor-key")
    headers = {**headers, "Content-Type": content_type}
    if sign_it:
        headers.update(sign(SECRET, "msg_fuzz", int(time.time()), body))
    name = "hr_events" if route == "events" else "hr_adapter"
    request = func.HttpRequest(
        method="POST", url=f"/api/hr/{route}", body=body, headers=headers, route_params={"system": route}
    )
    response = asyncio.run(functions[name].get_user_function()(request, CapturedOut()))
    assert response.status_code in (200, 202, 400, 401, 404, 413, 415)
