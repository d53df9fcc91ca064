"""Redemption tracking's two costs, measured in one run.

1. The webhook's acknowledgement latency, in-process: the real `graph_notifications` function (through real
   azure.functions objects) answers `--bodies` deliveries of 1–100 notifications each; p50 and p99 of the
   time to its 202 (goal: p99 ≤ 50 ms) and the Graph requests it made (goal: 0, read from the emulator's
   request log).
2. Graph requests per day to track `--guests` guests of which 1% change per day: an hourly delta round
   against re-listing every guest hourly, both counted in the emulator's request log (goal: ≥ 100×).
   One hour's share of the day's changes is made, then one delta round and one full listing are counted;
   a day is 24 of each. The first, full delta round (once, ever) is printed apart.

Run: python bench/notifications.py [--bodies 1000] [--guests 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import azure.functions as func  # noqa: E402
import httpx  # noqa: E402

from emulator.testing import EmulatorProcess  # noqa: E402
from shared.graph import Budget, Graph, GraphOptions  # noqa: E402
from shared.redemptions.records import DELTA_SELECT  # noqa: E402
from shared.redemptions.service import sync_with  # noqa: E402
from shared.store import open_store  # noqa: E402

SECRET = "bench-client-state-secret"


class Captured(func.Out[Any]):
    def __init__(self) -> None:
        self.value: Any = None

    def set(self, val: Any) -> None:
        self.value = val

    def get(self) -> Any:
        return self.value


def delivery(size: int, rng: random.Random) -> bytes:
    items = []
    for _ in range(size):
        user = f"{rng.getrandbits(128):032x}"
        user = f"{user[:8]}-{user[8:12]}-4{user[13:16]}-8{user[17:20]}-{user[20:32]}"
        items.append(
            {
                "id": f"{rng.getrandbits(64):x}",
                "subscriptionId": "7f105c7d-2dc5-4530-97cd-4e7ae6534c07",
                "subscriptionExpirationDateTime": "2026-12-20T11:00:00.0000000Z",
                "clientState": SECRET if rng.random() > 0.01 else "forged",
                "changeType": "updated",
                "resource": f"Users/{user}",
                "tenantId": "84bd8158-6d4d-4958-8b9f-9d6445542f95",
                "resourceData": {"@odata.type": "#Microsoft.Graph.User", "@odata.id": f"Users/{user}", "id": user},
            }
        )
    return json.dumps({"value": items}).encode()


def webhook_latency(bodies: int, control: httpx.Client) -> None:
    import function_app

    logging.getLogger("guestctl").setLevel(logging.ERROR)  # the dropped forgeries' warnings, 1% of bodies

    handler = next(f for f in function_app.app.get_functions() if f.get_function_name() == "graph_notifications")
    receive = handler.get_user_function()
    rng = random.Random(7)
    payloads = [delivery(rng.randint(1, 100), rng) for _ in range(bodies)]
    before = len(control.get("/_emulator/requests").json())
    times, queued = [], 0
    for body in payloads:
        request = func.HttpRequest(method="POST", url="/api/graph/notifications", body=body, params={})
        out = Captured()
        started = time.perf_counter()
        response = receive(request, out)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 202
        queued += len(out.value or [])
    graph_calls = len(control.get("/_emulator/requests").json()) - before
    quantiles = statistics.quantiles(times, n=100, method="inclusive")
    print(f"1. webhook acknowledgement, {bodies} deliveries of 1-100 notifications, in-process:")
    print(f"   p50 {quantiles[49]:.2f} ms  p99 {quantiles[98]:.2f} ms  max {max(times):.2f} ms  (goal p99 <= 50 ms)")
    print(f"   {queued} queue messages written; Graph requests made: {graph_calls} (goal 0)")


async def requests_per_day(em: EmulatorProcess, guests: int) -> None:
    budget = Budget(resource_units=10**9, writes=10**9, reports=10**9, sign_in_activity=10**9)
    graph = Graph(GraphOptions(base_url=em.base_url, auth="emulator", budget=budget, max_concurrency=16))
    control = httpx.AsyncClient(base_url=em.root_url, timeout=600)

    async def logged() -> int:
        return len((await control.get("/_emulator/requests")).json())

    with tempfile.TemporaryDirectory() as folder:
        async with open_store(str(Path(folder) / "state.db")) as store:
            await control.delete("/_emulator/requests")
            started = time.perf_counter()
            first = await sync_with(graph, store)
            initial = await logged()
            print(f"2. tracking {guests:,} guests, 1% changing per day:")
            print(
                f"   first (full) delta round, once: {initial} requests, {first.users_seen:,} users, "
                f"{time.perf_counter() - started:.1f} s"
            )
            hourly_changes = math.ceil(guests * 0.01 / 24)
            found = await graph.get_json(
                "/users", params={"$filter": "userType eq 'Guest'", "$select": "id", "$top": hourly_changes}
            )
            ids = [u["id"] for u in found["value"]]
            for i, user_id in enumerate(ids):
                await graph.request("PATCH", f"/users/{user_id}", json_body={"displayName": f"Changed {i}"})
            await control.delete("/_emulator/requests")
            hour = await sync_with(graph, store)
            delta_hour = await logged()
            await control.delete("/_emulator/requests")
            listed = 0
            params = {"$filter": "userType eq 'Guest'", "$select": DELTA_SELECT, "$top": 999}
            async for page in graph.pages("/users", params=params):
                listed += len(page.items)
            list_hour = await logged()
    await graph.close()
    await control.aclose()
    recorded = hour.counts.get("changed", 0)
    print(f"   one hour: {recorded} of {hourly_changes} changes recorded by {delta_hour} delta request(s);")
    print(f"   re-listing all {listed:,} guests took {list_hour} requests")
    print(f"   per day: delta {24 * delta_hour} requests, re-listing hourly {24 * list_hour} requests")
    print(f"   ratio {list_hour / max(delta_hour, 1):.0f}x (goal >= 100x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bodies", type=int, default=1000)
    parser.add_argument("--guests", type=int, default=100_000)
    args = parser.parse_args()
    arguments = ("--seed", "1", "--guests", str(args.guests), "--members", "2000", "--no-limits")
    with EmulatorProcess(*arguments) as em, httpx.Client(base_url=em.root_url, timeout=600) as control:
        os.environ.update(
            {"GUESTCTL_NOTIFICATION_SECRET": SECRET, "GUESTCTL_GRAPH_URL": em.base_url, "GUESTCTL_AUTH": "emulator"}
        )
        webhook_latency(args.bodies, control)
        asyncio.run(requests_per_day(em, args.guests))


if __name__ == "__main__":
    main()
