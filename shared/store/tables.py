"""Azure Table Storage backend (azure-data-tables, async): the Functions deployment's store.

Each record is one entity: encoded keys (keys.py) and the JSON of `data` in one string property `data`.
Conditional writes use the entity's ETag; tables are created on first write and remembered. The audit log
is partitioned by month (`2025-01`) with row keys `<UTC time>-<uuid>`, so it reads back chronologically
and a month can be archived as one partition.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Final

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.data.tables import TableEntity, TableTransactionError, UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from shared.errors import AlreadyExistsError, StaleVersionError, StoreError
from shared.store.keys import decode_key, encode_key, prefix_end
from shared.store.protocol import AuditEntry, Clock, Record, Store, utc_now
from shared.store.rules import (
    AUDIT_TABLE,
    audit_from_json,
    audit_month,
    audit_sort_key,
    audit_to_json,
    check_audit_filters,
    check_key,
    check_prefix,
    check_record_key,
    check_row_prefix,
    check_table,
    decode_data,
    describe_key,
    encode_data,
    json_text,
    prepare_audit,
)

PAGE_SIZE: Final = 1000  # the service's maximum per response
_RECORD_PROPERTIES: Final = ["PartitionKey", "RowKey", "data"]
_AUDIT_JSON_PROPERTIES: Final = ("before", "after")


class AzureTablesStore(Store):
    """`Store` on Azure Table Storage (or Azurite). Build it with `open_store`."""

    def __init__(
        self,
        service: TableServiceClient,
        *,
        description: str,
        prefix: str = "guestctl",
        clock: Clock = utc_now,
    ) -> None:
        self._service = service
        self._description = description  # never contains a secret: see location.describe_location
        self._prefix = check_prefix(prefix)
        self._clock = clock
        self._clients: dict[str, TableClient] = {}
        self._created: set[str] = set()
        self._creating = asyncio.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"AzureTablesStore({self._description}, prefix={self._prefix!r})"

    # --- records -------------------------------------------------------------------------------------

    async def get(self, table: str, partition: str, row: str) -> Record | None:
        check_record_key(table, partition, row)
        client = self._client(table)
        with self._errors("read", describe_key(table, partition, row)):
            try:
                entity = await client.get_entity(encode_key(partition), encode_key(row), select=["data"])
            except ResourceNotFoundError:  # no such entity, or the table was never written
                return None
        return Record(table, partition, row, decode_data(entity["data"]), entity.metadata["etag"])

    async def create(self, table: str, partition: str, row: str, data: dict[str, Any]) -> Record:
        check_record_key(table, partition, row)
        text = encode_data(table, partition, row, data)
        where = describe_key(table, partition, row)
        client = await self._writable(table)
        with self._errors("create", where):
            try:
                written = await client.create_entity(_entity(partition, row, text))
            except ResourceExistsError:
                raise AlreadyExistsError(f"{where} already exists", hint="read it and update it instead") from None
        return Record(table, partition, row, decode_data(text), written["etag"])

    async def update(self, record: Record, data: dict[str, Any]) -> Record:
        table, partition, row = record.table, record.partition, record.row
        check_record_key(table, partition, row)
        text = encode_data(table, partition, row, data)
        where = describe_key(table, partition, row)
        client = self._client(table)
        with self._errors("update", where):
            try:
                written = await client.update_entity(
                    _entity(partition, row, text),
                    mode=UpdateMode.REPLACE,
                    etag=record.version,
                    match_condition=MatchConditions.IfNotModified,
                )
            except (ResourceModifiedError, ResourceNotFoundError):  # 412 changed, 404 deleted
                raise _stale(where, record.version) from None
        return Record(table, partition, row, decode_data(text), written["etag"])

    async def upsert(self, table: str, partition: str, row: str, data: dict[str, Any]) -> Record:
        check_record_key(table, partition, row)
        text = encode_data(table, partition, row, data)
        client = await self._writable(table)
        with self._errors("upsert", describe_key(table, partition, row)):
            written = await client.upsert_entity(_entity(partition, row, text), mode=UpdateMode.REPLACE)
        return Record(table, partition, row, decode_data(text), written["etag"])

    async def delete(self, record: Record) -> None:
        table, partition, row = record.table, record.partition, record.row
        check_record_key(table, partition, row)
        where = describe_key(table, partition, row)
        client = self._client(table)
        operation = {"PartitionKey": encode_key(partition), "RowKey": encode_key(row)}
        options = {"etag": record.version, "match_condition": MatchConditions.IfNotModified}
        with self._errors("delete", where):
            try:
                # A one-operation transaction, because TableClient.delete_entity swallows 404: a second
                # worker deleting the same record must learn that it lost.
                await client.submit_transaction([("delete", operation, options)])
            except TableTransactionError as error:
                if error.status_code in (404, 412):
                    raise _stale(where, record.version) from None
                raise
            except ResourceNotFoundError:  # the table itself does not exist
                raise _stale(where, record.version) from None

    def query(
        self, table: str, partition: str | None = None, *, row_prefix: str | None = None
    ) -> AsyncIterator[Record]:
        check_table(table)
        if partition is not None:
            check_key("partition", partition, table)
        check_row_prefix(table, row_prefix)
        conditions = []
        if partition is not None:
            conditions.append(f"PartitionKey eq {odata_text(encode_key(partition))}")
        if row_prefix is not None:
            start = encode_key(row_prefix)
            conditions.append(f"RowKey ge {odata_text(start)}")
            end = prefix_end(start, encoded=True)
            if end is not None:
                conditions.append(f"RowKey lt {odata_text(end)}")
        return self._query(table, " and ".join(conditions))

    async def _query(self, table: str, query_filter: str) -> AsyncIterator[Record]:
        client = self._client(table)
        async for entity in self._stream(client, query_filter, _RECORD_PROPERTIES, f"table {table}"):
            yield Record(
                table,
                decode_key(entity["PartitionKey"]),
                decode_key(entity["RowKey"]),
                decode_data(entity["data"]),
                entity.metadata["etag"],
            )

    # --- audit ---------------------------------------------------------------------------------------

    async def append_audit(self, entry: AuditEntry) -> AuditEntry:
        appended = prepare_audit(entry, self._clock)
        assert appended.at is not None
        entity: dict[str, Any] = {"PartitionKey": audit_month(appended.at), "RowKey": audit_sort_key(appended)}
        for name, value in audit_to_json(appended).items():
            if value is None:
                continue  # Azure Tables has no null: an absent property reads back as None
            entity[name] = json_text(value) if name in _AUDIT_JSON_PROPERTIES else value
        client = await self._writable(AUDIT_TABLE)
        with self._errors("append to", "the audit log"):
            try:
                await client.create_entity(entity)
            except ResourceExistsError:
                raise AlreadyExistsError(f"audit entry {appended.id} already exists") from None
        return appended

    def read_audit(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        run_id: str | None = None,
        target_id: str | None = None,
    ) -> AsyncIterator[AuditEntry]:
        since_key, until_key = check_audit_filters(since, until, run_id, target_id)
        conditions = []
        if since_key is not None:  # the partition bound narrows the scan; the row bound is exact
            conditions += [f"PartitionKey ge {odata_text(since_key[:7])}", f"RowKey ge {odata_text(since_key)}"]
        if until_key is not None:
            conditions += [f"PartitionKey le {odata_text(until_key[:7])}", f"RowKey lt {odata_text(until_key)}"]
        if run_id is not None:
            conditions.append(f"run_id eq {odata_text(run_id)}")
        if target_id is not None:
            conditions.append(f"target_id eq {odata_text(target_id)}")
        return self._read_audit(" and ".join(conditions))

    async def _read_audit(self, query_filter: str) -> AsyncIterator[AuditEntry]:
        client = self._client(AUDIT_TABLE)
        async for entity in self._stream(client, query_filter, None, "the audit log"):
            fields: dict[str, Any] = dict(entity)
            for name in _AUDIT_JSON_PROPERTIES:
                if name in fields:
                    fields[name] = json.loads(fields[name])
            yield audit_from_json(fields)

    # --- plumbing ------------------------------------------------------------------------------------

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._service.close()

    def _client(self, table: str) -> TableClient:
        if self._closed:
            raise StoreError(f"{self!r} is closed", hint="open a new store")
        name = self._prefix + table
        client = self._clients.get(name)
        if client is None:
            client = self._clients[name] = self._service.get_table_client(name)
        return client

    async def _writable(self, table: str) -> TableClient:
        """The table's client, creating the table on the first write of this store (once)."""
        client = self._client(table)
        name = self._prefix + table
        if name not in self._created:
            async with self._creating:
                if name not in self._created:
                    with self._errors("create", f"table {name}"):
                        await self._service.create_table_if_not_exists(name)
                    self._created.add(name)
        return client

    async def _stream(
        self, client: TableClient, query_filter: str, select: list[str] | None, what: str
    ) -> AsyncIterator[TableEntity]:
        """Entities page by page in key order; a table that was never written has none."""
        if query_filter:
            pages = client.query_entities(query_filter, select=select, results_per_page=PAGE_SIZE)
        else:
            pages = client.list_entities(select=select, results_per_page=PAGE_SIZE)
        entities = aiter(pages)
        while True:
            with self._errors("query", what):
                try:
                    entity = await anext(entities)
                except StopAsyncIteration:
                    return
                except ResourceNotFoundError:
                    return
            yield entity

    @contextmanager
    def _errors(self, operation: str, where: str) -> Iterator[None]:
        """Service and network failures as a StoreError a person can act on (no traceback, no secret)."""
        try:
            yield
        except AzureError as error:
            raise StoreError(
                f"{self._description}: cannot {operation} {where}: {_summary(error)}",
                hint=_hint_for(error),
            ) from error


