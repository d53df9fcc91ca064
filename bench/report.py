"""Building the weekly report for 100,000 guests and 26 weeks of history: time and peak RSS.

The store (SQLite, in a temporary folder) holds what a large tenant's week leaves behind: 100,000 tracked
guests (redemption tracking), 25 weekly snapshots, a kept sweep plan and 2,000 disables audited this week.
The guest count is the report's one Graph request; here Graph is left out (`graph=None`) so the number is
the report's own cost. Baseline: reading the same redemptions records alone, in the same run.

    .venv/bin/python bench/report.py [--guests 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.config import Policy
from shared.redemptions.effects import GUESTS, REDEMPTIONS_TABLE
from shared.reports.fetch import keep_snapshot
from shared.reports.records import Snapshot
from shared.reports.service import make_report, render
from shared.reports.weeks import parse_week
from shared.store import AuditEntry, open_store

WEEK = parse_week("2026-W48")


async def seed(store, guests: int) -> None:
    invited = WEEK.start - timedelta(days=200)
    for n in range(guests):
        redeemed = invited + timedelta(hours=n % 500) if n % 3 else None
        data = {
            "user_id": f"u{n:06d}",
            "email": f"g{n}@d{n % 400}.example",
            "display_name": f"Guest {n}",
            "state": "redeemed" if redeemed else "pending",
            "source": "batch",
            "invited_at": invited.isoformat(),
            "redeemed_at": redeemed.isoformat() if redeemed else None,
        }
        await store.upsert(REDEMPTIONS_TABLE, GUESTS, data["user_id"], data)
    for back in range(25, 0, -1):
        week = WEEK.shifted(-back)
        await keep_snapshot(store, Snapshot(week=str(week), taken_at=week.end, guests=guests, disabled=back))
    at = WEEK.start + timedelta(days=1)
    for n in range(2_000):
        await store.append_audit(
            AuditEntry(
                action="guest.disable",
                target_id=f"u{n:06d}",
                actor="bench",
                reason="stale",
                run_id="sweep-x",
                at=at + timedelta(seconds=n),
            )
        )


async def main(guests: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        async with open_store(str(Path(folder) / "state.db")) as store:
            await seed(store, guests)
            started = time.perf_counter()
            count = sum([1 async for _ in store.query(REDEMPTIONS_TABLE, GUESTS)])
            baseline = time.perf_counter() - started
            started = time.perf_counter()
            report = await make_report(store, None, Policy(), WEEK, WEEK.end + timedelta(hours=7))
            files = render(report)
            took = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"guests tracked: {count:,}; report rows: {len(report.guests):,}; weeks in trend: {len(report.trend)}")
    print(
        f"report: {took:.2f} s (html {len(files['report.html']) // 1024} KiB, "
        f"csv {len(files['report.csv']) // 1024} KiB)"
    )
    print(f"baseline (reading the redemption records alone): {baseline:.2f} s → report/baseline {took / baseline:.1f}×")
    print(f"peak RSS (whole process, seeding included): {peak:.0f} MiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--guests", type=int, default=100_000)
    asyncio.run(main(parser.parse_args().guests))
