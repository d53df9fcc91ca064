"""SQLite backend: the embedded default for the CLI and the demo (`.guestctl/state.db`).

Calls are short local transactions, so they run synchronously inside the async methods (no thread pool,
no aiosqlite). Safe for several processes on one file: WAL mode, a busy timeout, every write in
`BEGIN IMMEDIATE`, conditional writes as `UPDATE … WHERE version = ?` with a rowcount check. Versions
come from one store-wide counter, so a deleted and re-created record never matches an old version.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Final, TypeVar

from shared.errors import AlreadyExistsError, StaleVersionError, StoreError, StoreLocationError
from shared.store.keys import prefix_end
from shared.store.protocol import AuditEntry, Clock, Record, Store, utc_now
from shared.store.rules import (
    AUDIT_TABLE,
    audit_from_json,
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

MEMORY: Final = ":memory:"
SCHEMA_VERSION: Final = 1
BUSY_TIMEOUT_SECONDS: Final = 10.0
PAGE_SIZE: Final = 500  # rows per SELECT while streaming: no statement stays open across an await

# UTF-16BE text makes SQLite's BINARY collation compare UTF-16 code units: the order Azure Tables uses.
# It only takes effect when the file is created.
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS records (
    tbl TEXT NOT NULL,
    partition TEXT NOT NULL,
    row TEXT NOT NULL,
    data TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (tbl, partition, row)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit (
    log TEXT NOT NULL,
    sort_key TEXT NOT NULL,
    run_id TEXT,
    target_id TEXT NOT NULL,
    entry TEXT NOT NULL,
    PRIMARY KEY (log, sort_key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS audit_by_run ON audit (log, run_id, sort_key);
CREATE INDEX IF NOT EXISTS audit_by_target ON audit (log, target_id, sort_key);
-- a run's entries for one target (the audit-once check before each change): without it a big run's
-- every check walks all of the run's entries
CREATE INDEX IF NOT EXISTS audit_by_run_target ON audit (log, run_id, target_id, sort_key);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO counters (name, value) VALUES ('version', 0);
"""

T = TypeVar("T")


