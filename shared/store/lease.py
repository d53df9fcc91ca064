"""One holder at a time for a long job (applying a plan): a lease record with a heartbeat.

Two appliers of the same plan at once — an approval retried after an HTTP timeout, a CLI run racing the
Functions app — would each act and audit. The first takes the lease; the second is refused with who holds
it. A holder that stopped renewing for `STALE_AFTER_SECONDS` (it crashed or was killed), or that was a
process on this machine that no longer exists, is taken over at once.

Leases live in their own table (`leases`, partition `<table>:<partition>` of the job's records), so readers
of a job's records never meet one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from shared.errors import AlreadyExistsError, RefusedError, StaleVersionError, StoreError
from shared.store.protocol import Record, Store
from shared.store.registry import LEASES

log = logging.getLogger("guestctl.store")

STALE_AFTER_SECONDS = 90.0
RENEW_EVERY_SECONDS = 20.0
LEASE_ROW = "lease"


class LeaseHeldError(RefusedError):
    """Someone else is doing this job right now."""


@contextlib.asynccontextmanager
async def lease(store: Store, table: str, partition: str, *, what: str) -> AsyncIterator[None]:
    """Hold the lease on the job working on `table/partition` while the block runs; `what` names the job.

    If another run takes the lease over (this one stopped renewing it for too long), the block is
    cancelled at once and `LeaseHeldError` raised: two holders never carry on side by side.
    """
    me = {"owner": uuid.uuid4().hex, "host": socket.gethostname(), "pid": os.getpid()}
    record = await _acquire(store, lease_partition(table, partition), me, what)
    holder = asyncio.current_task()
    lost = asyncio.Event()
    renewing = asyncio.create_task(_renew(store, record, lost, holder))
    try:
        yield
    except asyncio.CancelledError:
        if lost.is_set():
            raise LeaseHeldError(
                f"{what} stopped: another run took it over after this one could not renew its lease",
                hint="the other run carries on; actions this one finished are kept",
            ) from None
        raise
    finally:
        renewing.cancel()
        await asyncio.gather(renewing, return_exceptions=True)
        with contextlib.suppress(StoreError):  # left behind, the lease expires on its own
            current = await store.get(record.table, record.partition, record.row)
            if current is not None and current.data.get("owner") == me["owner"]:
                await store.delete(current)


def lease_partition(table: str, partition: str) -> str:
    """The `leases` partition of the job working on `table/partition`."""
    return f"{table}:{partition}"


async def held_by(store: Store, table: str, partition: str) -> dict[str, Any] | None:
    """The lease record of the job working on `table/partition`: its holder, or one that died holding it."""
    record = await store.get(LEASES, lease_partition(table, partition), LEASE_ROW)
    return record.data if record is not None else None


async def _acquire(store: Store, partition: str, me: dict[str, Any], what: str) -> Record:
    data = {**me, "heartbeat": time.time()}
    for _ in range(2):  # the holder may let go between our create and our read
        try:
            return await store.create(LEASES, partition, LEASE_ROW, data)
        except AlreadyExistsError:
            held = await store.get(LEASES, partition, LEASE_ROW)
        if held is None:
            continue
        if _alive(held.data):
            age = time.time() - float(held.data.get("heartbeat", 0))
            raise LeaseHeldError(
                f"{what} is in progress elsewhere (host {held.data.get('host')}, process {held.data.get('pid')}, "
                f"last seen {age:.0f} s ago)",
                hint=f"wait for it to finish — or, if it died, {STALE_AFTER_SECONDS:.0f} s — then run again; "
                "nothing was changed",
            )
        log.warning(
            "%s: taking over from %s (process %s), which stopped", what, held.data.get("host"), held.data.get("pid")
        )
        try:
            return await store.update(held, data)
        except StaleVersionError:
            break
    raise LeaseHeldError(f"{what} was just started by another run", hint="nothing was changed; run again later")


def _alive(data: dict[str, Any]) -> bool:
    if time.time() - float(data.get("heartbeat", 0)) > STALE_AFTER_SECONDS:
        return False
    if data.get("host") != socket.gethostname():
        return True  # another machine: only its heartbeat can tell
    pid = int(data.get("pid", 0))
    if pid == os.getpid():
        return True  # this very process (another invocation or task)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def _renew(store: Store, record: Record, lost: asyncio.Event, holder: asyncio.Task[object] | None) -> None:
    """Renew the heartbeat; a failed renewal is retried at the next beat (a store hiccup must not end it)."""
    while True:
        await asyncio.sleep(RENEW_EVERY_SECONDS)
        try:
            record = await store.update(record, {**record.data, "heartbeat": time.time()})
        except StaleVersionError:
            current = await _read(store, record)
            if current is not None and current.data.get("owner") == record.data.get("owner"):
                record = current  # our own renewal went through although its answer was lost
                continue
            log.error("lease %s/%s was taken over by another run; stopping this one", record.table, record.partition)
            lost.set()
            if holder is not None:
                holder.cancel()
            return
        except StoreError as error:
            log.warning("lease %s/%s: renewal failed, retrying: %s", record.table, record.partition, error.one_line())


async def _read(store: Store, record: Record) -> Record | None:
    try:
        return await store.get(record.table, record.partition, record.row)
    except StoreError:
        return None
