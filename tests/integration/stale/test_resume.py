"""A sweep that runs out of time continues where it stopped and ends with the same plan as one run."""

from __future__ import annotations

import json
from collections.abc import Callable

from emulator.seed import seed_tenant
from emulator.testing import EmulatorServer
from shared.graph import Graph, GraphOptions
from shared.stale import plan_sweep
from shared.store import Store
from tests.support.scripted_server import Handler, Reply, ScriptedServer, SeenRequest
from tests.support.stale import NOW, UNCAPPED


async def test_budgeted_sweep_resumes_to_the_same_plan(emulator: EmulatorServer, graph: Graph, store: Store) -> None:
    emulator.reset(seed_tenant(21, guests=1_600, members=50, now=NOW))
    pages: list[int] = []
    whole = await plan_sweep(graph, store, UNCAPPED, now=NOW, scan_id="whole", tenant_id=None, on_page=pages.append)
    assert pages == [500, 500, 500, 100], "progress is reported page by page"
    invocations = 0
    plan = None
    while plan is None:
        invocations += 1
        later = NOW.replace(hour=13 + invocations % 10)  # a later invocation: the sweep keeps its first "now"
        plan = await plan_sweep(
            graph,
            store,
            UNCAPPED,
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
    emulator: EmulatorServer, graph: Graph, store: Store
) -> None:
    def tenant() -> object:
        return seed_tenant(22, guests=1_600, members=50, now=NOW)

    emulator.reset(tenant())
    whole = await plan_sweep(graph, store, UNCAPPED, now=NOW, scan_id="whole", tenant_id=None)
    first = await plan_sweep(graph, store, UNCAPPED, now=NOW, scan_id="cut", tenant_id=None, time_budget=0)
    assert first is None
    first = await plan_sweep(graph, store, UNCAPPED, now=NOW, scan_id="cut", tenant_id=None, time_budget=0)
    assert first is None, "two pages planned and kept"
    emulator.reset(tenant())  # same directory, new instance: Graph no longer accepts the saved skip token
    plan = await plan_sweep(graph, store, UNCAPPED, now=NOW, scan_id="cut", tenant_id=None)
    assert whole is not None
    assert plan is not None
    assert plan.guests == whole.guests == 1_600
    assert plan.counts == whole.counts
    assert sorted((a.kind, a.target_id) for a in plan.actions) == sorted((a.kind, a.target_id) for a in whole.actions)


async def test_a_page_without_guests_keeps_what_earlier_pages_planned(
    scripted_server: Callable[[Handler], ScriptedServer], store: Store
) -> None:
    def user(number: int, kind: str = "Guest") -> dict[str, object]:
        return {"id": f"u{number}", "userType": kind, "createdDateTime": "2020-01-01T00:00:00Z", "signInActivity": {}}

    pages = {
        "1": [user(1), user(2)],
        "2": [user(3, "Member")],  # a member in a guest scan is dropped (safety in depth): an empty page
        "3": [user(4)],
    }

    def answer(request: SeenRequest) -> Reply:
        if request.path.startswith(("/v1.0/directoryRoles", "/v1.0/roleManagement")):
            return Reply(200, b'{"value": []}')
        page = request.path.rsplit("$skiptoken=", 1)[-1] if "$skiptoken=" in request.path else "1"
        body: dict[str, object] = {"value": pages[page]}
        if page != "3":
            body["@odata.nextLink"] = f"{server.base_url}/users?$skiptoken={int(page) + 1}"
        return Reply(200, json.dumps(body).encode())

    server = scripted_server(answer)
    graph = Graph(GraphOptions(base_url=server.base_url, auth="emulator"))
    try:
        plan = await plan_sweep(graph, store, UNCAPPED, now=NOW, scan_id="gap", tenant_id=None)
    finally:
        await graph.close()
    assert plan is not None
    assert plan.guests == 3
    assert sorted(a.target_id for a in plan.actions) == ["u1", "u2", "u4"]


async def test_a_finished_sweep_leaves_no_progress_behind(emulator: EmulatorServer, graph: Graph, store: Store) -> None:
    emulator.reset(seed_tenant(23, guests=700, members=20, now=NOW))
    assert await plan_sweep(graph, store, UNCAPPED, now=NOW, scan_id="tidy", tenant_id=None, time_budget=0) is None
    assert [r async for r in store.query("staleprogress", "tidy")], "an unfinished sweep keeps its pages"
    plan = await plan_sweep(graph, store, UNCAPPED, now=NOW, scan_id="tidy", tenant_id=None)
    assert plan is not None
    assert plan.guests == 700
    assert [r async for r in store.query("staleprogress", "tidy")] == []
    again = await plan_sweep(graph, store, UNCAPPED, now=NOW, scan_id="tidy", tenant_id=None)
    assert again is not None
    assert again.guests == 700, "called again under the same id: a new whole sweep"
