"""GET /api/health: is this deployment configured correctly? Checks settings and policy; no Graph calls,
so it answers in milliseconds and can back an availability test."""

from __future__ import annotations

import azure.functions as func

from functions.http import error_response, json_response
from shared import __version__
from shared.errors import GuestctlError

bp = func.Blueprint()


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def health(req: func.HttpRequest) -> func.HttpResponse:
    from shared.config import load_policy, load_settings

    try:
        settings = load_settings()
        policy = load_policy(settings.policy)
        settings.check_functions_app()
    except GuestctlError as error:
        return error_response(error)
    return json_response(
        {"status": "ok", "version": __version__, "cloud": settings.cloud, "policy_digest": policy.digest()}
    )
