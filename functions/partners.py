"""Partners in Azure Functions (docs/partners.md).

timer  daily at 05:00 UTC (GUESTCTL_PARTNER_DISCOVERY_SCHEDULE's default): discovers the partners again
       (read-only: guests by home tenant, what they use, cross-tenant settings, sign-ins) and keeps the
       summary in the store, where `guestctl partners discover` and reports find the latest one. Tenant
       lookups come from the store's 7-day cache, so a daily run costs Graph one lookup per new domain. It
       never changes cross-tenant settings.
timer  daily at 05:30 UTC (GUESTCTL_PARTNER_VERIFICATION_SCHEDULE's default): verification (the sign-in
       log's last 2 days into the day tallies), then a retirement plan, kept in the store for approval when
       it has something to do. Changes nothing.
queue  partner-retirements: {"apply", "actor"} applies an approved retirement plan (resumable: a step that
       times out is delivered again and continues the same run). A malformed message goes to the poison
       queue at once, with the reason.
POST /api/partners/plans/{plan_id}/approve   checks a kept retirement plan (age, tenant, policy, caps) at
                                             once: 409/404, or 202 and the apply is queued
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
from shared.errors import GuestctlError, RefusedError, UnknownItemError
from shared.queue_messages import decode_message

bp = func.Blueprint()
log = logging.getLogger("guestctl.functions.partners")

# App settings the host resolves (defaults: shared/config.py Settings, set by infra/main.bicep)
DISCOVERY_SCHEDULE = "%GUESTCTL_PARTNER_DISCOVERY_SCHEDULE%"  # default daily 05:00 UTC
VERIFICATION_SCHEDULE = "%GUESTCTL_PARTNER_VERIFICATION_SCHEDULE%"  # default 05:30, after discovery
VERIFICATION_DAYS = 2  # yesterday in full and today so far: each day's tally is replaced, never added to
QUEUE = "partner-retirements"
STORAGE = "AzureWebJobsStorage"
MAX_APPROVER_CHARS = 256


@bp.timer_trigger(arg_name="timer", schedule=DISCOVERY_SCHEDULE, run_on_startup=False)
async def partner_discovery(timer: func.TimerRequest) -> None:
    if skip_timer("partner_discovery"):
        return
    from shared.config import load_settings
    from shared.partners.service import discover

    found = await discover(load_settings())
    summary = found.to_json()
    verdicts = [f"{p['display_name']}: {p['recommendation']}" for p in summary["partners"] if p["tenant_id"]]
    log.info("partner discovery: %s guests, %s partners; %s", summary["guests"], len(verdicts), "; ".join(verdicts))


@bp.timer_trigger(arg_name="timer", schedule=VERIFICATION_SCHEDULE, run_on_startup=False)
async def partner_verification(timer: func.TimerRequest) -> None:
    if skip_timer("partner_verification"):
        return
    from shared.config import load_settings
    from shared.partners.retire_service import plan_for_approval
    from shared.partners.verify import verify

    settings = load_settings()
    checked = (await verify(settings, days=VERIFICATION_DAYS)).to_json()
    moved = {p["tenant_id"]: p["direct_connect"] for p in checked["partners"] if p["configured"]}
    log.info("partner verification: %s log entries; direct connect sign-ins per partner %s", checked["entries"], moved)
    planned = (await plan_for_approval(settings)).to_json()
    counts = {a["action"]: 0 for a in planned["actions"]}
    for action in planned["actions"]:
        counts[action["action"]] += 1
    kept = "kept for approval" if planned["actions"] and not planned["refused"] else "not kept"
    log.info(
        "partner retirement plan %s (%s): %s; refused: %s",
        planned["plan_id"],
        kept,
        counts,
        planned["refused"],
        extra=run_ids(planned),
    )
    if planned["refused"]:  # the alert plan-refused (docs/operations.md) looks for this warning
        log.warning(
            "partner retirement plan %s refused: %s", planned["plan_id"], planned["refused"], extra=run_ids(planned)
        )


class RetireStep(msgspec.Struct, forbid_unknown_fields=True):
    """A `partner-retirements` message: apply the approved plan `apply`, recorded as by `actor`."""

    apply: str
    actor: str


@bp.queue_trigger(arg_name="message", queue_name=QUEUE, connection=STORAGE)
@bp.queue_output(arg_name="poison", queue_name=QUEUE + POISON_SUFFIX, connection=STORAGE)
async def apply_partner_retirement(message: func.QueueMessage, poison: func.Out[str]) -> None:
    """Apply an approved retirement plan; transient failures raise (the host retries), others are poison."""
    hold_message("apply_partner_retirement", message.id)
    from shared.config import load_settings
    from shared.partners.retire_service import apply_kept

    try:
        step = decode_message(message.get_body(), RetireStep, QUEUE)
        try:
            run = await apply_kept(step.apply, actor=step.actor, settings=load_settings())
            summary = run.to_json()
            log.info(
                "partner retirement %s: %s", step.apply, summary["outcomes"], extra=run_ids(summary, plan_id=step.apply)
            )
        except (RefusedError, UnknownItemError) as error:  # too old, another policy, gone: retrying cannot help
            log.error(
                "partner retirement plan %s refused: %s",
                step.apply,
                error.one_line(),
                extra=run_ids(plan_id=step.apply),
            )
    except GuestctlError as error:
        if is_transient(error):
            raise
        to_poison(poison, message, public_line(error.one_line()), log)


@bp.route(route="partners/plans/{plan_id}/approve", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.queue_output(arg_name="more", queue_name=QUEUE, connection=STORAGE)
async def approve_partner_plan(req: func.HttpRequest, more: func.Out[str]) -> func.HttpResponse:
    from shared.config import load_settings
    from shared.partners.retire_service import check_approval

    plan_id = req.route_params["plan_id"]
    try:
        accepted = await check_approval(plan_id, settings=load_settings())
    except GuestctlError as error:
        return error_response(error)
    # The function key authenticates the caller; x-approver is who they say approved it (recorded as such).
    approver = (req.headers.get("x-approver") or "unnamed")[:MAX_APPROVER_CHARS]
    actor = f"function approve_partner_plan (function key; approver stated: {approver})"
    log.info(
        "partner retirement plan %s approved (the approver is in the audit log)",
        plan_id,
        extra=run_ids(accepted, plan_id=plan_id),
    )
    more.set(json.dumps({"apply": plan_id, "actor": actor}))
    return json_response(accepted, 202)
