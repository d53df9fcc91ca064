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
from shared.graph import Budget
from shared.graph.shared_budget import TABLE, SharedBudget
from shared.store import open_store
from tests.support.azurite import ACCOUNT, ACCOUNT_KEY, REPOSITORY_ROOT, StoreLocation

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


async def test_claims_racing_on_one_store_grant_the_budget_exactly_once(store_location: StoreLocation) -> None:
    """Three processes' budgets (each its own store client) claim one unit at a time until the ledger is
    full: conditional updates lose no claim and grant none twice."""
    budgets = [
        SharedBudget(store_location.open, Budget(writes=40, write_window=150.0), scope="graph/t/a") for _ in range(3)
    ]

    async def claim_until_refused(budget: SharedBudget) -> int:
        writes, got = budget.dimensions[1], 0
        while (granted := (await budget._claim_shared(writes, 1))[0]) > 0:
            got += granted
        return got

    granted = await asyncio.gather(*(claim_until_refused(budget) for budget in budgets))

    ledger = await store_location.open().get(TABLE, "graph/t/a", "writes")
    assert ledger is not None
    assert sum(granted) == 40
    assert sum(units for units, _ in ledger.data["claims"].values()) == 40


async def test_an_unreachable_azure_table_service_means_local_pacing(caplog: pytest.LogCaptureFixture) -> None:
    nobody = f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
    nobody += f"TableEndpoint=http://127.0.0.1:9/{ACCOUNT};"  # the discard port: nothing listens
    budget = SharedBudget(
        lambda: open_store(nobody, prefix="unreachable"), Budget(writes=400), scope="graph/t/a", store_timeout=2.0
    )

    await budget.refill((1, 1, 0, 0))

    assert budget.degraded
    assert budget.try_spend((1, 1, 0, 0)), "the request goes ahead on this process's share"
    assert budget.dimensions[1].local, "the claim waits in memory for the store to come back"
    assert "pacing this process alone on 1/40" in caplog.text
    await budget.close()
