"""Stale-guest sweep plan at 100,000 guests: time, peak RSS, and ratios to baselines measured in the same run.

The emulator runs in its own process (`python -m emulator --no-limits`), with 100,000 guests and 20,000
members. Each measurement runs in a fresh child process of this script, so each peak RSS belongs to that
measurement alone:

- guestctl: `plan_sweep` with the default policy, exactly what `guestctl sweep` runs: exemptions (role
  holders), the guest scan ($top=500 with signInActivity, checkpoint per page) decoded into records, the
  planner, and each page's share of the plan kept in an SQLite store in a temp dir so the sweep could
  resume. The result is the whole plan (a first sweep flags every inactive guest).
- httpx + json: a plain `httpx.AsyncClient` following the same nextLinks, `json.loads` only — the
  baseline of issue 5 (goal ≤ 1.3×).
- msgraph-sdk: `GraphServiceClient.users.get(...)` with the SDK's own models and nextLink paging
  (`with_url`), over the first 2,000 guests, extrapolated to the whole tenant.

guestctl and httpx run `--rounds` times each, alternating, and the fastest run of each counts (the
machine is noisy; every run is printed). Goals (issue 5): guestctl ≤ 1.3× the httpx loop, peak RSS
< 200 MB. No assertions.

    .venv/bin/python bench/sweep_scan.py [--guests 100000] [--members 20000] [--sdk-guests 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emulator.testing import EmulatorProcess  # noqa: E402

RSS_GOAL_MB = 200
RATIO_GOAL = 1.3
TOKEN = "bench"


# -- measurements (each runs in its own child process) -------------------------------------------------
class RssSampler:
    """Samples VmRSS every 20 ms: shows how memory behaves during the scan, beside ru_maxrss."""

    def __init__(self) -> None:
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, current_rss_mb())
            self._stop.wait(0.02)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def current_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


async def measure_guestctl(base_url: str) -> dict[str, Any]:
    from datetime import UTC, datetime

    from shared.config import Policy
    from shared.graph import Budget, Graph, GraphOptions
    from shared.stale import plan_sweep
    from shared.stale.fetch import read_checkpoint, scan_guests
    from shared.store import open_store

    with tempfile.TemporaryDirectory() as folder:
        # The emulator runs with limits off, so the pacer is unbounded too (Graph's own budget is tested elsewhere).
        unlimited = Budget(resource_units=10**9, writes=10**9, reports=10**9, sign_in_activity=10**9)
        graph = Graph(GraphOptions(base_url=base_url, auth="emulator", emulator_token=TOKEN, budget=unlimited))
        async with open_store(str(Path(folder) / "state.db")) as store:
            # Warm-up outside the timing: build the adapter, open the connection and the store.
            async for _ in scan_guests(graph, store, scan_id="warm-up", page_size=10):
                break
            before = current_rss_mb()
            with RssSampler() as sampler:
                started = time.perf_counter()
                plan = await plan_sweep(graph, store, Policy(), now=datetime.now(UTC), scan_id="bench", tenant_id=None)
                seconds = time.perf_counter() - started
            assert plan is not None
            checkpoint = await read_checkpoint(store, "bench")
        await graph.close()
    return {
        "seconds": seconds,
        "guests": plan.guests,
        "categories": {k: v for k, v in plan.counts.items() if v},
        "actions": len(plan.actions),
        "pages": checkpoint.pages if checkpoint else None,
        "finished": checkpoint.finished if checkpoint else None,
        "rss_before_mb": before,
        "sampled_peak_mb": sampler.peak_mb,
        "max_rss_mb": max_rss_mb(),
    }


async def measure_httpx(base_url: str) -> dict[str, Any]:
    import httpx

    from shared.stale.records import GUEST_SELECT

    params = {"$filter": "userType eq 'Guest'", "$select": GUEST_SELECT, "$top": "500"}
    guests = 0
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60.0) as client:
        (await client.get(f"{base_url}/users", params={**params, "$top": "10"})).raise_for_status()  # warm-up
        before = current_rss_mb()
        with RssSampler() as sampler:
            started = time.perf_counter()
            response = await client.get(f"{base_url}/users", params=params)
            while True:
                response.raise_for_status()
                body = json.loads(response.content)
                guests += len(body["value"])
                link = body.get("@odata.nextLink")
                if not link:
                    break
                response = await client.get(link)
            seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "guests": guests,
        "rss_before_mb": before,
        "sampled_peak_mb": sampler.peak_mb,
        "max_rss_mb": max_rss_mb(),
    }


async def measure_sdk(base_url: str, limit: int) -> dict[str, Any]:
    """What a script would do: msgraph-sdk's own client, models and nextLink paging."""
    from azure.core.credentials import AccessToken
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from kiota_authentication_azure.azure_identity_authentication_provider import (
        AzureIdentityAuthenticationProvider,
    )
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph.generated.users.users_request_builder import UsersRequestBuilder

    from shared.stale.records import GUEST_SELECT

    class Token:
        async def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
            return AccessToken(TOKEN, 4102444800)

    adapter = GraphRequestAdapter(AzureIdentityAuthenticationProvider(Token(), allowed_hosts=["127.0.0.1"]))
    adapter.base_url = base_url
    client = GraphServiceClient(request_adapter=adapter)
    config = RequestConfiguration(
        query_parameters=UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            filter="userType eq 'Guest'", select=GUEST_SELECT.split(","), top=500
        )
    )
    await client.users.get(
        RequestConfiguration(query_parameters=UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(top=1))
    )  # warm-up
    guests = 0
    with_sign_in = 0
    started = time.perf_counter()
    page = await client.users.get(config)
    while page is not None:
        for user in page.value or []:
            guests += 1
            with_sign_in += user.sign_in_activity is not None
        if guests >= limit or not page.odata_next_link:
            break
        page = await client.users.with_url(page.odata_next_link).get()
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "guests": guests, "with_sign_in": with_sign_in, "max_rss_mb": max_rss_mb()}


