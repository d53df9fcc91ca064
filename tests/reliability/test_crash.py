"""Crash and resume (docs/reliability.md#crash-and-resume): each flow run once uninterrupted to enumerate its
kill points (its Graph requests from the emulator's request log, its store operations from the killer
wrapper), then, for each point, on a fresh identical tenant and store: run in a child, SIGKILL it at that
point, run the same command again to completion, and compare the end state with the uninterrupted run's.
A flow is a guestctl command or a queue-triggered function with one message; a message is also delivered
twice in a row (the host's at-least-once delivery), which must change nothing the first delivery did not.

Invariants: the same tenant and store end state (normalized), every change in the emulator's change journal
and every email exactly as often as uninterrupted (no duplicate, no lost action), the rerun exits 0.

Only the run to be killed is a child process: the uninterrupted run and the rerun run in this process
(crash.run_here), which keeps the short profile fast.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from emulator.testing import EmulatorServer
from tests.reliability.crash import changes, here, kill_points, run, run_here, snapshot, store_state, tenant_state
from tests.reliability.figures import Figures, profile
from tests.support.cli import ROOT

Prepare = Callable[[EmulatorServer, Path, pytest.MonkeyPatch], None]


@dataclass
class Flow:
    """One command (or `function NAME ID BODY_FILE`) to kill and rerun. `tenant` builds the emulator's
    tenant; `prepare` (once, with this process set up as a run in the folder) writes the folder's inputs
    (policy.yaml, input files, a store the command starts from) and may change the tenant; each point then
    starts from a copy of both."""

    name: str
    command: list[str]
    tenant: Callable[[EmulatorServer], None]
    prepare: Prepare = lambda emulator, folder, monkeypatch: None
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


def exercise(
    flow: Flow, emulator: EmulatorServer, tmp_path: Path, figures: Figures, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = tmp_path / "template"
    template.mkdir()
    flow.tenant(emulator)
    with here(emulator, template, monkeypatch):
        flow.prepare(emulator, template, monkeypatch)
    start_tenant = snapshot(emulator.tenant)

    def fresh(folder: Path) -> int:
        emulator.reset(snapshot(start_tenant))
        shutil.copytree(template, folder)
        return emulator.tenant.journal_position

    start = fresh(tmp_path / "baseline")
    baseline = run_here(emulator, tmp_path / "baseline", flow.command, monkeypatch)
    assert baseline.code in flow.codes, (baseline.stdout + baseline.stderr)[-2000:]
    expected = end_state(emulator, tmp_path / "baseline", start)
    points = kill_points(baseline, full=profile() == "full", sample=flow.short)
    assert points, "the flow must talk to Graph or the store"

    violations: list[str] = []
    if flow.command[0] == "function":  # the host's at-least-once delivery: the same message again
        again = run_here(emulator, tmp_path / "baseline", flow.command, monkeypatch)
        violations += [
            f"delivered twice: {d}" for d in differences(expected, end_state(emulator, tmp_path / "baseline", start))
        ]
        if again.code not in flow.codes:
            violations.append(f"delivered twice: the second delivery failed: {again.stderr.strip()[-400:]}")
    killed = 0
    for index, point in enumerate(points):
        folder = tmp_path / f"p{index}"
        start = fresh(folder)
        first = run(emulator, folder, flow.command, point=point)
        if first.code != -9:
            continue  # the run ended before the point (a concurrent run's count differs): not a kill point
        killed += 1
        again = run_here(emulator, folder, flow.command, monkeypatch)
        if again.code not in flow.codes:
            violations.append(f"{point}: the rerun exited {again.code}: {(again.stdout + again.stderr).strip()[-400:]}")
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

    def prepare(emulator: EmulatorServer, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        groups = sorted(g.displayName for g in emulator.tenant.groups.values() if not g.is_dynamic)
        members = sorted(u.userPrincipalName for u in emulator.tenant.users.values() if u.userType == "Member")
        lines = ["email,display_name,groups,sponsors"]
        lines += [f"crash{i}@partner{i % 2}.example,Crash {i},{groups[i]},{members[i]}" for i in range(3)]
        (folder / "invite.csv").write_text("\n".join(lines) + "\n")
        (folder / "policy.yaml").write_text("{}\n")

    return Flow("invitations", ["invite", "invite.csv", "--apply", "--json"], tenant, prepare, short=("write-after",))


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

    def prepare(emulator: EmulatorServer, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        (folder / "policy.yaml").write_text(POLICY_TEXT)
        asyncio.run(flag(emulator, folder))
        planned = run_here(emulator, folder, ["sweep", "--out", "plan.json"], monkeypatch)
        assert planned.code == 0, planned.stderr
        assert '"disable"' in (folder / "plan.json").read_text()

    return Flow("sweep", ["sweep", "--apply", "--plan", "plan.json", "--json"], tenant, prepare,
                short=("write-after",))  # fmt: skip


def redemptions() -> Flow:
    """`sync`: Graph's delta query, what changed recorded in the store."""
    from emulator.seed import seed_tenant
    from tests.support.stale import NOW

    def tenant(emulator: EmulatorServer) -> None:
        emulator.reset(seed_tenant(31, guests=8, members=3, now=NOW))

    def prepare(emulator: EmulatorServer, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
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

    def prepare(emulator: EmulatorServer, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
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

    def prepare(emulator: EmulatorServer, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        fabrikam, northwind = emulator.control.external_tenants()[:2]
        policy = {"partners": {"tenants": [
            {"tenant": fabrikam["domains"][0], "name": "Fabrikam", "inbound": {"users": "all"}, "trust": {"mfa": True}},
            {"tenant": northwind["tenantId"], "inbound": {"groups": [GROUP]}, "trust": {"mfa": True},
             "outbound": {"groups": [GROUP]}},
        ]}}  # fmt: skip
        (folder / "policy.yaml").write_text(json.dumps(policy))
        planned = run_here(emulator, folder, ["partners", "plan", "--out", "plan.json"], monkeypatch)
        assert planned.code == 0, planned.stderr

    return Flow("partners", ["partners", "apply", "--plan", "plan.json", "--json"], tenant, prepare,
                short=("write-after",))  # fmt: skip


def partners_rollback() -> Flow:
    """`partners rollback --run RUN` of the partners flow's apply: the new configuration deleted, the patched
    one put back."""
    applied = partners()
    command = ["partners", "rollback", "--run", "<set by prepare>"]

    def prepare(emulator: EmulatorServer, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        applied.prepare(emulator, folder, monkeypatch)
        done = run_here(emulator, folder, applied.command, monkeypatch)
        assert done.code == 0, done.stdout + done.stderr
        command[-1] = json.loads(done.stdout)["run_id"]

    return Flow("partners", command, applied.tenant, prepare)


def reminders() -> Flow:
    """`remind --apply` with our own email (drafted and sent exactly once) to guests invited 3.5 days ago."""
    from emulator.seed import seed_tenant
    from shared.redemptions.effects import track_invited
    from shared.store import open_store
    from tests.support.graph import emulator_graph

    def tenant(emulator: EmulatorServer) -> None:
        emulator.reset(seed_tenant(51, guests=5, members=5))

    async def invite(emulator: EmulatorServer, folder: Path) -> None:
        graph = emulator_graph(emulator.base_url)
        async with open_store(str(folder / "state.db")) as store:
            for i in range(3):
                body = {"invitedUserEmailAddress": f"late{i}@fabrikam.com", "sendInvitationMessage": False,
                        "inviteRedirectUrl": "https://myapps.microsoft.com"}  # fmt: skip
                invited = (await graph.request("POST", "/invitations", json_body=body)).json()["invitedUser"]
                then = datetime.now(UTC) - timedelta(days=3.5)
                await track_invited(store, invited["id"], body["invitedUserEmailAddress"], "inv-old", then)
        await graph.close()

    def prepare(emulator: EmulatorServer, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        own = {"sender_mailbox": "adele.vance@contoso.com", "message_template": "Still waiting: {redeem_url}"}
        (folder / "policy.yaml").write_text(json.dumps({"invitations": {"reminders": [3, 7], **own}}))
        asyncio.run(invite(emulator, folder))

    return Flow("redemptions", ["remind", "--apply", "--json"], tenant, prepare)


# ---- queue-triggered functions: one message, as the host delivers it (at least once) -------------------
def function(name: str) -> list[str]:
    return ["function", name, "message-1", "message.json"]


def invite_rows() -> Flow:
    """invitations-rows: one chunk of an invitation batch, planned and applied."""
    from shared.config import load_settings
    from shared.invitations.service import submit_file

    invited = invitations()

    def prepare(emulator: EmulatorServer, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        invited.prepare(emulator, folder, monkeypatch)
        content = (folder / "invite.csv").read_bytes()
        submitted = asyncio.run(submit_file(load_settings(), content, name="invite.csv", json_lines=False))
        (folder / "message.json").write_text(submitted.messages[0])

    return Flow("functions (queues)", function("invite_rows"), invited.tenant, prepare)


def stale_apply() -> Flow:
    """stale-sweeps {"apply"}: a kept plan (disables of guests flagged three weeks ago) applied."""
    from shared.stale.service import scheduled_sweep

    swept = sweep()

    def prepare(emulator: EmulatorServer, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        swept.prepare(emulator, folder, monkeypatch)
        planned = asyncio.run(scheduled_sweep())
        assert planned.plan_id, planned
        assert not planned.continue_scan, planned
        message = {"apply": planned.plan_id, "actor": "crash test (approved)"}
        (folder / "message.json").write_text(json.dumps(message))

    return Flow("functions (queues)", function("continue_stale_sweep"), swept.tenant, prepare)


def hr_event() -> Flow:
    """hr-events: a signed termination effective today, stored by the receiver, then acted on by the worker."""
    from shared.offboarding.inbox import NATIVE, accept, record
    from shared.offboarding.signatures import SECRETS_SETTING, sign
    from shared.store import open_store
    from tests.support.offboarding import NOW

    left = offboarding()
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

    async def receive(folder: Path) -> list[str]:
        event = {"type": "worker.terminated", "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                 "data": {"source": {"system": "workday", "eventId": "t-1"}, "worker": {"email": "ann@fabrikam.com"},
                          "effectiveDate": NOW.date().isoformat(), "effectiveTimeZone": "UTC"}}  # fmt: skip
        body = json.dumps(event).encode()
        headers = {"Content-Type": "application/json", **sign(secret, "msg_1", int(time.time()), body)}
        now = datetime.now(UTC)
        received = accept(NATIVE, headers, body, now, environ={SECRETS_SETTING: secret})
        async with open_store(str(folder / "state.db")) as store:
            return (await record(store, NATIVE, received, now)).messages

    def prepare(emulator: EmulatorServer, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        left.prepare(emulator, folder, monkeypatch)
        (message,) = asyncio.run(receive(folder))
        (folder / "message.json").write_text(message)

    return Flow("functions (queues)", function("hr_events_worker"), left.tenant, prepare)


def partner_retirement() -> Flow:
    """partner-retirements: a kept retirement plan (two Fabrikam guests disabled, one flagged), approved."""
    from shared.config import load_policy, load_settings
    from shared.partners.fetch import PARTNERS_PATH
    from shared.partners.retire_service import check_approval, plan_for_approval, retire_with
    from shared.partners.verify import verify_with
    from shared.store import open_store
    from tests.support.graph import emulator_graph
    from tests.support.partners import DIRECT_CONNECT_INBOUND, FABRIKAM, home_id, partner_tenant

    now = datetime.now(UTC)  # a kept plan is checked against the real clock (safety.plan_max_age_hours)

    def tenant(emulator: EmulatorServer) -> None:
        emulator.reset(partner_tenant(now).tenant)

    def direct(emulator: EmulatorServer, mail: str) -> None:
        at = (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        emulator.control.sign_in(home_id(mail), at=at, crossTenantAccessType="b2bDirectConnect", homeTenantId=FABRIKAM)

    async def flag(emulator: EmulatorServer, folder: Path) -> None:
        """f2 and f3 verified Teams-only and flagged eight days ago (past stale.disable_after_days)."""
        graph = emulator_graph(emulator.base_url)
        await graph.request("POST", PARTNERS_PATH, json_body={"tenantId": FABRIKAM, **DIRECT_CONNECT_INBOUND})
        direct(emulator, "f2@fabrikam.com")
        direct(emulator, "f3@fabrikam.com")
        async with open_store(str(folder / "state.db")) as store:
            await verify_with(graph, store, {FABRIKAM: "Fabrikam"}, days=2, clock=lambda: now)
            eight_days_ago = now - timedelta(days=8)
            policy = load_policy(folder / "policy.yaml")
            await retire_with(graph, store, policy, tenant_id=None, apply=True, clock=lambda: eight_days_ago)
        await graph.close()

    async def keep_and_approve(emulator: EmulatorServer) -> str:
        direct(emulator, "f4@fabrikam.com")  # signs in since: verified again, only flagged
        settings = load_settings()
        plan_id = (await plan_for_approval(settings)).to_json()["plan_id"]
        await check_approval(plan_id, settings=settings)
        return plan_id

    def prepare(emulator: EmulatorServer, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        policy = {"partners": {"tenants": [{"tenant": FABRIKAM, "name": "Fabrikam", "inbound": {"users": "all"}}]},
                  "stale": {"disable_after_days": 7, "delete_after_days": 30},
                  "safety": {"max_actions": 50, "max_percent": 100}}  # fmt: skip
        (folder / "policy.yaml").write_text(json.dumps(policy))
        asyncio.run(flag(emulator, folder))
        plan_id = asyncio.run(keep_and_approve(emulator))
        (folder / "message.json").write_text(json.dumps({"apply": plan_id, "actor": "crash test (approved)"}))

    return Flow("functions (queues)", function("apply_partner_retirement"), tenant, prepare)


GROUP = "6f546279-4da5-4b53-a095-09ea0cef9971"


# One test per flow (a parameter each), so pytest-xdist can spread them (`-n 2`); each has its own tmp_path
# and tenant. The ids are the names docs/reliability.md and `-k` use.
FLOWS = {
    "invitations": invitations,
    "sweep": sweep,
    "redemption_sync": redemptions,
    "reminders": reminders,
    "offboarding": offboarding,
    "partners_apply": partners,
    "partners_rollback": partners_rollback,
    "queue_invitation_rows": invite_rows,
    "queue_stale_sweep_apply": stale_apply,
    "queue_partner_retirement": partner_retirement,
    "queue_hr_event": hr_event,
}


@pytest.mark.parametrize("make_flow", FLOWS.values(), ids=FLOWS.keys())
def test_crash_and_resume(
    make_flow: Callable[[], Flow],
    emulator: EmulatorServer,
    tmp_path: Path,
    figures: Figures,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    exercise(make_flow(), emulator, tmp_path, figures, monkeypatch)
