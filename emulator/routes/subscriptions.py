"""/subscriptions for users: create (with validation handshake), list, get, renew, delete, reauthorize.

A notificationUrl of the form `EventGrid:?…` selects Event Grid delivery: the form is validated, and there is
no validation handshake (docs/graph-contract.md#event-grid).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from emulator.clock import format_datetime, parse_datetime
from emulator.errors import GraphError, bad_request, not_found
from emulator.eventgrid import is_event_grid_url, parse_event_grid_url
from emulator.http import Cost, Ctx, Reply, Route, json_reply, no_content
from emulator.tenant import new_id

# Users, groups, directory resources: docs/graph-contract.md#change-notifications
MAX_USER_EXPIRATION = timedelta(minutes=41_760)
MAX_SUBSCRIPTIONS_PER_APP = 100  # per app+tenant for user subscriptions
CLIENT_STATE_MAX = 128
USER_CHANGE_TYPES = {"updated", "deleted"}  # "created" is conflicting in the docs; rejected here
TLS_VERSIONS = {"v1_0", "v1_1", "v1_2", "v1_3"}
NOT_DIRECTORY = Cost(1, 0, service=None)


def _json(ctx: Ctx, subscription: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in subscription.items() if not k.startswith("_")}


def _purge_expired(ctx: Ctx) -> None:
    tenant = ctx.tenant
    now = tenant.now()
    for sub_id, subscription in list(tenant.subscriptions.items()):
        if parse_datetime(subscription["expirationDateTime"]) <= now:
            del tenant.subscriptions[sub_id]


def _expiration(ctx: Ctx, value: Any) -> str:
    if not isinstance(value, str):
        raise bad_request("expirationDateTime is required.", code="InvalidRequest")
    try:
        moment = parse_datetime(value)
    except ValueError:
        raise bad_request(f"Invalid expirationDateTime '{value}'.", code="InvalidRequest") from None
    now = ctx.tenant.now()
    if moment <= now:
        raise bad_request("Subscription expiration can only be in the future.", code="InvalidRequest")
    if moment - now > MAX_USER_EXPIRATION:
        raise bad_request(
            f"Subscription expiration can only be {int(MAX_USER_EXPIRATION.total_seconds() // 60)} minutes in the "
            "future for resource 'users'.",
            code="ExtensionError",
        )
    return format_datetime(moment)


def _check_url(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise bad_request(f"{name} is required.", code="InvalidRequest")
    if is_event_grid_url(value):
        parse_event_grid_url(name, value)
        return value
    parts = urlsplit(value)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        # Graph requires HTTPS; plain http is allowed only for loopback endpoints in the emulator.
        raise bad_request(f"{name} must use HTTPS.", code="InvalidRequest")
    return value


def _resource(value: Any) -> str:
    if not isinstance(value, str):
        raise bad_request("resource is required.", code="InvalidRequest")
    trimmed = value.strip().strip("/")
    parts = trimmed.split("/")
    if parts[0].lower() != "users" or len(parts) > 2:
        raise bad_request(
            f"The emulator supports subscriptions on 'users' and 'users/{{id}}' only (got '{value}').",
            code="InvalidRequest",
        )
    return trimmed


async def create_subscription(ctx: Ctx) -> Reply:
    payload = ctx.json_object()
    tenant = ctx.tenant
    _purge_expired(ctx)
    change_types = payload.get("changeType")
    if not isinstance(change_types, str) or not change_types:
        raise bad_request("changeType is required.", code="InvalidRequest")
    types = [t.strip() for t in change_types.split(",")]
    if any(t not in USER_CHANGE_TYPES for t in types):
        raise bad_request(
            f"Unsupported changeType '{change_types}' for resource 'users': use updated, deleted.",
            code="InvalidRequest",
        )
    resource = _resource(payload.get("resource"))
    if len(resource.split("/")) == 2 and tenant.find_user(resource.split("/")[1]) is None:
        raise not_found("user", resource.split("/")[1])
    notification_url = _check_url("notificationUrl", payload.get("notificationUrl"))
    lifecycle_url = payload.get("lifecycleNotificationUrl")
    if lifecycle_url is not None:
        _check_url("lifecycleNotificationUrl", lifecycle_url)
    expiration = _expiration(ctx, payload.get("expirationDateTime"))
    client_state = payload.get("clientState")
    if client_state is not None and (not isinstance(client_state, str) or len(client_state) > CLIENT_STATE_MAX):
        raise bad_request(
            f"clientState must be a string of at most {CLIENT_STATE_MAX} characters.", code="InvalidRequest"
        )
    if payload.get("includeResourceData"):
        raise bad_request(
            "Rich notifications (includeResourceData) are not available for users.", code="InvalidRequest"
        )
    tls = payload.get("latestSupportedTlsVersion") or "v1_2"
    if tls not in TLS_VERSIONS:
        raise bad_request(f"Invalid latestSupportedTlsVersion '{tls}'.", code="InvalidRequest")
    mine = [s for s in tenant.subscriptions.values() if s["_app"] == ctx.app_id]
    if len(mine) >= MAX_SUBSCRIPTIONS_PER_APP:
        raise GraphError(
            403,
            "ExtensionError",
            "Subscription quota exceeded: at most 100 subscriptions on users per application and tenant.",
        )
    notifier = ctx.state.notifier
    assert notifier is not None
    for url in dict.fromkeys([notification_url, *([lifecycle_url] if lifecycle_url else [])]):
        if is_event_grid_url(url):
            continue  # Event Grid has no validation handshake
        ok, reason = await notifier.validate(url)
        if not ok:
            raise bad_request(f"Subscription validation request failed for '{url}': {reason}.", code="ValidationError")
    if lifecycle_url == notification_url and not is_event_grid_url(lifecycle_url):
        # The same URL gets two validation requests (docs/graph-contract.md#change-notifications).
        await notifier.validate(lifecycle_url)
    subscription = {
        "id": new_id(),
        "resource": resource,
        "applicationId": ctx.app_id,
        "changeType": ",".join(types),
        "clientState": client_state,
        "notificationUrl": notification_url,
        "notificationQueryOptions": None,
        "lifecycleNotificationUrl": lifecycle_url,
        "expirationDateTime": expiration,
        "creatorId": ctx.app_id,
        "includeResourceData": False,
        "latestSupportedTlsVersion": tls,
        "encryptionCertificate": None,
        "encryptionCertificateId": None,
        "notificationUrlAppId": None,
        "_app": ctx.app_id,
    }
    tenant.subscriptions[subscription["id"]] = subscription
    return json_reply({"@odata.context": ctx.context_url("subscriptions/$entity"), **_json(ctx, subscription)}, 201)


def _require(ctx: Ctx) -> dict[str, Any]:
    _purge_expired(ctx)
    subscription = ctx.tenant.subscriptions.get(ctx.params["sub_id"].lower())
    if subscription is None:
        raise not_found("subscription", ctx.params["sub_id"])
    return subscription


async def list_subscriptions(ctx: Ctx) -> Reply:
    _purge_expired(ctx)
    mine = [_json(ctx, s) for s in ctx.tenant.subscriptions.values() if s["_app"] == ctx.app_id]
    return json_reply({"@odata.context": ctx.context_url("subscriptions"), "value": mine})


async def get_subscription(ctx: Ctx) -> Reply:
    return json_reply({"@odata.context": ctx.context_url("subscriptions/$entity"), **_json(ctx, _require(ctx))})


async def update_subscription(ctx: Ctx) -> Reply:
    subscription = _require(ctx)
    payload = ctx.json_object()
    for key in payload:
        if key not in ("expirationDateTime", "notificationUrl"):
            raise bad_request(
                f"Property '{key}' cannot be updated; only expirationDateTime can be renewed.", code="InvalidRequest"
            )
    if "expirationDateTime" in payload:
        subscription["expirationDateTime"] = _expiration(ctx, payload["expirationDateTime"])
    if "notificationUrl" in payload:
        url = _check_url("notificationUrl", payload["notificationUrl"])
        ok, reason = (True, "") if is_event_grid_url(url) else await ctx.state.notifier.validate(url)  # type: ignore[union-attr]
        if not ok:
            raise bad_request(f"Subscription validation request failed for '{url}': {reason}.", code="ValidationError")
        subscription["notificationUrl"] = url
    return json_reply({"@odata.context": ctx.context_url("subscriptions/$entity"), **_json(ctx, subscription)})


async def delete_subscription(ctx: Ctx) -> Reply:
    subscription = _require(ctx)
    del ctx.tenant.subscriptions[subscription["id"]]
    return no_content()


async def reauthorize_subscription(ctx: Ctx) -> Reply:
    subscription = _require(ctx)
    subscription["_reauthorized"] = ctx.tenant.now_iso()
    return no_content()


ROUTES = [
    Route("POST", "/subscriptions", create_subscription, NOT_DIRECTORY),
    Route("GET", "/subscriptions", list_subscriptions, NOT_DIRECTORY),
    Route("GET", "/subscriptions/{sub_id}", get_subscription, NOT_DIRECTORY),
    Route("PATCH", "/subscriptions/{sub_id}", update_subscription, NOT_DIRECTORY),
    Route("DELETE", "/subscriptions/{sub_id}", delete_subscription, NOT_DIRECTORY),
    Route("POST", "/subscriptions/{sub_id}/reauthorize", reauthorize_subscription, NOT_DIRECTORY),
]
