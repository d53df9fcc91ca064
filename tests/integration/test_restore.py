"""`shared.core.restore` over the audit log, on SQLite and on Azurite: deleted guests come back, refused
changes are not undone, and a second restore changes and audits nothing."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import pytest

from emulator.seed import seed_tenant
from emulator.testing import EmulatorServer
from shared.core.apply import Outcome
from shared.core.restore import restore
from shared.graph import Graph
from shared.stale import ActionKind, apply_plan, exemptions_now, plan_sweep, run_id_for
from shared.store import AuditEntry, Store
from shared.store.registry import STALE_ACTIONS, STALE_GUESTS
from tests.support.stale import NOW, POLICY

LATER = NOW + timedelta(days=15)
LAST = LATER + timedelta(days=31)


@pytest.fixture
def tenant(emulator: EmulatorServer) -> EmulatorServer:
    emulator.reset(seed_tenant(41, guests=40, members=5, now=NOW))
    return emulator


async def sweep(tenant: EmulatorServer, graph: Graph, store: Store, at: datetime, scan_id: str) -> str:
    """Plan and apply a sweep with the emulator's clock at `at`; the run id."""
    if at != NOW:  # the emulator starts at NOW; its clock only moves forward
        tenant.control.set_clock(at)
    plan = await plan_sweep(graph, store, POLICY, now=at, scan_id=scan_id, tenant_id=None)
    await apply_plan(plan, graph, store, POLICY, await exemptions_now(graph, POLICY), actor="t", clock=lambda: at)
    assert {a.kind for a in plan.actions} & {ActionKind.FLAG, ActionKind.DISABLE, ActionKind.DELETE}
    return run_id_for(plan)


async def test_restore_brings_deleted_guests_back_enabled_once(
    tenant: EmulatorServer, graph: Graph, store: Store
) -> None:
    await sweep(tenant, graph, store, NOW, "flag")
    await sweep(tenant, graph, store, LATER, "disable")
    deleting = await sweep(tenant, graph, store, LAST, "delete")
    deleted = {e.target_id async for e in store.read_audit(run_id=deleting) if e.action == "guest.delete"}
    assert deleted
    assert not deleted & set(tenant.tenant.users)

    first = await restore(graph, store, actor="t", run_id=deleting, clock=lambda: LAST)
    audit_after_first = [e async for e in store.read_audit()]
    second = await restore(graph, store, actor="t", run_id=deleting, clock=lambda: LAST)

    restored = {r.target_id: (r.outcome, r.detail) for r in first if r.target_id in deleted}
    assert restored == {g: (Outcome.DONE, "restored from deleted items and re-enabled") for g in deleted}
    assert all(tenant.tenant.users[g].accountEnabled for g in deleted)
    undone = Counter(
        (e.action, e.target_id) for e in audit_after_first if e.action in ("guest.restore", "guest.enable")
    )
    assert undone == Counter(
        {**{("guest.restore", g): 1 for g in deleted}, **{("guest.enable", g): 1 for g in deleted}}
    )
    kept = {record.row async for record in store.query(STALE_GUESTS)}
    assert not kept & deleted, "guestctl's record of a restored guest is removed: its stages start again"
    assert {r.outcome for r in second} == {Outcome.ALREADY_DONE}
    assert [e async for e in store.read_audit()] == audit_after_first


async def test_a_change_graph_refused_is_not_undone(tenant: EmulatorServer, graph: Graph, store: Store) -> None:
    guest = next(u for u in tenant.tenant.users.values() if u.userType == "Guest")
    await graph.request("PATCH", f"/users/{guest.id}", json_body={"accountEnabled": False}, idempotent=True)
    run_id = "sweep-00000000000000aa"
    await store.create(STALE_ACTIONS, run_id, f"disable:{guest.id}", {"state": "done"})
    for name in ("guest.disable", "guest.disable.failed"):  # the disable Graph refused
        entry = AuditEntry(
            name, guest.id, "t", "stale", {"accountEnabled": True}, {"accountEnabled": False}, run_id=run_id
        )
        await store.append_audit(entry)

    assert await restore(graph, store, actor="t", run_id=run_id, clock=lambda: NOW) == []
    assert tenant.tenant.users[guest.id].accountEnabled is False, "disabled by someone else: left as it is"
