"""Keeps bulk work just under Graph's limits instead of hammering into 429s (docs/architecture.md#graph-access).

Graph's identity limits are budgets per app+tenant over a window: 3,500/5,000/8,000 resource units per
10 s by tenant size, 3,000 writes per 150 s, and 5 sign-in-report requests per 10 s (docs/graph-contract.md#throttling).

Each budget is a `SlidingWindow`: a request holds its units from the moment it is granted until one window
after its response arrived. Graph sees a request somewhere between those two moments, so no window of
Graph's can ever hold more than the budget, whatever the latency — a plain token bucket (which allows a
full burst plus refill inside one window) cannot promise that. With 150-300 ms latency and a 150 s window
the cost of this guarantee is well under 1% of throughput.

On top, AIMD concurrency: halve the number of requests in flight on a 429 and pause everyone for its
`Retry-After` (the limit is shared by the whole app), then grow by one per round of successes.

Across processes (Functions instances, parallel CLI runs) the same budgets are shared through the store:
with a `SharedBudget`, a request also needs units this process claimed from it (shared_budget.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Literal, Protocol

from shared.graph.costs import Cost

log = logging.getLogger("guestctl.graph.pacer")

TenantSize = Literal["S", "M", "L"]
RESOURCE_UNITS_PER_10S: dict[str, int] = {"S": 3_500, "M": 5_000, "L": 8_000}


@dataclass(frozen=True, slots=True)
class Budget:
    """Graph's documented per app+tenant limits, times `fraction` to leave room for other apps."""

    resource_units: int = RESOURCE_UNITS_PER_10S["L"]
    resource_unit_window: float = 10.0
    writes: int = 3_000
    write_window: float = 150.0
    reports: int = 5
    report_window: float = 10.0
    # pages of /users with signInActivity (docs/graph-contract.md#throttling; unconfirmed, so budgeted)
    sign_in_activity: int = 10
    sign_in_activity_window: float = 60.0

    @classmethod
    def for_tenant(
        cls,
        size: TenantSize = "L",
        fraction: float = 1.0,
        time_scale: float = 1.0,
        sign_in_activity_per_minute: int = 10,
    ) -> Budget:
        """`time_scale` < 1 shrinks the windows (for an emulator running with the same time scale)."""
        return cls(
            resource_units=max(1, int(RESOURCE_UNITS_PER_10S[size] * fraction)),
            resource_unit_window=10.0 * time_scale,
            writes=max(1, int(3_000 * fraction)),
            write_window=150.0 * time_scale,
            reports=max(1, int(5 * fraction)),
            report_window=10.0 * time_scale,
            sign_in_activity=max(1, sign_in_activity_per_minute),
            sign_in_activity_window=60.0 * time_scale,
        )


class SlidingWindow:
    """At most `capacity` units in use in any `window` seconds, counting in-flight units (see module doc)."""

    def __init__(self, capacity: int, window: float, clock: Callable[[], float]) -> None:
        self.capacity = capacity
        self.window = window
        self._clock = clock
        self._in_flight = 0
        self._finished: deque[tuple[float, int]] = deque()  # (response time, units), oldest first
        self._finished_units = 0

    def _expire(self, now: float) -> None:
        while self._finished and self._finished[0][0] <= now - self.window:
            self._finished_units -= self._finished.popleft()[1]

    def wait_time(self, units: int) -> float | None:
        """0 if `units` fit now; seconds until the oldest finished units expire; None if only a response
        (of an in-flight request) can free room."""
        if units == 0:
            return 0.0
        now = self._clock()
        self._expire(now)
        used = self._in_flight + self._finished_units
        if used + units <= self.capacity or used == 0:  # an oversized request still runs alone
            return 0.0
        if self._finished:
            return max(self._finished[0][0] + self.window - now, 0.0)
        return None

    def take(self, units: int) -> None:
        self._in_flight += units

    def give_back(self, units: int) -> None:
        if units:
            self._in_flight -= units
            self._finished.append((self._clock(), units))
            self._finished_units += units


