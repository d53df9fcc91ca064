"""The webhook's request path: Graph's validation handshake, and notifications checked and queued.

Graph waits at most 10 s for the validation echo and 3 s for a delivery, and punishes slow endpoints by
delaying, then dropping, notifications (docs/graph-contract.md#change-notifications). So this path makes
no Graph call, reads no store and imports nothing heavy: it checks `clientState` in constant time, drops
(and counts) what is not ours, and returns the queue messages that carry the rest. Whether a subscription
is still ours is the queue worker's question (it reads the store); so is what changed (delta).

The queue never carries the clientState: a checked notification is queued with `clientStateProof` instead
(HMAC-SHA256 of its subscription id under the secret), which the worker checks without the queue's readers
learning the secret, and which nobody without the secret can forge.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass, field
from typing import Any

from shared.app_secrets import required_secret
from shared.errors import ConfigError, InputError

SECRET_SETTING = "GUESTCTL_NOTIFICATION_SECRET"
MAX_SECRET_CHARS = 128  # Graph's limit for clientState
MAX_BODY_BYTES = 1_048_576  # a delivery larger than this is not Graph's
MAX_VALIDATION_TOKEN_CHARS = 1_024  # Graph's tokens are about 120 characters
MAX_NOTIFICATIONS = 1_000  # per delivery; Graph batches far fewer
# A queue message holds 64 KiB, 48 KiB before base64 (host.json messageEncoding): room for the envelope.
MAX_MESSAGE_BYTES = 46_000
MAX_FIELD_CHARS = 1_024  # any one string we keep from a notification
# What the worker needs of a notification; everything else is dropped before it is queued.
KEPT_FIELDS = (
    "subscriptionId",
    "changeType",
    "resource",
    "tenantId",
    "lifecycleEvent",
    "subscriptionExpirationDateTime",
)
PROOF_FIELD = "clientStateProof"  # queued instead of the clientState (see the module's docstring)


class InboxNotConfiguredError(ConfigError):
    """The secret is missing: refuse every delivery (Graph retries a 503 for hours, time to fix it)."""

    http_status = 503


@dataclass(slots=True)
class Sorted:
    """A delivery sorted: queue messages for what is ours, and a count of what was dropped and why."""

    messages: list[str] = field(default_factory=list)
    accepted: int = 0
    dropped: dict[str, int] = field(default_factory=dict)

    def drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1


def notification_secret() -> str:
    """The clientState every subscription of this deployment carries (the setting, read on each call so a
    rotated secret takes effect without a restart). Missing or unresolved → ConfigError: fail closed."""
    secret = required_secret(
        SECRET_SETTING,
        os.environ.get(SECRET_SETTING),
        unset_hint="set it to the subscriptions' clientState secret",
        error=InboxNotConfiguredError,
    )
    if len(secret) > MAX_SECRET_CHARS:
        raise InboxNotConfiguredError(f"{SECRET_SETTING} is {len(secret)} characters; Graph allows {MAX_SECRET_CHARS}")
    return secret


def validation_echo(token: str) -> str:
    """The body that answers Graph's validation request: the token itself (the host has URL-decoded it)."""
    if not token:
        raise InputError("validationToken is empty", hint="only Graph's validation request carries one")
    if len(token) > MAX_VALIDATION_TOKEN_CHARS:
        raise InputError(f"validationToken is {len(token):,} characters; at most {MAX_VALIDATION_TOKEN_CHARS:,}")
    if any(ord(c) < 32 or ord(c) == 127 for c in token):
        raise InputError("validationToken contains control characters")
    return token


def is_ours(client_state: object, secret: str) -> bool:
    """Constant-time comparison, so the secret cannot be guessed a character at a time."""
    if not isinstance(client_state, str):
        return False
    return hmac.compare_digest(client_state.encode(), secret.encode())


