"""Queue-trigger failures: retry what may pass, park what never will in `<queue>-poison` at once.

The host retries a message whose function raises, up to maxDequeueCount (host.json), then moves it to the
poison queue. That is right for a throttled or unavailable Graph or store, and wrong for a malformed
message or a configuration error: five tries cannot fix those, and each try repeats the error. Such a
message is written to the poison queue by the function itself, with the reason, and the function returns.
"""

from __future__ import annotations

import json
import logging
import re

import azure.functions as func

from shared.errors import is_transient

__all__ = ["is_transient", "to_poison"]

POISON_SUFFIX = "-poison"
MAX_POISON_BYTES = 46_000  # a queue message holds 48 KiB before base64 (host.json messageEncoding)
MAX_REASON_CHARS = 2_000


def to_poison(
    poison: func.Out[str],
    message: func.QueueMessage,
    reason: str,
    log: logging.Logger,
    *,
    redact: tuple[str, ...] = (),
) -> None:
    """Park `message` in the poison queue with `reason` (logged too), instead of letting the host retry it.
    The values of the JSON fields named in `redact` (a secret such as clientState) are not kept."""
    reason = reason if len(reason) <= MAX_REASON_CHARS else reason[: MAX_REASON_CHARS - 1] + "…"
    original = message.get_body().decode("utf-8", errors="replace")
    for name in redact:
        original = re.sub(rf'("{re.escape(name)}"\s*:\s*)"(?:[^"\\]|\\.)*"', r'\1"<redacted>"', original)
    log.error("queue message %s rejected without retry: %s", message.id, reason)
    entry = {"reason": reason, "message_id": message.id, "dequeue_count": message.dequeue_count}
    text = json.dumps({**entry, "message": original}, ensure_ascii=False)
    while len(text.encode()) > MAX_POISON_BYTES:  # escaping can make the original longer than it came
        original = original[: len(original) // 2]
        text = json.dumps({**entry, "message": original, "message_cut": True}, ensure_ascii=False)
    poison.set(text)
