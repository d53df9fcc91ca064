"""Integration fixtures: `azurite` (session) and `store` (every test on SQLite and on Azurite)."""

from tests.support.azurite import azurite, store, store_location

__all__ = ["azurite", "store", "store_location"]