def proof_of(secret: str, subscription_id: str) -> str:
    """The clientState's stand-in on the queue: it proves the webhook checked the secret, and reveals nothing of it."""
    return hmac.new(secret.encode(), subscription_id.lower().encode(), hashlib.sha256).hexdigest()


def is_proven(item: dict[str, Any], secret: str) -> bool:
    """A queued notification's proof matches its subscription (constant time)."""
    proof, subscription_id = item.get(PROOF_FIELD), item.get("subscriptionId")
    if not isinstance(proof, str) or not isinstance(subscription_id, str):
        return False
    return hmac.compare_digest(proof.encode(), proof_of(secret, subscription_id).encode())


def sort_delivery(body: bytes, secret: str) -> Sorted:
    """Check a delivery (`{"value": [notification, ...]}`) and sort it; InputError if it is not one at all."""
    value = _notifications(body)
    result = Sorted()
    kept: list[dict[str, Any]] = []
    for item in value:
        problem = problem_of(item)
        if problem:
            result.drop(problem)
        elif not is_ours(item.get("clientState"), secret):
            result.drop("clientState does not match")
        else:
            kept.append(_trimmed(item, secret))
    result.accepted = len(kept)
    result.messages = queue_messages(kept)
    return result


def queue_messages(notifications: list[dict[str, Any]]) -> list[str]:
    """`{"value": [...]}` texts, each within a queue message's size."""
    messages: list[str] = []
    chunk: list[str] = []
    size = len('{"value":[]}')
    for notification in notifications:
        text = json.dumps(notification, separators=(",", ":"), ensure_ascii=False)
        if chunk and size + len(text.encode()) + 1 > MAX_MESSAGE_BYTES:
            messages.append('{"value":[' + ",".join(chunk) + "]}")
            chunk, size = [], len('{"value":[]}')
        chunk.append(text)
        size += len(text.encode()) + 1
    if chunk:
        messages.append('{"value":[' + ",".join(chunk) + "]}")
    return messages


def _notifications(body: bytes) -> list[Any]:
    if len(body) > MAX_BODY_BYTES:
        raise InputError(f"the body is {len(body):,} bytes; a Graph delivery is at most {MAX_BODY_BYTES:,}")
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise InputError(f"the body is not JSON ({type(error).__name__})") from None
    value = parsed.get("value") if isinstance(parsed, dict) else None
    if not isinstance(value, list):
        raise InputError('the body has no "value" list of notifications')
    if len(value) > MAX_NOTIFICATIONS:
        raise InputError(f"{len(value):,} notifications in one delivery; at most {MAX_NOTIFICATIONS:,}")
    return value


def problem_of(item: object, *, queued: bool = False) -> str | None:
    """Why a notification is not one we can use, or None. `queued`: from the queue, where the webhook's carry a
    proof instead of the clientState."""
    if not isinstance(item, dict):
        return "not an object"
    proven = queued and PROOF_FIELD in item and "clientState" not in item
    for name in ("subscriptionId", PROOF_FIELD if proven else "clientState"):
        if not isinstance(item.get(name), str) or not item[name]:
            return f"no {name}"
    if "lifecycleEvent" not in item and not isinstance(item.get("resource"), str):
        return "no resource"
    for name in KEPT_FIELDS:
        value = item.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > MAX_FIELD_CHARS):
            return f"{name} is not a short string"
    user_id = (item.get("resourceData") or {}).get("id") if isinstance(item.get("resourceData"), dict) else None
    if user_id is not None and (not isinstance(user_id, str) or len(user_id) > MAX_FIELD_CHARS):
        return "resourceData.id is not a short string"
    return None


def _trimmed(item: dict[str, Any], secret: str) -> dict[str, Any]:
    kept = {name: item[name] for name in KEPT_FIELDS if item.get(name) is not None}
    kept[PROOF_FIELD] = proof_of(secret, item["subscriptionId"])
    resource_data = item.get("resourceData")
    if isinstance(resource_data, dict) and resource_data.get("id"):
        kept["resourceData"] = {"id": resource_data["id"]}
    return kept
