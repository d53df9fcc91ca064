"""One exception hierarchy, mapped once to CLI exit codes and once to HTTP statuses.

Every error a person can cause (bad input, bad configuration, a refused plan) is a `GuestctlError` with a
message that says what, where and how to fix it. Anything else is a bug and may show a traceback.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Documented `guestctl` exit codes (docs/cli.md)."""

    OK = 0
    PARTIAL = 1  # some items failed or were invalid; the rest was done
    BAD_INPUT = 2  # the input, settings or policy are unusable; nothing was changed
    REFUSED = 3  # a safety rule refused the whole operation; nothing was changed
    UNAVAILABLE = 4  # Microsoft Graph or the state store failed; see the message for what was done


class GuestctlError(Exception):
    """Base of every error meant for a person. `hint` says how to fix it."""

    exit_code: ExitCode = ExitCode.BAD_INPUT
    http_status: int = 400

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        return f"{self.message} — {self.hint}" if self.hint else self.message


class ConfigError(GuestctlError):
    """A setting (environment / app setting / CLI flag) is missing or wrong."""


class PolicyError(GuestctlError):
    """The policy file cannot be read or does not validate."""


class InputError(GuestctlError):
    """A file or request body given to a command is unusable."""


class UnknownItemError(GuestctlError):
    """A batch, plan or run id that does not exist."""

    http_status = 404


class RefusedError(GuestctlError):
    """A safety rule refused the operation as a whole (ARCHITECTURE §5)."""

    exit_code = ExitCode.REFUSED
    http_status = 409


class StoreError(GuestctlError):
    """The state store failed or refused an operation."""

    exit_code = ExitCode.UNAVAILABLE
    http_status = 503


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
        parts = [f"{where} failed: {self.status} {self.code or ''}".rstrip() + f": {self.message}"]
        if self.request_id:
            parts.append(f"(request-id {self.request_id})")
        if self.hint:
            parts.append(f"— {self.hint}")
        return " ".join(parts)


class ThrottledError(GraphError):
    """Graph kept answering 429 past our retry budget."""


class NotFoundError(GraphError):
    """The object does not exist (404). Often expected: callers decide."""


class PermissionDeniedError(GraphError):
    """401/403: the app lacks a permission or licence. docs/permissions.md lists what each call needs."""
