"""Kill `guestctl sweep --apply --plan plan.json` (SIGKILL) twice mid-apply, rerun the same plan: every
disable happens exactly once — one accountEnabled change per guest in the tenant and one audit entry.

(A PATCH that was in flight when the process died may not have reached Graph's store; the rerun reads the
guest and sends it again only then. So requests can repeat, changes cannot.)"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from emulator.seed import seed_tenant
from emulator.testing import EmulatorServer
from shared.graph import Graph
from shared.stale import apply_plan, exemptions_now, plan_sweep
from shared.store import open_store
from tests.support.cli import start_guestctl
from tests.support.stale import POLICY_TEXT, UNCAPPED


def patches(emulator: EmulatorServer) -> list[str]:
    return [r["path"].rsplit("/", 1)[-1] for r in emulator.control.requests(path="/v1.0/users/", method="PATCH")]


async def test_killed_sweep_finishes_with_each_disable_once(
    emulator: EmulatorServer, graph: Graph, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    emulator.reset(seed_tenant(4, guests=400, members=40, now=now))
    (tmp_path / "policy.yaml").write_text(POLICY_TEXT)
    policy = UNCAPPED
    then = now - timedelta(days=21)
    async with open_store(str(tmp_path / "state.db")) as store:  # flagged three weeks ago
        flags = await plan_sweep(graph, store, policy, now=then, scan_id="setup", tenant_id=None)
        await apply_plan(
            flags, graph, store, policy, await exemptions_now(graph, policy), actor="setup", clock=lambda: then
        )
    planned = start_guestctl(emulator, tmp_path, "sweep", "--out", "plan.json")
    assert planned.wait(timeout=120) == 0, planned.stderr.read()  # type: ignore[union-attr]
    actions = json.loads((tmp_path / "plan.json").read_text())["actions"]
    targets = {a["target_id"] for a in actions if a["kind"] == "disable"}
    assert len(targets) > 60

    emulator.control.clear_requests()
    journal_start = emulator.tenant.journal_position
    kills = 0
    for count in (10, 35):
        run = start_guestctl(emulator, tmp_path, "sweep", "--apply", "--plan", "plan.json")
        deadline = time.monotonic() + 60
        while len(patches(emulator)) < count and run.poll() is None and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.002)
        if run.poll() is None:
            run.send_signal(signal.SIGKILL)
            kills += 1
        run.wait()
    assert kills == 2, "both runs must really have been killed mid-apply"
    final = start_guestctl(emulator, tmp_path, "sweep", "--apply", "--plan", "plan.json", "--json")
    stdout, stderr = final.communicate(timeout=120)
    assert final.returncode == 0, stderr[-2000:]
    results = json.loads(stdout)["results"]

    assert {r["target_id"] for r in results if r["action"] == "disable"} == targets
    assert {r["outcome"] for r in results} <= {"done", "already-done"}
    disables = Counter(
        change.user_id
        for _, change in emulator.tenant.changes_since(journal_start)
        if change.props and "accountEnabled" in change.props
    )
    assert disables == Counter(targets), "exactly one accountEnabled change per guest"
    resent = len(patches(emulator)) - len(targets)
    assert 0 <= resent <= 2 * 32, "only requests in flight at a kill may be sent again"
    assert all(emulator.tenant.users[t].accountEnabled is False for t in targets)
    async with open_store(str(tmp_path / "state.db")) as store:
        audited = Counter([e.target_id async for e in store.read_audit() if e.action == "guest.disable"])
    assert audited == Counter(targets), "exactly one audit entry per disable"
