"""Delta sync against the emulator, on both stores: every guest tracked once, redemptions dated by Graph,
removals, an expired delta link, and the stale capability's flag cleared when a flagged guest redeems."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from emulator.seed import seed_tenant
from emulator.testing import EmulatorServer
from shared.graph import Graph
from shared.redemptions.effects import GUESTS, REDEMPTIONS_TABLE, load_all
from shared.redemptions.records import GuestState
from shared.redemptions.service import request_sync_with, sync_with
from shared.stale.effects import GUESTS_PARTITION, GUESTS_TABLE
from shared.store import Store
from tests.support.stale import NOW


def pending_guests(emulator: EmulatorServer) -> list[str]:
    return sorted(
        u.id
        for u in emulator.tenant.users.values()
        if u.userType == "Guest" and u.externalUserState == "PendingAcceptance"
    )


def guests(emulator: EmulatorServer) -> set[str]:
    return {u.id for u in emulator.tenant.users.values() if u.userType == "Guest"}


async def test_a_full_round_tracks_every_guest_once_and_a_second_round_changes_nothing(
    emulator: EmulatorServer, graph: Graph, store: Store
) -> None:
    emulator.reset(seed_tenant(21, guests=80, members=10, now=NOW))
    first = await sync_with(graph, store)
    assert first.full
    assert first.counts["new"] == len(guests(emulator))
    tracked = await load_all(store)
    assert set(tracked) == guests(emulator)
    pending = {g for g, t in tracked.items() if t.state is GuestState.PENDING}
    assert pending == set(pending_guests(emulator))

    again = await sync_with(graph, store)
    assert not again.full
    assert sum(again.counts.values()) == 0


async def test_redemptions_are_recorded_with_graphs_time(emulator: EmulatorServer, graph: Graph, store: Store) -> None:
    emulator.reset(seed_tenant(22, guests=60, members=10, now=NOW))
    await sync_with(graph, store)
    redeeming = pending_guests(emulator)[:3]
    assert len(redeeming) == 3
    for user_id in redeeming:
        emulator.control.redeem(user_id)

    result = await sync_with(graph, store)
    assert result.counts["redeemed"] == 3
    tracked = await load_all(store)
    for user_id in redeeming:
        user = emulator.tenant.users[user_id]
        assert tracked[user_id].state is GuestState.REDEEMED
        assert tracked[user_id].redeemed_at == _utc(user.externalUserStateChangeDateTime)
        assert tracked[user_id].seconds_to_redeem is not None


async def test_deleted_guests_are_marked_gone_and_nothing_is_recreated(
    emulator: EmulatorServer, graph: Graph, store: Store
) -> None:
    emulator.reset(seed_tenant(23, guests=40, members=5, now=NOW))
    await sync_with(graph, store)
    gone = sorted(guests(emulator))[:2]
    for user_id in gone:
        await graph.request("DELETE", f"/users/{user_id}")
    users_before = len(emulator.tenant.users)

    result = await sync_with(graph, store)
    assert result.counts["removed"] == 2
    tracked = await load_all(store)
    assert {tracked[g].state for g in gone} == {GuestState.GONE}
    assert {tracked[g].removed for g in gone} == {"changed"}  # soft-deleted: restorable
    assert len(emulator.tenant.users) == users_before


async def test_an_expired_delta_link_runs_a_full_round_and_counts_nothing_twice(
    emulator: EmulatorServer, graph: Graph, store: Store
) -> None:
    emulator.reset(seed_tenant(24, guests=50, members=5, now=NOW))
    await sync_with(graph, store)
    redeeming = pending_guests(emulator)[:2]
    for user_id in redeeming:
        emulator.control.redeem(user_id)
    emulator.control.advance(days=8)  # delta tokens of directory objects last 7 days

    result = await sync_with(graph, store)
    assert result.resynced
    assert dict(result.counts) == {"redeemed": 2}
    entries = [e async for e in store.read_audit(target_id="users")]
    assert [e.action for e in entries] == ["delta.resync"]
    assert (await sync_with(graph, store)).resynced is False


async def test_a_flagged_guest_who_redeems_is_unflagged_and_the_audit_log_says_why(
    emulator: EmulatorServer, graph: Graph, store: Store
) -> None:
    emulator.reset(seed_tenant(25, guests=40, members=5, now=NOW))
    await sync_with(graph, store)
    flagged, other = pending_guests(emulator)[:2]
    for user_id in (flagged, other):
        await store.upsert(GUESTS_TABLE, GUESTS_PARTITION, user_id, {"stage": "flagged", "flagged_at": NOW.isoformat()})
    emulator.control.redeem(flagged)

    result = await sync_with(graph, store)
    assert result.unflagged == 1
    assert await store.get(GUESTS_TABLE, GUESTS_PARTITION, flagged) is None
    assert await store.get(GUESTS_TABLE, GUESTS_PARTITION, other) is not None
    entries = [e async for e in store.read_audit(target_id=flagged)]
    assert [(e.action, e.reason) for e in entries] == [
        ("guest.unflag", "redeemed the invitation (redemption tracking)")
    ]
    assert await store.get(REDEMPTIONS_TABLE, GUESTS, flagged) is not None


def _utc(value: datetime | str | None) -> datetime | None:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.astimezone(UTC) if value is not None else None


async def test_a_burst_of_notifications_becomes_one_delta_round(
    emulator: EmulatorServer, graph: Graph, store: Store
) -> None:
    emulator.reset(seed_tenant(26, guests=20, members=5, now=NOW))
    await sync_with(graph, store)
    emulator.control.clear_requests()
    burst = [request_sync_with(graph, store, actor=f"worker {i}", min_interval=0.5) for i in range(16)]
    results = await asyncio.gather(*burst)
    ran = [r for r in results if r is not None]
    assert len(ran) == 1, "one worker syncs; the others leave it to that one"
    assert ran[0].rounds == 1
    assert len(emulator.control.requests(path="/v1.0/users/delta", method="GET")) == 1
