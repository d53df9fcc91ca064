"""The injectable "now": tests and the emulator move time, so no engine code calls datetime.now() itself."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The real clock: timezone-aware UTC."""
    return datetime.now(UTC)
