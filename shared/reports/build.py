"""Pure: the facts read from the store (fetch.py) + policy → the Report. Every number's definition is here
and in docs/reports.md#numbers; the renderers only lay it out."""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import datetime, timedelta

from shared.attestation.records import Answer
from shared.config import Policy
from shared.redemptions.records import GuestState
from shared.reports.fetch import TREND_WEEKS, Facts
from shared.reports.records import HEADLINE, Attention, Domain, GuestRow, Headline, Partner, Report, Scheduled, Snapshot
from shared.stale.notify import SentNotice
from shared.stale.rules import Category

# Audit actions that count as something done to a guest, with the word the report uses.
DONE = {
    "guest.disable": "disabled",
    "guest.delete": "deleted",
    "guest.restore": "restored",
    "guest.enable": "re-enabled",
    "guest.unflag": "unflagged",
    "guest.invite": "invited",
}
FAILED_SUFFIX = ".failed"
REVIEW = "review"  # an HR event nobody could be acted on for (ambiguous, unknown, exempt)
PENDING_HR = frozenset({"received", "scheduled"})
TOP = 10


def build_report(facts: Facts, policy: Policy) -> Report:
    names = _names(facts)
    rows = sorted(
        [*_done_rows(facts, names), *_scheduled_rows(facts, policy, names)],
        key=lambda r: (r.status != "failed", r.status, r.date, r.guest_id),
    )
    snapshot = take_snapshot(facts)
    previous = facts.history[-1] if facts.history and facts.history[-1].week == str(facts.week.shifted(-1)) else None
    done = Counter(r.action for r in rows if r.status == "done")
    scheduled = Counter((r.date.strftime("%Y-%m-%d"), r.action) for r in rows if r.status == "scheduled")
    return Report(
        week=str(facts.week),
        period_start=facts.week.start,
        period_end=facts.week.end,
        generated_at=facts.now,
        sources=_sources(facts),
        headline=[_headline(key, label, snapshot, previous) for key, label in HEADLINE],
        trend=[*facts.history[-(TREND_WEEKS - 1) :], snapshot],
        done=dict(sorted(done.items())),
        scheduled=[Scheduled(day=d, action=a, guests=n) for (d, a), n in sorted(scheduled.items())],
        guests=rows,
        domains=_domains(facts, rows),
        partners=_partners(facts),
        attention=_attention(facts),
    )


def take_snapshot(facts: Facts) -> Snapshot:
    """This week's numbers (docs/reports.md#numbers)."""
    plan = facts.sweep
    counts = plan.counts if plan is not None else {}
    state = (lambda c: counts.get(c.value, 0)) if plan is not None else (lambda c: None)
    flows = _flows(facts)
    redeemed = [t for t in facts.redemptions if t.redeemed_at is not None and facts.week.holds(t.redeemed_at)]
    hours = [t.seconds_to_redeem / 3600 for t in redeemed if t.seconds_to_redeem is not None]
    return Snapshot(
        week=str(facts.week),
        taken_at=facts.now,
        guests=facts.guest_count if facts.guest_count is not None else (plan.guests if plan else None),
        active=state(Category.ACTIVE),
        stale=state(Category.STALE),
        never_redeemed=state(Category.NEVER_REDEEMED),
        exempt=state(Category.EXEMPT),
        unknown=state(Category.UNKNOWN),
        unsponsored=len(plan.unsponsored) if plan is not None else None,
        disabled=len(flows["guest.disable"]),
        deleted=len(flows["guest.delete"]),
        restored=len(flows["guest.restore"] | flows["guest.enable"]),
        invited=len(flows["guest.invite"]),
        redeemed=len(redeemed),
        median_hours_to_redeem=round(statistics.median(hours), 1) if hours else None,
        sweep_at=plan.created_at if plan is not None else None,
    )


