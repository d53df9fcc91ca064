"""A sweep that runs out of time continues where it stopped and ends with the same plan as one run."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from emulator.seed import seed_tenant
from emulator.testing import EmulatorServer
from shared.config import Policy
from shared.graph import Graph
from shared.stale import plan_sweep
from shared.store import open_store

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
POLICY = Policy.model_validate({"safety": {"max_actions": 10_000, "max_percent": 100}})


async def test_budgeted_sweep_resumes_to_the_same_plan(emulator: EmulatorServer, graph: Graph, tmp_path: Path) -> None:
    emulator.reset(seed_tenant(21, guests=1_600, members=50, now=NOW))
    async with open_store(str(tmp_path / "state.db")) as store:
        pages: list[int] = []
        whole = await plan_sweep(graph, store, POLICY, now=NOW, scan_id="whole", tenant_id=None, on_page=pages.append)
        assert pages == [500, 500, 500, 100], "progress is reported page by page"
        invocations = 0
        plan = None
        while plan is None:
            invocations += 1
            later = NOW.replace(hour=13 + invocations % 10)  # a later invocation: the sweep keeps its first "now"
            plan = await plan_sweep(
                graph,
                store,
                POLICY,
                now=later if invocations > 1 else NOW,
                scan_id="budgeted",
                tenant_id=None,
                time_budget=0,
            )
    assert whole is not None
    assert invocations == 4, "1,600 guests in pages of 500: one page per invocation with no time to spare"
    assert plan.counts == whole.counts
    assert plan.guests == whole.guests == 1_600
    assert sorted((a.kind, a.target_id) for a in plan.actions) == sorted((a.kind, a.target_id) for a in whole.actions)
    assert plan.created_at == NOW


async def test_a_refused_cursor_between_invocations_does_not_count_pages_twice(
    emulator: EmulatorServer, graph: Graph, tmp_path: Path
) -> None:
    def tenant() -> object:
        return seed_tenant(22, guests=1_600, members=50, now=NOW)

    emulator.reset(tenant())
    async with open_store(str(tmp_path / "state.db")) as store:
        whole = await plan_sweep(graph, store, POLICY, now=NOW, scan_id="whole", tenant_id=None)
        first = await plan_sweep(graph, store, POLICY, now=NOW, scan_id="cut", tenant_id=None, time_budget=0)
        assert first is None
        first = await plan_sweep(graph, store, POLICY, now=NOW, scan_id="cut", tenant_id=None, time_budget=0)
        assert first is None, "two pages planned and kept"
        emulator.reset(tenant())  # same directory, new instance: Graph no longer accepts the saved skip token
        plan = await plan_sweep(graph, store, POLICY, now=NOW, scan_id="cut", tenant_id=None)
    assert whole is not None
    assert plan is not None
    assert plan.guests == whole.guests == 1_600
    assert plan.counts == whole.counts
    assert sorted((a.kind, a.target_id) for a in plan.actions) == sorted((a.kind, a.target_id) for a in whole.actions)
