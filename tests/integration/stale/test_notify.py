"""Sponsor notices after flagging: one email per sponsor listing their guests, once per run."""

from __future__ import annotations

from emulator.seed import seed_tenant
from emulator.testing import EmulatorServer
from shared.config import Policy
from shared.graph import Graph
from shared.stale import apply_plan, exemptions_now, plan_sweep
from shared.stale.notify import notify_sponsors
from shared.store import Store
from tests.support.stale import NOW


def notifying_policy(emulator: EmulatorServer) -> Policy:
    """Sponsor notices on, sent from a member's mailbox of the emulated tenant."""
    sender = next(
        u
        for u in emulator.tenant.users.values()
        if u.userType == "Member" and u.mail and "#EXT#" not in u.userPrincipalName
    )
    return Policy.model_validate(
        {
            "invitations": {"sender_mailbox": sender.userPrincipalName},
            "stale": {"notify_sponsors": True},
            "safety": {"max_actions": 1000, "max_percent": 100},
        }
    )


async def test_each_sponsor_gets_one_notice_listing_their_flagged_guests(
    emulator: EmulatorServer, graph: Graph, store: Store
) -> None:
    emulator.reset(seed_tenant(12, guests=150, members=25, now=NOW))
    tenant = emulator.tenant
    policy = notifying_policy(emulator)
    plan = await plan_sweep(graph, store, policy, now=NOW, scan_id="n1", tenant_id=None)
    results = await apply_plan(
        plan, graph, store, policy, await exemptions_now(graph, policy), actor="t", clock=lambda: NOW
    )
    notices, unsponsored = await notify_sponsors(plan, results, graph, store, policy, now=NOW)

    flagged = {a.target_id for a in plan.actions}
    expected: dict[str, set[str]] = {}
    for guest_id in flagged:
        for sponsor_id in tenant.users[guest_id].sponsors:
            expected.setdefault(tenant.users[sponsor_id].mail, set()).add(guest_id)
    mails = emulator.control.outbox(kind="mail")
    assert {m["to"][0] for m in mails} == set(expected)
    assert len(mails) == len(expected), "one notice per sponsor"
    for mail in mails:
        listed = {g for g in expected[mail["to"][0]] if tenant.users[g].mail in mail["body"]}
        assert listed == expected[mail["to"][0]], "each notice lists exactly that sponsor's guests"
        assert mail["subject"] == "Guest accounts you sponsor will be disabled on 2026-12-11"
    without = [g for g in flagged if not tenant.users[g].sponsors]
    assert len(unsponsored) == len(without)
    assert {n.outcome for n in notices} == {"sent"}

    again, _ = await notify_sponsors(plan, results, graph, store, policy, now=NOW)
    assert {n.outcome for n in again} == {"already sent"}
    assert len(emulator.control.outbox(kind="mail")) == len(expected)


async def test_notices_a_crash_left_unsent_go_out_when_the_run_is_applied_again(
    emulator: EmulatorServer, graph: Graph, store: Store
) -> None:
    emulator.reset(seed_tenant(13, guests=120, members=25, now=NOW))
    policy = notifying_policy(emulator)
    plan = await plan_sweep(graph, store, policy, now=NOW, scan_id="n2", tenant_id=None)
    exemptions = await exemptions_now(graph, policy)
    await apply_plan(plan, graph, store, policy, exemptions, actor="t", clock=lambda: NOW)
    # ...the process died here, before any notice was sent. The rerun finds every flag already done:
    rerun = await apply_plan(plan, graph, store, policy, exemptions, actor="t", clock=lambda: NOW)
    assert {r.outcome.value for r in rerun} == {"already-done"}
    notices, _ = await notify_sponsors(plan, rerun, graph, store, policy, now=NOW)
    assert notices
    assert {n.outcome for n in notices} == {"sent"}
    assert len(emulator.control.outbox(kind="mail")) == len(notices)
