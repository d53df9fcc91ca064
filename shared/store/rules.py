"""The rules both backends enforce identically: names, keys, data size, audit entry shape.

Limits come from Azure Table Storage (the stricter backend) so that a deployment can move between SQLite
and Azure Tables without data that fits one and not the other.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Final

from shared.errors import ConfigError, InvalidRecordError
from shared.store.protocol import AuditEntry, Clock
from shared.store.registry import AUDIT

TABLE_NAME_PATTERN: Final = re.compile(r"[a-z][a-z0-9]{2,30}")
# prefix + table must be a valid Azure table name: letters and digits, 3..63, starting with a letter.
PREFIX_PATTERN: Final = re.compile(r"[a-z][a-z0-9]{0,31}")
AUDIT_TABLE: Final = AUDIT
MAX_KEY_LENGTH: Final = 255
# Azure stores a string property in at most 64 KiB of UTF-16 (32,768 code units); keep a margin.
MAX_DATA_CHARS: Final = 30_000

_NONCHARACTERS: Final = re.compile("[\ufffe\uffff]")
_AUDIT_TEXT_FIELDS: Final = ("action", "target_id", "actor", "reason", "plan_digest", "run_id")


def describe_key(table: str, partition: str, row: str) -> str:
    """`table/partition/row` for messages; keys shown quoted so odd characters are visible."""
    return f"{table}/{partition!r}/{row!r}"


def check_prefix(prefix: str) -> str:
    """The table-name prefix is a setting (one per deployment or test), so a bad one is a ConfigError."""
    if not isinstance(prefix, str) or not PREFIX_PATTERN.fullmatch(prefix):
        raise ConfigError(
            f"store prefix {prefix!r} is not valid: it must be 1 to 32 lowercase letters and digits, "
            "starting with a letter"
        )
    return prefix


def check_table(table: str) -> str:
    """Validate a table name given to a generic method (the audit table is not one of them)."""
    if not isinstance(table, str) or not TABLE_NAME_PATTERN.fullmatch(table):
        raise InvalidRecordError(
            f"table name {table!r} is not valid: it must be 3 to 31 lowercase letters and digits, "
            "starting with a letter"
        )
    if table == AUDIT_TABLE:
        raise InvalidRecordError(
            f"table {AUDIT_TABLE!r} is reserved for the append-only audit log: use append_audit and read_audit"
        )
    return table


def check_key(kind: str, key: str, table: str) -> str:
    """Keys: non-empty text of at most 255 characters; any character (`/ \\ # ?` too) but U+FFFE/U+FFFF."""
    if not isinstance(key, str):
        raise InvalidRecordError(f"{table}: {kind} key must be text, got {type(key).__name__}")
    if not key:
        raise InvalidRecordError(f"{table}: {kind} key must not be empty")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidRecordError(
            f"{table}: {kind} key is {len(key)} characters long, the limit is {MAX_KEY_LENGTH}: {key[:40]!r}…"
        )
    _check_unicode(key, f"{table}: {kind} key {key!r}")
    return key


def check_record_key(table: str, partition: str, row: str) -> None:
    check_table(table)
    check_key("partition", partition, table)
    check_key("row", row, table)


def check_row_prefix(table: str, row_prefix: str | None) -> None:
    if row_prefix is None:
        return
    if not isinstance(row_prefix, str) or not row_prefix:
        raise InvalidRecordError(f"{table}: row_prefix must be non-empty text (or None for all rows)")
    _check_unicode(row_prefix, f"{table}: row_prefix {row_prefix!r}")


def encode_data(table: str, partition: str, row: str, data: dict[str, Any]) -> str:
    """The JSON text stored for `data`, refused with a clear reason if it is not storable."""
    where = describe_key(table, partition, row)
    if not isinstance(data, dict):
        raise InvalidRecordError(f"{where}: data must be a dict, got {type(data).__name__}")
    return to_json(data, where=where, field="data")


def decode_data(text: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(text)
    return data


def to_json(value: dict[str, Any], *, where: str, field: str) -> str:
    """Compact JSON within the size limit. Datetimes are not JSON: store ISO strings."""
    try:
        _check_json_keys(value, where=where, field=field)
        text = json_text(value)
    except TypeError as error:
        raise InvalidRecordError(
            f"{where}: {field} is not JSON-serialisable ({error}); store datetimes as ISO 8601 strings"
        ) from None
    except ValueError as error:
        raise InvalidRecordError(f"{where}: {field} is not valid JSON ({error})") from None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRecordError(
            f"{where}: {field} contains text that is not valid Unicode (a lone surrogate)"
        ) from None
    _check_size(text, where=where, field=field)
    return text


def _check_json_keys(value: object, *, where: str, field: str) -> None:
    """json.dumps would silently turn non-text keys into text: the data would not read back as written."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            for key, nested in item.items():
                if not isinstance(key, str):
                    raise InvalidRecordError(
                        f"{where}: {field} has a {type(key).__name__} key {key!r}; JSON object keys are text"
                    )
                pending.append(nested)
        elif isinstance(item, list | tuple):
            pending.extend(item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise InvalidRecordError(f"{where}: {field} contains {item!r}, which JSON cannot represent")


def _check_size(text: str, *, where: str, field: str) -> None:
    size = utf16_length(text)
    if size > MAX_DATA_CHARS:
        raise InvalidRecordError(
            f"{where}: {field} is {size:,} characters as JSON, the limit is {MAX_DATA_CHARS:,} "
            "(Azure Table Storage property limit; characters beyond U+FFFF count twice)",
            hint="store large content elsewhere (a blob or a file) and keep a reference in the record",
        )


def utf16_length(text: str) -> int:
    """Length as Azure counts it: UTF-16 code units."""
    if text.isascii():  # O(1) in CPython, and the common case (compressed texts are base64)
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _check_unicode(text: str, what: str) -> None:
    """Text the store keeps must be valid Unicode. SQLite turns the noncharacters U+FFFE and U+FFFF into
    U+FFFD when it converts text, so keys and audit fields must not contain them (JSON escapes them)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRecordError(f"{what} is not valid Unicode text (it contains a lone surrogate)") from None
    if _NONCHARACTERS.search(text):
        raise InvalidRecordError(f"{what} contains the Unicode noncharacter U+FFFE or U+FFFF")


def json_text(value: object) -> str:
    """Compact JSON that survives SQLite's and Azure's text handling unchanged (noncharacters escaped)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    if text.isascii():
        return text
    # Raw U+FFFE/U+FFFF can only occur inside JSON strings, where the escape means the same character.
    return _NONCHARACTERS.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


# --- audit ---------------------------------------------------------------------------------------------


def prepare_audit(entry: AuditEntry, clock: Clock) -> AuditEntry:
    """Validate an entry and fill `id` and `at`. The result is exactly what reading it back returns."""
    if not isinstance(entry, AuditEntry):
        raise InvalidRecordError(f"append_audit needs an AuditEntry, got {type(entry).__name__}")
    if entry.id is not None:
        raise InvalidRecordError(
            f"audit entry {entry.id!r} already has an id: it was appended before, and the log is append-only"
        )
    where = f"audit entry ({entry.action!r} on {entry.target_id!r})"
    for name in ("action", "target_id", "actor", "reason"):
        value = getattr(entry, name)
        if not isinstance(value, str) or not value.strip():
            raise InvalidRecordError(f"{where}: {name} must be non-empty text")
    for name in _AUDIT_TEXT_FIELDS:
        value = getattr(entry, name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise InvalidRecordError(f"{where}: {name} must be text, got {type(value).__name__}")
        _check_unicode(value, f"{where}: {name}")
        _check_size(value, where=where, field=name)
    states = {}
    for name in ("before", "after"):
        value = getattr(entry, name)
        if value is not None and not isinstance(value, dict):
            raise InvalidRecordError(f"{where}: {name} must be a dict or None, got {type(value).__name__}")
        states[name] = None if value is None else json.loads(to_json(value, where=where, field=name))
    at = entry.at if entry.at is not None else clock()
    return replace(entry, at=to_utc(at, "AuditEntry.at"), id=uuid.uuid4().hex, **states)


def to_utc(moment: datetime, what: str) -> datetime:
    """Timezone-aware UTC; a naive datetime is a bug (which zone did the caller mean?)."""
    if not isinstance(moment, datetime):
        raise TypeError(f"{what} must be a datetime, got {type(moment).__name__}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware (UTC), got naive {moment.isoformat()}")
    return moment.astimezone(UTC)


def audit_time_key(moment: datetime) -> str:
    """Fixed-width UTC time that sorts chronologically as text: `2025-01-31T09:00:00.000000Z`."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def audit_month(moment: datetime) -> str:
    return audit_time_key(moment)[:7]


def audit_sort_key(entry: AuditEntry) -> str:
    """Chronological and unique: time, then the entry's uuid (the Azure row key)."""
    assert entry.at is not None
    assert entry.id is not None
    return f"{audit_time_key(entry.at)}-{entry.id}"


def audit_to_json(entry: AuditEntry) -> dict[str, Any]:
    assert entry.at is not None
    return {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "action": entry.action,
        "target_id": entry.target_id,
        "actor": entry.actor,
        "reason": entry.reason,
        "before": entry.before,
        "after": entry.after,
        "plan_digest": entry.plan_digest,
        "run_id": entry.run_id,
    }


def audit_from_json(fields: dict[str, Any]) -> AuditEntry:
    return AuditEntry(
        action=fields["action"],
        target_id=fields["target_id"],
        actor=fields["actor"],
        reason=fields["reason"],
        before=fields.get("before"),
        after=fields.get("after"),
        plan_digest=fields.get("plan_digest"),
        run_id=fields.get("run_id"),
        at=datetime.fromisoformat(fields["at"]).astimezone(UTC),
        id=fields["id"],
    )


def check_audit_filters(
    since: datetime | None, until: datetime | None, run_id: str | None, target_id: str | None
) -> tuple[str | None, str | None]:
    """Validate read_audit's filters; returns the since/until bounds as sort-key prefixes."""
    for name, value in (("run_id", run_id), ("target_id", target_id)):
        if value is not None and (not isinstance(value, str) or not value):
            raise InvalidRecordError(f"read_audit: {name} must be non-empty text or None")
        if value is not None:
            _check_unicode(value, f"read_audit: {name}")
    since_key = None if since is None else audit_time_key(to_utc(since, "read_audit since"))
    until_key = None if until is None else audit_time_key(to_utc(until, "read_audit until"))
    return since_key, until_key