def _entity(partition: str, row: str, text: str) -> dict[str, str]:
    return {"PartitionKey": encode_key(partition), "RowKey": encode_key(row), "data": text}


def odata_text(value: str) -> str:
    """An OData string literal: single quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def _stale(where: str, version: str) -> StaleVersionError:
    return StaleVersionError(
        f"{where} changed or was deleted since it was read (ETag {version})",
        hint="read it again, re-check, and retry",
    )


def _summary(error: AzureError) -> str:
    if isinstance(error, HttpResponseError) and error.status_code is not None:
        code = _error_code(error)
        first_line = (error.message or "").strip().splitlines()[0:1]
        detail = first_line[0].split(":", 1)[-1].strip() if first_line else ""
        return " ".join(part for part in (f"HTTP {error.status_code}", code, detail) if part)
    reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
    if isinstance(error, ServiceRequestError):
        return f"could not connect ({reason})"
    if isinstance(error, ServiceResponseError):
        return f"the connection failed while waiting for the answer ({reason})"
    return reason


def _error_code(error: AzureError) -> str:
    """The service's error code as it documents it (`AuthorizationFailure`), not the SDK's enum name."""
    code = getattr(error, "error_code", None)
    return str(getattr(code, "value", code) or "")


def _hint_for(error: AzureError) -> str:
    status = getattr(error, "status_code", None)
    code = _error_code(error)
    if isinstance(error, ClientAuthenticationError) and status is None:
        return "the credential could not get a token: check the managed identity or `az login`"
    if status == 403 and "Permission" in code:
        return "grant the identity the 'Storage Table Data Contributor' role on the storage account"
    if status in (401, 403):
        return "check the account key / SAS in the connection string, or the identity's role assignment"
    if isinstance(error, ServiceRequestError | ServiceResponseError):
        return "check the endpoint and the network (for local runs: is Azurite running?); retry later"
    if status is not None and (status == 429 or status >= 500):
        return "the storage service is busy or unavailable; retry later"
    return "see the status and error code above"
