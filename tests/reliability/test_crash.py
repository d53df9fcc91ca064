"""Crash and resume (docs/reliability.md#crash-and-resume): each flow run once uninterrupted to enumerate its
kill points (its Graph requests from the emulator's request log, its store operations from the killer
wrapper), then, for each point, on a fresh identical tenant and store: run, SIGKILL at that point, rerun the
same command to completion, and compare the end state with the uninterrupted run's.

Invariants: the same tenant and store end state (normalized), every change in the emulator's change journal
and every email exactly as often as uninterrupted (no duplicate, no lost action), the rerun exits 0.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from emulator.testing import EmulatorServer
from tests.reliability.crash import changes, kill_points, run, store_state, tenant_state
from tests.reliability.figures import Figures, profile
from tests.support.cli import ROOT, emulator_settings, run_guestctl


@dataclass
class Flow:
    """One command to kill and rerun. `tenant` resets the emulator to the same tenant each time; `prepare`
    (once) writes the folder's inputs (policy.yaml, input files, a store the command starts from), copied
    for each point."""

    name: str
    command: list[str]
    tenant: Callable[[EmulatorServer], None]
    prepare: Callable[[EmulatorServer, Path], None] = lambda emulator, folder: None
    codes: tuple[int, ...] = (0,)
    short: tuple[str, ...] = ("write-after",)  # the sample the short profile kills at (crash.kill_points)


@dataclass
class Outcome:
    tenant: dict[str, Any]
    changes: Any
    store: dict[str, Any]


def end_state(emulator: EmulatorServer, folder: Path, journal_start: int) -> Outcome:
    tenant = emulator.tenant
    return Outcome(tenant_state(tenant), changes(tenant, journal_start), store_state(folder / "state.db", tenant))


def differences(expected: Outcome, got: Outcome) -> list[str]:
    found = []
    for part in ("tenant", "changes", "store"):
        want, have = getattr(expected, part), getattr(got, part)
        if want != have:
            if isinstance(want, dict):
                keys = sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))
                detail = {k: _delta(want.get(k), have.get(k)) for k in keys}
            else:
                detail = (want - have, have - want)
            found.append(f"{part}: {str(detail)[:1500]}")
    return found


def _delta(want: Any, have: Any) -> Any:
    if isinstance(want, list) and isinstance(have, list):
        return {"missing": [w for w in want if w not in have], "extra": [h for h in have if h not in want]}
    return (want, have)


def fresh(emulator: EmulatorServer, flow: Flow, template: Path, folder: Path) -> int:
    flow.tenant(emulator)
    shutil.copytree(template, folder)
    emulator.state.request_log.clear()
    return emulator.tenant.journal_position


def exercise(flow: Flow, emulator: EmulatorServer, tmp_path: Path, figures: Figures) -> None:
    template = tmp_path / "template"
    flow.tenant(emulator)
    template.mkdir()
    flow.prepare(emulator, template)

    start = fresh(emulator, flow, template, tmp_path / "baseline")
    baseline = run(emulator, tmp_path / "baseline", flow.command)
    assert baseline.code in flow.codes, baseline.stderr[-2000:]
    expected = end_state(emulator, tmp_path / "baseline", start)
    points = kill_points(baseline, full=profile() == "full", sample=flow.short)
    assert points, "the flow must talk to Graph or the store"

    violations: list[str] = []
    killed = 0
    for index, point in enumerate(points):
        folder = tmp_path / f"p{index}"
        start = fresh(emulator, flow, template, folder)
        first = run(emulator, folder, flow.command, point=point)
        if first.code != -9:
            continue  # the run ended before the point (a concurrent run's count differs): not a kill point
        killed += 1
        again = run(emulator, folder, flow.command)
        if again.code not in flow.codes:
            violations.append(f"{point}: the rerun exited {again.code}: {again.stderr.strip()[-400:]}")
            continue
        violations += [f"{point}: {d}" for d in differences(expected, end_state(emulator, folder, start))]
    figures.add(flow.name, kill_points=killed, violations=len(violations))
    assert killed >= len(points) // 2, f"only {killed} of {len(points)} points really killed the run"
    assert violations == [], "\n".join(violations[:5])


# ---- flows -------------------------------------------------------------------------------------------
def invitations() -> Flow:
    from emulator.seed import seed_tenant

    def tenant(emulator: EmulatorServer) -> None:
        emulator.reset(seed_tenant(5, guests=6, members=6))

    def prepare(emulator: EmulatorServer, folder: Path) -> None:
        groups = sorted(g.displayName for g in emulator.tenant.groups.values() if not g.is_dynamic)
        members = sorted(u.userPrincipalName for u in emulator.tenant.users.values() if u.userType == "Member")
        lines = ["email,display_name,groups,sponsors"]
        lines += [f"crash{i}@partner{i % 2}.example,Crash {i},{groups[i]},{members[i]}" for i in range(3)]
        (folder / "invite.csv").write_text("\n".join(lines) + "\n")
        (folder / "policy.yaml").write_text("{}\n")

    return Flow("invitations", ["invite", "invite.csv", "--apply", "--json"], tenant, prepare, short=("write-before",))


def sweep() -> Flow:
    """`sweep --apply --plan plan.json` of guests flagged three weeks ago: disables."""
    from emulator.seed import seed_tenant
    from shared.stale import apply_plan, exemptions_now, plan_sweep
    from shared.store import open_store
    from tests.support.graph import emulator_graph
    from tests.support.stale import POLICY_TEXT, UNCAPPED

    now = datetime.now(UTC).replace(microsecond=0)

    def tenant(emulator: EmulatorServer) -> None:
        emulator.reset(seed_tenant(4, guests=10, members=4, now=now))

    async def flag(emulator: EmulatorServer, folder: Path) -> None:
        then = now - timedelta(days=21)
        graph = emulator_graph(emulator.base_url)
        async with open_store(str(folder / "state.db")) as store:
            flags = await plan_sweep(graph, store, UNCAPPED, now=then, scan_id="setup", tenant_id=None)
            exempt = await exemptions_now(graph, UNCAPPED)
            await apply_plan(flags, graph, store, UNCAPPED, exempt, actor="setup", clock=lambda: then)
        await graph.close()

    def prepare(emulator: EmulatorServer, folder: Path) -> None:
        (folder / "policy.yaml").write_text(POLICY_TEXT)
        asyncio.run(flag(emulator, folder))
        planned = run_guestctl("sweep", "--out", "plan.json", cwd=folder, env=settings(emulator, folder))
        assert planned.returncode == 0, planned.stderr
        assert '"disable"' in (folder / "plan.json").read_text()

    return Flow("sweep", ["sweep", "--apply", "--plan", "plan.json", "--json"], tenant, prepare,
                short=("write-after",))  # fmt: skip


def redemptions() -> Flow:
    """`sync`: Graph's delta query, what changed recorded in the store."""
    from emulator.seed import seed_tenant
    from tests.support.stale import NOW

    def tenant(emulator: EmulatorServer) -> None:
        emulator.reset(seed_tenant(31, guests=8, members=3, now=NOW))

    def prepare(emulator: EmulatorServer, folder: Path) -> None:
        shutil.copy(ROOT / "examples" / "policy.yaml", folder / "policy.yaml")

    return Flow("redemptions", ["sync", "--json"], tenant, prepare, short=("store-write",))


