"""map_bounded: bounded, ordered, and nothing left running when one item fails or the caller is cancelled.

Items wait on events the test sets, never on sleeps: the test decides what finishes when, not the clock.
"""

from __future__ import annotations

import asyncio

import pytest

from shared.concurrency import map_bounded


async def test_results_in_item_order_with_at_most_limit_running() -> None:
    running, most = 0, 0
    started: asyncio.Queue[int] = asyncio.Queue()
    release = {item: asyncio.Event() for item in range(20)}

    async def work(item: int) -> int:
        nonlocal running, most
        running += 1
        most = max(most, running)
        started.put_nowait(item)
        await release[item].wait()
        running -= 1
        return item * 2

    done: list[int] = []
    call = asyncio.ensure_future(map_bounded(range(20), work, limit=4, on_done=done.append))
    held: set[int] = set()
    released: list[int] = []
    async with asyncio.timeout(30):  # a guard against a hang, not a measurement
        while len(released) < 20:  # let the newest running item finish first, so they finish out of order
            while len(held) < min(4, 20 - len(released)):
                held.add(await started.get())
            newest = max(held)
            held.remove(newest)
            released.append(newest)
            release[newest].set()

    assert await call == [i * 2 for i in range(20)], "results in item order"
    assert most == 4
    assert released == [*range(3, 20), 2, 1, 0]
    assert done == [i * 2 for i in released], "on_done as each finished"


async def test_one_failure_stops_every_other_item() -> None:
    go = asyncio.Event()
    finished: list[int] = []

    async def work(item: int) -> int:
        if item == 3:
            raise KeyError("accountEnabled")
        await go.wait()
        finished.append(item)
        return item

    with pytest.raises(KeyError):
        await map_bounded(range(100), work, limit=8)
    assert asyncio.all_tasks() == {asyncio.current_task()}, "every other item was cancelled and awaited"
    go.set()
    assert finished == [], "no item went on working after the failure"


async def test_cancelling_the_caller_cancels_the_items() -> None:
    started = asyncio.Event()
    never = asyncio.Event()

    async def work(item: int) -> int:
        started.set()
        await never.wait()
        return item

    call = asyncio.ensure_future(map_bounded(range(10), work, limit=5))
    await started.wait()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert asyncio.all_tasks() == {asyncio.current_task()}
