"""Shared data for the invitation tests."""

from __future__ import annotations

from datetime import UTC, datetime

NOW = datetime(2026, 11, 27, tzinfo=UTC)


def address_of_length(total: int) -> str:
    """A valid-looking address of exactly `total` characters (249 to 311: every DNS label within 63)."""
    return f"{'a' * 60}@{'d' * 60}.{'d' * 60}.{'d' * 60}.{'d' * (total - 248)}.com"


LONG_ADDRESS = address_of_length(263)  # over the 254 characters an address may have
