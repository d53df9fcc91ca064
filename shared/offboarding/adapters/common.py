"""What the adapters share: reading a vendor's JSON safely, picking fields by path, building native events.

Every adapter is pure: (headers, raw body, its config, its keys, now) → `Received`, or `Unauthenticated`
(401, generic) or `EventError` (400, with the field path). Nothing else may escape, whatever the bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from shared.errors import cap
from shared.offboarding.events import EventError, EventType, HrEvent, event_from, zone_of
from shared.offboarding.signatures import Unauthenticated, digest, digest_matches, header

MAX_ITEMS = 100  # employees or events in one delivery; a sender batching more is not one we know


def json_body(body: bytes) -> Any:
    """The JSON in `body` (UTF-8), or EventError."""
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise EventError("", "the body is not UTF-8") from None
    except (ValueError, RecursionError):  # RecursionError: "[[[[…" nested past the parser's stack
        raise EventError("", "the body is not valid JSON") from None


def pick(value: Any, path: str) -> Any:
    """The value at dotted `path` in nested objects, or None where any part is missing."""
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def text(value: Any) -> str | None:
    """A scalar as text (senders write ids as numbers or strings); None for missing, empty or not a scalar."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value).strip() or None


def day(value: Any, where: str) -> str:
    """An ISO date from a date or a date-time text (its date part, as the sender wrote it), or EventError."""
    raw = text(value)
    if raw is None:
        raise EventError(where, "missing: the effective date is needed")
    try:
        return date.fromisoformat(raw[:10]).isoformat()
    except ValueError:
        raise EventError(where, f"not a date (YYYY-MM-DD): {cap(raw, 40)!r}") from None


def local_day(moment: datetime, zone: str) -> str:
    """The date of `moment` in `zone` (for senders that say "now" instead of a date)."""
    try:
        return moment.astimezone(zone_of(zone)).date().isoformat()
    except OverflowError:  # year 1 or 9999 shifted past the calendar's end
        raise EventError("", "the event's time is out of range") from None


def moment(value: Any, where: str) -> datetime:
    """An ISO 8601 date-time with an offset, or EventError."""
    try:
        parsed = datetime.fromisoformat(text(value) or "")
    except ValueError:
        raise EventError(where, "missing or not an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        raise EventError(where, "has no time zone offset")
    return parsed


def require_hmac(
    headers: Mapping[str, str],
    name: str,
    message: bytes,
    keys: tuple[bytes, ...],
    *,
    algorithm: str = "sha256",
    encodings: tuple[str, ...] = ("hex",),
) -> None:
    """Unauthenticated unless header `name` holds the HMAC of `message` under one of `keys`."""
    given = header(headers, name)
    if not given:
        raise Unauthenticated(f"the {name} header is missing")
    # Every key is tried (two at most, during a rotation) so the time taken does not say which matched.
    matches = [digest_matches(given, digest(key, message, algorithm), encodings=encodings) for key in keys]
    if not any(matches):
        raise Unauthenticated(f"{name} does not match a configured key")


def native(
    *,
    kind: EventType,
    timestamp: str,
    system: str,
    tenant: str | None,
    event_id: str | None,
    worker: dict[str, str],
    effective_date: str,
    time_zone: str,
    where: str,
) -> HrEvent:
    """The native event an adapter read, through the native route's own validation."""
    source = {"system": system, "tenant": tenant, "eventId": event_id}
    return event_from(
        {
            "type": kind.value,
            "timestamp": timestamp,
            "data": {
                "source": {key: value for key, value in source.items() if value is not None},
                "worker": worker,
                "effectiveDate": effective_date,
                "effectiveTimeZone": time_zone,
            },
        },
        where=where,
    )
