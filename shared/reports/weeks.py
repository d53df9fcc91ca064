"""ISO weeks: what a report covers (Monday 00:00 UTC to the next Monday), parsed from `2026-W48`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from shared.errors import InputError

_WEEK = re.compile(r"([0-9]{4})-W([0-9]{2})")
WEEK = timedelta(days=7)


@dataclass(frozen=True, slots=True, order=True)
class Week:
    year: int
    number: int

    @property
    def start(self) -> datetime:
        return datetime.combine(date.fromisocalendar(self.year, self.number, 1), datetime.min.time(), UTC)

    @property
    def end(self) -> datetime:
        """The next Monday 00:00 UTC: a week is `start <= moment < end`."""
        return self.start + WEEK

    def __str__(self) -> str:
        return f"{self.year}-W{self.number:02d}"

    def shifted(self, weeks: int) -> Week:
        return week_of(self.start + weeks * WEEK)

    def holds(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


def week_of(moment: datetime) -> Week:
    year, number, _ = moment.astimezone(UTC).isocalendar()
    return Week(year, number)


def last_full_week(now: datetime) -> Week:
    """The week a report made `now` covers by default: the last one that has ended (Monday's report: last week)."""
    return week_of(now).shifted(-1)


def parse_week(text: str) -> Week:
    """`2026-W48` → Week; InputError (exit 2) with the form expected otherwise."""
    match = _WEEK.fullmatch(text.strip())
    if match is not None:
        try:
            date.fromisocalendar(int(match[1]), int(match[2]), 1)
            return Week(int(match[1]), int(match[2]))
        except ValueError:
            pass
    raise InputError(
        f"--week: {text[:40]!r} is not an ISO week",
        hint="write the year, -W and the week number, e.g. 2026-W48 (weeks 01-52, or 53 in long years)",
    )
