"""Four processes writing at once share Graph's write budget through one store (issue 10).

Each process is `tests.support.budget_worker`, a Graph client with the shared budget, PATCHing users as fast
as its pacer allows; the emulator (its own process) enforces Graph's limits, time-scaled. Alone, each would
spend the whole budget; together they must stay within it, on SQLite and on Azurite.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from emulator.testing import ControlClient, EmulatorProcess
from tests.support.azurite import REPOSITORY_ROOT, StoreLocation

PROCESSES, WRITES_EACH = 4, 150
BUDGET = 300  # writes per window (Graph: 3,000 per 150 s), small so that the budget binds within seconds
TIME_SCALE = 0.02  # the write window is 150 s × 0.02 = 3 s
WINDOW = 150 * TIME_SCALE


@pytest.fixture(scope="module")
def emulator() -> Iterator[tuple[str, ControlClient]]:
    with EmulatorProcess("--seed", "demo", "--time-scale", str(TIME_SCALE)) as process:
        control = ControlClient(process.root_url)
        try:
            yield process.base_url, control
        finally:
            control.close()


def user_ids(base_url: str) -> list[str]:
    response = httpx.get(f"{base_url}/users?$select=id&$top=100", headers={"Authorization": "Bearer test"})
    response.raise_for_status()
    return [user["id"] for user in response.json()["value"]]


async def run_workers(base_url: str, state: str, prefix: str, users: list[str]) -> list[dict[str, Any]]:
    command = [sys.executable, "-m", "tests.support.budget_worker", "--graph", base_url, "--state", state]
    command += ["--prefix", prefix, "--users", ",".join(users), "--writes", str(WRITES_EACH)]
    command += ["--budget-writes", str(BUDGET), "--time-scale", str(TIME_SCALE)]
    workers = [
        await asyncio.create_subprocess_exec(*command, cwd=REPOSITORY_ROOT, stdout=asyncio.subprocess.PIPE)
        for _ in range(PROCESSES)
    ]
    outputs = await asyncio.wait_for(asyncio.gather(*(worker.communicate() for worker in workers)), timeout=180)
    assert [worker.returncode for worker in workers] == [0] * PROCESSES
    return [json.loads(stdout.decode().strip().splitlines()[-1]) for stdout, _ in outputs]


def busiest_window(times: list[float], window: float) -> int:
    ordered = sorted(times)
    return max(bisect.bisect_right(ordered, t + window - 1e-9) - i for i, t in enumerate(ordered))


async def test_four_processes_stay_within_one_write_budget(
    emulator: tuple[str, ControlClient], store_location: StoreLocation
) -> None:
    base_url, control = emulator
    users = user_ids(base_url)
    control.set_limits(enabled=True, time_scale=TIME_SCALE, write_quota=BUDGET)
    control.clear_requests()

    results = await run_workers(base_url, store_location.location, store_location.prefix, users)

    writes = [entry for entry in control.requests(method="PATCH")]
    throttled = [entry for entry in writes if entry.get("throttled")]
    started = [t for result in results for t in result["started"]]
    claims = sum(result["claims_written"] for result in results)
    print(
        f"{len(writes)} writes, {len(throttled)} answered 429, busiest {WINDOW:.0f} s window "
        f"{busiest_window(started, WINDOW)}/{BUDGET}, {claims} ledger writes, "
        f"took {max(result['elapsed'] for result in results):.1f} s"
    )
    assert not any(result["degraded"] for result in results), "the store answered throughout"
    assert len(writes) - len(throttled) == PROCESSES * WRITES_EACH, "every write was done once"
    assert len(throttled) <= 0.01 * len(writes)
    assert busiest_window(started, WINDOW) <= BUDGET, "no window holds more starts than the budget"
    assert claims < PROCESSES * WRITES_EACH, "the store sees one write per claim, not one per request"
