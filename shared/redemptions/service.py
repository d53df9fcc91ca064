"""What the CLI, the Functions triggers and the demo call for redemption tracking: typed results.

`sync` runs one delta round under a lease (two workers must never both advance the delta link) and keeps
the link for the next round; an expired link starts a full round, recorded. `request_sync` is what a
notification does: it records that a round is wanted and runs it unless another worker is already syncing,
in which case that worker runs another round when it finishes (notifications coalesce).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.clock import Clock, utc_now
from shared.config import Policy, Settings, load_policy
from shared.core.apply import ActionResult, outcome_counts
from shared.core.audit import RunAudit
from shared.errors import GraphError, UnknownItemError
from shared.graph import Graph, get_graph
from shared.redemptions.apply import send_reminders
from shared.redemptions.effects import load_all, load_some, save, unflag
from shared.redemptions.fetch import DeltaExpiredError, delta_pages
from shared.redemptions.plan import Reminder, plan_reminders
from shared.redemptions.records import Tracked
from shared.redemptions.report import Pending, Summary, batch_of, pending, summarise
from shared.redemptions.rules import UNFLAGGING, ChangeKind, observe
from shared.store import Store, open_state
from shared.store.lease import LeaseHeldError, lease
from shared.store.registry import DELTA_SYNC

DELTA_TABLE = DELTA_SYNC
USERS = "users"  # partition: the users resource's delta link, lease and requests
LINK_ROW = "link"
REQUEST_ROW = "requested"
MAX_ROUNDS_PER_CALL = 5  # notifications arriving during a round earn another; bounded so a call ends


@dataclass(slots=True)
class SyncResult:
    """One `sync`: counts by kind of change, whether it was a full round, and why."""

    counts: Counter[str] = field(default_factory=Counter)
    full: bool = False
    resynced: bool = False  # the kept delta link had expired: a full round was run instead
    users_seen: int = 0
    unflagged: int = 0
    rounds: int = 0

    def to_json(self) -> dict[str, Any]:
        kinds = {kind.value: self.counts.get(kind.value, 0) for kind in ChangeKind}
        return {
            "full": self.full,
            "resynced": self.resynced,
            "rounds": self.rounds,
            "users_seen": self.users_seen,
            "unflagged": self.unflagged,
            "counts": kinds,
        }


async def sync(
    settings: Settings, *, full: bool = False, clock: Clock = utc_now, actor: str = "guestctl sync"
) -> SyncResult:
    """Run delta once (`full`: from the start, ignoring the kept link) and record what changed."""
    async with open_state(settings) as store:
        return await sync_with(get_graph(settings), store, full=full, clock=clock, actor=actor)


async def sync_with(
    graph: Graph, store: Store, *, full: bool = False, clock: Clock = utc_now, actor: str = "guestctl sync"
) -> SyncResult:
    """`sync` with a Graph client and a store at hand (the demo and the tests)."""
    async with lease(store, DELTA_TABLE, USERS, what="delta sync"):
        return await _sync_rounds(graph, store, full=full, clock=clock, actor=actor, rounds=1)


async def request_sync(settings: Settings, *, clock: Clock = utc_now, actor: str) -> SyncResult | None:
    """A notification's work: ask for a round and run it, unless a running worker will (then None)."""
    async with open_state(settings) as store:
        return await request_sync_with(get_graph(settings), store, clock=clock, actor=actor)


async def request_sync_with(
    graph: Graph, store: Store, *, clock: Clock = utc_now, actor: str, min_interval: float = 0.0
) -> SyncResult | None:
    """`min_interval`: seconds a round waits after the previous one ended, so that a burst of notifications
    (a bulk invitation brings one per guest) becomes a few rounds, not one per notification."""
    await store.upsert(DELTA_TABLE, USERS, REQUEST_ROW, {"requested_at": clock().isoformat()})
    with contextlib.suppress(LeaseHeldError):
        async with lease(store, DELTA_TABLE, USERS, what="delta sync"):
            return await _sync_rounds(
                graph,
                store,
                full=False,
                clock=clock,
                actor=actor,
                rounds=MAX_ROUNDS_PER_CALL,
                min_interval=min_interval,
            )
    return None


async def _sync_rounds(
    graph: Graph, store: Store, *, full: bool, clock: Clock, actor: str, rounds: int, min_interval: float = 0.0
) -> SyncResult:
    """Rounds until no request came in during the last one (at most `rounds`)."""
    result = SyncResult(full=full)
    audit = RunAudit(store, f"sync-{uuid.uuid4().hex[:12]}", actor, None, clock)
    for _ in range(rounds):
        if min_interval > 0:
            await _wait_for_interval(store, min_interval, clock)
        started = clock()
        await _one_round(graph, store, result, audit, full=full and result.rounds == 0, clock=clock)
        result.rounds += 1
        requested = await store.get(DELTA_TABLE, USERS, REQUEST_ROW)
        if requested is None or datetime.fromisoformat(requested.data["requested_at"]) < started:
            break
    return result


