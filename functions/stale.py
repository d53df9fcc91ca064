"""Stale-guest sweeps in Azure Functions (docs/stale.md).

timer  GUESTCTL_SWEEP_SCHEDULE (app setting, NCRONTAB, UTC; default weekly, Mondays 06:00 — the policy's
       schedules.sweep default). Read when the app starts: changing the setting restarts the app.
       GUESTCTL_SWEEP_MODE=plan (default): scan, plan, keep the plan for approval, log a summary
       GUESTCTL_SWEEP_MODE=apply: also apply it, within the policy's caps
       GUESTCTL_SWEEP_TIME_BUDGET (seconds, default 420): past it the sweep continues through the queue
queue  stale-sweeps: continues a sweep that ran out of time, from its checkpoint
POST /api/sweeps/{plan_id}/approve   apply a kept plan after review (re-validated: age, tenant, policy)
"""

from __future__ import annotations

import logging
import os

import azure.functions as func

from functions.http import error_response, json_response
from shared.errors import GuestctlError

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
    import json

    from shared.stale.service import scheduled_sweep

    summary = await scheduled_sweep(
        apply=os.environ.get("GUESTCTL_SWEEP_MODE", "plan").lower() == "apply",
        scan_id=scan_id,
        time_budget=float(os.environ.get("GUESTCTL_SWEEP_TIME_BUDGET", DEFAULT_TIME_BUDGET)),
    )
    if "continue" in summary:
        more.set(json.dumps({"scan_id": summary["continue"]}))  # the next invocation resumes this sweep
        log.info("stale-guest sweep %s continues in the next invocation", summary["continue"])
    else:
        log.info("stale-guest sweep: %s", summary)


@bp.timer_trigger(arg_name="timer", schedule=SCHEDULE, run_on_startup=False)
@bp.queue_output(arg_name="more", queue_name=QUEUE, connection=STORAGE)
async def stale_sweep(timer: func.TimerRequest, more: func.Out[str]) -> None:
    await _sweep(None, more)


@bp.queue_trigger(arg_name="message", queue_name=QUEUE, connection=STORAGE)
@bp.queue_output(arg_name="more", queue_name=QUEUE, connection=STORAGE)
async def continue_stale_sweep(message: func.QueueMessage, more: func.Out[str]) -> None:
    """A large tenant's sweep, continued where the previous invocation ran out of time."""
    import json

    await _sweep(json.loads(message.get_body())["scan_id"], more)


@bp.route(route="sweeps/{plan_id}/approve", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def approve_sweep(req: func.HttpRequest) -> func.HttpResponse:
    from shared.stale.service import approve

    try:
        return json_response(await approve(req.route_params["plan_id"], approver=req.headers.get("x-approver")))
    except GuestctlError as error:
        return error_response(error)
