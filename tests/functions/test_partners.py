"""The daily partner discovery timer: discovers and keeps the summary in the store, reading only."""

from __future__ import annotations

import json
from pathlib import Path

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest

from emulator.testing import EmulatorServer
from shared.config import load_settings
from shared.partners.service import latest_discovery
from shared.store import open_state
from tests.support.functions import CapturedOut, bindings, point_at_emulator
from tests.support.partners import partner_tenant
from tests.support.stale import NOW


def test_partner_discovery_is_a_daily_timer(functions: dict[str, func.FunctionBuilder]) -> None:
    (binding,) = bindings(functions, "partner_discovery")
    assert (binding["type"], binding["schedule"]) == ("timerTrigger", "0 0 5 * * *")


async def test_the_timer_keeps_the_latest_discovery_and_changes_nothing(
    functions: dict[str, func.FunctionBuilder],
    emulator: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    emulator.reset(partner_tenant(NOW).tenant)
    point_at_emulator(monkeypatch, emulator, tmp_path)
    emulator.control.clear_requests()
    await functions["partner_discovery"].get_user_function()(TimerRequest())
    async with open_state(load_settings()) as store:
        kept = await latest_discovery(store)
    assert kept is not None
    assert kept["partners"][0]["display_name"] == "Fabrikam"
    writes = [r for r in emulator.control.requests() if r["method"] != "GET" and not r["path"].endswith("/$batch")]
    assert writes == []


async def test_approving_an_unknown_retirement_plan_is_refused_at_once_and_queues_nothing(
    functions: dict[str, func.FunctionBuilder],
    emulator: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    point_at_emulator(monkeypatch, emulator, tmp_path)
    queue = CapturedOut()
    request = func.HttpRequest(
        method="POST",
        url="/api/partners/plans/0123456789abcdef/approve",
        body=b"",
        route_params={"plan_id": "0123456789abcdef"},
    )
    response = await functions["approve_partner_plan"].get_user_function()(request, queue)
    assert response.status_code == 404
    assert "0123456789abcdef" in json.loads(response.get_body())["error"]
    assert not queue.was_set


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"not json", id="not-json"),
        pytest.param(b'{"apply": "0123456789abcdef"}', id="no-actor"),
        pytest.param(b'{"apply": "0123456789abcdef", "actor": "x", "extra": 1}', id="unknown-field"),
    ],
)
async def test_a_malformed_retirement_message_goes_to_the_poison_queue_at_once(
    functions: dict[str, func.FunctionBuilder],
    emulator: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    body: bytes,
) -> None:
    point_at_emulator(monkeypatch, emulator, tmp_path)
    poison = CapturedOut()
    await functions["apply_partner_retirement"].get_user_function()(func.QueueMessage(id="m1", body=body), poison)
    assert "malformed partner-retirements queue message" in json.loads(poison.value)["reason"]
    writes = [r for r in emulator.control.requests() if r["method"] != "GET"]
    assert writes == []
