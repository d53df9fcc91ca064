"""What attestation keeps in the store (table `attestations`) and the let-go mark on a flagged guest.

- `kept/<guest id>`: until when a sponsor (or the identity team) keeps the guest, who, when. The sweep reads
  them as exemptions at plan time and again at apply (`shared.stale.sweep.exemptions_now`).
- `used/<nonce>`: created conditionally when a POST acts, so each link acts once (a second POST finds it); it
  keeps who answered, when, and the link's expiry, which names the notice it came from (the weekly report's
  "sponsors who did not answer").
- `digests/<nonce>-…`: the guests behind a digest's keep-all / let-go-all link (a text: any number of guests).
- let go: `let_go` on the guest's `staleguests` record while guestctl has it flagged; the sweep's rules read
  it (`shared.stale.plan.next_step`), and it goes with the record when the guest is un-flagged or disabled.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from shared.errors import AlreadyExistsError, StaleVersionError
from shared.stale.effects import GUESTS_PARTITION, GUESTS_TABLE
from shared.stale.plan import GuestStage
from shared.store import Store
from shared.store.registry import ATTESTATIONS
from shared.store.text import put_text, read_text

TABLE = ATTESTATIONS
KEPT, USED, DIGESTS = "kept", "used", "digests"


@dataclass(frozen=True, slots=True)
class Kept:
    guest_id: str
    until: date
    by: str  # the sponsor's name (or the identity team member's), as the plan's reason shows it
    at: datetime
    how: str  # "sponsor link" or "guestctl attest grant"
    guest: str = ""  # display name and address, when known

    def to_json(self) -> dict[str, Any]:
        return {
            "guest_id": self.guest_id,
            "guest": self.guest,
            "until": self.until.isoformat(),
            "by": self.by,
            "at": self.at.isoformat(),
            "how": self.how,
        }


def _kept(row: str, data: dict[str, Any]) -> Kept:
    return Kept(
        row,
        date.fromisoformat(data["until"]),
        data["by"],
        datetime.fromisoformat(data["at"]),
        data.get("how", ""),
        data.get("guest", ""),
    )


async def list_kept(store: Store) -> list[Kept]:
    return [_kept(record.row, record.data) async for record in store.query(TABLE, KEPT)]


async def load_kept(store: Store) -> dict[str, tuple[date, str]]:
    """guest id → (until, who): what `Exemptions.kept` takes."""
    return {kept.guest_id: (kept.until, kept.by) for kept in await list_kept(store)}


async def get_kept(store: Store, guest_id: str) -> Kept | None:
    record = await store.get(TABLE, KEPT, guest_id.lower())
    return _kept(record.row, record.data) if record is not None else None


async def keep(store: Store, kept: Kept) -> Kept | None:
    """Record (or replace) the keep; returns the one it replaced. A later decision replaces an earlier one."""
    data = {k: v for k, v in kept.to_json().items() if k != "guest_id"}
    key = kept.guest_id.lower()
    for _ in range(3):  # conditional: two answers at once both land, one after the other
        record = await store.get(TABLE, KEPT, key)
        try:
            if record is None:
                await store.create(TABLE, KEPT, key, data)
                return None
            await store.update(record, data)
            return _kept(record.row, record.data)
        except (AlreadyExistsError, StaleVersionError):
            continue
    raise StaleVersionError(f"the keep of guest {key} kept changing while it was written")


async def unkeep(store: Store, guest_id: str) -> Kept | None:
    """Remove a keep; returns it (None: there was none)."""
    record = await store.get(TABLE, KEPT, guest_id.lower())
    if record is None:
        return None
    with contextlib.suppress(StaleVersionError):  # someone removed or replaced it meanwhile: theirs stands
        await store.delete(record)
    return _kept(record.row, record.data)


@dataclass(frozen=True, slots=True)
class Answer:
    """A sponsor's keep or let go that took effect: one link's POST."""

    sponsor_id: str
    at: datetime
    expires: datetime | None  # the link's expiry: the disable date of the notice it came from (None: not kept)


async def list_answers(store: Store) -> list[Answer]:
    """Every sponsor's answer (one query: the `used` partition)."""
    return [
        Answer(
            str(record.data.get("sponsor_id", "")).lower(),
            datetime.fromisoformat(record.data["at"]),
            datetime.fromisoformat(record.data["expires"]) if record.data.get("expires") else None,
        )
        async for record in store.query(TABLE, USED)
    ]


async def was_used(store: Store, nonce: str) -> bool:
    return await store.get(TABLE, USED, nonce) is not None


async def use(store: Store, nonce: str, data: dict[str, Any]) -> bool:
    """Mark a token used; False if it already was (the conditional create is the single-use guarantee)."""
    try:
        await store.create(TABLE, USED, nonce, data)
    except AlreadyExistsError:
        return False
    return True


async def unuse(store: Store, nonce: str) -> None:
    """Give a token back after the action behind it failed, so the sponsor can try again."""
    record = await store.get(TABLE, USED, nonce)
    if record is not None:
        with contextlib.suppress(StaleVersionError):
            await store.delete(record)


async def save_digest(store: Store, nonce: str, guests: dict[str, str]) -> None:
    """The guests (id → display) an all-link covers, under its nonce."""
    await put_text(store, TABLE, DIGESTS, nonce, json.dumps(guests))


async def read_digest(store: Store, nonce: str) -> dict[str, str] | None:
    text = await read_text(store, TABLE, DIGESTS, nonce)
    return json.loads(text) if text is not None else None


async def mark_let_go(store: Store, guest_id: str, why: str) -> bool:
    """Mark a guest guestctl has flagged as let go (the next sweep disables them without waiting out the flag's
    grace); False when guestctl does not have the guest flagged (not flagged, active again, disabled)."""
    for _ in range(3):
        record = await store.get(GUESTS_TABLE, GUESTS_PARTITION, guest_id)
        if record is None or record.data.get("stage") != GuestStage.FLAGGED:
            return False
        try:
            await store.update(record, {**record.data, "let_go": why})
            return True
        except StaleVersionError:
            continue
    raise StaleVersionError(f"guestctl's record of guest {guest_id} kept changing while it was written")
