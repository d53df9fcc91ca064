"""One process of a fleet sharing Graph's write budget through a store: PATCHes users as fast as its pacer lets
it, and prints what it saw as one JSON line (wall-clock start times, 429s, ledger writes).

Started several times at once by tests/integration/test_shared_budget.py and bench/shared_budget.py, as
Functions instances would run side by side.
Run: python -m tests.support.budget_worker --graph URL --state LOCATION --prefix P --users id,id --writes 100
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import time
from typing import Any

from shared.graph import Budget, Graph, GraphOptions, RetryPolicy


def budget(writes: int, time_scale: float) -> Budget:
    """Graph's budgets under the emulator's time scale, with `writes` per (scaled) 150 s."""
    scaled = Budget.for_tenant("L", 1.0, time_scale)
    return Budget(
        resource_units=scaled.resource_units,
        resource_unit_window=scaled.resource_unit_window,
        writes=writes,
        write_window=scaled.write_window,
    )


async def run(arguments: argparse.Namespace) -> dict[str, Any]:
    options = GraphOptions(
        base_url=arguments.graph,
        auth="emulator",
        budget=budget(arguments.budget_writes, arguments.time_scale),
        retry=RetryPolicy(budget_seconds=120),
        max_concurrency=arguments.concurrency,
        shared_state=arguments.state or None,
        state_prefix=arguments.prefix,
        instances_assumed=arguments.instances_assumed,
    )
    graph = Graph(options)
    users = arguments.users.split(",")
    started_at: list[float] = []  # when the pacer let each request go (wall clock, all processes agree)

    async def mark_start() -> None:
        started_at.append(time.time())

    async def write(i: int) -> None:
        await graph.request(
            "PATCH",
            f"/users/{users[i % len(users)]}",
            json_body={"jobTitle": f"w{i}"},
            idempotent=True,
            before_send=mark_start,
        )

    started = time.perf_counter()
    await asyncio.gather(*(write(i) for i in range(arguments.writes)))
    elapsed = time.perf_counter() - started
    shared = graph.pacer.shared
    await graph.close()
    return {
        "started": started_at,
        "elapsed": elapsed,
        "throttled": graph.pacer.throttled,
        "claims_written": getattr(shared, "claims_written", 0),
        "conflicts": getattr(shared, "conflicts", 0),
        "degraded": getattr(shared, "degraded", False),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--graph", required=True, help="base URL, e.g. http://127.0.0.1:8765/v1.0")
    parser.add_argument("--state", default="", help="store location to share the budget through ('' = none)")
    parser.add_argument("--prefix", default="guestctl")
    parser.add_argument("--users", required=True, help="comma-separated user ids to PATCH")
    parser.add_argument("--writes", type=int, default=100)
    parser.add_argument("--budget-writes", type=int, default=3_000)
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--instances-assumed", type=int, default=40)
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(name)s %(levelname)s %(message)s")
    print(json.dumps(asyncio.run(run(arguments))), flush=True)


if __name__ == "__main__":
    main()
