"""What the Functions triggers call: one function each, settings from the app settings."""

from __future__ import annotations

from typing import Any

from shared.clock import utc_now


async def scheduled_sweep(
    *, apply: bool, scan_id: str | None = None, time_budget: float | None = None
) -> dict[str, Any]:
    """Plan (and in apply mode, apply) a sweep; the plan is kept in the store for approval.

    With a time budget the sweep may stop early: the result is then `{"continue": scan_id}` and the
    caller hands that to the next invocation (the queue), which resumes the same sweep.
    """
    from shared.config import load_policy, load_settings
    from shared.graph import get_graph
    from shared.stale import apply_plan, exemptions_now, plan_sweep, save_plan
    from shared.store import open_state

    settings = load_settings()
    policy = load_policy(settings.policy)
    graph = get_graph(settings)
    now = utc_now()
    scan_id = scan_id or f"timer-{now:%Y%m%dT%H%M%S}"
    async with open_state(settings) as store:
        plan = await plan_sweep(
            graph, store, policy, now=now, scan_id=scan_id, tenant_id=settings.tenant_id, time_budget=time_budget
        )
        if plan is None:
            return {"continue": scan_id}
        plan_id = await save_plan(store, plan)
        summary: dict[str, Any] = {
            "plan_id": plan_id,
            "guests": plan.guests,
            "counts": plan.counts,
            "actions": len(plan.actions),
            "refused": plan.refused,
            "notes": list(plan.notes),
        }
        if apply and not plan.refused:
            results = await apply_plan(
                plan, graph, store, policy, await exemptions_now(graph, policy), actor="function stale_sweep"
            )
            summary["applied"] = _outcomes(results)
            summary["sponsor_notices"] = await _notify(plan, results, graph, store, policy)
    return summary


async def approve(plan_id: str, *, approver: str | None) -> dict[str, Any]:
    """Apply a kept plan once a person approved it; refused if stale, for another tenant or policy."""
    from shared.config import load_policy, load_settings
    from shared.graph import get_graph
    from shared.stale import apply_plan, check_saved_plan, exemptions_now, load_plan, run_id_for
    from shared.store import open_state

    settings = load_settings()
    policy = load_policy(settings.policy)
    graph = get_graph(settings)
    async with open_state(settings) as store:
        plan = await load_plan(store, plan_id)
        check_saved_plan(plan, policy, tenant_id=settings.tenant_id, now=utc_now())
        results = await apply_plan(
            plan,
            graph,
            store,
            policy,
            await exemptions_now(graph, policy),
            actor=f"function approve_sweep (approved by {approver or 'function key holder'})",
        )
        notices = await _notify(plan, results, graph, store, policy)
    return {
        "plan_id": plan_id,
        "run_id": run_id_for(plan),
        "outcomes": _outcomes(results),
        "sponsor_notices": notices,
        "not_done": [
            {
                "action": r.action.kind.value,
                "target_id": r.action.target_id,
                "outcome": r.outcome.value,
                "detail": r.detail,
            }
            for r in results
            if r.outcome.value in ("skipped", "failed")
        ],
    }


async def _notify(plan: Any, results: list[Any], graph: Any, store: Any, policy: Any) -> list[dict[str, Any]]:
    from shared.stale.notify import notify_sponsors

    notices, unsponsored = await notify_sponsors(plan, results, graph, store, policy, now=utc_now())
    listed = [{"sponsor": n.sponsor, "guests": n.guests, "outcome": n.outcome} for n in notices]
    if unsponsored:
        listed.append({"sponsor": None, "guests": len(unsponsored), "outcome": "no sponsor to notify"})
    return listed


async def _notify(plan: Any, results: list[Any], graph: Any, store: Any, policy: Any) -> list[dict[str, Any]]:
    from shared.stale.notify import notify_sponsors

    notices, unsponsored = await notify_sponsors(plan, results, graph, store, policy, now=utc_now())
    listed = [{"sponsor": n.sponsor, "guests": n.guests, "outcome": n.outcome} for n in notices]
    if unsponsored:
        listed.append({"sponsor": None, "guests": len(unsponsored), "outcome": "no sponsor to notify"})
    return listed


def _outcomes(results: list[Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for result in results:
        key = f"{result.action.kind.value} {result.outcome.value}"
        counts[key] = counts.get(key, 0) + 1
    return counts
