"""The partner timers and retirement's approval: discovery keeps its summary reading only; an approved
retirement plan is applied by the queue worker, re-derived from fresh data, and only once."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import azure.functions as func
import httpx
import pytest
from azure.functions.timer import TimerRequest

from emulator.testing import EmulatorServer
from shared.clock import utc_now
from shared.config import load_policy, load_settings
from shared.graph import Graph
from shared.partners.fetch import PARTNERS_PATH
from shared.partners.retire_apply import ACTIONS_TABLE, RETIRE_PARTITION
from shared.partners.retire_service import PLANS_TABLE, retire_with
from shared.partners.service import latest_discovery
from shared.partners.verify import verify_with
from shared.stale.effects import GUESTS_TABLE
from shared.store import open_state
from tests.support.functions import CapturedOut, bindings, point_at_emulator, resolved
from tests.support.functions_host import FunctionsHost
from tests.support.partners import DIRECT_CONNECT_INBOUND, FABRIKAM, FABRIKAM_PEOPLE, home_id, partner_tenant
from tests.support.stale import NOW

RETIREMENTS = "partner-retirements"
FINANCE_SHARE = "cccccccc-0000-4000-8000-000000000002"  # a group that is not a team


def test_partner_discovery_is_a_daily_timer(functions: dict[str, func.FunctionBuilder]) -> None:
    (binding,) = bindings(functions, "partner_discovery")
    assert (binding["type"], resolved(binding["schedule"])) == ("timerTrigger", "0 0 5 * * *")


async def test_the_timer_keeps_the_latest_discovery_and_changes_nothing(
    functions: dict[str, func.FunctionBuilder],
    emulator: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    emulator.reset(partner_tenant(NOW).tenant)
    point_at_emulator(monkeypatch, emulator, tmp_path)
    emulator.control.clear_requests()
    await functions["partner_discovery"].get_user_function()(TimerRequest())
    async with open_state(load_settings()) as store:
        kept = await latest_discovery(store)
    assert kept is not None
    assert kept["partners"][0]["display_name"] == "Fabrikam"
    writes = [r for r in emulator.control.requests() if r["method"] != "GET" and not r["path"].endswith("/$batch")]
    assert writes == []


async def test_approving_an_unknown_retirement_plan_is_refused_at_once_and_queues_nothing(
    functions: dict[str, func.FunctionBuilder],
    emulator: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    point_at_emulator(monkeypatch, emulator, tmp_path)
    queue = CapturedOut()
    request = func.HttpRequest(
        method="POST",
        url="/api/partners/plans/0123456789abcdef/approve",
        body=b"",
        route_params={"plan_id": "0123456789abcdef"},
    )
    response = await functions["approve_partner_plan"].get_user_function()(request, queue)
    assert response.status_code == 404
    assert "0123456789abcdef" in json.loads(response.get_body())["error"]
    assert not queue.was_set


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"not json", id="not-json"),
        pytest.param(b'{"apply": "0123456789abcdef"}', id="no-actor"),
        pytest.param(b'{"apply": "0123456789abcdef", "actor": "x", "extra": 1}', id="unknown-field"),
        pytest.param(b'{"apply": "0123456789abcdef", "act\xffor": "x"}', id="not-utf8-key"),
    ],
)
async def test_a_malformed_retirement_message_goes_to_the_poison_queue_at_once(
    functions: dict[str, func.FunctionBuilder],
    emulator: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    body: bytes,
) -> None:
    point_at_emulator(monkeypatch, emulator, tmp_path)
    poison = CapturedOut()
    await functions["apply_partner_retirement"].get_user_function()(func.QueueMessage(id="m1", body=body), poison)
    assert "malformed partner-retirements queue message" in json.loads(poison.value)["reason"]
    writes = [r for r in emulator.control.requests() if r["method"] != "GET"]
    assert writes == []


@pytest.fixture
def host(functions: dict[str, func.FunctionBuilder], azurite: str) -> Iterator[FunctionsHost]:
    with FunctionsHost(functions, azurite) as host:
        host.queue(RETIREMENTS).clear_messages()
        yield host


async def test_an_approved_retirement_plan_is_applied_once_from_fresh_data(
    emulator: EmulatorServer,
    graph: Graph,
    host: FunctionsHost,
    functions: dict[str, func.FunctionBuilder],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = utc_now()  # a kept plan is checked against the real clock (safety.plan_max_age_hours)
    built = partner_tenant(now)
    emulator.reset(built.tenant)
    guest = dict(zip(FABRIKAM_PEOPLE, built.guests["fabrikam"], strict=True))
    f2, f3, f4 = (guest[f"f{n}@fabrikam.com"] for n in (2, 3, 4))
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(
        json.dumps(
            {
                "partners": {"tenants": [{"tenant": FABRIKAM, "name": "Fabrikam", "inbound": {"users": "all"}}]},
                "stale": {"disable_after_days": 7, "delete_after_days": 30},
                "safety": {"max_actions": 50, "max_percent": 100},
            }
        )
    )
    point_at_emulator(monkeypatch, emulator, tmp_path)
    monkeypatch.setenv("GUESTCTL_POLICY", str(policy_file))
    settings = load_settings()

    def direct(mail: str) -> None:
        at = (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        emulator.control.sign_in(home_id(mail), at=at, crossTenantAccessType="b2bDirectConnect", homeTenantId=FABRIKAM)

    # Our inbound admits Fabrikam (their outbound admits us), so their direct connect sign-ins succeed.
    await graph.request("POST", PARTNERS_PATH, json_body={"tenantId": FABRIKAM, **DIRECT_CONNECT_INBOUND})
    # f2 and f3 were verified and flagged 8 days ago (past stale.disable_after_days); f4 signs in since.
    direct("f2@fabrikam.com")
    direct("f3@fabrikam.com")
    async with open_state(settings) as store:
        await verify_with(graph, store, {FABRIKAM: "Fabrikam"}, days=2, clock=lambda: now)
        eight_days_ago = now - timedelta(days=8)
        policy = load_policy(policy_file)
        await retire_with(graph, store, policy, tenant_id=None, apply=True, clock=lambda: eight_days_ago)
    direct("f4@fabrikam.com")
    await functions["partner_verification"].get_user_function()(TimerRequest())  # verifies, keeps the plan
    async with open_state(settings) as store:
        (plan_id,) = [r.partition async for r in store.query(PLANS_TABLE) if r.row == "meta"]

    async with httpx.AsyncClient() as client:
        approve = host.url(f"partners/plans/{plan_id}/approve")
        accepted = await client.post(approve, headers={"x-approver": "Ada"})
        assert accepted.status_code == 202
        assert accepted.json() == {"plan_id": plan_id, "run_id": f"retire-{plan_id}", "actions": 3}
        # between the approval and the worker, f3 joins a group that is not a team: no longer Teams-only
        emulator.tenant.add_member(emulator.tenant.groups[FINANCE_SHARE], f3)
        assert await asyncio.to_thread(host.drain, RETIREMENTS) == 1

        disabled = {user_id for user_id, user in emulator.tenant.users.items() if user.accountEnabled is False}
        assert disabled == {f2}  # f3 skipped; f4 only flagged; members, role holders and everyone else untouched
        async with open_state(settings) as store:
            stages = {r.row: r.data["stage"] async for r in store.query(GUESTS_TABLE, RETIRE_PARTITION)}
            results = {r.row: r.data async for r in store.query(ACTIONS_TABLE, f"retire-{plan_id}")}
        assert stages == {f2: "disabled", f3: "flagged", f4: "flagged"}
        assert {row: data["outcome"] for row, data in results.items()} == {
            f"disable:{f2}": "done",
            f"disable:{f3}": "skipped",
            f"flag:{f4}": "done",
        }
        assert "more than Teams" in results[f"disable:{f3}"]["detail"]

        # approving again is accepted (the plan is still valid) and changes nothing: every action is done
        emulator.control.clear_requests()
        caplog.set_level(logging.INFO, "guestctl.functions.partners")
        again = await client.post(approve, headers={"x-approver": "Ada"})
        assert again.status_code == 202
        assert await asyncio.to_thread(host.drain, RETIREMENTS) == 1
    assert f"partner retirement {plan_id}: {{'disable already-done': 2, 'flag already-done': 1}}" in caplog.text
    assert [r for r in emulator.control.requests() if r["method"] not in ("GET", "POST")] == []
    assert ("apply_partner_retirement", "raised") not in host.invocations
    async with open_state(settings) as store:
        audited = [e.action async for e in store.read_audit(run_id=f"retire-{plan_id}")]
    assert audited == ["guest.disable"]