class SqliteStore(Store):
    """`Store` on one SQLite file (or `:memory:`). The file and its folder are created on first write."""

    def __init__(self, path: str | Path, *, prefix: str = "guestctl", clock: Clock = utc_now) -> None:
        self._path = str(path)
        self._prefix = check_prefix(prefix)
        self._clock = clock
        self._connection: sqlite3.Connection | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"SqliteStore({self._path!r}, prefix={self._prefix!r})"

    # --- records -------------------------------------------------------------------------------------

    async def get(self, table: str, partition: str, row: str) -> Record | None:
        check_record_key(table, partition, row)
        connection = self._connect(for_write=False)
        if connection is None:
            return None
        with self._errors("read", describe_key(table, partition, row)):
            found = connection.execute(
                "SELECT data, version FROM records WHERE tbl = ? AND partition = ? AND row = ?",
                (self._prefix + table, partition, row),
            ).fetchone()
        if found is None:
            return None
        return Record(table, partition, row, decode_data(found[0]), str(found[1]))

    async def create(self, table: str, partition: str, row: str, data: dict[str, Any]) -> Record:
        check_record_key(table, partition, row)
        text = encode_data(table, partition, row, data)
        where = describe_key(table, partition, row)

        def insert(connection: sqlite3.Connection) -> int:
            version = _next_version(connection)
            inserted = connection.execute(
                "INSERT INTO records (tbl, partition, row, data, version) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (self._prefix + table, partition, row, text, version),
            )
            if inserted.rowcount != 1:
                raise AlreadyExistsError(f"{where} already exists", hint="read it and update it instead")
            return version

        version = self._write("create", where, insert)
        return Record(table, partition, row, decode_data(text), str(version))

    async def update(self, record: Record, data: dict[str, Any]) -> Record:
        table, partition, row = record.table, record.partition, record.row
        check_record_key(table, partition, row)
        text = encode_data(table, partition, row, data)
        where = describe_key(table, partition, row)
        expected = _parse_version(record, where)

        def replace(connection: sqlite3.Connection) -> int:
            version = _next_version(connection)
            updated = connection.execute(
                "UPDATE records SET data = ?, version = ? WHERE tbl = ? AND partition = ? AND row = ? AND version = ?",
                (text, version, self._prefix + table, partition, row, expected),
            )
            if updated.rowcount != 1:
                raise _stale(where, record.version)
            return version

        version = self._write("update", where, replace)
        return Record(table, partition, row, decode_data(text), str(version))

    async def upsert(self, table: str, partition: str, row: str, data: dict[str, Any]) -> Record:
        check_record_key(table, partition, row)
        text = encode_data(table, partition, row, data)

        def write(connection: sqlite3.Connection) -> int:
            version = _next_version(connection)
            connection.execute(
                "INSERT INTO records (tbl, partition, row, data, version) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (tbl, partition, row) DO UPDATE SET data = excluded.data, version = excluded.version",
                (self._prefix + table, partition, row, text, version),
            )
            return version

        version = self._write("upsert", describe_key(table, partition, row), write)
        return Record(table, partition, row, decode_data(text), str(version))

    async def delete(self, record: Record) -> None:
        table, partition, row = record.table, record.partition, record.row
        check_record_key(table, partition, row)
        where = describe_key(table, partition, row)
        expected = _parse_version(record, where)

        def remove(connection: sqlite3.Connection) -> None:
            deleted = connection.execute(
                "DELETE FROM records WHERE tbl = ? AND partition = ? AND row = ? AND version = ?",
                (self._prefix + table, partition, row, expected),
            )
            if deleted.rowcount != 1:
                raise _stale(where, record.version)

        self._write("delete", where, remove)

    def query(
        self, table: str, partition: str | None = None, *, row_prefix: str | None = None
    ) -> AsyncIterator[Record]:
        check_table(table)
        if partition is not None:
            check_key("partition", partition, table)
        check_row_prefix(table, row_prefix)
        return self._query(table, partition, row_prefix)

    async def _query(self, table: str, partition: str | None, row_prefix: str | None) -> AsyncIterator[Record]:
        """Keyset pages: each SELECT seeks to where the previous one ended (O(n) for the whole scan)."""
        prefix_bound = None if row_prefix is None else prefix_end(row_prefix)
        last: tuple[str, str] | None = None
        while True:
            conditions, parameters = ["tbl = ?"], [self._prefix + table]
            if partition is not None:
                # One lower bound on row, so the primary key seeks straight to it.
                conditions.append("partition = ?")
                parameters.append(partition)
                if last is not None:
                    conditions.append("row > ?")
                    parameters.append(last[1])
                elif row_prefix is not None:
                    conditions.append("row >= ?")
                    parameters.append(row_prefix)
            else:
                if last is not None:
                    conditions.append("(partition, row) > (?, ?)")
                    parameters += last
                if row_prefix is not None:
                    conditions.append("row >= ?")
                    parameters.append(row_prefix)
            if prefix_bound is not None:
                conditions.append("row < ?")
                parameters.append(prefix_bound)
            connection = self._connect(for_write=False)
            if connection is None:
                return
            with self._errors("query", f"table {table}"):
                page = connection.execute(
                    f"SELECT partition, row, data, version FROM records WHERE {' AND '.join(conditions)} "
                    "ORDER BY partition, row LIMIT ?",
                    (*parameters, PAGE_SIZE),
                ).fetchall()
            for found_partition, found_row, text, version in page:
                yield Record(table, found_partition, found_row, decode_data(text), str(version))
            if len(page) < PAGE_SIZE:
                return
            last = (page[-1][0], page[-1][1])

    # --- audit ---------------------------------------------------------------------------------------

    async def append_audit(self, entry: AuditEntry) -> AuditEntry:
        appended = prepare_audit(entry, self._clock)
        text = json_text(audit_to_json(appended))

        def insert(connection: sqlite3.Connection) -> None:
            connection.execute(
                "INSERT INTO audit (log, sort_key, run_id, target_id, entry) VALUES (?, ?, ?, ?, ?)",
                (self._prefix + AUDIT_TABLE, audit_sort_key(appended), appended.run_id, appended.target_id, text),
            )

        self._write("append to", "the audit log", insert)
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
        return self._read_audit(since_key, until_key, run_id, target_id)

    async def _read_audit(
        self, since_key: str | None, until_key: str | None, run_id: str | None, target_id: str | None
    ) -> AsyncIterator[AuditEntry]:
        conditions = ["log = ?"]
        parameters: list[Any] = [self._prefix + AUDIT_TABLE]
        for condition, value in (
            ("sort_key >= ?", since_key),
            ("sort_key < ?", until_key),
            ("run_id = ?", run_id),
            ("target_id = ?", target_id),
        ):
            if value is not None:
                conditions.append(condition)
                parameters.append(value)
        sql = (
            f"SELECT sort_key, entry FROM audit WHERE {' AND '.join(conditions)}"
            " AND sort_key > ? ORDER BY sort_key LIMIT ?"
        )
        after = ""
        while True:
            connection = self._connect(for_write=False)
            if connection is None:
                return
            with self._errors("read", "the audit log"):
                page = connection.execute(sql, (*parameters, after, PAGE_SIZE)).fetchall()
            for _sort_key, text in page:
                yield audit_from_json(json.loads(text))
            if len(page) < PAGE_SIZE:
                return
            after = page[-1][0]

    # --- connection ----------------------------------------------------------------------------------

    async def close(self) -> None:
        self._closed = True
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _connect(self, *, for_write: bool) -> sqlite3.Connection | None:
        """The connection, opened on first use. Reads of a file that does not exist yet find nothing
        (and create nothing): `guestctl status` on a fresh machine leaves no `.guestctl/` behind."""
        if self._closed:
            raise StoreError(f"{self!r} is closed", hint="open a new store")
        if self._connection is not None:
            return self._connection
        if self._path != MEMORY and not for_write and not Path(self._path).exists():
            return None
        with self._opening():
            if self._path != MEMORY:
                Path(self._path).parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self._path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
            try:
                _prepare(connection, self._path)
            except BaseException:
                connection.close()
                raise
        self._connection = connection
        return connection

    @contextmanager
    def _opening(self) -> Iterator[None]:
        """Failures to create or open the file as one line naming the path. A path that cannot work (not a
        folder, read-only, not a database) is a setting to fix (`StoreLocationError`, exit 2); a lock held
        past the timeout is worth a retry (`StoreError`, exit 4)."""
        try:
            yield
        except OSError as error:  # the folder: a parent is a file, no permission, read-only file system
            if isinstance(error, FileExistsError | NotADirectoryError) and error.filename:
                reason = f"{error.filename} is not a folder"
            else:
                reason = f"{error.strerror or error}" + (f" ({error.filename})" if error.filename else "")
            raise StoreLocationError(
                f"state file {self._path}: cannot create its folder: {reason}", hint=_LOCATION_HINT
            ) from None
        except sqlite3.Error as error:
            if _is_busy(error):
                raise StoreError(f"state file {self._path}: cannot open: {error}", hint=_hint_for(error)) from None
            raise StoreLocationError(f"state file {self._path}: cannot open: {error}", hint=_LOCATION_HINT) from None

    def _write(self, operation: str, where: str, action: Callable[[sqlite3.Connection], T]) -> T:
        connection = self._connect(for_write=True)
        assert connection is not None
        with self._errors(operation, where):
            connection.execute("BEGIN IMMEDIATE")
            try:
                result = action(connection)
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
        return result

    @contextmanager
    def _errors(self, operation: str, where: str) -> Iterator[None]:
        """SQLite failures (locked past the timeout, disk full, read-only file) as a StoreError."""
        try:
            yield
        except sqlite3.Error as error:
            raise StoreError(
                f"state file {self._path}: cannot {operation} {where}: {error}",
                hint=_hint_for(error),
            ) from error


