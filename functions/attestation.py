"""Sponsor attestation links (docs/attestation.md).

GET  /api/attest?token=…   the confirmation page: names the guest and the action, a form that POSTs the same
                           token. Changes nothing: mail scanners and link previewers open every link.
POST /api/attest           (form field `token`) acts: keep or let go, once per link, audited.

Both routes are anonymous (AuthLevel.ANONYMOUS): sponsors open them from an email, with no function key, and
a key in the link would be a key to every anonymous-looking route of the app. The token is the credential:
HMAC-SHA256 with GUESTCTL_ATTESTATION_SECRET over the guest, the sponsor, the action, an expiry (the
disable date) and a single-use nonce; the POST also checks with Graph that the sponsor still sponsors the
guest. Nothing but a valid token reaches the store or Graph.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qs

import azure.functions as func

from functions.http import read_body
from shared.errors import ExitCode, GuestctlError, InputError

bp = func.Blueprint()
log = logging.getLogger("guestctl.functions.attestation")

MAX_FORM_BYTES = 4_096  # a token is 110 characters; the form carries nothing else


def _respond(page: object) -> func.HttpResponse:
    from shared.attestation.pages import HEADERS, Page

    assert isinstance(page, Page)
    log.info("attestation page: %s (%d)", page.outcome, page.status)
    return func.HttpResponse(
        page.html(), status_code=page.status, mimetype="text/html", charset="utf-8", headers=dict(HEADERS)
    )


def _failed(error: GuestctlError) -> func.HttpResponse:
    from shared.attestation import pages

    if isinstance(error, InputError):  # a body too large or unreadable: not a form of ours
        return _respond(pages.MALFORMED)
    log.error("attestation request failed: %s", error.one_line())
    config = error.exit_code == ExitCode.BAD_INPUT  # a setting to fix (the secret, the policy): not the sponsor's
    return _respond(pages.NOT_CONFIGURED if config else pages.UNAVAILABLE)


@bp.route(route="attest", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def attest_page(req: func.HttpRequest) -> func.HttpResponse:
    from shared.attestation.service import show

    try:
        return _respond(await show(req.params.get("token", "")))
    except GuestctlError as error:
        return _failed(error)


@bp.route(route="attest", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
async def attest_confirm(req: func.HttpRequest) -> func.HttpResponse:
    from shared.attestation.service import act

    try:
        form = parse_qs(read_body(req, MAX_FORM_BYTES).decode("utf-8", "replace"), max_num_fields=4)
        token = (form.get("token") or [req.params.get("token", "")])[0]
        return _respond(await act(token))
    except GuestctlError as error:
        return _failed(error)
    except ValueError:  # more fields than a form of ours has
        from shared.attestation import pages

        return _respond(pages.MALFORMED)
