"""Reading an invitation file (CSV or JSON lines) into rows, without judging them yet.

A file is unusable — nothing is applied, exit 2 — when it cannot be decoded, has no `email` column, or has
columns we do not know (a typo such as `group` would otherwise silently drop every group). Problems of one
row (a bad `send_email` value, say) are kept on the row and make that row invalid; the rest goes on.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from shared.errors import InputError

COLUMNS = ("email", "display_name", "redirect_url", "groups", "sponsors", "message", "send_email")
LIST_SEPARATOR = ";"
TRUE_WORDS = frozenset({"true", "yes", "1", "y"})
FALSE_WORDS = frozenset({"false", "no", "0", "n"})


@dataclass(frozen=True, slots=True)
class InvitationRow:
    """One row as the file gave it. `row` is 1-based and counts data rows (the header is not a row)."""

    row: int
    email: str
    display_name: str | None = None
    redirect_url: str | None = None
    groups: tuple[str, ...] = ()
    sponsors: tuple[str, ...] = ()
    message: str | None = None
    send_email: bool | None = None  # None: the policy decides
    problems: tuple[str, ...] = field(default=())  # why this row cannot be used as given


def read_rows(path: Path) -> list[InvitationRow]:
    """Rows of a `.csv` or `.jsonl`/`.json` file (by extension; CSV otherwise)."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InputError(f"{path}: cannot read: {error.strerror or error}") from None
    return parse_rows(data, name=str(path), json_lines=path.suffix.lower() in (".jsonl", ".json", ".ndjson"))


def parse_rows(data: bytes, *, name: str, json_lines: bool = False) -> list[InvitationRow]:
    try:
        text = data.decode("utf-8-sig")  # with or without a byte-order mark
    except UnicodeDecodeError as error:
        raise InputError(
            f"{name}: not UTF-8 (byte {error.start})", hint="save the file as UTF-8 (CSV UTF-8 in Excel)"
        ) from None
    if not text.strip():
        raise InputError(f"{name}: is empty", hint="send a header line and at least one row")
    rows = _json_rows(text, name) if json_lines else _csv_rows(text, name)
    if not rows:
        raise InputError(f"{name}: no rows to invite", hint="the file needs a header and at least one row")
    return rows


def _csv_rows(text: str, name: str) -> list[InvitationRow]:
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [h.strip().lower() for h in reader.fieldnames or []]
    _check_columns(header, name)
    reader.fieldnames = header
    rows = []
    for number, record in enumerate(reader, start=1):
        extra = record.pop(None, None) or []  # cells beyond the header's columns
        if not any((value or "").strip() for value in [*record.values(), *extra]):
            continue  # blank line
        rows.append(_row(number, record, extra=f"{len(extra)} cell(s) beyond the header" if extra else None))
    return rows


def _json_rows(text: str, name: str) -> list[InvitationRow]:
    rows = []
    number = 0
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        number += 1
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            rows.append(InvitationRow(number, "", problems=(f"line {line_number} is not JSON: {error.msg}",)))
            continue
        if not isinstance(record, dict):
            rows.append(InvitationRow(number, "", problems=(f"line {line_number} is not a JSON object",)))
            continue
        _check_columns(list(record), name, where=f" (line {line_number})", need_email=False)
        rows.append(_row(number, {k: _json_text(v) for k, v in record.items()}))
    return rows


def _check_columns(header: list[str], name: str, where: str = "", need_email: bool = True) -> None:
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        raise InputError(
            f"{name}{where}: unknown column(s) {', '.join(repr(u) for u in unknown)}",
            hint=f"the columns are {', '.join(COLUMNS)}",
        )
    if need_email and "email" not in header:
        raise InputError(
            f"{name}: no 'email' column", hint=f"the first line must name the columns: {', '.join(COLUMNS)}"
        )


def _json_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        return LIST_SEPARATOR.join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _row(number: int, record: dict[str | None, object], extra: str | None = None) -> InvitationRow:
    def text(column: str) -> str | None:
        value = record.get(column)
        value = value.strip() if isinstance(value, str) else None
        return value or None

    problems = [extra] if extra else []
    send_email = None
    if (raw := text("send_email")) is not None:
        if raw.lower() in TRUE_WORDS:
            send_email = True
        elif raw.lower() in FALSE_WORDS:
            send_email = False
        else:
            problems.append(f"send_email must be true or false (got {raw!r})")
    return InvitationRow(
        row=number,
        email=text("email") or "",
        display_name=text("display_name"),
        redirect_url=text("redirect_url"),
        groups=_split(text("groups")),
        sponsors=_split(text("sponsors")),
        message=text("message"),
        send_email=send_email,
        problems=tuple(problems),
    )


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(LIST_SEPARATOR) if part.strip())
