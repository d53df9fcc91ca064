"""From a signed HR event to the tenant: the receiver stores and queues it, the hr-events worker acts when it is
due (never before), a redelivery changes nothing, and a cancellation settles the worker's waiting terminations."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

from emulator.seed import empty_tenant
from emulator.testing import EmulatorServer
from shared import cli
from shared.clock import utc_now
from shared.config import load_settings
from shared.errors import ExitCode
from shared.offboarding.inbox import EVENT_PARTITION
from shared.offboarding.signatures import sign
from shared.offboarding.worker import due_messages, handle_message
from shared.store import open_state
from shared.store.registry import HR_EVENTS
from tests.support.functions import CapturedOut, bindings, point_at_emulator, resolved

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
START = utc_now()  # signatures are checked against the real clock; the worker's clock is given


@pytest.fixture
def tenant(emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> EmulatorServer:
    emulator.reset(empty_tenant(START))
    point_at_emulator(monkeypatch, emulator, tmp_path)
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"offboarding": {"delete_after_days": 30}}))
    monkeypatch.setenv("GUESTCTL_POLICY", str(policy))
    monkeypatch.setenv("GUESTCTL_HR_WEBHOOK_SECRETS", SECRET)
    return emulator


def event(kind: str, email: str, *, days: int, sent: datetime = START) -> dict[str, Any]:
    effective = (START + timedelta(days=days)).date().isoformat()
    return {
        "type": kind,
        "timestamp": sent.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "data": {
            "source": {"system": "workday", "eventId": f"{kind}-{email}-{days}"},
            "worker": {"email": email},
            "effectiveDate": effective,
            "effectiveTimeZone": "UTC",
        },
    }


async def deliver(functions: dict[str, func.FunctionBuilder], body: dict[str, Any], msg_id: str) -> list[str]:
    """POST /api/hr/events through the real function: the answer is 202 and the queue messages are returned."""
    raw = json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **sign(SECRET, msg_id, int(time.time()), raw)}
    queue = CapturedOut()
    request = func.HttpRequest(method="POST", url="/api/hr/events", body=raw, headers=headers)
    response = await functions["hr_events"].get_user_function()(request, queue)
    assert response.status_code == 202, response.get_body()
    return list(queue.value)


async def run_worker(functions: dict[str, func.FunctionBuilder], text: str) -> CapturedOut:
    poison = CapturedOut()
    message = func.QueueMessage(id="m1", body=text.encode())
    await functions["hr_events_worker"].get_user_function()(message, poison)
    return poison


async def rows() -> dict[str, dict[str, Any]]:
    async with open_state(load_settings()) as store:
        return {r.row: r.data async for r in store.query(HR_EVENTS, EVENT_PARTITION)}


def writes(tenant: EmulatorServer) -> list[str]:
    return [f"{r['method']} {r['path']}" for r in tenant.control.requests() if r["method"] != "GET"]


async def test_a_termination_waits_for_its_date_then_acts_once(
    tenant: EmulatorServer, functions: dict[str, func.FunctionBuilder]
) -> None:
    ann = tenant.control.create_user(userType="Guest", mail="ann@fabrikam.com")["id"]
    (message,) = await deliver(functions, event("worker.terminated", "ann@fabrikam.com", days=3), "msg_ann")
    tenant.control.clear_requests()

    assert (await run_worker(functions, message)).value is None  # due in 3 days: scheduled, nothing changed
    (row,) = (await rows()).values()
    assert (row["status"], row["outcome"]) == ("scheduled", f"due {row['due_at']}")
    assert writes(tenant) == []
    settings = load_settings()
    async with open_state(settings) as store:
        assert await due_messages(store, START + timedelta(days=2)) == []
        (due,) = await due_messages(store, START + timedelta(days=3, hours=1))
    assert due == message

    later = START + timedelta(days=3, hours=1)
    done = await handle_message(settings, due, clock=lambda: later)
    assert (done.status, done.acted) == ("done", True)
    assert tenant.tenant.users[ann].accountEnabled is False
    made = writes(tenant)
    again = await handle_message(settings, due, clock=lambda: later)  # redelivered: settled, nothing repeated
    assert (again.status, again.acted) == ("done", False)
    assert writes(tenant) == made
    (row,) = (await rows()).values()
    assert row["run_id"] == done.run_id
    assert row["outcome"].startswith("disable done: 1")


def guestctl(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`guestctl ARGS` in process (cli.main, as the console script runs it): exit code, stdout, stderr."""
    monkeypatch.setattr("sys.argv", ["guestctl", *args])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    out = capsys.readouterr()
    return int(exited.value.code or 0), out.out, out.err


