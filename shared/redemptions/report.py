"""Pure: the redemption report — per batch and overall, how many redeemed and how fast, who is pending."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.redemptions.records import GuestState, Source, Tracked
from shared.redemptions.rules import next_reminder

OVERALL = "all"


@dataclass(frozen=True, slots=True)
class Summary:
    """One batch's (or everyone's) redemptions."""

    batch: str
    invited: int
    redeemed: int
    pending: int
    gone: int
    p50_hours: float | None  # time to redeem
    p90_hours: float | None
    oldest_pending: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "batch": self.batch,
            "invited": self.invited,
            "redeemed": self.redeemed,
            "pending": self.pending,
            "gone": self.gone,
            "time_to_redeem_hours": {"p50": self.p50_hours, "p90": self.p90_hours},
            "oldest_pending_since": self.oldest_pending.isoformat() if self.oldest_pending else None,
        }


@dataclass(frozen=True, slots=True)
class Pending:
    user_id: str
    email: str | None
    batch: str
    invited_at: datetime | None
    reminders_sent: tuple[int, ...]
    next_reminder: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "email": self.email,
            "batch": self.batch,
            "invited_at": self.invited_at.isoformat() if self.invited_at else None,
            "reminders_sent": list(self.reminders_sent),
            "next_reminder": self.next_reminder.isoformat() if self.next_reminder else None,
        }


def batch_of(guest: Tracked) -> str:
    return guest.batch_id if guest.source is Source.BATCH and guest.batch_id else Source.EXTERNAL.value


def summarise(guests: Iterable[Tracked], *, batch: str | None = None) -> list[Summary]:
    """One summary per batch (guests invited elsewhere are the batch "external"), then the overall one."""
    by_batch: dict[str, list[Tracked]] = {}
    for guest in guests:
        if batch is None or batch_of(guest) == batch:
            by_batch.setdefault(batch_of(guest), []).append(guest)
    everyone = [g for group in by_batch.values() for g in group]
    return [_summary(name, by_batch[name]) for name in sorted(by_batch)] + [_summary(OVERALL, everyone)]


def pending(guests: Iterable[Tracked], reminders: Sequence[int], *, batch: str | None = None) -> list[Pending]:
    """Every pending guest, longest waiting first, with the date of its next reminder."""
    waiting = [g for g in guests if g.state is GuestState.PENDING and (batch is None or batch_of(g) == batch)]
    waiting.sort(key=lambda g: (g.invited_at is None, g.invited_at or datetime.max, g.user_id))
    return [
        Pending(g.user_id, g.email, batch_of(g), g.invited_at, g.reminders_sent, next_reminder(g, reminders))
        for g in waiting
    ]


def _summary(name: str, guests: list[Tracked]) -> Summary:
    hours = sorted(s / 3600 for g in guests if (s := g.seconds_to_redeem) is not None)
    waiting = [g.invited_at for g in guests if g.state is GuestState.PENDING and g.invited_at is not None]
    return Summary(
        batch=name,
        invited=len(guests),
        redeemed=sum(g.state is GuestState.REDEEMED for g in guests),
        pending=sum(g.state is GuestState.PENDING for g in guests),
        gone=sum(g.state is GuestState.GONE for g in guests),
        p50_hours=_quantile(hours, 50),
        p90_hours=_quantile(hours, 90),
        oldest_pending=min(waiting, default=None),
    )


def _quantile(values: list[float], percent: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 1)
    return round(statistics.quantiles(values, n=100, method="inclusive")[percent - 1], 1)