def _flows(facts: Facts) -> dict[str, set[str]]:
    """Guests each audited action went through for this week (a change Graph refused does not count)."""
    failed = {
        (e.action.removesuffix(FAILED_SUFFIX), e.target_id) for e in facts.audit if e.action.endswith(FAILED_SUFFIX)
    }
    flows: dict[str, set[str]] = {action: set() for action in DONE}
    for entry in facts.audit:
        if entry.action in flows and (entry.action, entry.target_id) not in failed:
            flows[entry.action].add(entry.target_id)
    return flows


def _headline(key: str, label: str, now: Snapshot, before: Snapshot | None) -> Headline:
    value = getattr(now, key)
    previous = getattr(before, key) if before is not None else None
    change = None
    if value is not None and previous is not None:
        change = (
            round(value - previous, 1) if isinstance(value, float) or isinstance(previous, float) else value - previous
        )
    return Headline(key=key, label=label, value=value, previous=previous, change=change)


def _names(facts: Facts) -> dict[str, str]:
    """What guestctl knows to call each guest: the plans' display strings, else redemption tracking's."""
    names = {}
    for tracked in facts.redemptions:
        shown = " ".join(
            part for part in (tracked.display_name, f"<{tracked.email}>" if tracked.email else None) if part
        )
        if shown:
            names[tracked.user_id] = shown
    for plan in facts.plans.values():
        for action in plan.actions:
            names[action.target_id] = action.display
    return names


def _domain(name: str) -> str | None:
    address = name.rpartition("<")[2].rstrip(">") if "<" in name else name
    return address.rpartition("@")[2].lower() or None if "@" in address else None


def _row(
    status: str, action: str, at: datetime, guest_id: str, names: dict[str, str], run_id: str | None, reason: str
) -> GuestRow:
    name = names.get(guest_id, guest_id)
    return GuestRow(
        status=status,  # type: ignore[arg-type]
        action=action,
        date=at,
        guest_id=guest_id,
        name=name,
        domain=_domain(name),
        run_id=run_id,
        reason=reason,
    )


def _done_rows(facts: Facts, names: dict[str, str]) -> list[GuestRow]:
    rows = []
    for entry in facts.audit:
        base = entry.action.removesuffix(FAILED_SUFFIX)
        if base not in DONE:
            continue
        failed = entry.action.endswith(FAILED_SUFFIX)
        reason = str((entry.after or {}).get("error") or entry.reason) if failed else entry.reason
        rows.append(
            _row(
                "failed" if failed else "done",
                DONE[base],
                entry.at or facts.week.start,
                entry.target_id,
                names,
                entry.run_id,
                reason,
            )
        )
    failed = {(r.action, r.guest_id) for r in rows if r.status == "failed"}
    rows = [r for r in rows if r.status == "failed" or (r.action, r.guest_id) not in failed]
    for guest_id, data in facts.stages.items():
        flagged = datetime.fromisoformat(data["flagged_at"]) if data.get("flagged_at") else None
        if flagged is not None and facts.week.holds(flagged):
            rows.append(
                _row("done", "flagged", flagged, guest_id, names, data.get("run_id"), "inactive: flagged for disabling")
            )
    return rows


def _scheduled_rows(facts: Facts, policy: Policy, names: dict[str, str]) -> list[GuestRow]:
    """What falls due in the week after the report's: the sweep's next stages and offboarding's deletions."""
    following = facts.week.shifted(1)
    rows = []
    stale = policy.stale
    for guest_id, data in facts.stages.items():
        stage = data.get("stage")
        if stage == "flagged" and data.get("flagged_at"):
            due, action, days = datetime.fromisoformat(data["flagged_at"]), "disable", stale.disable_after_days
        elif stage == "disabled" and data.get("disabled_at"):
            due, action, days = datetime.fromisoformat(data["disabled_at"]), "delete", stale.delete_after_days
        else:
            continue
        due += timedelta(days=days)
        if following.holds(due):
            reason = (
                f"stale-guest sweep: {action} due (stale.{action}_after_days: {days}); "
                "the first sweep on or after this date acts"
            )
            rows.append(_row("scheduled", action, due, guest_id, names, data.get("run_id"), reason))
    for guest_id, data in facts.deletions.items():
        due = datetime.fromisoformat(data["due_at"]) if data.get("due_at") else None
        if due is not None and data.get("state", "scheduled") == "scheduled" and following.holds(due):
            rows.append(
                _row(
                    "scheduled",
                    "delete",
                    due,
                    guest_id,
                    names,
                    data.get("run_id"),
                    str(data.get("reason", "HR offboarding")),
                )
            )
    return rows


