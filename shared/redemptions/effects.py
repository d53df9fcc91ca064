"""guestctl's records of guests' redemptions (table `redemptions`), and what a change does elsewhere.

A record is written with an upsert of the whole observed state, so replaying a delta round writes the same
values again and counts nothing twice. A guest whom a sweep had flagged and who then redeemed, was
re-invited or was restored is no longer stale: the stale capability's record is cleared and the audit log
says why.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import msgspec
from msgspec.structs import replace

from shared.concurrency import map_bounded
from shared.core.audit import RunAudit
from shared.errors import StaleVersionError
from shared.redemptions.records import Source, Tracked
from shared.redemptions.rules import ChangeKind
from shared.stale.effects import GUESTS_PARTITION, GUESTS_TABLE
from shared.store import Store
from shared.store.registry import REDEMPTIONS

REDEMPTIONS_TABLE = REDEMPTIONS
GUESTS = "guest"  # the one partition: a point read per guest, one query for all
READS_IN_FLIGHT = 16
UNFLAG_REASONS = {
    ChangeKind.REDEEMED: "redeemed the invitation",
    ChangeKind.REINVITED: "was invited again",
    ChangeKind.RESTORED: "was restored from deleted items",
}


def to_data(guest: Tracked) -> dict[str, Any]:
    data = msgspec.to_builtins(guest)
    data["reminders_sent"] = list(guest.reminders_sent)
    return data


def from_data(data: dict[str, Any]) -> Tracked:
    return msgspec.convert(data, Tracked, strict=False)


async def load_all(store: Store) -> dict[str, Tracked]:
    """Every tracked guest (for a full round, which sees everyone anyway)."""
    return {record.row: from_data(record.data) async for record in store.query(REDEMPTIONS_TABLE, GUESTS)}


async def load_some(store: Store, user_ids: Iterable[str]) -> dict[str, Tracked]:
    """The tracked guests among `user_ids` (an incremental round sees few users)."""

    async def one(user_id: str) -> tuple[str, Tracked | None]:
        record = await store.get(REDEMPTIONS_TABLE, GUESTS, user_id)
        return user_id, from_data(record.data) if record is not None else None

    found = await map_bounded(list(user_ids), one, limit=READS_IN_FLIGHT)
    return {user_id: guest for user_id, guest in found if guest is not None}


async def save(store: Store, guest: Tracked) -> None:
    await store.upsert(REDEMPTIONS_TABLE, GUESTS, guest.user_id, to_data(guest))


async def track_invited(store: Store, user_id: str, email: str, batch_id: str, invited_at: datetime) -> None:
    """A guest guestctl invited: tracked as the batch's, from the invitation's time (delta may have seen it
    first, as an external guest; what delta saw is kept)."""
    found = await store.get(REDEMPTIONS_TABLE, GUESTS, user_id)
    base = from_data(found.data) if found is not None else Tracked(user_id=user_id, email=email)
    tracked = replace(base, source=Source.BATCH, batch_id=batch_id, invited_at=invited_at, email=base.email or email)
    await save(store, tracked)


async def unflag(store: Store, audit: RunAudit, guest: Tracked, kind: ChangeKind) -> bool:
    """Clear the stale capability's flag on a guest that is active again; True if there was one."""
    record = await store.get(GUESTS_TABLE, GUESTS_PARTITION, guest.user_id)
    if record is None or record.data.get("stage") != "flagged":
        return False  # not flagged; a disabled guest is the sweep's to re-enable when it is active again
    reason = f"{UNFLAG_REASONS[kind]} (redemption tracking)"
    await audit.once(guest.user_id, "guest.unflag", reason=reason, before={"stage": "flagged"}, after={"stage": None})
    with contextlib.suppress(StaleVersionError):  # a sweep changed it meanwhile: its decision stands
        await store.delete(record)
    return True
