"""The report as data: one msgspec model behind report.json, report.csv and report.html, and the weekly
snapshot kept in the store. docs/report.schema.json is generated from `Report` (tests compare them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

SCHEMA_VERSION = 1


class Snapshot(msgspec.Struct, kw_only=True, omit_defaults=False):
    """One week's numbers (docs/reports.md#numbers), kept in table `reportsnapshots` for the trend charts.

    State numbers (guests … unsponsored) are as of the week's end; flows (disabled … redeemed) happened within
    the week. None: guestctl had nothing to count it from (no sweep yet, Graph would not count)."""

    week: str  # 2026-W48
    taken_at: datetime  # when this week's report wrote it (a rerun replaces it)
    guests: int | None = None
    active: int | None = None
    stale: int | None = None
    never_redeemed: int | None = None
    exempt: int | None = None
    unknown: int | None = None
    unsponsored: int | None = None
    disabled: int = 0
    deleted: int = 0
    restored: int = 0
    invited: int = 0
    redeemed: int = 0
    median_hours_to_redeem: float | None = None
    sweep_at: datetime | None = None  # the sweep the state numbers come from


# The headline numbers in the order the report shows them: (Snapshot field, label).
HEADLINE: tuple[tuple[str, str], ...] = (
    ("guests", "Guests"),
    ("active", "Active"),
    ("stale", "Stale"),
    ("never_redeemed", "Never redeemed"),
    ("unsponsored", "Without a sponsor"),
    ("disabled", "Disabled"),
    ("deleted", "Deleted"),
    ("restored", "Restored"),
    ("invited", "Invited"),
    ("redeemed", "Redeemed"),
    ("median_hours_to_redeem", "Median hours to redeem"),
)


class Headline(msgspec.Struct, kw_only=True):
    key: str
    label: str
    value: int | float | None
    previous: int | float | None  # last week's snapshot; None when there is none
    change: int | float | None  # value - previous, when both are known


RowStatus = Literal["done", "failed", "scheduled"]


class GuestRow(msgspec.Struct, kw_only=True):
    """A guest acted on this week or scheduled next week: one row of report.csv."""

    status: RowStatus
    action: str  # flagged, disabled, deleted, restored, re-enabled, unflagged, invited, disable, delete, …
    date: datetime  # when it was done, or when it is due
    guest_id: str
    name: str  # display name and/or address as guestctl knows them; the id when it knows neither
    domain: str | None
    run_id: str | None
    reason: str


class Scheduled(msgspec.Struct, kw_only=True):
    day: str  # YYYY-MM-DD (UTC)
    action: str
    guests: int


class Domain(msgspec.Struct, kw_only=True):
    domain: str
    guests: int  # guests guestctl tracks with an address at this domain (redemption tracking)
    acted_on: int  # of them, rows of this report


class Partner(msgspec.Struct, kw_only=True):
    tenant_id: str
    name: str | None
    direct_connect: int  # sign-ins through B2B direct connect this week
    guest: int  # sign-ins as a guest account this week
    failed: int


class Attention(msgspec.Struct, kw_only=True):
    """Something a person has to look at."""

    kind: Literal["hr-event-review", "refused-plan", "failed-action", "sponsor-no-answer"]
    subject: str  # the HR event id, plan id, guest id, or the sponsor's address
    at: datetime | None  # when it happened (a sponsor-no-answer: when the notice went out)
    detail: str


class Report(msgspec.Struct, kw_only=True):
    schema_version: int = SCHEMA_VERSION
    week: str
    period_start: datetime
    period_end: datetime
    generated_at: datetime
    sources: list[str]  # where the numbers come from, in words (the sweep's date, the fresh count)
    headline: list[Headline]
    trend: list[Snapshot]  # up to 26 weeks, oldest first, ending with this week
    done: dict[str, int]  # what was done this week: action → guests
    scheduled: list[Scheduled]  # what is due next week, by day
    guests: list[GuestRow]
    domains: list[Domain]
    partners: list[Partner]
    attention: list[Attention]

    def to_json(self) -> dict[str, Any]:
        return msgspec.to_builtins(self)


def report_json_schema() -> dict[str, Any]:
    """JSON Schema of report.json (docs/report.schema.json), generated from the model."""
    schema = msgspec.json.schema(Report)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "guestctl weekly report"
    return schema


if __name__ == "__main__":  # python -m shared.reports.records > docs/report.schema.json
    import json

    print(json.dumps(report_json_schema(), indent=2))
