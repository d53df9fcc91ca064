"""The pacer keeps a burst of writes under Graph's write budget while using almost all of it.

The server is a separate process that behaves like Graph's write limit: more than WRITES writes within any
WINDOW seconds get 429. 500 writes are started at once.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shared.graph import Budget, Graph, GraphOptions
from tests.support.write_counter import write_limiter

WRITES, WINDOW, TOTAL = 100, 2.0, 500
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def write_counter() -> Iterator[str]:
    with write_limiter(WRITES, WINDOW) as base_url:
        yield base_url


def busiest_window(arrivals: list[float]) -> int:
    times = sorted(arrivals)
    return max(bisect.bisect_right(times, t + WINDOW - 1e-9) - i for i, t in enumerate(times))


async def test_500_concurrent_writes_stay_within_the_write_budget(write_counter: str) -> None:
    budget = Budget(resource_units=1_000_000, writes=WRITES, write_window=WINDOW)
    graph = Graph(GraphOptions(base_url=f"{write_counter}/v1.0", auth="emulator", budget=budget, max_concurrency=8))

    async def write(i: int) -> None:
        await graph.request("PATCH", f"/users/u{i}", json_body={"accountEnabled": False}, idempotent=True)

    await asyncio.gather(*(write(i) for i in range(TOTAL)))
    await graph.close()
    async with httpx.AsyncClient() as client:
        seen = (await client.get(f"{write_counter}/arrivals")).json()
    arrivals = seen["arrivals"]

    assert seen["throttled"] == [], "the server never had to throttle"
    assert len(arrivals) == TOTAL, "every write arrived exactly once"
    assert busiest_window(arrivals) <= WRITES
    # How much of the budget the pacer uses is a measurement, not a behaviour: bench/pacer_budget.py.
