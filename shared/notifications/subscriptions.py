"""This deployment's Graph subscription on users: created once, adopted if it exists, renewed, recreated.

One subscription per deployment: `ensure` lists the app's subscriptions first and adopts ours (same
resource and notification URL) rather than creating a second; duplicates left by an earlier crash are
deleted. Renewal extends it well before Graph's maximum lifetime for users (41,760 minutes) runs out; a
404 (expired, or removed) recreates it. Every step is recorded in the store (table `subscriptions`) with
the URLs' secrets (a function key) redacted. docs/graph-contract.md#change-notifications has the facts.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.config import Settings, redact_url
from shared.errors import ConfigError, NotFoundError
from shared.graph import Graph
from shared.store import Store
from shared.store.registry import SUBSCRIPTIONS

SUBSCRIPTIONS_TABLE = SUBSCRIPTIONS
PARTITION = "graph"
ROW = "users"
RESOURCE = "users"
CHANGE_TYPE = "updated,deleted"  # creating and soft-deleting a user both arrive as "updated"
MAX_LIFETIME = timedelta(minutes=41_760)
LIFETIME = MAX_LIFETIME - timedelta(hours=1)  # asked for: a little under the maximum, for clock skew
RENEW_WHEN_LEFT = timedelta(days=21)  # the timer runs twice a day: renewal comes a week after creation
MAX_HISTORY = 20


@dataclass(frozen=True, slots=True)
class Target:
    """Where our subscription delivers, from the settings."""

    notification_url: str
    lifecycle_url: str
    client_state: str


@dataclass(frozen=True, slots=True)
class SubscriptionState:
    """Our subscription after `ensure`, and what `ensure` did (adopted, created, renewed, recreated, kept)."""

    subscription_id: str
    expires_at: datetime
    action: str
    removed_duplicates: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "subscription_id": self.subscription_id,
            "expires_at": self.expires_at.isoformat(),
            "action": self.action,
            "removed_duplicates": self.removed_duplicates,
        }


def target_of(settings: Settings) -> Target:
    """Our subscription's URLs and clientState, or ConfigError naming the missing setting."""
    if not settings.notification_url:
        raise ConfigError(
            "GUESTCTL_NOTIFICATION_URL is not set",
            hint="webhook: https://<app>.azurewebsites.net/api/graph/notifications?code=<function key>; "
            "eventgrid: EventGrid:?azuresubscriptionid=…&resourcegroup=…&partnertopic=…&location=…",
        )
    if settings.notification_secret is None or not settings.notification_secret.get_secret_value().strip():
        raise ConfigError(
            "GUESTCTL_NOTIFICATION_SECRET is not set", hint="set a random secret of at most 128 characters"
        )
    url = settings.notification_url
    lifecycle = settings.lifecycle_url or (url if settings.notification_delivery == "eventgrid" else _beside(url))
    return Target(url, lifecycle, settings.notification_secret.get_secret_value())


def _beside(url: str) -> str:
    """The lifecycle route beside the notifications route, with the same query (the function key)."""
    path, sep, query = url.partition("?")
    base = path.removesuffix("/").removesuffix("/notifications")
    return f"{base}/lifecycle{sep}{query}"


async def ensure(graph: Graph, store: Store, target: Target, now: datetime) -> SubscriptionState:
    """Our subscription exists and lasts long enough: adopt, renew or create it (never a second one)."""
    ours = sorted(
        (s for s in await list_all(graph) if _is_ours(s, target)), key=lambda s: s["expirationDateTime"], reverse=True
    )
    for duplicate in ours[1:]:  # a crash between create and record can leave two
        await delete(graph, duplicate["id"])
    if not ours:
        state = await _create(graph, target, now, "created")
    else:
        state = await _renew(graph, target, ours[0], now, adopted=await _recorded_id(store) != ours[0]["id"])
    state = SubscriptionState(state.subscription_id, state.expires_at, state.action, len(ours[1:]))
    await record(store, state, target, now)
    return state


