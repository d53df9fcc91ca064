"""report.csv: every guest acted on this week or scheduled next week, made to open cleanly in Excel.

UTF-8 with a byte order mark (Excel otherwise guesses the code page), RFC 4180 quoting and CRLF line ends
(the csv module), ISO 8601 dates in UTC, and no formula injection: a cell starting with = + - @, a tab or
a carriage return gets a leading apostrophe, so a guest named `=HYPERLINK(…)` stays text (OWASP's advice).
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from shared.reports.records import GuestRow, Report

COLUMNS = ("status", "action", "date", "guest_id", "name", "domain", "run_id", "reason")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff"


def safe_cell(value: str) -> str:
    """The cell as text a spreadsheet will not evaluate."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cells(row: GuestRow) -> list[str]:
    values = (row.status, row.action, iso(row.date), row.guest_id, row.name, row.domain, row.run_id, row.reason)
    return [safe_cell(value or "") for value in values]


def render_csv(report: Report) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows(_cells(row) for row in report.guests)
    return (BOM + buffer.getvalue()).encode("utf-8")
