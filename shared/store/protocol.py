"""The `Store` protocol and its records: what every backend promises (docs/store.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, Self

from shared.clock import Clock, utc_now

__all__ = ["AuditEntry", "Clock", "Record", "Store", "utc_now"]


@dataclass(frozen=True, slots=True)
class Record:
    """One stored record. `version` is opaque: pass the record back to `update`/`delete` unchanged."""

    table: str
    partition: str
    row: str
    data: dict[str, Any]  # JSON-serialisable
    version: str  # SQLite row version / Azure Tables ETag


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One change made to the tenant, as the append-only audit log keeps it."""

    action: str  # e.g. "user.disable"
    target_id: str
    actor: str  # who/what made the change (app id, CLI user, function name)
    reason: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    plan_digest: str | None = None
    run_id: str | None = None
    at: datetime | None = None  # UTC-aware; filled by append_audit from the store's clock when None
    id: str | None = None  # filled by append_audit (uuid)


class Store(Protocol):
    """Durable state with conditional writes and an append-only audit log.

    Guarantees (both backends, one contract suite in tests/integration/test_store_contract.py):
    `create` never overwrites, `update`/`delete` succeed only on the version that was read, queries come
    back ordered by (partition, row) in UTF-16 code-unit order and stream in constant memory, and audit
    entries can be appended and read but never changed.
    """

    async def get(self, table: str, partition: str, row: str) -> Record | None:
        """The record, or None if there is none."""
        ...

    async def create(self, table: str, partition: str, row: str, data: dict[str, Any]) -> Record:
        """Store a new record; `AlreadyExistsError` if the key exists."""
        ...

    async def update(self, record: Record, data: dict[str, Any]) -> Record:
        """Replace the data if the record is unchanged since read; else `StaleVersionError`."""
        ...

    async def upsert(self, table: str, partition: str, row: str, data: dict[str, Any]) -> Record:
        """Create or replace unconditionally: only for checkpoints and caches, never for decisions."""
        ...

    async def delete(self, record: Record) -> None:
        """Delete if unchanged since read; `StaleVersionError` if changed or already deleted."""
        ...

    def query(
        self, table: str, partition: str | None = None, *, row_prefix: str | None = None
    ) -> AsyncIterator[Record]:
        """Records ordered by (partition, row), streamed page by page (not a snapshot)."""
        ...

    async def append_audit(self, entry: AuditEntry) -> AuditEntry:
        """Append an entry; returns it with `id` and `at` filled."""
        ...

    def read_audit(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        run_id: str | None = None,
        target_id: str | None = None,
    ) -> AsyncIterator[AuditEntry]:
        """Entries in chronological order (ties by id), `since <= at < until`, filtered by run/target."""
        ...

    async def close(self) -> None:
        """Release connections. The store cannot be used afterwards."""
        ...

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
