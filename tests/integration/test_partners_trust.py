"""Configuring trust against the emulator, on SQLite and on Azurite: plan → apply → rollback puts every
setting back exactly, a partner changed after planning is skipped, partners the policy does not name and
the default policy are never touched, and a plan over 25 KB is refused with nothing written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from emulator.testing import EmulatorServer
from shared.config import Policy
from shared.core.apply import Outcome
from shared.errors import RefusedError
from shared.graph import Graph
from shared.partners.trust_effects import DEFAULT_PATH, PARTNERS_PATH, partner_path, read_partners
from shared.partners.trust_service import apply_trust, plan_trust, rollback_trust
from shared.store import Store
from tests.support.cli import emulator_settings, run_guestctl

GROUP = "6f546279-4da5-4b53-a095-09ea0cef9971"
OURS = "2d3ff2a3-4ad1-4d4f-8a43-9c5f0b0f4c11"
TRUST = {"isMfaAccepted": False, "isCompliantDeviceAccepted": True, "isHybridAzureADJoinedDeviceAccepted": False}


@pytest.fixture
def partners(emulator: EmulatorServer) -> list[dict[str, Any]]:
    """The demo tenant's partner tenants (Fabrikam, Northwind Traders, Adventure Works, …)."""
    return emulator.control.external_tenants()


def policy_for(partners: list[dict[str, Any]]) -> dict[str, Any]:
    """A new partner by domain, an existing one patched (trust and outbound); the third is not named."""
    fabrikam, northwind = partners[0], partners[1]
    return {
        "partners": {
            "tenants": [
                {
                    "tenant": fabrikam["domains"][0],
                    "name": "Fabrikam",
                    "inbound": {"users": "all"},
                    "trust": {"mfa": True},
                },
                {
                    "tenant": northwind["tenantId"],
                    "inbound": {"groups": [GROUP]},
                    "trust": {"mfa": True},
                    "outbound": {"groups": [OURS]},
                },
            ]
        }
    }


async def existing(graph: Graph, partners: list[dict[str, Any]]) -> None:
    """Northwind is configured by hand already; Adventure Works too, and the policy never names it."""
    for other in partners[1:3]:
        body = {"tenantId": other["tenantId"], "inboundTrust": TRUST}
        await graph.request("POST", PARTNERS_PATH, json_body=body)


async def whole_policy(graph: Graph) -> dict[str, Any]:
    default = await graph.get_json(DEFAULT_PATH)
    return {"default": default, "partners": sorted(await read_partners(graph), key=lambda p: p["tenantId"])}


async def test_plan_apply_rollback_round_trips_exactly(
    graph: Graph, store: Store, partners: list[dict[str, Any]]
) -> None:
    await existing(graph, partners)
    policy = Policy.model_validate(policy_for(partners))
    original = await whole_policy(graph)

    plan = await plan_trust(graph, policy, tenant_id=None)
    assert [(p.label, p.kind and p.kind.value) for p in plan.partners] == [
        ("Fabrikam", "create"),
        (partners[1]["tenantId"], "update"),
    ]
    run = await apply_trust(plan, graph, store, policy, tenant_id=None, actor="t")
    assert [r.outcome for r in run.results] == [Outcome.DONE, Outcome.DONE]
    applied = await whole_policy(graph)
    assert applied["default"] == original["default"]
    untouched = partners[2]["tenantId"]
    assert [p for p in applied["partners"] if p["tenantId"] == untouched] == [
        p for p in original["partners"] if p["tenantId"] == untouched
    ]
    northwind = await graph.get_json(partner_path(partners[1]["tenantId"]))
    assert northwind["inboundTrust"] == {**TRUST, "isMfaAccepted": True, "isCompliantDeviceAccepted": False}
    assert northwind["b2bDirectConnectOutbound"]["usersAndGroups"]["targets"] == [
        {"target": OURS, "targetType": "group"}
    ]

    again = await apply_trust(plan, graph, store, policy, tenant_id=None, actor="t")
    assert {r.outcome for r in again.results} == {Outcome.ALREADY_DONE}
    assert (await plan_trust(graph, policy, tenant_id=None)).actions == []
    audited = [(e.action, e.before) async for e in store.read_audit(run_id=run.run_id)]
    assert sorted(name for name, _ in audited) == ["partner.create", "partner.update"]
    assert {"configuration": None} in [before for _, before in audited]

    undone = await rollback_trust(graph, store, run.run_id, actor="t")
    assert {r.outcome for r in undone} == {Outcome.DONE}
    assert await whole_policy(graph) == original
    second = await rollback_trust(graph, store, run.run_id, actor="t")
    assert {r.outcome for r in second} == {Outcome.ALREADY_DONE}


