"""GET /api/health: is this deployment configured correctly? Checks settings, policy, the HR receivers'
secrets settings and the attestation link settings (set but unusable → 503); no Graph calls, so it answers in
milliseconds and can back an availability test."""

from __future__ import annotations

import azure.functions as func

from functions.http import error_response, json_response
from shared import __version__
from shared.errors import GuestctlError

bp = func.Blueprint()


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def health(req: func.HttpRequest) -> func.HttpResponse:
    from shared.attestation.tokens import AttestationNotConfiguredError, readiness
    from shared.config import load_policy, load_settings
    from shared.offboarding.inbox import ReceiverNotConfiguredError, receivers

    try:
        settings = load_settings()
        policy = load_policy(settings.policy)
        settings.check_functions_app()
        hr = receivers()
        refused = [state.removeprefix("refused: ") for state in hr.values() if state.startswith("refused: ")]
        if refused:  # a receiver whose secret is set but unusable refuses every delivery: the app is not healthy
            raise ReceiverNotConfiguredError(refused[0])
        attestation = readiness()
        if attestation not in ("ready", "off"):  # sweeps stop before their notices, every link is refused
            raise AttestationNotConfiguredError(attestation)
    except GuestctlError as error:
        return error_response(error)
    return json_response(
        {
            "status": "ok",
            "version": __version__,
            "cloud": settings.cloud,
            "policy_digest": policy.digest(),
            "hr_receivers": hr,
            "attestation": attestation,
            "paused": settings.paused,
        }
    )
