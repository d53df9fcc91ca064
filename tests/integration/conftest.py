"""Integration fixtures: `store` (every test on SQLite and on the session's Azurite, tests/conftest.py)."""

from tests.support.azurite import store, store_location

__all__ = ["store", "store_location"]
