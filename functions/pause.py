"""GUESTCTL_PAUSED: one app setting that stops every change to the tenant (docs/operations.md#pause-everything).

When it is true, every timer returns at once. The queue workers are meant to be disabled with it
(infra/main.bicep's `paused` sets `AzureWebJobs.<worker>.Disabled`), so the host does not dequeue their
messages at all; a worker that runs anyway (an invocation already started, or only GUESTCTL_PAUSED set) hands
its message back (RetryLaterError, the transient path: the host delivers it again after host.json's
visibilityTimeout, and after maxDequeueCount tries parks it, unchanged, in `<queue>-poison`, from where it is
requeued once the app runs again). HTTP receivers and the blob drop folder keep accepting, storing and
queueing: they change nothing in the tenant, and a sender that got 202 must not lose its event.
"""

from __future__ import annotations

import logging

from shared.errors import RetryLaterError

SETTING = "GUESTCTL_PAUSED"

log = logging.getLogger("guestctl.functions.pause")


def paused() -> bool:
    from shared.config import paused_now  # pydantic: not on the cold-import path

    return paused_now()


def skip_timer(name: str) -> bool:
    """True (and logged) when the timer `name` must do nothing this time because the app is paused."""
    if paused():
        log.warning("%s skipped: GUESTCTL_PAUSED is true, nothing is changed until it is false", name)  # alert "paused"
        return True
    return False


def hold_message(name: str, message_id: str) -> None:
    """Raise RetryLaterError when paused, before any work: the queue keeps the message for a later try."""
    if paused():
        raise RetryLaterError(
            f"{name}: message {message_id} handed back, {SETTING} is true",
            hint=f"set {SETTING}=false to resume; messages parked in the poison queue meanwhile are requeued by hand",
        )
