"""What the Functions triggers call: one function each, settings from the app settings.

Planning and applying are separate queue steps, each resumable: a plan is kept in the store under its
id, and applying it is keyed by the plan (its run id), so an invocation that times out and is delivered
again continues the same run instead of planning anew.
"""

from __future__ import annotations

from typing import Any

from shared.clock import utc_now


async def scheduled_sweep(
    *, apply: bool, scan_id: str | None = None, time_budget: float | None = None
) -> dict[str, Any]:
    """Plan a sweep and keep the plan in the store for approval (or, in apply mode, for the apply step).

    With a time budget the sweep may stop early: the result is then `{"continue": scan_id}` and the
    caller hands that to the next invocation (the queue), which resumes the same sweep. In apply mode a
    finished plan within the caps comes back with `{"apply": plan_id}` for the caller to queue.
    """
    from shared.config import load_policy, load_settings
    from shared.graph import get_graph
    from shared.stale import plan_sweep, plan_tenant, run_id_for, save_plan
    from shared.store import open_state

    settings = load_settings()
    policy = load_policy(settings.policy)
    tenant_id = plan_tenant(settings)
    graph = get_graph(settings)
    now = utc_now()
    scan_id = scan_id or f"timer-{now:%Y%m%dT%H%M%S}"
    async with open_state(settings) as store:
        plan = await plan_sweep(
            graph, store, policy, now=now, scan_id=scan_id, tenant_id=tenant_id, time_budget=time_budget
        )
        if plan is None:
            return {"continue": scan_id}
        plan_id = await save_plan(store, plan)
    summary: dict[str, Any] = {
        "plan_id": plan_id,
        "run_id": run_id_for(plan),
        "guests": plan.guests,
        "counts": plan.counts,
        "actions": len(plan.actions),
        "refused": plan.refused,
        "notes": list(plan.notes),
    }
    if apply and not plan.refused and plan.actions:
        summary["apply"] = plan_id
    return summary


async def check_approval(plan_id: str) -> dict[str, Any]:
    """Whether a kept plan may be applied now (recent, this tenant, this policy, within the caps).

    Raises the refusal (404 unknown, 409 refused) so that an approval is answered at once; the apply
    itself runs as a queue step (`apply_kept_plan`), not inside the HTTP request.
    """
    from shared.config import load_policy, load_settings
    from shared.graph import get_graph
    from shared.stale import check_applicable, load_plan, plan_tenant, run_id_for
    from shared.store import open_state

    settings = load_settings()
    policy = load_policy(settings.policy)
    async with open_state(settings) as store:
        plan = await load_plan(store, plan_id)
    await check_applicable(plan, get_graph(settings), policy, tenant_id=plan_tenant(settings), now=utc_now())
    return {"plan_id": plan_id, "run_id": run_id_for(plan), "actions": len(plan.actions)}


async def apply_kept_plan(plan_id: str, *, actor: str) -> dict[str, Any]:
    """Apply a kept plan (again checked first) and send the sponsor notices; a rerun continues the run."""
    from shared.config import load_policy, load_settings
    from shared.graph import get_graph
    from shared.stale import (
        apply_plan,
        exemptions_now,
        load_plan,
        outcome_counts,
        plan_tenant,
        run_id_for,
    )
    from shared.store import open_state

    settings = load_settings()
    policy = load_policy(settings.policy)
    graph = get_graph(settings)
    async with open_state(settings) as store:
        plan = await load_plan(store, plan_id)
        exemptions = await exemptions_now(graph, policy)
        results = await apply_plan(plan, graph, store, policy, exemptions, actor=actor, tenant_id=plan_tenant(settings))
        notices = await _notify(plan, results, graph, store, policy)
    return {
        "plan_id": plan_id,
        "run_id": run_id_for(plan),
        "outcomes": outcome_counts(results),
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


async def sweep_status(plan_id: str) -> dict[str, Any]:
    """A kept plan's summary and how far applying it has got (action records by state and outcome)."""
    from shared.config import load_settings
    from shared.errors import UnknownItemError
    from shared.stale import PLANS_TABLE
    from shared.stale.apply import ACTIONS_TABLE, run_id_of
    from shared.store import open_state

    settings = load_settings()
    async with open_state(settings) as store:
        meta = await store.get(PLANS_TABLE, plan_id, "meta")
        if meta is None:
            raise UnknownItemError(f"no saved sweep plan {plan_id!r}", hint="use the plan id the sweep reported")
        run_id = run_id_of(plan_id)
        progress: dict[str, int] = {}
        applying = False
        async for record in store.query(ACTIONS_TABLE, run_id):
            if record.row == "lease":
                applying = True
                continue
            if ":" not in record.row or record.row.startswith("notify:"):
                continue
            kind = record.row.split(":", 1)[0]
            state = record.data.get("outcome") or record.data.get("state", "?")
            key = f"{kind} {state}"
            progress[key] = progress.get(key, 0) + 1
    fields = ("created_at", "guests", "actions", "refused", "counts")
    return {
        "plan_id": plan_id,
        "run_id": run_id,
        **{k: meta.data.get(k) for k in fields},
        "applying": applying,
        "progress": progress,
    }


async def _notify(plan: Any, results: list[Any], graph: Any, store: Any, policy: Any) -> list[dict[str, Any]]:
    from shared.stale.notify import notify_sponsors

    notices, unsponsored = await notify_sponsors(plan, results, graph, store, policy, now=utc_now())
    listed = [{"sponsor": n.sponsor, "guests": n.guests, "outcome": n.outcome} for n in notices]
    if unsponsored:
        listed.append({"sponsor": None, "guests": len(unsponsored), "outcome": "no sponsor to notify"})
    return listed
