"""A sweep: scan every guest and plan each one's next stage, resumably, without changing the tenant."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial

import msgspec

from shared.config import Policy, Settings
from shared.errors import ConfigError, StaleVersionError
from shared.graph import Graph
from shared.offboarding.ledger import unsponsored_guests
from shared.stale.apply import (
    load_lifecycle,
)
from shared.stale.fetch import (
    SCAN_PARTITION,
    SCAN_TABLE,
    ScanPage,
    SignInActivityUnavailable,
    directory_role_holders,
    read_checkpoint,
    resolve_groups,
    scan_guests,
    transitive_group_members,
)
from shared.stale.plan import Action, Exemptions, Plan, Planner, Unsponsored
from shared.store import Record, Store
from shared.store.registry import STALE_PROGRESS
from shared.store.text import put_text, read_texts

log = logging.getLogger("guestctl.stale")


async def exemptions_now(graph: Graph, policy: Policy, store: Store | None = None) -> Exemptions:
    """The policy's exemptions resolved against the directory as it is now (at plan time and at apply), with
    the guests sponsors or the identity team kept (`store`: shared.attestation's records)."""
    from shared.attestation.records import load_kept

    holders = await directory_role_holders(graph)
    group_ids = await resolve_groups(graph, policy.exemptions.groups)
    members: dict[str, str] = {}
    for name, group_id in group_ids.items():
        for member in await transitive_group_members(graph, [group_id]):
            members.setdefault(member, name)
    kept = await load_kept(store) if store is not None else {}
    return Exemptions.from_policy(policy, role_holders=holders, group_members=members, kept=kept)


PROGRESS_TABLE = STALE_PROGRESS


async def plan_sweep(
    graph: Graph,
    store: Store,
    policy: Policy,
    *,
    now: datetime,
    scan_id: str,
    tenant_id: str | None,
    time_budget: float | None = None,
    on_page: Callable[[int], None] | None = None,
) -> Plan | None:
    """Scan every guest and plan the next stage for each, within the policy's caps. No tenant changes.

    `on_page` is called with the number of guests in each page once it is planned (progress bars).

    Resumable: each finished page's part of the plan is kept under `scan_id`. With a `time_budget`
    (seconds) the scan stops once it is spent and returns None; calling again with the same `scan_id`
    continues where it stopped (a 100,000-guest tenant may need several Functions invocations). A resumed
    sweep keeps the moment of its first call as "now", so the whole plan judges guests at one instant.
    """
    meta = await _sweep_meta(store, scan_id, now)
    now = datetime.fromisoformat(meta.data["now"])
    available = bool(meta.data["sign_in"])
    exemptions = await exemptions_now(graph, policy, store)
    lifecycle = await load_lifecycle(store)
    unsponsored = await unsponsored_guests(store)  # HR offboarding's flags: listed, never acted on

    given = {"lifecycle": lifecycle, "exemptions": exemptions, "tenant_id": tenant_id, "unsponsored": unsponsored}
    new_planner = partial(Planner, policy, now, **given, sign_in_activity_available=available)

    planner = new_planner()
    scan = _scan_name(scan_id, available)
    checkpoint = await read_checkpoint(store, scan)
    resumable = checkpoint is not None and not checkpoint.finished
    restarts = checkpoint.restarts if checkpoint is not None and resumable else 0
    await _restore_progress(store, scan_id, planner, before_page=checkpoint.pages if resumable else 0)
    started = time.monotonic()
    try:
        async with contextlib.aclosing(scan_guests(graph, store, scan_id=scan, sign_in_activity=available)) as pages:
            first = True
            async for page in pages:
                if page.restarts != restarts:
                    # Graph refused the saved cursor and the scan started over (scan_guests logs it): drop
                    # what the earlier pages added, or they would be counted twice.
                    planner, restarts = new_planner(), page.restarts
                # Checked before a page (never before the first): asking for this page has saved the
                # checkpoint past the previous one, so the next invocation starts exactly here.
                if not first and time_budget is not None and time.monotonic() - started > time_budget:
                    log.info("sweep %s: time budget spent before page %d; call again to continue", scan_id, page.index)
                    return None
                first = False
                await _record_page(store, scan_id, planner, page)
                if on_page is not None:
                    on_page(len(page))
    except SignInActivityUnavailable as missing:
        if not available:
            raise
        log.warning("%s", missing.one_line())
        await store.upsert(PROGRESS_TABLE, scan_id, "meta", {"now": now.isoformat(), "sign_in": False})
        await _delete_progress(store, scan_id, row_prefix="page-")
        return await plan_sweep(
            graph,
            store,
            policy,
            now=now,
            scan_id=scan_id,
            tenant_id=tenant_id,
            time_budget=time_budget,
            on_page=on_page,
        )
    plan = planner.finish()
    # The sweep is whole: its pages' shares are no longer needed (a weekly sweep of 100,000 guests keeps a
    # few MB). Called again under this id, it finds a finished scan and starts a new sweep.
    await _delete_progress(store, scan_id)
    return plan


async def _sweep_meta(store: Store, scan_id: str, now: datetime) -> Record:
    """The sweep's start record (its moment, whether signInActivity is used): continued, or made anew."""
    meta = await store.get(PROGRESS_TABLE, scan_id, "meta")
    if meta is not None:
        done = await read_checkpoint(store, _scan_name(scan_id, bool(meta.data["sign_in"])))
        if done is None or not done.finished:
            return meta
        # A completed sweep under this id: start a new one rather than count its pages twice.
        await _delete_progress(store, scan_id)
    return await store.upsert(PROGRESS_TABLE, scan_id, "meta", {"now": now.isoformat(), "sign_in": True})


async def _delete_progress(store: Store, scan_id: str, *, row_prefix: str | None = None) -> None:
    for record in [r async for r in store.query(PROGRESS_TABLE, scan_id, row_prefix=row_prefix)]:
        await store.delete(record)


async def resumable_sweep(store: Store, *, prefix: str, now: datetime, max_age: timedelta) -> str | None:
    """The newest unfinished sweep whose id starts with `prefix`, if it began within `max_age`.

    Every unfinished sweep (of any caller) that began longer ago is removed: the plan it would end in is
    dated at its start, so apply would refuse it as too old anyway.
    """
    started: dict[str, datetime] = {}
    async for record in store.query(PROGRESS_TABLE, row_prefix="meta"):
        started[record.partition] = datetime.fromisoformat(record.data["now"])
    for scan_id, at in started.items():
        if now - at > max_age:
            await discard_sweep(store, scan_id)
    recent = [(at, scan_id) for scan_id, at in started.items() if scan_id.startswith(prefix) and now - at <= max_age]
    return max(recent)[1] if recent else None


async def sweep_progress(store: Store, scan_id: str) -> tuple[datetime, int] | None:
    """When an unfinished sweep began and how many guests it has planned so far (None: no such sweep)."""
    meta = await store.get(PROGRESS_TABLE, scan_id, "meta")
    if meta is None:
        return None
    checkpoint = await read_checkpoint(store, _scan_name(scan_id, bool(meta.data["sign_in"])))
    return datetime.fromisoformat(meta.data["now"]), checkpoint.guests if checkpoint is not None else 0


async def discard_sweep(store: Store, scan_id: str) -> None:
    """Remove an unfinished sweep's progress: its pages' shares and its scans' cursors."""
    records = [record async for record in store.query(PROGRESS_TABLE, scan_id)]
    for scan in (scan_id, _scan_name(scan_id, False)):
        if (cursor := await store.get(SCAN_TABLE, SCAN_PARTITION, scan)) is not None:
            records.append(cursor)
    for record in records:
        with contextlib.suppress(StaleVersionError):  # someone else removed it first
            await store.delete(record)


def _scan_name(scan_id: str, sign_in_activity: bool) -> str:
    """The guest scan behind a sweep: a tenant without signInActivity gets a second scan without it."""
    return scan_id if sign_in_activity else scan_id + "-no-sign-in"


class _PageShare(msgspec.Struct):
    """What one page of a sweep added to the plan, kept so that a later invocation can resume."""

    counts: dict[str, int]
    guests: int
    actions: list[Action]
    unsponsored: list[Unsponsored] = []


async def _record_page(store: Store, scan_id: str, planner: Planner, page: ScanPage) -> None:
    """Plan one page and keep its share (counts, actions) so a later invocation can resume."""
    counts_before, actions_before, guests_before = dict(planner.counts), len(planner.actions), planner.guests
    unsponsored_before = len(planner.unsponsored)
    planner.add(page)
    share = _PageShare(
        counts={k: v - counts_before.get(k, 0) for k, v in planner.counts.items() if v != counts_before.get(k, 0)},
        guests=planner.guests - guests_before,
        actions=planner.actions[actions_before:],
        unsponsored=planner.unsponsored[unsponsored_before:],
    )
    await put_text(store, PROGRESS_TABLE, scan_id, f"page-{page.index:06d}", msgspec.json.encode(share).decode())


async def _restore_progress(store: Store, scan_id: str, planner: Planner, *, before_page: int) -> None:
    texts = await read_texts(store, PROGRESS_TABLE, scan_id, prefix="page-")
    for key in sorted(texts):
        if int(key.removeprefix("page-")) < before_page:
            share = _share_decoder.decode(texts[key])
            planner.absorb(share.counts, share.guests, share.actions, share.unsponsored)


_share_decoder = msgspec.json.Decoder(_PageShare)


def plan_tenant(settings: Settings) -> str | None:
    """The tenant plans are made for and checked against (`check_saved_plan`).

    Required outside the emulator: with no tenant id on either side, a plan made in one tenant would pass
    the tenant check in another.
    """
    if settings.tenant_id:
        return settings.tenant_id
    if settings.auth == "emulator":
        return None
    raise ConfigError(
        "GUESTCTL_TENANT_ID is not set: stale-guest plans are tied to one tenant and checked against it",
        hint="set GUESTCTL_TENANT_ID (or --tenant-id) to the id of the tenant to manage; nothing was changed",
    )
