"""Emulator throughput: page a 100,000-guest tenant with plain httpx and print users/s and peak RSS.

The emulator runs in its own process (`python -m emulator`), as `guestctl emulator` would, so the
client and the server do not share a GIL. Prints each listing's users/s, its ratio to the 20,000 users/s
target, a client-only baseline (decoding the same pages without the network), and the server's peak RSS.

    .venv/bin/python bench/emulator_throughput.py [--guests 100000] [--members 2000]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from emulator.testing import EmulatorProcess

TARGET_USERS_PER_SECOND = 20_000
RSS_LIMIT_MB = 400
HEADERS = {"Authorization": "Bearer bench"}
LISTINGS = {
    "guests, default properties, $top=999": {"$filter": "userType eq 'Guest'", "$top": "999"},
    "guests, engine $select + signInActivity, $top=500": {
        "$filter": "userType eq 'Guest'",
        "$select": "id,displayName,mail,userPrincipalName,userType,creationType,externalUserState,"
        "externalUserStateChangeDateTime,createdDateTime,accountEnabled,companyName,otherMails,signInActivity",
        "$top": "500",
    },
}


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def current_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def page_through(client: httpx.Client, base: str, params: dict[str, str]) -> tuple[int, float, list[bytes]]:
    """Follow nextLinks to the end; returns (users, seconds, raw pages kept for the baseline)."""
    started = time.perf_counter()
    users = 0
    pages: list[bytes] = []
    response = client.get(f"{base}/users", params=params)
    while True:
        response.raise_for_status()
        raw = response.content
        body = json.loads(raw)
        users += len(body["value"])
        if len(pages) < 20:
            pages.append(raw)
        link = body.get("@odata.nextLink")
        if not link:
            break
        response = client.get(link)
    return users, time.perf_counter() - started, pages


def decode_baseline(pages: list[bytes]) -> float:
    """Users/s the client alone manages (json.loads of the same pages, no network, no server)."""
    started = time.perf_counter()
    users = 0
    for _ in range(3):
        for raw in pages:
            users += len(json.loads(raw)["value"])
    return users / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--guests", type=int, default=100_000)
    parser.add_argument("--members", type=int, default=2_000)
    args = parser.parse_args()
    started = time.perf_counter()
    tenant = ("--seed", "42", "--guests", str(args.guests), "--members", str(args.members), "--no-limits")
    with EmulatorProcess(*tenant) as server:
        base = server.base_url
        seeded = time.perf_counter() - started
        idle_rss = current_rss_mb(server.pid)
        print(
            f"tenant: {args.guests:,} guests + {args.members:,} members, ready in {seeded:.1f} s, "
            f"server RSS {idle_rss:.0f} MB"
        )
        with httpx.Client(headers=HEADERS, timeout=60.0) as client:
            for name, params in LISTINGS.items():
                page_through(client, base, {**params, "$top": "10"})  # warm the connection and caches
                users, seconds, pages = page_through(client, base, params)
                rate = users / seconds
                baseline = decode_baseline(pages)
                print(
                    f"{name}: {users:,} users in {seconds:.2f} s = {rate:,.0f} users/s "
                    f"({rate / TARGET_USERS_PER_SECOND:.2f}x the {TARGET_USERS_PER_SECOND:,} users/s target; "
                    f"client-only json decode baseline {baseline:,.0f} users/s, ratio {rate / baseline:.2f})"
                )
        peak = peak_rss_mb(server.pid)
        print(
            f"server peak RSS: {peak:.0f} MB ({peak / RSS_LIMIT_MB:.2f}x the {RSS_LIMIT_MB} MB budget); "
            f"client peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
        )


if __name__ == "__main__":
    main()