def _domains(facts: Facts, rows: list[GuestRow]) -> list[Domain]:
    tracked = Counter(
        t.email.rpartition("@")[2].lower() for t in facts.redemptions if t.email and t.state is not GuestState.GONE
    )
    acted = Counter(r.domain for r in rows if r.domain)
    top = sorted(set(tracked) | set(acted), key=lambda d: (-tracked[d], -acted[d], d))[:TOP]
    return [Domain(domain=d, guests=tracked[d], acted_on=acted[d]) for d in top]


def _partners(facts: Facts) -> list[Partner]:
    found = [
        Partner(
            tenant_id=t,
            name=facts.partner_names.get(t),
            direct_connect=s["direct"],
            guest=s["guest"],
            failed=s["failed"],
        )
        for t, s in facts.sign_ins.items()
    ]
    return sorted(found, key=lambda p: (-(p.direct_connect + p.guest), p.tenant_id))[:TOP]


def _attention(facts: Facts) -> list[Attention]:
    found = []
    for event_id, data in facts.hr_events:
        if data.get("status") == REVIEW:
            at = datetime.fromisoformat(data["received_at"]) if data.get("received_at") else None
            detail = (
                f"{data.get('system', '?')} event needs review: {data.get('outcome') or 'nobody could be acted on'}"
            )
            found.append(Attention(kind="hr-event-review", subject=event_id, at=at, detail=detail))
    for kept in facts.refused:
        found.append(
            Attention(kind="refused-plan", subject=kept.plan_id, at=kept.created_at, detail=kept.refused or "")
        )
    for entry in facts.audit:
        if entry.action.endswith(FAILED_SUFFIX):
            error = str((entry.after or {}).get("error") or "refused by Graph")
            found.append(
                Attention(kind="failed-action", subject=entry.target_id, at=entry.at, detail=f"{entry.action}: {error}")
            )
    return found + unanswered(facts.notices, facts.answers, facts.now)


def unanswered(notices: list[SentNotice], answers: list[Answer], now: datetime) -> list[Attention]:
    """Sponsors who did not answer (docs/reports.md#numbers): a notice with links whose disable date has passed,
    and no keep or let go from any of its links. A link names its notice by sponsor and expiry (the disable
    date), and stops working then, so an answer is one from that sponsor with that expiry."""
    answered = {(a.sponsor_id, a.expires) for a in answers}
    found = [
        Attention(
            kind="sponsor-no-answer",
            subject=n.mail or n.sponsor_id,
            at=n.sent_at,
            detail=(
                f"{n.guests} guest{'s' if n.guests != 1 else ''} in the sponsor notice; "
                f"no keep or let go before the disable date {n.answer_by:%Y-%m-%d %H:%M} UTC"
            ),
        )
        for n in notices
        if n.answer_by <= now and (n.sponsor_id, n.answer_by) not in answered
    ]
    return sorted(found, key=lambda a: (a.at or now, a.subject))


def _sources(facts: Facts) -> list[str]:
    sources = []
    if facts.guest_count is not None:
        sources.append(f"guests: counted in Graph at {facts.now:%Y-%m-%d %H:%M} UTC ($count)")
    plan = facts.sweep
    if plan is None:
        sources.append("active, stale, never redeemed: no stale-guest sweep has been kept yet")
    else:
        age = (facts.now - plan.created_at).days
        stale_note = f" ({age} days before this report)" if age >= 1 else ""
        sources.append(
            "active, stale, never redeemed, without a sponsor: the sweep of "
            f"{plan.created_at:%Y-%m-%d %H:%M} UTC{stale_note}"
        )
    sources.append("done, failed and scheduled: guestctl's audit log and records")
    return sources