def child(args: argparse.Namespace) -> None:
    if args.child == "guestctl":
        result = asyncio.run(measure_guestctl(args.base_url))
    elif args.child == "httpx":
        result = asyncio.run(measure_httpx(args.base_url))
    else:
        result = asyncio.run(measure_sdk(args.base_url, args.sdk_guests))
    print(json.dumps(result))


def run_child(kind: str, base_url: str, sdk_guests: int) -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--base-url", base_url, "--sdk-guests", str(sdk_guests)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if output.returncode != 0:
        raise SystemExit(f"{kind} measurement failed:\n{output.stderr[-4000:]}")
    return json.loads(output.stdout.strip().splitlines()[-1])


# -- orchestration -----------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--guests", type=int, default=100_000)
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--sdk-guests", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", choices=["guestctl", "httpx", "sdk"], help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    started = time.perf_counter()
    with EmulatorProcess(
        "--seed", "1", "--guests", str(args.guests), "--members", str(args.members), "--no-limits"
    ) as emulator:
        base_url = emulator.base_url
        print(
            f"tenant: {args.guests:,} guests + {args.members:,} members, emulator ready in "
            f"{time.perf_counter() - started:.1f} s (separate process, limits off)"
        )
        runs: dict[str, list[dict[str, Any]]] = {"guestctl": [], "httpx": []}
        for _ in range(args.rounds):
            for kind in runs:
                runs[kind].append(run_child(kind, base_url, args.sdk_guests))
        sdk = run_child("sdk", base_url, args.sdk_guests)

    best = {kind: min(results, key=lambda r: r["seconds"]) for kind, results in runs.items()}
    all_runs = {kind: ", ".join(f"{r['seconds']:.2f} s" for r in results) for kind, results in runs.items()}
    ours, plain = best["guestctl"], best["httpx"]
    n = ours["guests"]
    print()
    print(
        f"guestctl plan_sweep (scan + plan + resumable progress): {n:,} guests in {ours['seconds']:.2f} s = "
        f"{n / ours['seconds']:,.0f} guests/s ({ours['pages']} pages of ≤ 500, checkpoint finished="
        f"{ours['finished']}, {ours['actions']:,} actions planned)"
    )
    print(f"  categories: {', '.join(f'{k} {v:,}' for k, v in sorted(ours['categories'].items()))}")
    print(
        f"  peak RSS of the planning process: {ours['max_rss_mb']:.0f} MB (ru_maxrss; goal < {RSS_GOAL_MB} MB, "
        f"{ours['max_rss_mb'] / RSS_GOAL_MB:.2f}x the goal); sampled during the sweep {ours['sampled_peak_mb']:.0f} "
        f"MB, {ours['rss_before_mb']:.0f} MB before it"
    )
    print(f"  all runs: {all_runs['guestctl']}")
    print()
    print(
        f"httpx + json loop (same pages, json.loads only): {plain['seconds']:.2f} s, "
        f"peak RSS {plain['max_rss_mb']:.0f} MB; runs {all_runs['httpx']}"
    )
    ratio = ours["seconds"] / plain["seconds"]
    print(f"  ratio guestctl / httpx+json: {ratio:.2f}x (goal ≤ {RATIO_GOAL}x), best of each")
    paired = [g["seconds"] / h["seconds"] for g, h in zip(runs["guestctl"], runs["httpx"], strict=True)]
    print(f"  ratio per round (guestctl run i / httpx run i): {', '.join(f'{r:.2f}x' for r in paired)}")
    print()
    per_guest = sdk["seconds"] / sdk["guests"]
    extrapolated = per_guest * n
    print(
        f"msgraph-sdk model loop: {sdk['guests']:,} guests in {sdk['seconds']:.2f} s "
        f"({sdk['guests'] / sdk['seconds']:,.0f} guests/s, peak RSS {sdk['max_rss_mb']:.0f} MB) "
        f"→ {extrapolated:,.0f} s for {n:,} (extrapolated)"
    )
    print(f"  ratio msgraph-sdk / guestctl: {extrapolated / ours['seconds']:.1f}x")


if __name__ == "__main__":
    main()
