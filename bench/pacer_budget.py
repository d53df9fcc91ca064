"""How much of Graph's write budget the pacer uses: 500 writes started at once against a write limiter.

The limiter (tests/support/write_counter.py, its own process) answers 429 when more than `--writes`
writes arrived within any `--window` seconds, as Graph's write limit does. Two clients write to a fresh
limiter each, in the same run:

- guestctl: `Graph.request` with a `Budget` of `--writes` per `--window`, every write started at once and
  left to the pacer.
- baseline: a client that knows the limit beforehand: write i leaves `--window` seconds after write
  i - `--writes` was answered, the schedule no client can beat by more than the network's share.

Prints, for each, the seconds from the first write to the first write of the last round, the 429s,
and the ratio guestctl ÷ baseline (1.00 = as good as knowing the limit beforehand). No assertions; the
behaviour (no 429s, every write answered once, never more than the budget in a window) is tested in
tests/integration/test_pacer_budget.py.

    .venv/bin/python bench/pacer_budget.py [--writes 100] [--window 2.0] [--total 500] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.graph import Budget, Graph, GraphOptions, RetryPolicy  # noqa: E402
from tests.support.write_counter import write_limiter  # noqa: E402

Client = Callable[[str, argparse.Namespace], Awaitable[int]]


async def paced(url: str, args: argparse.Namespace) -> int:
    """guestctl's Graph client: every write at once, the pacer decides when each goes."""
    budget = Budget(resource_units=1_000_000, writes=args.writes, write_window=args.window)
    graph = Graph(
        GraphOptions(base_url=f"{url}/v1.0", auth="emulator", budget=budget, retry=RetryPolicy(budget_seconds=600))
    )

    async def write(i: int) -> None:
        await graph.request("PATCH", f"/users/u{i}", json_body={"accountEnabled": False}, idempotent=True)

    try:
        await asyncio.gather(*(write(i) for i in range(args.total)))
    finally:
        await graph.close()
    return graph.pacer.throttled


async def scheduled(url: str, args: argparse.Namespace) -> int:
    """The baseline: write i leaves one window after write i - budget was answered (plain httpx, 8 at a
    time), so no window ever holds more than the budget and none is left unused."""
    gate = asyncio.Semaphore(8)
    throttled = 0
    loop = asyncio.get_running_loop()
    answered = [loop.create_future() for _ in range(args.total)]
    async with httpx.AsyncClient(base_url=f"{url}/v1.0", headers={"Authorization": "Bearer bench"}) as client:

        async def write(i: int) -> None:
            nonlocal throttled
            if i >= args.writes:
                earlier = await answered[i - args.writes]
                await asyncio.sleep(max(0.0, earlier + args.window - loop.time()))
            async with gate:
                response = await client.patch(f"/users/u{i}", json={"accountEnabled": False})
            answered[i].set_result(loop.time())
            throttled += response.status_code == 429

        await asyncio.gather(*(write(i) for i in range(args.total)))
    return throttled


def measure(client: Client, args: argparse.Namespace) -> tuple[float, int]:
    """Seconds from the first write's arrival to the first write of the last round's, and the 429s."""
    with write_limiter(args.writes, args.window) as url:
        throttled = asyncio.run(client(url, args))
        arrivals = sorted(httpx.get(f"{url}/arrivals").json()["arrivals"])
    if len(arrivals) != args.total:
        raise RuntimeError(f"{len(arrivals)} of {args.total} writes arrived")
    last_round = (args.total - 1) // args.writes * args.writes
    return arrivals[last_round] - arrivals[0], throttled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writes", type=int, default=100)
    parser.add_argument("--window", type=float, default=2.0)
    parser.add_argument("--total", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    fastest = (args.total - 1) // args.writes * args.window
    print(
        f"{args.total} writes, budget {args.writes} per {args.window:g} s: "
        f"no client's last round starts before {fastest:g} s"
    )
    for number in range(1, args.rounds + 1):
        guestctl, guestctl_429 = measure(paced, args)
        baseline, baseline_429 = measure(scheduled, args)
        print(
            f"  run {number}: guestctl {guestctl:.2f} s ({guestctl_429} × 429), "
            f"baseline {baseline:.2f} s ({baseline_429} × 429), ratio {guestctl / baseline:.2f}"
        )


if __name__ == "__main__":
    main()
