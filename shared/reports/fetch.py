"""What the report is built from: guestctl's own store, plus one cheap fresh count from Graph.

Never a second scan of the tenant: the state numbers (active, stale, …) come from the latest kept sweep
plan, the guest total from `GET /users/$count` (one request, docs/graph-contract.md#advanced-queries).
Everything else is what the capabilities recorded: the audit log (every tenant change), redemptions,
guestctl's guest stages, offboarding's scheduled deletions, HR events, partner sign-in tallies, the sponsor
notices and the sponsors' answers, and the report's own weekly snapshots.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from shared.attestation.records import Answer, list_answers
from shared.config import Policy
from shared.errors import GuestctlError
from shared.graph import Graph
from shared.redemptions.effects import GUESTS as REDEMPTION_PARTITION
from shared.redemptions.effects import from_data
from shared.redemptions.records import Tracked
from shared.reports.records import Snapshot
from shared.reports.weeks import Week
from shared.stale.effects import GUESTS_PARTITION
from shared.stale.fetch import count_guests
from shared.stale.notify import SentNotice, sent_notices
from shared.stale.plan import Plan
from shared.stale.plans import load_plan
from shared.store import AuditEntry, Store
from shared.store.registry import (
    HR_EVENTS,
    OFFBOARDINGS,
    PARTNER_SIGN_INS,
    REDEMPTIONS,
    REPORT_SNAPSHOTS,
    STALE_GUESTS,
    STALE_PLANS,
)

SNAPSHOTS_PARTITION = "weekly"
TREND_WEEKS = 26


@dataclass(frozen=True, slots=True)
class KeptPlan:
    plan_id: str
    created_at: datetime
    refused: str | None


@dataclass(slots=True)
class Facts:
    """Everything one week's report is made of, read once."""

    week: Week
    now: datetime
    guest_count: int | None  # the fresh $count (None: not the latest week, or Graph would not count)
    sweep: Plan | None  # the latest kept sweep plan made before the week's end
    plans: dict[str, Plan]  # plans by id: the latest one and those whose runs changed something this week
    refused: list[KeptPlan]  # plans made this week that the caps refused
    audit: list[AuditEntry]  # this week's tenant changes
    redemptions: list[Tracked]
    stages: dict[str, dict[str, Any]]  # staleguests: user id → its stage and dates
    deletions: dict[str, dict[str, Any]]  # offboarding's scheduled soft deletions: user id → record
    hr_events: list[tuple[str, dict[str, Any]]]  # (event id, stored row)
    sign_ins: dict[str, dict[str, int]]  # partner tenant id → this week's direct/guest/failed sign-ins
    notices: list[SentNotice] = field(default_factory=list)  # notices with links whose answer_by falls this week
    answers: list[Answer] = field(default_factory=list)  # the sponsors' answers, up to the week's end
    partner_names: dict[str, str] = field(default_factory=dict)  # tenant id → the policy's name
    history: list[Snapshot] = field(default_factory=list)  # earlier weeks' snapshots, oldest first


def is_latest(week: Week, now: datetime) -> bool:
    """A report for the latest ended week (or the running one) describes now: it may take a fresh count."""
    return week.end > now - (week.end - week.start)


async def read_facts(store: Store, graph: Graph | None, policy: Policy, week: Week, now: datetime) -> Facts:
    plans, latest, refused = await _kept_plans(store, week)
    audit = [e async for e in store.read_audit(since=week.start, until=week.end)]
    for run_id in {e.run_id for e in audit if e.run_id and e.run_id.startswith("sweep-")}:
        plan_id = run_id.removeprefix("sweep-")
        if plan_id not in plans:
            with contextlib.suppress(GuestctlError):  # a plan removed since: the ids stand in for the names
                plans[plan_id] = await load_plan(store, plan_id)
    guest_count = await count_guests(graph) if graph is not None and is_latest(week, now) else None
    notices = [n for n in await sent_notices(store) if week.holds(n.answer_by)]
    asked = {n.sponsor_id for n in notices}
    answers = [a for a in await list_answers(store) if a.sponsor_id in asked and a.at < week.end] if asked else []
    return Facts(
        week=week,
        now=now,
        guest_count=guest_count,
        sweep=plans.get(latest) if latest else None,
        plans=plans,
        refused=refused,
        audit=audit,
        redemptions=[from_data(r.data) async for r in store.query(REDEMPTIONS, REDEMPTION_PARTITION)],
        stages={r.row: r.data async for r in store.query(STALE_GUESTS, GUESTS_PARTITION)},
        deletions={r.row: r.data async for r in store.query(OFFBOARDINGS, "deletions")},
        hr_events=[(r.row, r.data) async for r in store.query(HR_EVENTS, "event")],
        sign_ins=await _sign_ins(store, week),
        notices=notices,
        answers=answers,
        partner_names={p.tenant: p.name for p in policy.partners.tenants if p.name},
        history=await read_snapshots(store, week.shifted(-(TREND_WEEKS - 1)), week.shifted(-1)),
    )


async def _kept_plans(store: Store, week: Week) -> tuple[dict[str, Plan], str | None, list[KeptPlan]]:
    """The latest sweep plan made before the week ended (loaded), and this week's refused plans."""
    latest: KeptPlan | None = None
    refused = []
    async for record in store.query(STALE_PLANS, row_prefix="meta"):
        if record.row != "meta":
            continue
        kept = KeptPlan(record.partition, datetime.fromisoformat(record.data["created_at"]), record.data.get("refused"))
        if kept.created_at >= week.end:
            continue
        if week.holds(kept.created_at) and kept.refused:
            refused.append(kept)
        if latest is None or kept.created_at > latest.created_at:
            latest = kept
    plans = {}
    if latest is not None:
        with contextlib.suppress(GuestctlError):
            plans[latest.plan_id] = await load_plan(store, latest.plan_id)
    return plans, latest.plan_id if latest else None, sorted(refused, key=lambda k: k.created_at)


async def _sign_ins(store: Store, week: Week) -> dict[str, dict[str, int]]:
    days = {week.start.date().toordinal() + i for i in range(7)}
    totals: dict[str, dict[str, int]] = {}
    async for record in store.query(PARTNER_SIGN_INS, row_prefix="day:"):
        day = datetime.fromisoformat(record.row.removeprefix("day:")).date().toordinal()
        if day not in days:
            continue
        total = totals.setdefault(record.partition, {"direct": 0, "guest": 0, "failed": 0})
        total["direct"] += int(record.data.get("direct", 0))
        total["guest"] += int(record.data.get("guest", 0))
        total["failed"] += int(record.data.get("direct_failed", 0)) + int(record.data.get("guest_failed", 0))
    return totals


async def read_snapshots(store: Store, first: Week, last: Week) -> list[Snapshot]:
    """The kept snapshots of weeks `first` to `last`, oldest first (row keys sort as weeks do)."""
    found = []
    async for record in store.query(REPORT_SNAPSHOTS, SNAPSHOTS_PARTITION):
        if str(first) <= record.row <= str(last):
            found.append(msgspec.convert(record.data, Snapshot, strict=False))
    return found


async def keep_snapshot(store: Store, snapshot: Snapshot) -> None:
    """Write (or replace: a rerun of the week's report) the week's snapshot."""
    await store.upsert(REPORT_SNAPSHOTS, SNAPSHOTS_PARTITION, snapshot.week, msgspec.to_builtins(snapshot))
