"""Durable state: one `Store` protocol, an SQLite and an Azure Tables backend (docs/store.md).

Importing this package imports neither azure-data-tables nor opens any file: `open_store` loads the
backend a location needs and connects on first use.
"""

from shared.errors import InvalidRecordError
from shared.store.location import DEFAULT_LOCATION, describe_location, open_state, open_store, parse_location
from shared.store.protocol import AuditEntry, Clock, Record, Store
from shared.store.rules import AUDIT_TABLE, MAX_DATA_CHARS, MAX_KEY_LENGTH

__all__ = [
    "AUDIT_TABLE",
    "DEFAULT_LOCATION",
    "MAX_DATA_CHARS",
    "MAX_KEY_LENGTH",
    "AuditEntry",
    "Clock",
    "InvalidRecordError",
    "Record",
    "Store",
    "describe_location",
    "open_state",
    "open_store",
    "parse_location",
]