async def _wait_for_interval(store: Store, min_interval: float, clock: Clock) -> None:
    kept = await store.get(DELTA_TABLE, USERS, LINK_ROW)
    if kept is not None and kept.data.get("synced_at"):
        since = (clock() - datetime.fromisoformat(kept.data["synced_at"])).total_seconds()
        if 0 <= since < min_interval:
            await asyncio.sleep(min_interval - since)  # under the lease: notifications meanwhile coalesce


async def _one_round(
    graph: Graph, store: Store, result: SyncResult, audit: RunAudit, *, full: bool, clock: Clock
) -> None:
    kept = None if full else await store.get(DELTA_TABLE, USERS, LINK_ROW)
    link = kept.data["delta_link"] if kept is not None else None
    try:
        new_link = await _walk(graph, store, link, result, audit, clock)
    except DeltaExpiredError as error:
        result.resynced = True
        await audit.write(USERS, "delta.resync", reason=error.one_line(), after={"full": True})
        new_link = await _walk(graph, store, None, result, audit, clock)
    if link is None:
        result.full = True
    data = {"delta_link": new_link, "synced_at": clock().isoformat(), "full": link is None}
    await store.upsert(DELTA_TABLE, USERS, LINK_ROW, data)


async def _walk(graph: Graph, store: Store, link: str | None, result: SyncResult, audit: RunAudit, clock: Clock) -> str:
    """One delta round from `link` (None: everyone); records each change; returns the next round's link."""
    known: dict[str, Tracked] | None = await load_all(store) if link is None else None
    async for page in delta_pages(graph, link):
        result.users_seen += len(page.value)
        records = known if known is not None else await load_some(store, {u.id for u in page.value})
        for user in page.value:
            change = observe(records.get(user.id), user, clock())
            if change is None:
                continue
            kind, guest = change
            await save(store, guest)
            records[user.id] = guest
            result.counts[kind.value] += 1
            if kind in UNFLAGGING and await unflag(store, audit, guest, kind):
                result.unflagged += 1
        if page.delta_link:
            return page.delta_link
    raise GraphError("a delta round ended without @odata.deltaLink", hint="run `guestctl sync --full`")


@dataclass(frozen=True, slots=True)
class RedemptionReport:
    """`guestctl redemptions`: per batch and overall, and every pending guest with its next reminder."""

    summaries: list[Summary]
    pending: list[Pending]

    def to_json(self) -> dict[str, Any]:
        return {"summaries": [s.to_json() for s in self.summaries], "pending": [p.to_json() for p in self.pending]}


async def redemption_report(settings: Settings, *, batch: str | None = None) -> RedemptionReport:
    """What the store knows (no Graph call): run `sync` first for the latest."""
    policy = load_policy(settings.policy)
    async with open_state(settings) as store:
        guests = list((await load_all(store)).values())
    if batch is not None and not any(batch_of(g) == batch for g in guests):
        raise UnknownItemError(
            f"no tracked guests in batch {batch[:80]!r}",
            hint="use a batch id that `guestctl invite` printed, or `external`; run `guestctl sync` first",
        )
    return RedemptionReport(summarise(guests, batch=batch), pending(guests, policy.invitations.reminders, batch=batch))


@dataclass(frozen=True, slots=True)
class ReminderRun:
    """`guestctl remind`: the reminders due now and, once sent, one result per reminder."""

    due: list[Reminder]
    results: list[ActionResult[Reminder]] | None = None  # None: planned only, nothing sent

    def to_json(self) -> dict[str, Any]:
        if self.results is None:
            return {"applied": False, "due": [r.to_json() for r in self.due]}
        return {
            "applied": True,
            "outcomes": outcome_counts(self.results),
            "reminders": [{**r.action.to_json(), "outcome": r.outcome.value, "detail": r.detail} for r in self.results],
        }


async def remind(
    settings: Settings, *, apply: bool, actor: str = "guestctl remind", clock: Clock = utc_now
) -> ReminderRun:
    """Plan the reminders due now from what the store knows (run `sync` first), and with `apply` send them."""
    policy = load_policy(settings.policy)
    async with open_state(settings) as store:
        return await remind_with(get_graph(settings), store, policy, apply=apply, actor=actor, clock=clock)


async def remind_with(
    graph: Graph, store: Store, policy: Policy, *, apply: bool, actor: str, clock: Clock = utc_now
) -> ReminderRun:
    guests = (await load_all(store)).values()
    due = plan_reminders(guests, policy.invitations.reminders, clock())
    if not apply:
        return ReminderRun(due, None)
    return ReminderRun(due, await send_reminders(due, graph, store, policy, actor=actor, clock=clock))