async def test_a_rollback_delete_whose_answer_was_lost_is_done(
    emulator: EmulatorServer, graph: Graph, store: Store, partners: list[dict[str, Any]]
) -> None:
    """The DELETE is carried out and its answer lost; the retry finds the partner gone: deleted, not refused."""
    policy = Policy.model_validate({"partners": {"tenants": policy_for(partners)["partners"]["tenants"][:1]}})
    run = await apply_trust(await plan_trust(graph, policy, tenant_id=None), graph, store, policy, tenant_id=None,
                            actor="t")  # fmt: skip
    fabrikam = partners[0]["tenantId"]
    emulator.control.set_faults(drop_rate=1.0, method="DELETE", path_prefix=partner_path(fabrikam))

    undone = await rollback_trust(graph, store, run.run_id, actor="t")

    assert [r.outcome for r in undone] == [Outcome.DONE]
    assert [f["kind"] for f in emulator.control.injected_faults()] == ["drop"]
    assert fabrikam not in {p["tenantId"] for p in await read_partners(graph)}
    audited = [e.action async for e in store.read_audit(target_id=fabrikam)]
    assert audited == ["partner.create", "partner.delete"]


async def test_a_partner_changed_after_planning_is_skipped(
    graph: Graph, store: Store, partners: list[dict[str, Any]]
) -> None:
    await existing(graph, partners)
    policy = Policy.model_validate(policy_for(partners))
    plan = await plan_trust(graph, policy, tenant_id=None)
    northwind = partners[1]["tenantId"]
    meanwhile = {**TRUST, "isHybridAzureADJoinedDeviceAccepted": True}
    await graph.request("PATCH", partner_path(northwind), json_body={"inboundTrust": meanwhile})

    run = await apply_trust(plan, graph, store, policy, tenant_id=None, actor="t")

    outcomes = {r.action.tenant_id: (r.outcome, r.detail) for r in run.results}
    assert outcomes[northwind] == (Outcome.SKIPPED, "changed since the plan (inboundTrust): plan again")
    assert outcomes[partners[0]["tenantId"]][0] is Outcome.DONE
    assert (await graph.get_json(partner_path(northwind)))["inboundTrust"] == meanwhile
    assert [e.target_id async for e in store.read_audit(run_id=run.run_id)] == [partners[0]["tenantId"]]


async def test_a_plan_over_25_kb_is_refused_with_nothing_written(
    graph: Graph, store: Store, partners: list[dict[str, Any]]
) -> None:
    users = [f"{i:08x}-0000-4000-8000-000000000000" for i in range(600)]
    many = {"partners": {"tenants": [{"tenant": partners[0]["tenantId"], "inbound": {"users": users}}]}}
    policy = Policy.model_validate(many)
    original = await whole_policy(graph)

    plan = await plan_trust(graph, policy, tenant_id=None)
    assert plan.refused is not None
    with pytest.raises(RefusedError, match="25 KB"):
        await apply_trust(plan, graph, store, policy, tenant_id=None, actor="t")

    assert await whole_policy(graph) == original
    assert [e async for e in store.read_audit()] == []


def test_cli_plan_apply_rollback_and_refusal(emulator: EmulatorServer, tmp_path: Path) -> None:
    partners = emulator.control.external_tenants()
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(policy_for(partners)))
    env = emulator_settings(emulator, tmp_path, policy)

    planned = run_guestctl("partners", "plan", "--out", "plan.json", cwd=tmp_path, env=env)
    assert planned.returncode == 0, planned.stderr
    assert "b2bDirectConnectInbound" in planned.stdout
    applied = run_guestctl("partners", "apply", "--plan", "plan.json", "--json", cwd=tmp_path, env=env)
    assert applied.returncode == 0, applied.stderr
    run = json.loads(applied.stdout)
    assert run["outcomes"] == {"create done": 2}
    rolled = run_guestctl("partners", "rollback", "--run", run["run_id"], cwd=tmp_path, env=env)
    assert rolled.returncode == 0, rolled.stderr
    assert "done: 2" in rolled.stdout

    users = [f"{i:08x}-0000-4000-8000-000000000000" for i in range(600)]
    policy.write_text(
        yaml.safe_dump({"partners": {"tenants": [{"tenant": partners[0]["tenantId"], "inbound": {"users": users}}]}})
    )
    refused = run_guestctl("partners", "plan", "--out", "big.json", cwd=tmp_path, env=env)
    assert refused.returncode == 3
    assert "25 KB" in refused.stderr
    assert not (tmp_path / "big.json").exists()