async def reauthorize(graph: Graph, store: Store, target: Target, subscription_id: str, now: datetime) -> str:
    """Answer `reauthorizationRequired`: reauthorize, and renew too (Graph pauses delivery until then)."""
    with contextlib.suppress(NotFoundError):  # gone meanwhile: ensure recreates it
        await graph.request("POST", f"/subscriptions/{subscription_id}/reauthorize", idempotent=True)
    state = await ensure(graph, store, target, now)
    return f"reauthorized; subscription {state.action}"


async def list_all(graph: Graph) -> list[dict[str, Any]]:
    """Every subscription this app has (Graph lists only the calling app's)."""
    found: list[dict[str, Any]] = []
    async for page in graph.pages("/subscriptions"):
        found.extend(page.items)
    return found


async def delete(graph: Graph, subscription_id: str) -> bool:
    """Delete a subscription; False if Graph no longer had it."""
    try:
        await graph.request("DELETE", f"/subscriptions/{subscription_id}", idempotent=True)
    except NotFoundError:
        return False
    return True


async def recorded(store: Store) -> dict[str, Any] | None:
    found = await store.get(SUBSCRIPTIONS_TABLE, PARTITION, ROW)
    return found.data if found is not None else None


async def record(store: Store, state: SubscriptionState, target: Target, now: datetime) -> None:
    before = await recorded(store) or {}
    history = [*before.get("history", []), {"at": now.isoformat(), "action": state.action}][-MAX_HISTORY:]
    data = {
        "subscription_id": state.subscription_id,
        "expires_at": state.expires_at.isoformat(),
        "notification_url": redact_url(target.notification_url),
        "lifecycle_url": redact_url(target.lifecycle_url),
        "updated_at": now.isoformat(),
        "history": history,
    }
    await store.upsert(SUBSCRIPTIONS_TABLE, PARTITION, ROW, data)


async def forget(store: Store) -> None:
    found = await store.get(SUBSCRIPTIONS_TABLE, PARTITION, ROW)
    if found is not None:
        await store.delete(found)


async def _recorded_id(store: Store) -> str | None:
    return (await recorded(store) or {}).get("subscription_id")


def _is_ours(subscription: dict[str, Any], target: Target) -> bool:
    return (
        str(subscription.get("resource", "")).strip("/").lower() == RESOURCE
        and subscription.get("notificationUrl") == target.notification_url
    )


async def _create(graph: Graph, target: Target, now: datetime, action: str) -> SubscriptionState:
    body = {
        "changeType": CHANGE_TYPE,
        "notificationUrl": target.notification_url,
        "lifecycleNotificationUrl": target.lifecycle_url,
        "resource": RESOURCE,
        "expirationDateTime": _graph_time(now + LIFETIME),
        "clientState": target.client_state,
    }
    response = await graph.request("POST", "/subscriptions", json_body=body)
    created = json.loads(response.content)
    return SubscriptionState(created["id"], _parse(created["expirationDateTime"]), action)


async def _renew(
    graph: Graph, target: Target, current: dict[str, Any], now: datetime, *, adopted: bool
) -> SubscriptionState:
    expires = _parse(current["expirationDateTime"])
    kept = "adopted" if adopted else "kept"
    if expires - now > RENEW_WHEN_LEFT:
        return SubscriptionState(current["id"], expires, kept)
    try:
        response = await graph.request(
            "PATCH",
            f"/subscriptions/{current['id']}",
            json_body={"expirationDateTime": _graph_time(now + LIFETIME)},
            idempotent=True,
        )
    except NotFoundError:  # expired or removed since we listed it
        return await _create(graph, target, now, "recreated")
    renewed = json.loads(response.content) if response.content else {}
    new_expiry = _parse(renewed["expirationDateTime"]) if "expirationDateTime" in renewed else now + LIFETIME
    return SubscriptionState(current["id"], new_expiry, "renewed")


def _graph_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
