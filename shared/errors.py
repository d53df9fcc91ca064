"""One exception hierarchy, mapped once to CLI exit codes and once to HTTP statuses.

Every error a person can cause (bad input, bad configuration, a refused plan) is a `GuestctlError` with a
message that says what, where and how to fix it. Anything else is a bug and may show a traceback.
"""

from __future__ import annotations

import re
from enum import IntEnum

MAX_MESSAGE_CHARS = 500  # an error line quotes input (a CSV cell, a Graph message): never a megabyte of it
_LINE_BREAKS = re.compile(r"\s*[\r\n]+\s*")


def cap(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """`text` on one line and at most `limit` characters (with "…" when cut), for messages quoting input."""
    flat = _LINE_BREAKS.sub(" ", text)
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class ExitCode(IntEnum):
    """Documented `guestctl` exit codes (docs/cli.md)."""

    OK = 0
    PARTIAL = 1  # some items failed or were invalid; the rest was done
    BAD_INPUT = 2  # the input, settings or policy are unusable; nothing was changed
    REFUSED = 3  # a safety rule refused the whole operation; nothing was changed
    UNAVAILABLE = 4  # Microsoft Graph or the state store failed; see the message for what was done
    BUG = 70  # an unexpected exception: a bug in guestctl (EX_SOFTWARE)
    INTERRUPTED = 130  # Ctrl+C (128 + SIGINT, as a shell reports it)


class GuestctlError(Exception):
    """Base of every error meant for a person. `hint` says how to fix it."""

    exit_code: ExitCode = ExitCode.BAD_INPUT
    http_status: int = 400

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        """The message and hint on one line; the message is capped so the hint is never cut off."""
        return f"{cap(self.message)} — {cap(self.hint)}" if self.hint else cap(self.message)


class ConfigError(GuestctlError):
    """A setting (environment / app setting / CLI flag) is missing or wrong."""


class PolicyError(GuestctlError):
    """The policy file cannot be read or does not validate."""


class InputError(GuestctlError):
    """A file or request body given to a command is unusable."""


class PayloadTooLargeError(InputError):
    """A request body over the route's limit: refused before it is parsed."""

    http_status = 413

    @classmethod
    def of(cls, size: int, limit: int, hint: str | None = None) -> PayloadTooLargeError:
        """The error for a body of `size` bytes over `limit`, the limit in KiB or MiB as people write it."""
        unit = f"{limit // 1024 // 1024} MiB" if limit >= 1024 * 1024 else f"{limit // 1024} KiB"
        return cls(f"the request body is {size:,} bytes, the limit is {limit:,} ({unit})", hint=hint)


class UnsupportedMediaTypeError(InputError):
    """A request body of a content type the route does not read."""

    http_status = 415


class UnknownItemError(GuestctlError):
    """A batch, plan or run id that does not exist."""

    http_status = 404


class RefusedError(GuestctlError):
    """A safety rule refused the operation as a whole (docs/architecture.md#safety-rules)."""

    exit_code = ExitCode.REFUSED
    http_status = 409


class StoreError(GuestctlError):
    """The state store failed or refused an operation."""

    exit_code = ExitCode.UNAVAILABLE
    http_status = 503


class StoreLocationError(StoreError):
    """The state store location cannot be opened or created (not a folder, read-only, not a state file):
    a setting to fix, not an outage to wait out, so it exits 2 and schedulers do not retry it."""

    exit_code = ExitCode.BAD_INPUT
    http_status = 500


class InvalidRecordError(StoreError):
    """The store refused a name, key or value: the caller must change it, retrying will not help."""

    exit_code = ExitCode.BAD_INPUT
    http_status = 400


class AlreadyExistsError(StoreError):
    """A create found a record with the same key: someone else created it first."""

    http_status = 409


class StaleVersionError(StoreError):
    """A conditional update or delete lost a race: the record changed since it was read."""

    http_status = 412


class GraphError(GuestctlError):
    """Microsoft Graph answered with an error. Carries Graph's own code, message and request id."""

    exit_code = ExitCode.UNAVAILABLE
    http_status = 502

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        method: str | None = None,
        url: str | None = None,
        retry_after: float | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.code = code
        self.request_id = request_id
        self.method = method
        self.url = url
        self.retry_after = retry_after

    def one_line(self) -> str:
        where = f"{self.method} {self.url}" if self.method else "Graph request"
        parts = [f"{cap(where, 300)} failed: {self.status} {self.code or ''}".rstrip() + f": {cap(self.message)}"]
        if self.request_id:
            parts.append(f"(request-id {self.request_id})")
        if self.hint:
            parts.append(f"— {cap(self.hint)}")
        return " ".join(parts)


class ThrottledError(GraphError):
    """Graph kept answering 429 past our retry budget."""


class NotFoundError(GraphError):
    """The object does not exist (404). Often expected: callers decide."""


class PermissionDeniedError(GraphError):
    """401/403: the app lacks a permission or licence. docs/permissions.md lists what each call needs."""


class OutcomeUnknownError(GraphError):
    """A write reached Graph but its answer was lost (a timeout, a connection broken mid-answer): it may or
    may not have been made. Not re-sent blindly; it fails that one item, whose record says where it stood, and
    the next run looks it up before trying again. A `GraphError` so that one lost answer does not stop the
    whole run the way an unreachable Graph (`UnavailableError`) does."""


class UnavailableError(GuestctlError):
    """A service could not be reached at all (refused connection, DNS, TLS, timeout): it said nothing, so
    this is not a `GraphError`, and code that handles Graph's answers per item does not swallow it."""

    exit_code = ExitCode.UNAVAILABLE
    http_status = 503


class CredentialError(GuestctlError):
    """No Azure token could be had (no `az login`, no environment credential, no managed identity).

    Exit 4 like Graph's own 401/403: it can also happen mid-run when a token is renewed, after changes,
    where exit 2's "nothing was changed" would not hold.
    """

    exit_code = ExitCode.UNAVAILABLE
    http_status = 503


class RetryLaterError(GuestctlError):
    """Part of the work failed for a reason that may pass (Graph throttled or unavailable, the store
    unavailable): what was done is kept, and the same work should be tried again later (a queue message is
    handed back to the queue)."""

    exit_code = ExitCode.UNAVAILABLE
    http_status = 503


def is_transient(error: GuestctlError) -> bool:
    """Worth trying again: Graph throttled, timed out, failed (5xx) or could not be reached, a token could
    not be had (the identity endpoint can fail for a while), the store was unavailable, or work said so."""
    if isinstance(error, GraphError):
        return error.status is None or error.status in (408, 429) or error.status >= 500
    if isinstance(error, UnavailableError | CredentialError | RetryLaterError):
        return True
    return isinstance(error, StoreError) and not isinstance(error, InvalidRecordError | StoreLocationError)


class Interrupted(GuestctlError):
    """Ctrl+C, reported by a command that knows what it had done (e.g. "the scan so far is kept"): raise it
    instead of printing and exiting, so the person gets one line. Without it, `main` says it generically."""

    exit_code = ExitCode.INTERRUPTED
    http_status = 503
