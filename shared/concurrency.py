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
    """`work` on every item, at most `limit` at a time; results in item order; `on_done` as each finishes."""
    gate = asyncio.Semaphore(limit)

    async def one(item: T) -> R:
        async with gate:
            result = await work(item)
        if on_done:
            on_done(result)
        return result

    return list(await asyncio.gather(*(one(item) for item in items)))
