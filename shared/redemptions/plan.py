"""Pure: which reminders are due now, as actions the core applier carries out (each exactly once)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from shared.redemptions.records import Tracked
from shared.redemptions.rules import due_reminder


class ReminderKind(StrEnum):
    REMIND = "remind"


@dataclass(frozen=True, slots=True)
class Reminder:
    """Remind `user_id`, invited at `invited_at`, on day `day` after the invitation."""

    user_id: str
    email: str | None
    batch_id: str | None
    invited_at: datetime
    day: int

    @property
    def kind(self) -> ReminderKind:
        return ReminderKind.REMIND

    @property
    def target_id(self) -> str:
        return self.user_id

    @property
    def key(self) -> str:
        """One record per guest, invitation and reminder day: a guest invited again is reminded again."""
        return f"{self.user_id}:{self.invited_at:%Y%m%dT%H%M%S}:d{self.day}"

    def to_json(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "email": self.email,
            "batch": self.batch_id,
            "invited_at": self.invited_at.isoformat(),
            "day": self.day,
        }


def plan_reminders(guests: Iterable[Tracked], reminders: Sequence[int], now: datetime) -> list[Reminder]:
    """The reminders due now, oldest invitation first."""
    due = []
    for guest in guests:
        day = due_reminder(guest, reminders, now)
        if day is not None and guest.invited_at is not None:
            due.append(Reminder(guest.user_id, guest.email, guest.batch_id, guest.invited_at, day))
    return sorted(due, key=lambda r: (r.invited_at, r.user_id))
