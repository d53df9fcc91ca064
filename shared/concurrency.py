"""Working on many items at once without unbounded fan-out (the pacer bounds the Graph requests)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


async def map_bounded(
    items: Iterable[T], work: Callable[[T], Awaitable[R]], *, limit: int, on_done: Callable[[R], None] | None = None
) -> list[R]:
    """`work` on every item, at most `limit` at a time; results in item order; `on_done` as each finishes.

    All or nothing in flight: if one item raises (or this call is cancelled), every other item still
    running or waiting is cancelled and awaited before the error propagates, so nothing keeps working
    behind the caller's back (e.g. after an apply has let go of its lease).
    """
    gate = asyncio.Semaphore(limit)

    async def one(item: T) -> R:
        async with gate:
            result = await work(item)
        if on_done:
            on_done(result)
        return result

    tasks = [asyncio.ensure_future(one(item)) for item in items]
    if not tasks:
        return []
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        unfinished = [task for task in tasks if not task.done()]
        for task in unfinished:
            task.cancel()
        await asyncio.gather(*unfinished, return_exceptions=True)
    failed = next((task for task in tasks if not task.cancelled() and task.exception() is not None), None)
    if failed is not None:
        raise failed.exception()  # type: ignore[misc]
    return [task.result() for task in tasks]
