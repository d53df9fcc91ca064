"""What the queue worker reads: notifications from our webhook, or CloudEvents written by Event Grid.

Both are hints that something changed (delta says what). Anyone allowed to write to the queue could write a
message, so each notification's clientState (Event Grid's) or clientStateProof (our webhook's, shared/notifications/
inbox.py) is checked here again, in constant time, and a notification
for a subscription that is not ours (by the store's record) is dropped and counted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from shared.errors import InputError
from shared.notifications.inbox import MAX_NOTIFICATIONS, PROOF_FIELD, is_ours, is_proven, problem_of

# Event Grid's CloudEvent types for lifecycle events, lower-cased, → Graph's lifecycleEvent names
# (docs/graph-contract.md#change-notifications).
LIFECYCLE_TYPES = {
    "microsoft.graph.subscriptionreauthorizationrequired": "reauthorizationRequired",
    "microsoft.graph.subscriptionremoved": "subscriptionRemoved",
    "microsoft.graph.subscriptionmissed": "missed",
    "microsoft.graph.missed": "missed",
}
MAX_MESSAGE_CHARS = 70_000  # a queue message is at most 64 KiB


@dataclass(frozen=True, slots=True)
class Hint:
    subscription_id: str
    lifecycle_event: str | None  # None: a change notification
    user_id: str | None = None


@dataclass(slots=True)
class Hints:
    hints: list[Hint] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)

    def drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1


def read_hints(message: str, secret: str, subscription_id: str | None) -> Hints:
    """The hints of one queue message; InputError if it is neither of the two shapes (never worth a retry)."""
    if len(message) > MAX_MESSAGE_CHARS:
        raise InputError(f"a graph-notifications message of {len(message):,} characters; at most 64 KiB")
    try:
        parsed = json.loads(message)
    except ValueError:
        raise InputError("a graph-notifications message that is not JSON") from None
    if isinstance(parsed, dict) and parsed.get("specversion") == "1.0":
        items = [_from_cloud_event(parsed)]
    elif isinstance(parsed, dict) and isinstance(parsed.get("value"), list):
        items = parsed["value"][:MAX_NOTIFICATIONS]
    else:
        raise InputError('a graph-notifications message is neither a CloudEvent nor {"value": [...]}')
    result = Hints()
    for item in items:
        problem = problem_of(item, queued=True)
        if problem:
            result.drop(problem)
        elif not (is_proven(item, secret) if PROOF_FIELD in item else is_ours(item.get("clientState"), secret)):
            result.drop("clientState does not match")
        elif subscription_id is None or item["subscriptionId"].lower() != subscription_id.lower():
            result.drop("not our subscription")
        else:
            user_id = (item.get("resourceData") or {}).get("id") if isinstance(item.get("resourceData"), dict) else None
            result.hints.append(Hint(item["subscriptionId"], item.get("lifecycleEvent"), user_id))
    return result


def _from_cloud_event(event: dict[str, object]) -> object:
    """A CloudEvent's data as a Graph notification (Event Grid keeps Graph's fields in `data`)."""
    data = event.get("data")
    if not isinstance(data, dict):
        return None
    lifecycle = LIFECYCLE_TYPES.get(str(event.get("type", "")).lower())
    if lifecycle is not None:
        return {**data, "lifecycleEvent": data.get("lifecycleEvent") or lifecycle}
    return data
