"""What the Functions app and the CLI call for Graph change notifications: typed results.

A queue message is a hint: its notifications are checked (ours? our subscription?), lifecycle events are
answered (reauthorize, recreate, or catch up with delta) and any change asks for a delta round, which
coalesces with other workers' (shared.redemptions.service.request_sync_with).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.clock import Clock, utc_now
from shared.config import Settings
from shared.errors import ConfigError
from shared.graph import Graph, get_graph
from shared.notifications import subscriptions
from shared.notifications.hints import read_hints
from shared.redemptions.service import SyncResult, request_sync_with
from shared.store import Store, open_state


@dataclass(slots=True)
class Handled:
    """One queue message: how many hints it held, what was dropped, what was done."""

    hints: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    lifecycle: list[str] = field(default_factory=list)
    sync: SyncResult | None = None
    sync_left_to_another_worker: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "hints": self.hints,
            "dropped": self.dropped,
            "lifecycle": self.lifecycle,
            "sync": self.sync.to_json() if self.sync else None,
            "sync_left_to_another_worker": self.sync_left_to_another_worker,
        }


async def handle_message(settings: Settings, message: str, *, actor: str, clock: Clock = utc_now) -> Handled:
    target = subscriptions.target_of(settings)
    async with open_state(settings) as store:
        return await handle_message_with(
            get_graph(settings),
            store,
            target,
            message,
            actor=actor,
            clock=clock,
            min_interval=settings.delta_min_interval,
        )


async def handle_message_with(
    graph: Graph,
    store: Store,
    target: subscriptions.Target,
    message: str,
    *,
    actor: str,
    clock: Clock = utc_now,
    min_interval: float = 0.0,
) -> Handled:
    recorded = await subscriptions.recorded(store) or {}
    read = read_hints(message, target.client_state, recorded.get("subscription_id"))
    handled = Handled(hints=len(read.hints), dropped=read.dropped)
    wants_sync = False
    for hint in read.hints:
        if hint.lifecycle_event is None:
            wants_sync = True
        elif hint.lifecycle_event == "reauthorizationRequired":
            done = await subscriptions.reauthorize(graph, store, target, hint.subscription_id, clock())
            handled.lifecycle.append(done)
        elif hint.lifecycle_event == "subscriptionRemoved":
            state = await subscriptions.ensure(graph, store, target, clock())
            handled.lifecycle.append(f"subscription removed; {state.action}")
        else:  # "missed": some notifications were not delivered; delta catches up
            handled.lifecycle.append(f"{hint.lifecycle_event}: delta run now")
            wants_sync = True
    if wants_sync:
        handled.sync = await request_sync_with(graph, store, clock=clock, actor=actor, min_interval=min_interval)
        handled.sync_left_to_another_worker = handled.sync is None
    return handled


async def ensure_subscription(settings: Settings, *, clock: Clock = utc_now) -> subscriptions.SubscriptionState:
    """Create, adopt or renew this deployment's subscription (the renewal timer and `subscriptions ensure`)."""
    target = subscriptions.target_of(settings)
    async with open_state(settings) as store:
        return await subscriptions.ensure(get_graph(settings), store, target, clock())


async def list_subscriptions(settings: Settings) -> list[dict[str, Any]]:
    """The app's subscriptions, ours marked, URLs' secrets redacted (`subscriptions list`)."""
    from shared.config import redact_url

    ours = settings.notification_url
    return [
        {
            "id": s.get("id"),
            "resource": s.get("resource"),
            "changeType": s.get("changeType"),
            "expirationDateTime": s.get("expirationDateTime"),
            "notificationUrl": redact_url(s.get("notificationUrl") or ""),
            "ours": bool(ours) and s.get("notificationUrl") == ours,
        }
        for s in await subscriptions.list_all(get_graph(settings))
    ]


async def delete_subscription(settings: Settings, subscription_id: str | None = None) -> list[str]:
    """Delete ours (or the one named); returns the ids deleted."""
    graph = get_graph(settings)
    async with open_state(settings) as store:
        await subscriptions.recorded(store)  # an unusable store fails here, before Graph is changed
        if subscription_id is None:
            if not settings.notification_url:
                raise ConfigError("GUESTCTL_NOTIFICATION_URL is not set", hint="or name the subscription: --id")
            ids = [
                s["id"]
                for s in await subscriptions.list_all(graph)
                if s.get("notificationUrl") == settings.notification_url
            ]
        else:
            ids = [subscription_id]
        deleted = [i for i in ids if await subscriptions.delete(graph, i)]
        await subscriptions.forget(store)
    return deleted
