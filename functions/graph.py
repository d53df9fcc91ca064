"""Microsoft Graph change notifications for users, received as a webhook (docs/redemptions.md).

POST /api/graph/notifications   ?validationToken=… → 200 text/plain, the token (Graph's handshake);
                                a delivery → clientState checked, ours queued on graph-notifications, 202.
                                Not Graph's shape (not JSON, > 1 MB, no "value") → 400, nothing queued.
POST /api/graph/lifecycle       the same for lifecycle notifications (reauthorizationRequired, …).

Graph gives the handshake 10 s and a delivery 3 s, then delays and drops notifications to slow endpoints:
so no Graph call, no store read and nothing heavy is imported here. The queue worker does the rest.
"""

from __future__ import annotations

import logging

import azure.functions as func

from functions.http import error_response
from shared.errors import GuestctlError
from shared.notifications.inbox import notification_secret, sort_delivery, validation_echo

bp = func.Blueprint()
log = logging.getLogger("guestctl.functions.graph")

QUEUE = "graph-notifications"
STORAGE = "AzureWebJobsStorage"


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
