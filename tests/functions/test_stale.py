"""Stale-guest functions through real azure.functions objects: timer plans, approval applies."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest

from emulator.seed import seed_tenant
from emulator.testing import EmulatorServer
from tests.support.functions import CapturedOut, bindings, exported_logs, http_bindings, point_at_emulator

ROOT = Path(__file__).resolve().parents[2]


QUEUE_OUT = {
    "direction": "OUT",
    "type": "queue",
    "name": "more",
    "queueName": "stale-sweeps",
    "connection": "AzureWebJobsStorage",
}
POISON_OUT = {
    "direction": "OUT",
    "type": "queue",
    "name": "poison",
    "queueName": "stale-sweeps-poison",
    "connection": "AzureWebJobsStorage",
}


def timer_schedule(environment: dict[str, str]) -> str:
    """The timer's schedule as the Functions host would index it, in a fresh process with these settings."""
    script = (
        "import json, function_app\n"
        "(timer,) = [f for f in function_app.app.get_functions() if f.get_function_name() == 'stale_sweep']\n"
        "bindings = json.loads(timer.get_function_json())['bindings']\n"
        "print(json.dumps([b for b in bindings if b['type'] == 'timerTrigger']))"
    )
    env = {k: v for k, v in os.environ.items() if k != "GUESTCTL_SWEEP_SCHEDULE"} | environment
    output = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    (binding,) = json.loads(output.stdout)
    assert binding == {
        "direction": "IN",
        "type": "timerTrigger",
        "name": "timer",
        "schedule": binding["schedule"],
        "runOnStartup": False,
    }
    return binding["schedule"]


def test_timer_schedule_is_the_app_setting_the_host_resolves(functions: dict) -> None:
    assert bindings(functions, "stale_sweep")[0] == QUEUE_OUT
    assert timer_schedule({}) == "%GUESTCTL_SWEEP_SCHEDULE%"
    assert timer_schedule({"GUESTCTL_SWEEP_SCHEDULE": "0 30 2 * * *"}) == "%GUESTCTL_SWEEP_SCHEDULE%", (
        "read by the host"
    )


def test_continuation_binding(functions: dict) -> None:
    assert bindings(functions, "continue_stale_sweep") == [
        POISON_OUT,
        QUEUE_OUT,
        {
            "direction": "IN",
            "type": "queueTrigger",
            "name": "message",
            "queueName": "stale-sweeps",
            "connection": "AzureWebJobsStorage",
        },
    ]


def test_approve_and_status_bindings(functions: dict) -> None:
    assert bindings(functions, "approve_sweep") == [
        QUEUE_OUT,
        *http_bindings("POST", "sweeps/{plan_id}/approve"),
    ]
    assert bindings(functions, "sweep_status") == http_bindings("GET", "sweeps/{plan_id}")


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, emulator: EmulatorServer) -> Path:
    emulator.reset(seed_tenant(3, guests=120, members=20, now=datetime.now(UTC)))
    policy = tmp_path / "policy.yaml"
    policy.write_text("safety:\n  max_actions: 1000\n  max_percent: 100\n")
    point_at_emulator(monkeypatch, emulator, tmp_path, "GUESTCTL_TENANT_ID", "GUESTCTL_SWEEP_MODE")
    monkeypatch.setenv("GUESTCTL_POLICY", str(policy))
    return tmp_path


async def approve(functions: dict, plan_id: str, queued: CapturedOut | None = None) -> func.HttpResponse:
    request = func.HttpRequest(
        method="POST",
        url=f"/api/sweeps/{plan_id}/approve",
        body=b"",
        route_params={"plan_id": plan_id},
        headers={"x-approver": "ann@contoso.com"},
    )
    return await functions["approve_sweep"].get_user_function()(request, queued or CapturedOut())


async def status(functions: dict, plan_id: str) -> func.HttpResponse:
    request = func.HttpRequest(method="GET", url=f"/api/sweeps/{plan_id}", body=b"", route_params={"plan_id": plan_id})
    return await functions["sweep_status"].get_user_function()(request)


