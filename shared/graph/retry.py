"""The one retry layer for Graph requests (docs/architecture.md#graph-access; kiota's RetryHandler is off client-wide).

Rules:
- 429: Graph refused the request before doing anything, so it is re-sent for every method, after
  exactly the `Retry-After` Graph asked for (docs/graph-contract.md#throttling).
- 503/504 and read errors: the request may have been carried out. Re-sent only when the caller marked it
  idempotent (reads are). A non-idempotent write is first made idempotent by the caller (look up before
  create) — it is never re-sent blindly.
- Connection errors (nothing reached Graph): re-sent for every method.
- Everything stops at a total time budget: a wait that would end past it is not started.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
)

log = logging.getLogger("guestctl.graph")

THROTTLED = 429
TRANSIENT_STATUSES = frozenset({503, 504})
# Nothing was sent (or the server never saw it): safe to resend any request.
NOT_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    budget_seconds: float = 120.0  # total time one call may spend waiting and retrying
    max_attempts: int = 8
    backoff_base: float = 0.5  # exponential backoff when Graph gives no Retry-After
    backoff_max: float = 30.0


class RetryableResponse(Exception):
    """Carries a response that deserves another attempt through tenacity."""

    def __init__(self, response: httpx.Response, retry_after: float | None) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response
        self.retry_after = retry_after


def retry_after_seconds(headers: httpx.Headers | dict[str, str]) -> float | None:
    """Graph sends Retry-After in seconds (an HTTP date is allowed by RFC 9110 but Graph does not use it)."""
    value = headers.get("Retry-After") or headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None


def is_retryable_status(status: int, idempotent: bool) -> bool:
    return status == THROTTLED or (idempotent and status in TRANSIENT_STATUSES)


async def send_with_retry(
    send: Callable[[], Awaitable[httpx.Response]],
    *,
    idempotent: bool,
    policy: RetryPolicy,
    on_throttled: Callable[[float | None], None] | None = None,
    describe: object = "Graph request",  # printed with %s, so it may format itself lazily
) -> httpx.Response:
    """Send, retrying per the module rules. Returns the last response (which may be an error response);
    transport errors that exhaust the budget propagate."""

    def should_retry(error: BaseException) -> bool:
        if isinstance(error, RetryableResponse):
            return True
        if isinstance(error, NOT_SENT_ERRORS):
            return True
        return idempotent and isinstance(error, httpx.TransportError)

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RetryableResponse) and error.retry_after is not None:
            return error.retry_after
        exponential = policy.backoff_base * 2 ** (state.attempt_number - 1)
        return min(policy.backoff_max, exponential) * random.uniform(0.5, 1.0)

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait_s = state.next_action.sleep if state.next_action else 0
        # -v detail: if the retries run out, the caller's error says so in one line
        log.info(
            "%s: %s; retrying in %.1f s (attempt %d)",
            describe,
            str(error) or type(error).__name__,
            wait_s,
            state.attempt_number,
        )

    async def attempt() -> httpx.Response:
        response = await send()
        if is_retryable_status(response.status_code, idempotent):
            retry_after = retry_after_seconds(response.headers)
            if response.status_code == THROTTLED and on_throttled:
                on_throttled(retry_after)
            raise RetryableResponse(response, retry_after)
        return response

    retrying = AsyncRetrying(
        retry=retry_if_exception(should_retry),
        wait=wait,
        stop=stop_before_delay(policy.budget_seconds) | stop_after_attempt(policy.max_attempts),
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        return await retrying(attempt)
    except RetryableResponse as exhausted:
        return exhausted.response