class Allowance(Protocol):
    """Units granted from outside this process (the store-backed `SharedBudget`), per dimension."""

    def try_spend(self, units: tuple[int, ...]) -> bool:
        """Spend them if all fit now; else change nothing."""
        ...

    async def refill(self, units: tuple[int, ...]) -> None:
        """Obtain what is missing, waiting while the shared budget is spent."""
        ...

    async def close(self) -> None: ...


class Pacer:
    """Admission control for every Graph request of this process."""

    def __init__(
        self,
        budget: Budget | None = None,
        *,
        max_concurrency: int = 16,
        min_concurrency: int = 1,
        clock: Callable[[], float] = time.monotonic,
        shared: Allowance | None = None,
    ) -> None:
        self.budget = budget or Budget()
        self.shared = shared
        self._clock = clock
        self._windows = (
            SlidingWindow(self.budget.resource_units, self.budget.resource_unit_window, clock),
            SlidingWindow(self.budget.writes, self.budget.write_window, clock),
            SlidingWindow(self.budget.reports, self.budget.report_window, clock),
            SlidingWindow(self.budget.sign_in_activity, self.budget.sign_in_activity_window, clock),
        )
        self.max_concurrency = max_concurrency
        self.min_concurrency = min_concurrency
        self.concurrency = float(max_concurrency)
        self._in_flight = 0
        self._paused_until = 0.0
        self._queue = asyncio.Lock()
        self._changed = asyncio.Condition()
        self.throttled = 0  # 429s seen, for reports and benchmarks

    @staticmethod
    def _units(cost: Cost) -> tuple[int, int, int, int]:
        return cost.resource_units, cost.writes, cost.reports, cost.sign_in_activity

    def _wait_time(self, cost: Cost) -> float | None:
        if self._in_flight >= int(self.concurrency):
            return None
        pause = self._paused_until - self._clock()
        waits = [w.wait_time(u) for w, u in zip(self._windows, self._units(cost), strict=True)]
        if any(w is None for w in waits):
            return None
        return max(pause, *waits)  # type: ignore[type-var]

    @asynccontextmanager
    async def slot(self, cost: Cost) -> AsyncIterator[None]:
        """Wait until `cost` fits every budget and the concurrency limit, then hold it for one request."""
        # First come, first served: only the request at the head of the queue watches the budgets, so a
        # release wakes one waiter instead of every queued request.
        units = self._units(cost)
        async with self._queue:
            while True:
                async with self._changed:
                    while (wait := self._wait_time(cost)) is None or wait > 0:
                        with suppress(TimeoutError):  # woken by a response, or the oldest units expired
                            await asyncio.wait_for(self._changed.wait(), timeout=wait)
                    if self.shared is None or self.shared.try_spend(units):
                        self._in_flight += 1
                        for window, amount in zip(self._windows, units, strict=True):
                            window.take(amount)
                        break
                # Outside the condition, so that responses are not held up by the store's round trip.
                await self.shared.refill(units)
        try:
            yield
        finally:
            async with self._changed:
                self._in_flight -= 1
                for window, amount in zip(self._windows, units, strict=True):
                    window.give_back(amount)
                self._changed.notify_all()

    def on_success(self) -> None:
        """Additive increase: one more request in flight per round of successes."""
        self.concurrency = min(self.max_concurrency, self.concurrency + 1.0 / max(self.concurrency, 1.0))

    def on_throttled(self, retry_after: float | None, responses: int = 1) -> None:
        """Multiplicative decrease, and everybody waits out Graph's Retry-After (the limit is app-wide).
        `responses`: how many 429s this is about (a `$batch` round can carry several)."""
        self.throttled += responses
        # the alert graph-throttling-sustained (docs/operations.md) counts these lines
        log.info("Graph throttled: %d response(s) 429, Retry-After %s s", responses, retry_after)
        self.concurrency = max(float(self.min_concurrency), self.concurrency / 2)
        if retry_after:
            self._paused_until = max(self._paused_until, self._clock() + retry_after)

    async def close(self) -> None:
        """Hand unused shared units back and let go of the store (nothing to do without a shared budget)."""
        if self.shared is not None:
            await self.shared.close()
