"""Event Grid delivery: `EventGrid:` notification URLs, CloudEvents 1.0, and partner topics mapped to queues.

Graph hands a subscription's notifications to an Event Grid partner topic, and an event subscription on
that topic writes each event into an Azure Storage queue (docs/graph-contract.md#event-grid). Here the
partner topic -> queue mapping is the emulator's configuration; a topic without one behaves like a partner
topic that has not been activated: its events are dropped and counted.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from azure.storage.queue import TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient

from emulator.errors import bad_request

SCHEME = "eventgrid:"
URL_PARAMETERS = ("azuresubscriptionid", "resourcegroup", "partnertopic", "location")
SPEC_VERSION = "1.0"
USER_UPDATED = "Microsoft.Graph.UserUpdated"  # create, update, soft delete (and restore)
USER_DELETED = "Microsoft.Graph.UserDeleted"  # permanent deletion only
# Lifecycle event types on the Event Grid channel: only reauthorizationRequired is named in Microsoft's
# Event Grid page (lower-case "microsoft.graph.subscriptionReauthorizationRequired"); the spelling and the
# other two are the emulator's choice (docs/graph-contract.md#event-grid). Compare case-insensitively.
LIFECYCLE_TYPES = {
    "reauthorizationRequired": "Microsoft.Graph.SubscriptionReauthorizationRequired",
    "subscriptionRemoved": "Microsoft.Graph.SubscriptionRemoved",
    "missed": "Microsoft.Graph.SubscriptionMissed",
}
# Event Grid's documented retry schedule starts 10 s, 30 s, 1 min, 5 min, 10 min (and goes on for 24 h);
# the emulator stops after these and discards the event (no dead-lettering).
RETRY_DELAYS = (10.0, 30.0, 60.0, 300.0, 600.0)


@dataclass(frozen=True, slots=True)
class EventGridTarget:
    """The parts of an `EventGrid:?azuresubscriptionid=…&resourcegroup=…&partnertopic=…&location=…` URL."""

    azure_subscription_id: str
    resource_group: str
    partner_topic: str
    location: str


def is_event_grid_url(value: Any) -> bool:
    return isinstance(value, str) and value[: len(SCHEME)].lower() == SCHEME


def parse_event_grid_url(name: str, value: str) -> EventGridTarget:
    """Validate the form Graph documents; a missing or empty parameter is a 400 (Graph's error shape)."""
    rest = value[len(SCHEME) :]
    if not rest.startswith("?"):
        raise bad_request(
            f"{name} '{value}' is not a valid Event Grid URL: expected 'EventGrid:?azuresubscriptionid=…"
            "&resourcegroup=…&partnertopic=…&location=…'.",
            code="InvalidRequest",
        )
    parameters: dict[str, str] = {}
    for key, item in parse_qsl(rest[1:], keep_blank_values=True):
        parameters[key.lower()] = item.strip()
    missing = [key for key in URL_PARAMETERS if not parameters.get(key)]
    if missing:
        raise bad_request(
            f"{name} '{value}' is missing the Event Grid parameter(s): {', '.join(missing)}.", code="InvalidRequest"
        )
    return EventGridTarget(*(parameters[key] for key in URL_PARAMETERS))


def _event_time(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def change_event(
    subscription: dict[str, Any],
    *,
    tenant_id: str,
    user_id: str,
    change_type: str,
    at: datetime,
    sequence_number: int,
) -> dict[str, Any]:
    """One change as the CloudEvent Event Grid writes for Microsoft Graph users (CloudEventSchemaV1_0)."""
    resource = f"Users/{user_id}"
    return {
        "id": str(uuid.uuid4()),
        "type": USER_DELETED if change_type == "deleted" else USER_UPDATED,
        "source": f"/tenants/{tenant_id}/applications/{subscription['applicationId']}",
        "subject": resource,
        "time": _event_time(at),
        "specversion": SPEC_VERSION,
        "datacontenttype": "application/json",
        "data": {
            "changeType": change_type,
            "clientState": subscription.get("clientState"),
            "resource": resource,
            "resourceData": {
                "@odata.type": "#Microsoft.Graph.User",
                "@odata.id": resource,
                "id": user_id,
                "organizationId": tenant_id,
                "eventTime": _event_time(at),
                "sequenceNumber": sequence_number,
            },
            "subscriptionExpirationDateTime": subscription["expirationDateTime"],
            "subscriptionId": subscription["id"],
            "tenantId": tenant_id,
        },
    }


def lifecycle_event(subscription: dict[str, Any], *, tenant_id: str, event: str, at: datetime) -> dict[str, Any]:
    """A lifecycle notification on the Event Grid channel (type names: see LIFECYCLE_TYPES)."""
    return {
        "id": str(uuid.uuid4()),
        "type": LIFECYCLE_TYPES[event],
        "source": f"/tenants/{tenant_id}/applications/{subscription['applicationId']}",
        "subject": f"Subscriptions/{subscription['id']}",
        "time": _event_time(at),
        "specversion": SPEC_VERSION,
        "datacontenttype": "application/json",
        "data": {
            "lifecycleEvent": event,
            "clientState": subscription.get("clientState"),
            "subscriptionExpirationDateTime": subscription["expirationDateTime"],
            "subscriptionId": subscription["id"],
            "tenantId": tenant_id,
        },
    }


@dataclass(slots=True)
class TopicDestination:
    """Where one partner topic's event subscription writes: a storage queue."""

    connection_string: str
    queue: str


@dataclass(slots=True)
class TopicStats:
    delivered: int = 0
    failed: int = 0
    dropped: int = 0
    discarded: int = 0


@dataclass(slots=True)
class EventGridRouter:
    """Partner topic (case-insensitive name) -> queue, plus one async queue client per destination."""

    configured: dict[str, TopicDestination] = field(default_factory=dict)
    topics: dict[str, TopicDestination] = field(default_factory=dict)
    stats: dict[str, TopicStats] = field(default_factory=dict)
    _clients: dict[tuple[str, str], QueueClient] = field(default_factory=dict)

    @classmethod
    def from_options(cls, options: dict[str, Any] | None) -> EventGridRouter:
        """`{"connection_string": …, "queues": {partner_topic: queue_name}}` (create_app's `event_grid`)."""
        router = cls()
        if options:
            unknown = set(options) - {"connection_string", "queues"}
            if unknown:
                raise TypeError(f"unknown event_grid options: {', '.join(sorted(unknown))}")
            for topic, queue in (options.get("queues") or {}).items():
                router.configured[topic.lower()] = TopicDestination(str(options["connection_string"]), str(queue))
        router.reset()
        return router

    def reset(self) -> None:
        """Back to the configured mapping (a control-API mapping must not leak into the next test)."""
        self.topics = dict(self.configured)
        self.stats.clear()

    def map(self, topic: str, connection_string: str, queue: str) -> None:
        if not topic or not connection_string or not queue:
            raise ValueError("partnerTopic, connectionString and queue are required")
        self.topics[topic.lower()] = TopicDestination(connection_string, queue)

    def unmap(self, topic: str) -> bool:
        return self.topics.pop(topic.lower(), None) is not None

    def destination(self, topic: str) -> TopicDestination | None:
        return self.topics.get(topic.lower())

    def stats_for(self, topic: str) -> TopicStats:
        return self.stats.setdefault(topic.lower(), TopicStats())

    async def send(self, destination: TopicDestination, event: dict[str, Any]) -> None:
        """One event, one queue message, its text base64-encoded as Event Grid writes it."""
        key = (destination.connection_string, destination.queue)
        client = self._clients.get(key)
        if client is None:
            # retry_total=0: the emulator's own Event Grid retry schedule applies, not the SDK's.
            client = QueueClient.from_connection_string(
                destination.connection_string,
                destination.queue,
                message_encode_policy=TextBase64EncodePolicy(),
                retry_total=0,
            )
            self._clients[key] = client
        await client.send_message(json.dumps(event, separators=(",", ":")))

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.close()

    def describe(self) -> list[dict[str, Any]]:
        names = sorted(set(self.topics) | set(self.stats))
        result = []
        for name in names:
            destination = self.topics.get(name)
            stats = self.stats.get(name, TopicStats())
            result.append(
                {
                    "partnerTopic": name,
                    "queue": destination.queue if destination else None,
                    "account": _account_name(destination.connection_string) if destination else None,
                    "active": destination is not None,
                    "delivered": stats.delivered,
                    "failed": stats.failed,
                    "dropped": stats.dropped,
                    "discarded": stats.discarded,
                }
            )
        return result


def _account_name(connection_string: str) -> str | None:
    # Listing never echoes the account key.
    for part in connection_string.split(";"):
        key, _, value = part.partition("=")
        if key.strip().lower() == "accountname":
            return value
    return None
