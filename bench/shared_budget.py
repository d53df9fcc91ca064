"""What sharing Graph's budget through the store costs per request, against the local pacer in the same run.

The emulator runs in its own process with limits off (the budget never binds, so only the bookkeeping is
measured) and Graph's real-scale budgets. Each round PATCHes `--requests` users with 16 in flight: once
with the local pacer alone, once sharing through an SQLite file, once through Azurite (started from
node_modules when present); rounds alternate and the medians are compared.
Also prints ledger writes per request, the store traffic the shared budget adds.
Run: python bench/shared_budget.py [--requests 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from emulator.testing import EmulatorProcess  # noqa: E402
from shared.graph import Budget, Graph, GraphOptions  # noqa: E402


async def run_round(
    base_url: str, users: list[str], requests: int, state: str | None, prefix: str
) -> tuple[float, int]:
    """Seconds for `requests` PATCHes, and the ledger writes they needed."""
    options = GraphOptions(
        base_url=base_url,
        auth="emulator",
        budget=Budget.for_tenant("L", 0.9),
        max_concurrency=16,
        shared_state=state,
        state_prefix=prefix,
    )
    graph = Graph(options)
    await graph.request("GET", f"/users/{users[0]}")  # build the adapter and open a connection before timing

    async def write(i: int) -> None:
        await graph.request("PATCH", f"/users/{users[i % len(users)]}", json_body={"jobTitle": f"b{i}"})

    started = time.perf_counter()
    await asyncio.gather(*(write(i) for i in range(requests)))
    elapsed = time.perf_counter() - started
    shared = graph.pacer.shared
    await graph.close()
    return elapsed, getattr(shared, "claims_written", 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-azurite", action="store_true", help="measure SQLite only")
    args = parser.parse_args()
    with ExitStack() as stack:
        em = stack.enter_context(EmulatorProcess("--seed", "demo", "--no-limits"))
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        stores: dict[str, str | None] = {"local pacer": None, "shared, SQLite": str(folder / "state.db")}
        if not args.no_azurite:
            from tests.support.azurite import AzuriteNotInstalledError, run_azurite

            try:
                stores["shared, Azurite"] = stack.enter_context(run_azurite())
            except AzuriteNotInstalledError as error:
                print(f"(skipping Azurite: {error})")
        users = [
            user["id"]
            for user in httpx.get(
                f"{em.base_url}/users?$select=id&$top=100", headers={"Authorization": "Bearer bench"}
            ).json()["value"]
        ]
        times: dict[str, list[float]] = {name: [] for name in stores}
        ledger_writes: dict[str, list[int]] = {name: [] for name in stores}
        for _ in range(args.rounds):
            for name, state in stores.items():
                prefix = "b" + uuid.uuid4().hex[:12]  # a fresh ledger each round
                elapsed, writes = asyncio.run(run_round(em.base_url, users, args.requests, state, prefix))
                times[name].append(elapsed)
                ledger_writes[name].append(writes)
    base = statistics.median(times["local pacer"]) / args.requests
    print(f"{args.requests} PATCH requests, 16 in flight, {args.rounds} rounds, medians; emulator limits off")
    for name in stores:
        per_request = statistics.median(times[name]) / args.requests
        line = f"  {name:16} {per_request * 1e6:8.0f} µs/request"
        if name != "local pacer":
            line += (
                f"   overhead {(per_request - base) * 1e6:+6.0f} µs/request ({per_request / base:.2f}× the local pacer)"
                f", {statistics.median(ledger_writes[name]) / args.requests:.4f} ledger writes/request"
            )
        print(line)


if __name__ == "__main__":
    main()
