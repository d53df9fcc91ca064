"""One holder at a time (shared/store/lease.py), on SQLite and on Azurite."""

from __future__ import annotations

import asyncio
import os
import socket
import time

import pytest

from shared.store import Store
from shared.store.lease import LEASE_ROW, STALE_AFTER_SECONDS, LeaseHeldError, lease, lease_partition
from shared.store.registry import LEASES


def holder(pid: int, *, host: str | None = None, seconds_ago: float = 0) -> dict[str, object]:
    return {"owner": "other", "host": host or socket.gethostname(), "pid": pid, "heartbeat": time.time() - seconds_ago}


def lease_of(run: str) -> tuple[str, str, str]:
    """Where the lease of the job working on `jobs/<run>` is kept."""
    return LEASES, lease_partition("jobs", run), LEASE_ROW


async def dead_pid() -> int:
    process = await asyncio.create_subprocess_exec("true")
    await process.wait()  # gone, and reaped: its pid names no process
    return process.pid


async def test_a_held_lease_refuses_a_second_holder_and_is_let_go_after(store: Store) -> None:
    async with lease(store, "jobs", "run-1", what="applying run-1"):
        assert await store.get(*lease_of("run-1")) is not None
        assert [r async for r in store.query("jobs")] == [], "the job's own records never include its lease"
        with pytest.raises(LeaseHeldError, match="applying run-1 is in progress elsewhere"):
            async with lease(store, "jobs", "run-1", what="applying run-1"):
                pass
    assert await store.get(*lease_of("run-1")) is None
    async with lease(store, "jobs", "run-1", what="applying run-1"):
        pass


@pytest.mark.parametrize(
    ("left_by", "taken_over"),
    [
        pytest.param("dead-process-here", True, id="dead-process-on-this-machine"),
        pytest.param("silent-elsewhere", True, id="no-heartbeat-for-too-long"),
        pytest.param("live-elsewhere", False, id="another-machine-still-renewing"),
    ],
)
async def test_a_lease_left_behind(store: Store, left_by: str, taken_over: bool) -> None:
    data = {
        "dead-process-here": holder(await dead_pid()),
        "silent-elsewhere": holder(1, host="other-host", seconds_ago=STALE_AFTER_SECONDS + 1),
        "live-elsewhere": holder(1, host="other-host", seconds_ago=5),
    }[left_by]
    await store.create(*lease_of("run-2"), data)
    if not taken_over:
        with pytest.raises(LeaseHeldError, match="host other-host, process 1"):
            async with lease(store, "jobs", "run-2", what="applying run-2"):
                pass
        return
    async with lease(store, "jobs", "run-2", what="applying run-2"):
        held = await store.get(*lease_of("run-2"))
        assert held is not None
        assert held.data["pid"] == os.getpid()


async def test_a_holder_whose_lease_is_taken_over_stops_at_once(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shared.store.lease.RENEW_EVERY_SECONDS", 0.05)
    never = asyncio.Event()

    async def long_job() -> None:
        async with lease(store, "jobs", "run-3", what="applying run-3"):
            held = await store.get(*lease_of("run-3"))
            assert held is not None
            await store.update(held, {**held.data, "owner": "someone else"})  # as a takeover writes it
            await never.wait()  # work that would go on for ever: only the lease can stop it

    with pytest.raises(LeaseHeldError, match="another run took it over"):
        async with asyncio.timeout(30):  # a guard against a hang (a TimeoutError fails the test), not a measurement
            await long_job()
    taken = await store.get(*lease_of("run-3"))
    assert taken is not None
    assert taken.data["owner"] == "someone else", "the new holder's lease is left alone"