def _prepare(connection: sqlite3.Connection, path: str) -> None:
    """Set up a new or existing file; safe when two processes open a new file at the same moment."""
    connection.execute("PRAGMA encoding = 'UTF-16be'")
    if path != MEMORY:
        connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable against crashes of the process
    connection.execute("BEGIN IMMEDIATE")
    try:
        found_version = connection.execute("PRAGMA user_version").fetchone()[0]
        if found_version > SCHEMA_VERSION:
            raise StoreLocationError(
                f"state file {path} was written by a newer guestctl (schema {found_version}, "
                f"this one reads {SCHEMA_VERSION})",
                hint="upgrade guestctl",
            )
        for statement in _SCHEMA.split(";\n"):
            if statement.strip():
                connection.execute(statement)
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        encoding = connection.execute("PRAGMA encoding").fetchone()[0]
        if encoding != "UTF-16be":
            raise StoreLocationError(
                f"state file {path} is not a guestctl state file (text encoding {encoding})",
                hint="point the store location at a new file",
            )
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise


def _next_version(connection: sqlite3.Connection) -> int:
    connection.execute("UPDATE counters SET value = value + 1 WHERE name = 'version'")
    version: int = connection.execute("SELECT value FROM counters WHERE name = 'version'").fetchone()[0]
    return version


def _parse_version(record: Record, where: str) -> int:
    try:
        return int(record.version)
    except (TypeError, ValueError):
        raise StaleVersionError(
            f"{where}: version {record.version!r} was not issued by this SQLite store",
            hint="read the record from this store and retry",
        ) from None


def _stale(where: str, version: str) -> StaleVersionError:
    return StaleVersionError(
        f"{where} changed or was deleted since it was read (version {version})",
        hint="read it again, re-check, and retry",
    )


_LOCATION_HINT: Final = (
    "set GUESTCTL_STATE to a guestctl state file, or a new file, in a folder you can write (default .guestctl/state.db)"
)


def _is_busy(error: sqlite3.Error) -> bool:
    text = str(error).lower()
    return "locked" in text or "busy" in text


def _hint_for(error: sqlite3.Error) -> str:
    text = str(error).lower()
    if _is_busy(error):
        return f"another process held the state file for more than {BUSY_TIMEOUT_SECONDS:.0f} s; retry"
    if "readonly" in text or "permission" in text or "unable to open" in text:
        return "check that the state file and its folder exist and are writable"
    return "check the state file's disk and permissions"
