"""Reading an invitation file (CSV or JSON lines) into rows, without judging them yet.

A file is unusable — nothing is applied, exit 2 — when it cannot be decoded, has no `email` column, has
columns we do not know (a typo such as `group` would otherwise silently drop every group), names a column
twice or leaves a column name empty (which of two `email` cells counts?), or has a quote that never closes
(it would swallow the rest of the file into one row). Both formats follow the same rules: names are
trimmed and compared without case. Problems of one row (a bad `send_email` value, say) are kept on the row
and make that row invalid; the rest goes on.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from shared.errors import InputError

COLUMNS = ("email", "display_name", "redirect_url", "groups", "sponsors", "message", "send_email")
LIST_SEPARATOR = ";"
TRUE_WORDS = frozenset({"true", "yes", "1", "y"})
FALSE_WORDS = frozenset({"false", "no", "0", "n"})
SHOWN_CHARS = 80  # longest piece of the input quoted back in a message


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


def cut(text: str, limit: int = SHOWN_CHARS) -> str:
    """A piece of input as a message may quote it: at most `limit` characters, so never unbounded."""
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


def shown(value: object, limit: int = SHOWN_CHARS) -> str:
    """`repr` of a piece of input, cut to `limit` characters."""
    return cut(repr(value), limit)


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
    rows = []
    header: list[str] | None = None
    number = 0
    for _line, record in _csv_records(text, name, delimiter):
        if header is None:
            header = _check_columns(record, name, where=" (header)")
            continue
        if not record:
            continue  # an empty line
        cells = dict(zip(header, record, strict=False))
        extra = record[len(header) :]  # cells beyond the header's columns
        number += 1  # a line of separators only is counted, like a blank spreadsheet row, but skipped
        if not any(value.strip() for value in record):
            continue
        rows.append(_row(number, cells, extra=f"{len(extra)} cell(s) beyond the header" if extra else None))
    return rows


def _csv_records(text: str, name: str, delimiter: str) -> Iterable[tuple[int, list[str]]]:
    """(line the record starts on, cells); a quote left open or a giant cell is an InputError naming the line."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    while True:
        start = reader.line_num + 1
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            problem = str(error)
            if "unexpected end of data" in problem:
                raise InputError(
                    f"{name}: line {start}: a quote opened on this line is never closed",
                    hint='close the quoted cell with " (a quote inside a quoted cell is written "")',
                ) from None
            if "field larger than field limit" in problem:
                raise InputError(
                    f"{name}: line {start}: a cell is longer than {csv.field_size_limit():,} characters",
                    hint="no column takes text that long; check the quoting of this line",
                ) from None
            raise InputError(
                f"{name}: line {start}: malformed quoting ({problem})",
                hint='quote a whole cell ("a, b"); a quote inside a quoted cell is written ""',
            ) from None
        yield start, record


def _json_rows(text: str, name: str) -> list[InvitationRow]:
    rows = []
    number = 0
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        number += 1
        try:
            pairs = json.loads(line, object_pairs_hook=_Pairs)
        except json.JSONDecodeError as error:
            rows.append(InvitationRow(number, "", problems=(f"line {line_number} is not JSON: {error.msg}",)))
            continue
        if not isinstance(pairs, _Pairs):
            rows.append(InvitationRow(number, "", problems=(f"line {line_number} is not a JSON object",)))
            continue
        keys = _check_columns([k for k, _ in pairs], name, where=f" (line {line_number})", need_email=False)
        rows.append(_row(number, {k: _json_text(v) for k, (_, v) in zip(keys, pairs, strict=True)}))
    return rows


class _Pairs(list[tuple[str, object]]):
    """A JSON object as its (key, value) pairs: repeated keys stay visible instead of the last one winning."""


def _check_columns(names: list[str], name: str, where: str = "", need_email: bool = True) -> list[str]:
    """The column names trimmed and lower-cased, or InputError: empty, repeated or unknown names."""
    header = [h.strip().lower() for h in names]
    empty = [str(i) for i, h in enumerate(header, start=1) if not h]
    if empty:
        raise InputError(
            f"{name}{where}: column {', '.join(empty)} has no name (of {len(header)} columns)",
            hint="remove the trailing separator or name the column",
        )
    seen: dict[str, int] = {}
    for position, column in enumerate(header, start=1):
        if column in seen:
            raise InputError(
                f"{name}{where}: column {shown(column)} appears twice (columns {seen[column]} and {position})",
                hint="keep one column of each name",
            )
        seen[column] = position
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        listed = ", ".join(shown(u) for u in unknown[:5]) + (
            f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        )
        raise InputError(f"{name}{where}: unknown column(s) {listed}", hint=f"the columns are {', '.join(COLUMNS)}")
    if need_email and "email" not in header:
        raise InputError(
            f"{name}: no 'email' column", hint=f"the first line must name the columns: {', '.join(COLUMNS)}"
        )
    return header


def _json_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        return LIST_SEPARATOR.join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _row(number: int, record: dict[str, str | None], extra: str | None = None) -> InvitationRow:
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
            problems.append(f"send_email must be true or false (got {shown(raw)})")
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