def offboarding() -> Flow:
    """`offboard WORKER --apply`: the guest worker disabled and out of a group, their sponsorship moved."""
    from emulator.seed import empty_tenant, make_user
    from emulator.tenant import Group
    from tests.support.offboarding import NOW

    def tenant(emulator: EmulatorServer) -> None:
        built = empty_tenant(NOW)
        boss = make_user(built, id="00000000-0000-4000-8000-00000000b055", mail="boss@contoso.com",
                         userPrincipalName="boss@contoso.com")  # fmt: skip
        worker = make_user(built, id="00000000-0000-4000-8000-0000000000a1", userType="Guest",
                           mail="ann@fabrikam.com", sponsors=(boss.id,))  # fmt: skip
        make_user(built, id="00000000-0000-4000-8000-0000000000b0", userType="Guest", mail="bob@fabrikam.com",
                  sponsors=(worker.id, boss.id))  # fmt: skip
        project = built.add_group(Group("00000000-0000-4000-8000-0000000000c1", "Project X", "2025-01-01T00:00:00Z"))
        built.add_member(project, worker.id)
        emulator.reset(built)

    def prepare(emulator: EmulatorServer, folder: Path) -> None:
        (folder / "policy.yaml").write_text("offboarding:\n  delete_after_days: 30\n")

    command = ["offboard", "ann@fabrikam.com", "--apply", "--effective", NOW.date().isoformat(), "--json"]
    return Flow("offboarding", command, tenant, prepare, short=("write-after",))


def partners() -> Flow:
    """`partners apply --plan plan.json`: a new partner configuration and a patched one."""
    import httpx

    from emulator.seed import seed_tenant
    from shared.partners.trust_effects import PARTNERS_PATH

    def tenant(emulator: EmulatorServer) -> None:
        emulator.reset(seed_tenant("demo"))
        for other in emulator.control.external_tenants()[1:3]:  # configured by hand already
            body = {"tenantId": other["tenantId"], "inboundTrust": {"isMfaAccepted": False}}
            httpx.post(f"{emulator.base_url}{PARTNERS_PATH}", json=body, headers={"Authorization": "Bearer t"})

    def prepare(emulator: EmulatorServer, folder: Path) -> None:
        fabrikam, northwind = emulator.control.external_tenants()[:2]
        policy = {"partners": {"tenants": [
            {"tenant": fabrikam["domains"][0], "name": "Fabrikam", "inbound": {"users": "all"}, "trust": {"mfa": True}},
            {"tenant": northwind["tenantId"], "inbound": {"groups": [GROUP]}, "trust": {"mfa": True},
             "outbound": {"groups": [GROUP]}},
        ]}}  # fmt: skip
        (folder / "policy.yaml").write_text(json.dumps(policy))
        planned = run_guestctl("partners", "plan", "--out", "plan.json", cwd=folder, env=settings(emulator, folder))
        assert planned.returncode == 0, planned.stderr

    return Flow("partners", ["partners", "apply", "--plan", "plan.json", "--json"], tenant, prepare,
                short=("last",))  # fmt: skip


GROUP = "6f546279-4da5-4b53-a095-09ea0cef9971"


def settings(emulator: EmulatorServer, folder: Path) -> dict[str, str]:
    return emulator_settings(emulator, folder, folder / "policy.yaml")


FLOWS = {f.__name__: f for f in (invitations, sweep, redemptions, offboarding, partners)}


@pytest.mark.parametrize("name", list(FLOWS))
def test_killed_at_every_point_the_rerun_ends_in_the_uninterrupted_state(
    name: str, emulator: EmulatorServer, tmp_path: Path, figures: Figures
) -> None:
    exercise(FLOWS[name](), emulator, tmp_path, figures)
