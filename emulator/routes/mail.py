"""Mail: POST /users/{id}/sendMail (202, into the outbox), and drafts — POST /users/{id}/messages creates one
in Drafts, GET /users/{id}/messages/{id} reads it, POST /users/{id}/messages/{id}/send sends it (202, into
the outbox). A sent draft moves to Sent Items under a new id (ids are not immutable unless asked for with
`Prefer: IdType="ImmutableId"`, which the emulator does not support), so its draft id answers 404."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from emulator.errors import GraphError, bad_request
from emulator.http import Cost, Ctx, Reply, Route, json_reply
from emulator.tenant import MEMBER, User, new_id

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


def _mailbox(ctx: Ctx) -> User:
    key = ctx.params["id"]
    user = ctx.tenant.find_user(key)
    if user is None:
        raise GraphError(404, "ErrorInvalidUser", f"The requested user '{key}' is invalid.")
    if user.userType != MEMBER or not user.mail or user.creationType == "Invitation":
        # External users have no mailbox in this tenant.
        raise GraphError(
            404, "MailboxNotEnabledForRESTAPI", "The mailbox is either inactive, soft-deleted, or is hosted on-premise."
        )
    return user


async def send_mail(ctx: Ctx) -> Reply:
    tenant = ctx.tenant
    user = _mailbox(ctx)
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
    tenant.outbox.append(_outgoing(user, message, payload.get("saveToSentItems", True), tenant.now_iso()))
    return Reply(202, b"", None)


def _outgoing(user: User, message: dict[str, Any], save: Any, now: str) -> dict[str, Any]:
    """The outbox entry for a message leaving `user`'s mailbox; 400 if it has no valid recipient."""
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
    return {
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
        "sentDateTime": now,
    }


def _draft_json(draft: dict[str, Any], select: set[str] | None) -> dict[str, Any]:
    shown = {k: v for k, v in draft.items() if not k.startswith("_")}
    if select:
        shown = {k: v for k, v in shown.items() if k in select or k == "id"}
    return shown


async def create_draft(ctx: Ctx) -> Reply:
    user = _mailbox(ctx)
    message = ctx.json_object()
    draft_id = "AAMk" + new_id().replace("-", "")
    draft = {
        "id": draft_id,
        "createdDateTime": ctx.tenant.now_iso(),
        "isDraft": True,
        "parentFolderId": "drafts",
        "subject": message.get("subject"),
        "body": message.get("body") or {"contentType": "text", "content": ""},
        "toRecipients": message.get("toRecipients") or [],
        "ccRecipients": message.get("ccRecipients") or [],
        "bccRecipients": message.get("bccRecipients") or [],
        "_owner": user.id,
    }
    ctx.tenant.drafts[draft_id] = draft
    return json_reply(_draft_json(draft, None), 201)


def _owned_draft(ctx: Ctx, user: User) -> dict[str, Any]:
    draft = ctx.tenant.drafts.get(ctx.params["message_id"])
    if draft is None or draft["_owner"] != user.id:
        raise GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")
    return draft


async def get_message(ctx: Ctx) -> Reply:
    user = _mailbox(ctx)
    select = {s.strip() for s in ctx.options.get("$select", "").split(",") if s.strip()} or None
    return json_reply(_draft_json(_owned_draft(ctx, user), select))


async def send_draft(ctx: Ctx) -> Reply:
    user = _mailbox(ctx)
    draft = _owned_draft(ctx, user)
    entry = _outgoing(user, draft, True, ctx.tenant.now_iso())
    del ctx.tenant.drafts[draft["id"]]
    ctx.tenant.outbox.append(entry)
    return Reply(202, b"", None)


ROUTES = [
    Route("POST", "/users/{id}/sendmail", send_mail, OUTLOOK),
    Route("POST", "/users/{id}/messages", create_draft, OUTLOOK),
    Route("GET", "/users/{id}/messages/{message_id}", get_message, OUTLOOK),
    Route("POST", "/users/{id}/messages/{message_id}/send", send_draft, OUTLOOK),
]
