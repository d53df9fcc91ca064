"""The pacer's signInActivity budget keeps a full guest scan under Graph's 10-pages-per-minute row (as the
emulator enforces it, time-scaled), where an unpaced client is throttled."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from emulator.seed import seed_tenant
from emulator.testing import EmulatorServer
from shared.graph import Budget, Graph, GraphOptions, RetryPolicy
from shared.stale.fetch import scan_guests
from shared.store import open_store

SCALE = 0.1  # one emulated minute lasts 6 s: 14 pages need two of them


@pytest.mark.parametrize(("paced", "throttled"), [(True, False), (False, True)], ids=["paced", "unpaced"])
async def test_scan_with_sign_in_activity_budget(
    emulator: EmulatorServer, tmp_path: Path, paced: bool, throttled: bool
) -> None:
    emulator.reset(seed_tenant(5, guests=7_000, members=10, now=datetime.now(UTC)))  # 14 pages of 500
    emulator.control.set_limits(enabled=True, time_scale=SCALE)
    budget = Budget.for_tenant("L", 1.0, SCALE) if paced else Budget(sign_in_activity=10**9)
    graph = Graph(
        GraphOptions(base_url=emulator.base_url, auth="emulator", budget=budget, retry=RetryPolicy(budget_seconds=60))
    )
    async with open_store(str(tmp_path / "s.db")) as store:
        seen = [g.id async for page in scan_guests(graph, store, scan_id="p") for g in page]
    await graph.close()
    assert len(seen) == 7_000
    assert (graph.pacer.throttled > 0) is throttled
