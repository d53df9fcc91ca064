"""The daily partner discovery timer: discovers and keeps the summary in the store, reading only."""

from __future__ import annotations

from pathlib import Path

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest

from emulator.testing import EmulatorServer
from shared.config import load_settings
from shared.partners.service import latest_discovery
from shared.store import open_state
from tests.support.functions import bindings, point_at_emulator
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
