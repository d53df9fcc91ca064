"""Stale-guest sweeps in Azure Functions (docs/stale.md).

timer  GUESTCTL_SWEEP_SCHEDULE (app setting, NCRONTAB, UTC; set it to 0 0 6 * * 1, weekly on Mondays at
       06:00, the policy's schedules.sweep default). The host resolves it when the app starts (changing it
       restarts the app); without it the timer does not load, and GET /api/health says so.
       Scans and plans; the plan is kept in the store under its plan id for review.
       GUESTCTL_SWEEP_MODE=apply: a plan within the caps is then applied (a queue step).
       GUESTCTL_SWEEP_TIME_BUDGET (seconds, default 420): past it the sweep continues through the queue.
queue  stale-sweeps: {"scan_id"} continues a sweep from its checkpoint; {"apply"} applies a kept plan.
       Each step is resumable: a step that times out is delivered again and carries on. A malformed
       message or a configuration error goes to stale-sweeps-poison at once, with the reason.
POST /api/sweeps/{plan_id}/approve   checks a kept plan (age, tenant, policy, caps) at once: 409/404, or
                                     202 and the apply is queued
GET  /api/sweeps/{plan_id}           the plan's summary and how far applying it has got
"""

from __future__ import annotations

import json
import logging

import azure.functions as func
import msgspec

from functions.http import error_response, json_response, public_line
from functions.pause import hold_message, skip_timer
from functions.queues import POISON_SUFFIX, is_transient, to_poison
from functions.telemetry import run_ids
from shared.errors import GuestctlError, InputError, RefusedError, UnknownItemError
from shared.queue_messages import decode_message

bp = func.Blueprint()
log = logging.getLogger("guestctl.functions.stale")


QUEUE = "stale-sweeps"
STORAGE = "AzureWebJobsStorage"
MAX_APPROVER_CHARS = 256  # the stated approver is recorded in the audit log: a header is not unbounded there
# A binding expression: the host reads the app setting itself, so this module reads no settings at import
# (Settings would load pydantic on the cold-start path). It has no default: health checks that it is set.
SCHEDULE = "%GUESTCTL_SWEEP_SCHEDULE%"


async def _sweep(scan_id: str | None, more: func.Out[str]) -> None:
    from shared.stale.service import scheduled_sweep

    result = await scheduled_sweep(scan_id=scan_id)
    if result.continue_scan is not None:
        more.set(json.dumps({"scan_id": result.continue_scan}))  # the next invocation resumes this sweep
        log.info(
            "stale-guest sweep %s continues in the next invocation",
            result.continue_scan,
            extra=run_ids(scan_id=result.continue_scan),
        )
        return
    summary = result.to_json()
    log.info("stale-guest sweep: %s", summary, extra=run_ids(summary))
    if summary.get("refused"):  # the alert plan-refused (docs/operations.md) looks for this warning
        log.warning("stale-guest plan %s refused: %s", summary["plan_id"], summary["refused"], extra=run_ids(summary))
    if result.apply:
        more.set(json.dumps({"apply": result.plan_id, "actor": "function stale_sweep (GUESTCTL_SWEEP_MODE=apply)"}))


@bp.timer_trigger(arg_name="timer", schedule=SCHEDULE, run_on_startup=False)
@bp.queue_output(arg_name="more", queue_name=QUEUE, connection=STORAGE)
async def stale_sweep(timer: func.TimerRequest, more: func.Out[str]) -> None:
    if skip_timer("stale_sweep"):
        return
    await _sweep(None, more)


class SweepStep(msgspec.Struct, forbid_unknown_fields=True):
    """A `stale-sweeps` message: {"scan_id"} continues a sweep, {"apply", "actor"} applies a kept plan."""

    scan_id: str | None = None
    apply: str | None = None
    actor: str | None = None


def decode_step(body: bytes) -> SweepStep:
    """The step a queue message asks for, or InputError saying why it is malformed."""
    step = decode_message(body, SweepStep, QUEUE)
    if (step.scan_id is None) == (step.apply is None):
        raise InputError('malformed stale-sweeps queue message: it needs exactly one of "scan_id" and "apply"')
    if step.apply is not None and not step.actor:
        raise InputError('malformed stale-sweeps queue message: "apply" needs an "actor"')
    return step


@bp.queue_trigger(arg_name="message", queue_name=QUEUE, connection=STORAGE)
@bp.queue_output(arg_name="more", queue_name=QUEUE, connection=STORAGE)
@bp.queue_output(arg_name="poison", queue_name=QUEUE + POISON_SUFFIX, connection=STORAGE)
async def continue_stale_sweep(message: func.QueueMessage, more: func.Out[str], poison: func.Out[str]) -> None:
    """The next step of a sweep: more pages to plan, or a kept plan to apply. A transient failure raises (the
    host retries); a malformed message or a configuration error goes to the poison queue at once."""
    hold_message("continue_stale_sweep", message.id)
    try:
        await _step(decode_step(message.get_body()), more)
    except GuestctlError as error:
        if is_transient(error):
            raise
        to_poison(poison, message, public_line(error.one_line()), log)


async def _step(step: SweepStep, more: func.Out[str]) -> None:
    from shared.stale.service import apply_kept_plan

    if step.apply is None:
        await _sweep(step.scan_id, more)
        return
    try:
        run = await apply_kept_plan(step.apply, actor=step.actor or "")
        log.info("stale-guest apply: %s", run.to_json(), extra=run_ids(run.to_json()))
    except (RefusedError, UnknownItemError) as error:  # too old, another policy, gone: retrying cannot help
        log.error(
            "stale-guest apply of plan %s refused: %s", step.apply, error.one_line(), extra=run_ids(plan_id=step.apply)
        )


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
    approver = (req.headers.get("x-approver") or "unnamed")[:MAX_APPROVER_CHARS]
    log.info(
        "stale-guest plan %s approved as run %s (the approver is in the audit log)",
        plan_id,
        accepted["run_id"],
        extra=run_ids(plan_id=plan_id, run_id=accepted["run_id"]),
    )
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