async def run_queue(functions: dict, message: str) -> CapturedOut:
    """Deliver one queue message to the worker, as the host would; returns what it queued next."""
    more, poison = CapturedOut(), CapturedOut()
    await functions["continue_stale_sweep"].get_user_function()(func.QueueMessage(body=message.encode()), more, poison)
    assert not poison.was_set, poison.value
    return more


async def test_timer_plans_without_changes_and_approval_queues_the_apply(
    functions: dict, settings_env: Path, emulator: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    from shared.store import open_store

    caplog.set_level("INFO", logger="guestctl.functions.stale")
    timer_out = CapturedOut()
    with exported_logs("guestctl.functions.stale") as exported:
        await functions["stale_sweep"].get_user_function()(TimerRequest(), timer_out)
    assert not timer_out.was_set, "plan mode queues nothing"
    assert [r for r in emulator.control.requests() if r["method"] != "GET" and not r["path"].endswith("$batch")] == []
    summary = next(r.getMessage() for r in caplog.records if "stale-guest sweep" in r.getMessage())
    plan_id = summary.split("'plan_id': '")[1].split("'")[0]
    # the run ids are log attributes (Application Insights custom dimensions), not only text in the message
    (attributes,) = [dict(r.attributes or {}) for r in exported() if "stale-guest sweep:" in str(r.body)]
    assert {key: attributes.get(key) for key in ("plan_id", "run_id")} == {
        "plan_id": plan_id,
        "run_id": f"sweep-{plan_id}",
    }
    assert attributes["scan_id"].startswith("timer-")

    queued = CapturedOut()
    response = await approve(functions, plan_id, queued)
    body = json.loads(response.get_body())
    assert response.status_code == 202
    assert body == {
        "plan_id": plan_id,
        "run_id": f"sweep-{plan_id}",
        "actions": body["actions"],
        "status": f"/api/sweeps/{plan_id}",
    }
    assert [r for r in emulator.control.requests() if r["method"] == "PATCH"] == [], "nothing applied in the request"
    before = json.loads((await status(functions, plan_id)).get_body())
    assert (before["progress"], before["applying"]) == ({}, False)

    message = json.loads(queued.value)
    assert message["apply"] == plan_id
    assert "approver stated: ann@contoso.com" in message["actor"]
    assert not (await run_queue(functions, queued.value)).was_set
    after = json.loads((await status(functions, plan_id)).get_body())
    assert after["progress"] == {"flag done": body["actions"]}
    async with open_store(str(settings_env / "state.db")) as store:
        flagged = [r async for r in store.query("staleguests", "guests")]
        audit = [e async for e in store.read_audit()]
    assert len(flagged) == body["actions"]

    again = await run_queue(functions, queued.value)  # delivered twice: the run is finished, nothing repeats
    assert not again.was_set
    async with open_store(str(settings_env / "state.db")) as store:
        assert [e async for e in store.read_audit()] == audit


async def test_apply_mode_queues_the_apply_of_a_plan_within_the_caps(
    functions: dict, settings_env: Path, emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GUESTCTL_SWEEP_MODE", "apply")
    timer_out = CapturedOut()
    await functions["stale_sweep"].get_user_function()(TimerRequest(), timer_out)
    step = json.loads(timer_out.value)
    assert "GUESTCTL_SWEEP_MODE=apply" in step["actor"]
    await run_queue(functions, timer_out.value)
    progress = json.loads((await status(functions, step["apply"])).get_body())["progress"]
    assert set(progress) == {"flag done"}


async def test_unknown_plan_is_404(functions: dict, settings_env: Path) -> None:
    queued = CapturedOut()
    assert (await approve(functions, "0123456789abcdef", queued)).status_code == 404
    assert not queued.was_set
    assert (await status(functions, "0123456789abcdef")).status_code == 404


async def test_old_plan_is_refused_with_409(functions: dict, settings_env: Path, emulator: EmulatorServer) -> None:
    from shared.config import load_policy
    from shared.graph import Graph, GraphOptions
    from shared.stale import plan_sweep, save_plan
    from shared.store import open_store

    policy = load_policy(settings_env / "policy.yaml")
    graph = Graph(GraphOptions(base_url=emulator.base_url, auth="emulator"))
    async with open_store(str(settings_env / "state.db")) as store:
        plan = await plan_sweep(
            graph, store, policy, now=datetime.now(UTC) - timedelta(days=3), scan_id="old", tenant_id=None
        )
        plan_id = await save_plan(store, plan)
    await graph.close()
    queued = CapturedOut()
    response = await approve(functions, plan_id, queued)
    assert response.status_code == 409
    assert "hours old" in json.loads(response.get_body())["error"]
    assert not queued.was_set, "a refused approval queues nothing"


async def test_a_sweep_out_of_time_continues_through_the_queue(
    functions: dict,
    settings_env: Path,
    emulator: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    emulator.reset(seed_tenant(3, guests=1_200, members=20, now=datetime.now(UTC)))  # three pages of 500
    caplog.set_level("INFO", logger="guestctl.functions.stale")
    monkeypatch.setenv("GUESTCTL_SWEEP_TIME_BUDGET", "0")
    more = CapturedOut()
    await functions["stale_sweep"].get_user_function()(TimerRequest(), more)
    handoffs = 0
    while more.was_set:  # the host would deliver each message to continue_stale_sweep
        handoffs += 1
        more = await run_queue(functions, more.value)
        assert handoffs < 10
    assert handoffs == 2, "three pages, one per invocation with no time to spare"
    assert any("'plan_id'" in r.getMessage() for r in caplog.records), "the last invocation kept the plan"


async def test_paused_the_timer_does_nothing_and_the_worker_keeps_its_message(
    functions: dict, settings_env: Path, emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GUESTCTL_PAUSED (docs/operations.md#pause-everything): no Graph call, no plan, no apply; a queued apply
    is handed back (RetryLaterError, the host's retry path, not the poison queue) and runs once resumed."""
    from shared.errors import RetryLaterError, is_transient

    monkeypatch.setenv("GUESTCTL_SWEEP_MODE", "apply")
    monkeypatch.setenv("GUESTCTL_PAUSED", "true")
    timer_out = CapturedOut()
    await functions["stale_sweep"].get_user_function()(TimerRequest(), timer_out)
    assert not timer_out.was_set
    assert emulator.control.requests() == []

    monkeypatch.setenv("GUESTCTL_PAUSED", "false")
    await functions["stale_sweep"].get_user_function()(TimerRequest(), timer_out)
    step = json.loads(timer_out.value)

    monkeypatch.setenv("GUESTCTL_PAUSED", "yes")
    more, poison = CapturedOut(), CapturedOut()
    worker = functions["continue_stale_sweep"].get_user_function()
    with pytest.raises(RetryLaterError, match="handed back, GUESTCTL_PAUSED is true") as held:
        await worker(func.QueueMessage(id="m1", body=timer_out.value.encode()), more, poison)
    assert is_transient(held.value)
    assert (more.was_set, poison.was_set) == (False, False)
    assert [r for r in emulator.control.requests() if r["method"] != "GET" and "$batch" not in r["path"]] == []
    assert json.loads((await status(functions, step["apply"])).get_body())["progress"] == {}

    monkeypatch.delenv("GUESTCTL_PAUSED")
    await run_queue(functions, timer_out.value)
    assert set(json.loads((await status(functions, step["apply"])).get_body())["progress"]) == {"flag done"}


@pytest.mark.parametrize(
    ("value", "paused"), [("", False), ("False", False), ("0", False), ("TRUE", True), ("maybe", True)]
)
def test_paused_reads_booleans_and_fails_closed(monkeypatch: pytest.MonkeyPatch, value: str, paused: bool) -> None:
    from functions.pause import paused as is_paused

    monkeypatch.setenv("GUESTCTL_PAUSED", value)
    assert is_paused() is paused
