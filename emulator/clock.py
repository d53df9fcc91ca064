"""Virtual clock: the emulator's idea of "now", which tests and the demo can move forward."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def format_datetime(value: datetime) -> str:
    """Format as Graph does for directory timestamps (second precision, `Z`), so strings sort by time."""
    return value.astimezone(UTC).strftime(ISO_FORMAT)


def parse_datetime(text: str) -> datetime:
    """Parse an ISO 8601 timestamp as clients send it (`Z`, offsets, optional fractions)."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class Clock:
    """A clock that runs with real time (unless frozen) plus an offset moved by `advance`.

    Throttling windows use the real monotonic clock (see limits.py); everything calendar-like
    (createdDateTime, delta token age, retention, subscription expiry) uses this clock.
    """

    def __init__(self, start: datetime | None = None, *, frozen: bool = False) -> None:
        self._lock = threading.Lock()
        self._anchor = (start or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
        self._anchor_real = time.monotonic()
        self._frozen = frozen

    @property
    def frozen(self) -> bool:
        return self._frozen

    def now(self) -> datetime:
        with self._lock:
            if self._frozen:
                return self._anchor
            elapsed = time.monotonic() - self._anchor_real
            return self._anchor + timedelta(seconds=elapsed)

    def now_iso(self) -> str:
        return format_datetime(self.now())

    def advance(self, delta: timedelta) -> datetime:
        if delta < timedelta(0):
            raise ValueError("the virtual clock only moves forward")
        with self._lock:
            self._anchor += delta
        return self.now()

    def set(self, value: datetime, *, frozen: bool | None = None) -> datetime:
        """Jump to an absolute time (forward only, so delta tokens and retention stay meaningful)."""
        current = self.now()
        if value.astimezone(UTC) < current - timedelta(seconds=1):
            raise ValueError("the virtual clock only moves forward")
        with self._lock:
            self._anchor = value.astimezone(UTC)
            self._anchor_real = time.monotonic()
            if frozen is not None:
                self._frozen = frozen
        return self.now()

    def freeze(self, frozen: bool = True) -> None:
        current = self.now()
        with self._lock:
            self._anchor = current
            self._anchor_real = time.monotonic()
            self._frozen = frozen
