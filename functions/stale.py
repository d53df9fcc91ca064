"""Stale-guest sweeps in Azure Functions (docs/stale.md).

timer  GUESTCTL_SWEEP_SCHEDULE (app setting, NCRONTAB; the deployment copies policy schedules.sweep)
       GUESTCTL_SWEEP_MODE=plan (default): scan, plan, keep the plan for approval, log a summary
       GUESTCTL_SWEEP_MODE=apply: also apply it, within the policy's caps
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


@bp.timer_trigger(arg_name="timer", schedule="%GUESTCTL_SWEEP_SCHEDULE%", run_on_startup=False)
async def stale_sweep(timer: func.TimerRequest) -> None:
    from shared.stale.service import scheduled_sweep

    summary = await scheduled_sweep(apply=os.environ.get("GUESTCTL_SWEEP_MODE", "plan").lower() == "apply")
    log.info("stale-guest sweep: %s", summary)


@bp.route(route="sweeps/{plan_id}/approve", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def approve_sweep(req: func.HttpRequest) -> func.HttpResponse:
    from shared.stale.service import approve

    try:
        return json_response(await approve(req.route_params["plan_id"], approver=req.headers.get("x-approver")))
    except GuestctlError as error:
        return error_response(error)
