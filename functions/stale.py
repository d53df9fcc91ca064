"""Stale-guest sweeps in Azure Functions (docs/stale.md).

timer  GUESTCTL_SWEEP_SCHEDULE (app setting, NCRONTAB, UTC; default weekly, Mondays 06:00 — the policy's
       schedules.sweep default). Read when the app starts: changing the setting restarts the app.
       Scans and plans; the plan is kept in the store under its plan id for review.
       GUESTCTL_SWEEP_MODE=apply: a plan within the caps is then applied (a queue step).
       GUESTCTL_SWEEP_TIME_BUDGET (seconds, default 420): past it the sweep continues through the queue.
queue  stale-sweeps: {"scan_id"} continues a sweep from its checkpoint; {"apply"} applies a kept plan.
       Each step is resumable: a step that times out is delivered again and carries on.
POST /api/sweeps/{plan_id}/approve   checks a kept plan (age, tenant, policy, caps) at once: 409/404, or
                                     202 and the apply is queued
GET  /api/sweeps/{plan_id}           the plan's summary and how far applying it has got
"""

from __future__ import annotations

import json
import logging
import os

import azure.functions as func

from functions.http import error_response, json_response
from shared.errors import GuestctlError, RefusedError, UnknownItemError

bp = func.Blueprint()
log = logging.getLogger("guestctl.functions.stale")


QUEUE = "stale-sweeps"
STORAGE = "AzureWebJobsStorage"
DEFAULT_TIME_BUDGET = 420.0  # seconds: well inside the 10-minute function timeout (host.json)
DEFAULT_SCHEDULE = "0 0 6 * * 1"  # weekly, Mondays 06:00 UTC (policy schedules.sweep's default)
# Not "%GUESTCTL_SWEEP_SCHEDULE%": a binding expression has no default, and an app without the setting
# would fail to load the function.
SCHEDULE = os.environ.get("GUESTCTL_SWEEP_SCHEDULE") or DEFAULT_SCHEDULE


async def _sweep(scan_id: str | None, more: func.Out[str]) -> None:
    from shared.stale.service import scheduled_sweep

    summary = await scheduled_sweep(
        apply=os.environ.get("GUESTCTL_SWEEP_MODE", "plan").lower() == "apply",
        scan_id=scan_id,
        time_budget=float(os.environ.get("GUESTCTL_SWEEP_TIME_BUDGET", DEFAULT_TIME_BUDGET)),
    )
    if "continue" in summary:
        more.set(json.dumps({"scan_id": summary["continue"]}))  # the next invocation resumes this sweep
        log.info("stale-guest sweep %s continues in the next invocation", summary["continue"])
        return
    log.info("stale-guest sweep: %s", summary)
    if "apply" in summary:
        more.set(json.dumps({"apply": summary["apply"], "actor": "function stale_sweep (GUESTCTL_SWEEP_MODE=apply)"}))


@bp.timer_trigger(arg_name="timer", schedule=SCHEDULE, run_on_startup=False)
@bp.queue_output(arg_name="more", queue_name=QUEUE, connection=STORAGE)
async def stale_sweep(timer: func.TimerRequest, more: func.Out[str]) -> None:
    await _sweep(None, more)


@bp.queue_trigger(arg_name="message", queue_name=QUEUE, connection=STORAGE)
@bp.queue_output(arg_name="more", queue_name=QUEUE, connection=STORAGE)
async def continue_stale_sweep(message: func.QueueMessage, more: func.Out[str]) -> None:
    """The next step of a sweep: more pages to plan, or a kept plan to apply."""
    from shared.stale.service import apply_kept_plan

    step = json.loads(message.get_body())
    if "apply" not in step:
        await _sweep(step["scan_id"], more)
        return
    try:
        log.info("stale-guest apply: %s", await apply_kept_plan(step["apply"], actor=step["actor"]))
    except (RefusedError, UnknownItemError) as error:  # too old, another policy, gone: retrying cannot help
        log.error("stale-guest apply of plan %s refused: %s", step["apply"], error.one_line())


@bp.route(route="sweeps/{plan_id}/approve", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.queue_output(arg_name="more", queue_name=QUEUE, connection=STORAGE)
async def approve_sweep(req: func.HttpRequest, more: func.Out[str]) -> func.HttpResponse:
    from shared.stale.service import check_approval

    plan_id = req.route_params["plan_id"]
    try:
        accepted = await check_approval(plan_id)
    except GuestctlError as error:
        return error_response(error)
    # The function key authenticates the caller; x-approver is who they say approved it (recorded as such).
    approver = req.headers.get("x-approver") or "unnamed"
    more.set(
        json.dumps({"apply": plan_id, "actor": f"function approve_sweep (function key; approver stated: {approver})"})
    )
    return json_response({**accepted, "status": f"/api/sweeps/{plan_id}"}, 202)


@bp.route(route="sweeps/{plan_id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
async def sweep_status(req: func.HttpRequest) -> func.HttpResponse:
    from shared.stale.service import sweep_status as status

    try:
        return json_response(await status(req.route_params["plan_id"]))
    except GuestctlError as error:
        return error_response(error)