async def test_offboard_status_and_list_show_the_received_events(
    tenant: EmulatorServer,
    functions: dict[str, func.FunctionBuilder],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tenant.control.create_user(userType="Guest", mail="dan@fabrikam.com")
    (message,) = await deliver(functions, event("worker.terminated", "dan@fabrikam.com", days=2), "msg_dan")
    (event_id,) = await rows()
    await handle_message(load_settings(), message)

    code, out, _ = await asyncio.to_thread(guestctl, monkeypatch, capsys, "offboard", "status", event_id, "--json")
    shown = json.loads(out)
    assert (code, shown["id"], shown["status"], shown["worker"]) == (
        0,
        event_id,
        "scheduled",
        {"email": "dan@fabrikam.com"},
    )
    code, out, _ = await asyncio.to_thread(guestctl, monkeypatch, capsys, "offboard", "list", "--pending", "--json")
    assert (code, [e["id"] for e in json.loads(out)]) == (0, [event_id])
    code, out, _ = await asyncio.to_thread(guestctl, monkeypatch, capsys, "offboard", "list")
    assert code == 0
    assert event_id in out
    assert "scheduled" in out
    code, _, err = await asyncio.to_thread(guestctl, monkeypatch, capsys, "offboard", "status", "hr-0000000000000000")
    assert code == int(ExitCode.BAD_INPUT)
    assert "no HR event 'hr-0000000000000000'" in err
    code, _, err = await asyncio.to_thread(guestctl, monkeypatch, capsys, "offboard", "dan@fabrikam.com", "--pending")
    assert code == int(ExitCode.BAD_INPUT)
    assert "--pending goes with `offboard list`" in err


async def test_a_cancellation_settles_the_workers_waiting_termination_in_either_order(
    tenant: EmulatorServer, functions: dict[str, func.FunctionBuilder]
) -> None:
    bob = tenant.control.create_user(userType="Guest", mail="bob@fabrikam.com")["id"]
    cat = tenant.control.create_user(userType="Guest", mail="cat@fabrikam.com")["id"]
    settings = load_settings()
    # Bob: the termination is scheduled, then HR cancels it.
    (ended,) = await deliver(functions, event("worker.terminated", "bob@fabrikam.com", days=5), "msg_bob_1")
    await handle_message(settings, ended)
    (cancel,) = await deliver(functions, event("worker.termination_cancelled", "BOB@fabrikam.com", days=5), "msg_b2")
    cancelled = await handle_message(settings, cancel)
    assert len(cancelled.cancelled) == 1
    # Cat: the cancellation (sent in the same second: when in doubt, nobody is disabled) is processed first;
    # her termination, processed after it, is cancelled too.
    late = event("worker.terminated", "cat@fabrikam.com", days=0, sent=START)
    (cat_cancel,) = await deliver(functions, event("worker.termination_cancelled", "cat@fabrikam.com", days=0), "c1")
    await handle_message(settings, cat_cancel)
    (cat_ended,) = await deliver(functions, late, "msg_cat_1")
    tenant.control.clear_requests()
    settled = await handle_message(settings, cat_ended)
    assert settled.status == "cancelled"
    assert "sent no earlier than this one" in (settled.outcome or "")

    async with open_state(settings) as store:
        assert await due_messages(store, START + timedelta(days=30)) == []
    statuses = {r["event"]["data"]["worker"]["email"].lower(): r["status"] for r in (await rows()).values()
                if r["event"]["type"] == "worker.terminated"}  # fmt: skip
    assert statuses == {"bob@fabrikam.com": "cancelled", "cat@fabrikam.com": "cancelled"}
    assert writes(tenant) == []
    assert tenant.tenant.users[bob].accountEnabled is not False
    assert tenant.tenant.users[cat].accountEnabled is not False


async def test_a_malformed_or_unknown_message_goes_to_the_poison_queue_at_once(
    tenant: EmulatorServer, functions: dict[str, func.FunctionBuilder]
) -> None:
    for text in ("{not json", json.dumps({"event_id": "hr-0000000000000000"})):
        poison = await run_worker(functions, text)
        assert poison.value is not None
        assert json.loads(poison.value)["reason"]
    poison = CapturedOut()  # bad UTF-8 inside a string: it was an unhandled UnicodeDecodeError
    await functions["hr_events_worker"].get_user_function()(
        func.QueueMessage(id="m2", body=b'{"event_id": "\xff"}'), poison
    )
    assert "malformed hr-events queue message" in json.loads(poison.value)["reason"]


def test_the_worker_and_the_due_timer_are_bound_to_the_hr_events_queue(
    functions: dict[str, func.FunctionBuilder],
) -> None:
    def queue(direction: str, kind: str, name: str, queue_name: str) -> dict[str, str]:
        return {"direction": direction, "type": kind, "name": name, "queueName": queue_name,
                "connection": "AzureWebJobsStorage"}  # fmt: skip

    assert bindings(functions, "hr_events_worker") == [
        queue("OUT", "queue", "poison", "hr-events-poison"),
        queue("IN", "queueTrigger", "message", "hr-events"),
    ]
    out, timer = sorted(bindings(functions, "hr_events_due"), key=lambda b: b["type"])
    assert out == queue("OUT", "queue", "queue", "hr-events")
    assert (timer["type"], resolved(timer["schedule"])) == ("timerTrigger", "0 */15 * * * *")
