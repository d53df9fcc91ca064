"""Shared by the offboarding integration tests: the moment, a policy, groups and HR events in the emulator."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from emulator.tenant import Group
from emulator.testing import EmulatorServer
from shared.config import Policy
from shared.offboarding.events import HrEvent, event_from

NOW = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)
# A minimal native HR event (docs/hr-event.schema.json), as an HR system would POST it to /api/hr/events.
TERMINATION: dict[str, Any] = {
    "type": "worker.terminated",
    "timestamp": "2026-11-27T10:00:00Z",
    "data": {
        "source": {"system": "workday", "tenant": "acme", "eventId": "TERM-0042"},
        "worker": {"email": "jane@partner.example", "employeeId": "E123"},
        "effectiveDate": "2026-12-01",
        "effectiveTimeZone": "Europe/Berlin",
    },
}
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the Standard Webhooks specification's example secret
POLICY = Policy.model_validate({"offboarding": {"delete_after_days": 30}})


def group(tenant: EmulatorServer, name: str, *members: str, dynamic: bool = False) -> str:
    made = tenant.tenant.add_group(
        Group(
            id=str(uuid.uuid4()),
            displayName=name,
            createdDateTime="2025-01-01T00:00:00Z",
            groupTypes=("DynamicMembership",) if dynamic else (),
            membershipRule='(user.userType -eq "Guest")' if dynamic else None,
        )
    )
    for member in members:
        tenant.tenant.add_member(made, member)
    return made.id


def hr_event(kind: str, worker: dict[str, str], effective: date | None, *, event: str) -> HrEvent:
    """A native HR event from Workday about `worker`, effective on `effective` (UTC)."""
    data: dict[str, Any] = {"source": {"system": "workday", "tenant": "acme", "eventId": event}, "worker": worker}
    if effective is not None:
        data |= {"effectiveDate": effective.isoformat(), "effectiveTimeZone": "UTC"}
    return event_from({"type": kind, "timestamp": NOW.isoformat(), "data": data})
