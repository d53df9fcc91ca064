"""map_bounded: bounded, ordered, and nothing left running when one item fails or the caller is cancelled."""

from __future__ import annotations

import asyncio

import pytest

from shared.concurrency import map_bounded


async def test_results_in_item_order_with_at_most_limit_running() -> None:
    running, most = 0, 0

    async def work(item: int) -> int:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.001 * (item % 3))
        running -= 1
        return item * 2

    done: list[int] = []
    assert await map_bounded(range(20), work, limit=4, on_done=done.append) == [i * 2 for i in range(20)]
    assert most == 4
    assert sorted(done) == [i * 2 for i in range(20)]


async def test_one_failure_stops_every_other_item() -> None:
    finished: list[int] = []

    async def work(item: int) -> int:
        if item == 3:
            raise KeyError("accountEnabled")
        await asyncio.sleep(0.05)
        finished.append(item)
        return item

    with pytest.raises(KeyError):
        await map_bounded(range(100), work, limit=8)
    await asyncio.sleep(0.1)
    assert finished == [], "no item went on working after the failure"
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_cancelling_the_caller_cancels_the_items() -> None:
    started = asyncio.Event()

    async def work(item: int) -> int:
        started.set()
        await asyncio.sleep(10)
        return item

    call = asyncio.ensure_future(map_bounded(range(10), work, limit=5))
    await started.wait()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert asyncio.all_tasks() == {asyncio.current_task()}
