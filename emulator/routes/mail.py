"""POST /users/{id}/sendMail: 202, and the message lands in the emulator's outbox."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from emulator.errors import GraphError, bad_request
from emulator.http import Cost, Ctx, Reply, Route
from emulator.tenant import MEMBER

OUTLOOK = Cost(1, 0, service=None)  # Exchange Online limits, not emulated


def _addresses(recipients: Any, field: str) -> list[str]:
    if recipients is None:
        return []
    if not isinstance(recipients, list):
        raise bad_request(f"'{field}' must be an array of recipients.", code="ErrorInvalidRecipients")
    addresses: list[str] = []
    for recipient in recipients:
        address = ((recipient or {}).get("emailAddress") or {}).get("address") if isinstance(recipient, dict) else None
        if not isinstance(address, str) or "@" not in address:
            raise bad_request(f"At least one recipient in '{field}' is not valid.", code="ErrorInvalidRecipients")
        addresses.append(address)
    return addresses


async def send_mail(ctx: Ctx) -> Reply:
    tenant = ctx.tenant
    key = ctx.params["id"]
    user = tenant.find_user(key)
    if user is None:
        raise GraphError(404, "ErrorInvalidUser", f"The requested user '{key}' is invalid.")
    if user.userType != MEMBER or not user.mail or user.creationType == "Invitation":
        # External users have no mailbox in this tenant.
        raise GraphError(
            404, "MailboxNotEnabledForRESTAPI", "The mailbox is either inactive, soft-deleted, or is hosted on-premise."
        )
    content_type = ctx.headers.get("content-type", "").lower()
    if content_type.startswith("text/plain"):
        try:
            mime = base64.b64decode(ctx.body, validate=True)
        except (binascii.Error, ValueError):
            raise bad_request(
                "Invalid base64 string for MIME content.", code="ErrorMimeContentInvalidBase64String"
            ) from None
        entry = {
            "kind": "mail",
            "from": user.mail,
            "mime": mime.decode("utf-8", "replace"),
            "saveToSentItems": True,
            "sentDateTime": tenant.now_iso(),
        }
        tenant.outbox.append(entry)
        return Reply(202, b"", None)
    # Action parameters are case-insensitive: the SDK sends "Message" and "SaveToSentItems".
    payload = {key[:1].lower() + key[1:]: value for key, value in ctx.json_object().items()}
    message = payload.get("message")
    if not isinstance(message, dict):
        raise bad_request("The 'message' parameter is required.", code="ErrorInvalidParameter")
    to = _addresses(message.get("toRecipients"), "toRecipients")
    cc = _addresses(message.get("ccRecipients"), "ccRecipients")
    bcc = _addresses(message.get("bccRecipients"), "bccRecipients")
    if not (to or cc or bcc):
        raise bad_request("At least one recipient is required, but none were found.", code="ErrorInvalidRecipients")
    body = message.get("body") or {}
    attachments = []
    for attachment in message.get("attachments") or []:
        if not isinstance(attachment, dict):
            raise bad_request("Invalid attachment.", code="ErrorInvalidParameter")
        raw = attachment.get("contentBytes", "")
        try:
            size = len(base64.b64decode(raw, validate=True))
        except (binascii.Error, ValueError, TypeError):
            raise bad_request(
                "Invalid base64 string in attachment contentBytes.", code="ErrorInvalidParameter"
            ) from None
        attachments.append({"name": attachment.get("name"), "contentType": attachment.get("contentType"), "size": size})
    save = payload.get("saveToSentItems", True)
    tenant.outbox.append(
        {
            "kind": "mail",
            "from": user.mail,
            "userId": user.id,
            "to": to,
            "cc": cc,
            "bcc": bcc,
            "subject": message.get("subject"),
            "bodyContentType": body.get("contentType", "text") if isinstance(body, dict) else "text",
            "body": body.get("content") if isinstance(body, dict) else None,
            "attachments": attachments,
            "saveToSentItems": save is not False,
            "sentDateTime": tenant.now_iso(),
        }
    )
    return Reply(202, b"", None)


ROUTES = [Route("POST", "/users/{id}/sendmail", send_mail, OUTLOOK)]
