"""Microsoft Graph change notifications for users, received as a webhook (docs/redemptions.md).

POST /api/graph/notifications   ?validationToken=… → 200 text/plain, the token (Graph's handshake);
                                a delivery → clientState checked, ours queued on graph-notifications, 202.
                                Not Graph's shape (not JSON, > 1 MB, no "value") → 400, nothing queued.
POST /api/graph/lifecycle       the same for lifecycle notifications (reauthorizationRequired, …).
queue graph-notifications       webhook deliveries and Event Grid CloudEvents alike: checked again (clientState,
                                our subscription), lifecycle events answered, a delta round run (coalesced).
                                A malformed message or a configuration error goes to the poison queue at once.
timer renew_subscriptions       create, adopt or renew the subscription (GUESTCTL_RENEW_SCHEDULE)
timer send_reminders            the reminders due (invitations.reminders), once each (GUESTCTL_REMINDERS_SCHEDULE)
timer delta                     a delta round even when no notification came (GUESTCTL_DELTA_SCHEDULE): notifications
                                can be lost, delta cannot

Graph gives the handshake 10 s and a delivery 3 s, then delays and drops notifications to slow endpoints:
so no Graph call, no store read and nothing heavy is imported here. The queue worker does the rest.
"""

from __future__ import annotations

import logging

import azure.functions as func

from functions.http import error_response, public_line
from functions.pause import hold_message, skip_timer
from functions.queues import POISON_SUFFIX, is_transient, to_poison
from shared.errors import GuestctlError
from shared.notifications.inbox import notification_secret, sort_delivery, validation_echo

bp = func.Blueprint()
log = logging.getLogger("guestctl.functions.graph")

QUEUE = "graph-notifications"
STORAGE = "AzureWebJobsStorage"
# App settings the host resolves (defaults: shared/config.py Settings, set by infra/main.bicep); nothing read here
RENEW_SCHEDULE = "%GUESTCTL_RENEW_SCHEDULE%"
DELTA_SCHEDULE = "%GUESTCTL_DELTA_SCHEDULE%"
REMINDERS_SCHEDULE = "%GUESTCTL_REMINDERS_SCHEDULE%"


@bp.route(route="graph/notifications", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.queue_output(arg_name="queue", queue_name=QUEUE, connection=STORAGE)
def graph_notifications(req: func.HttpRequest, queue: func.Out[list[str]]) -> func.HttpResponse:
    return _receive(req, queue, "change")


@bp.route(route="graph/lifecycle", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.queue_output(arg_name="queue", queue_name=QUEUE, connection=STORAGE)
def graph_lifecycle(req: func.HttpRequest, queue: func.Out[list[str]]) -> func.HttpResponse:
    return _receive(req, queue, "lifecycle")


def _receive(req: func.HttpRequest, queue: func.Out[list[str]], kind: str) -> func.HttpResponse:
    try:
        if "validationToken" in req.params:
            token = validation_echo(req.params["validationToken"])
            return func.HttpResponse(token, status_code=200, mimetype="text/plain")
        delivery = sort_delivery(req.get_body(), notification_secret())
    except GuestctlError as error:
        return error_response(error)
    if delivery.messages:
        queue.set(delivery.messages)
    if delivery.dropped:
        # Counts and reasons only: a notification's clientState is a secret, right or wrong.
        log.warning("%s notifications dropped: %s", kind, delivery.dropped)
    log.info("%s notifications queued: %d", kind, delivery.accepted)
    return func.HttpResponse(status_code=202)


@bp.queue_trigger(arg_name="message", queue_name=QUEUE, connection=STORAGE)
@bp.queue_output(arg_name="poison", queue_name=QUEUE + POISON_SUFFIX, connection=STORAGE)
async def graph_notifications_worker(message: func.QueueMessage, poison: func.Out[str]) -> None:
    hold_message("graph_notifications_worker", message.id)
    from shared.config import load_settings
    from shared.notifications.service import handle_message

    try:
        actor = f"function graph_notifications_worker (message {message.id})"
        handled = await handle_message(load_settings(), message.get_body().decode("utf-8", "replace"), actor=actor)
    except GuestctlError as error:
        if is_transient(error):
            raise
        to_poison(poison, message, public_line(error.one_line()), log, redact=("clientState",))
        return
    log.info("graph notifications handled: %s", handled.to_json())


@bp.timer_trigger(arg_name="timer", schedule=RENEW_SCHEDULE, run_on_startup=False)
async def renew_subscriptions(timer: func.TimerRequest) -> None:
    if skip_timer("renew_subscriptions"):
        return
    from shared.config import load_settings
    from shared.notifications.service import ensure_subscription

    state = await ensure_subscription(load_settings())
    log.info("graph subscription: %s", state.to_json())


@bp.timer_trigger(arg_name="timer", schedule=DELTA_SCHEDULE, run_on_startup=False)
async def delta_sync(timer: func.TimerRequest) -> None:
    if skip_timer("delta_sync"):
        return
    from shared.config import load_settings
    from shared.redemptions.service import request_sync

    result = await request_sync(load_settings(), actor="function delta_sync (timer)")
    log.info("delta sync: %s", result.to_json() if result else "another worker is syncing; it runs another round")


@bp.timer_trigger(arg_name="timer", schedule=REMINDERS_SCHEDULE, run_on_startup=False)
async def send_reminders(timer: func.TimerRequest) -> None:
    if skip_timer("send_reminders"):
        return
    from shared.config import load_settings
    from shared.redemptions.service import remind

    run = await remind(load_settings(), apply=True, actor="function send_reminders (timer)")
    log.info("reminders: %s", run.to_json().get("outcomes") or "none due")
