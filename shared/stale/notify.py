"""Sponsor notices: after guests are flagged, each sponsor gets one email listing their guests and the
date they will be disabled, so someone who knows them can speak up (and have them attested) in time.

With attestation configured (GUESTCTL_ATTESTATION_URL and GUESTCTL_ATTESTATION_SECRET, docs/attestation.md)
each guest in the notice has a keep and a let-go link, and the notice has both for all its guests; the links
expire at the disable date. Without it the notice asks the sponsor to contact the identity team.

Each sponsor's notice is an action (`notify:<sponsor id>` in `staleactions`, partition `<run id>/notices`),
carried out by the core applier and sent exactly once through `shared.core.mail` (a draft, its id recorded, then sent):
a rerun sends the notices a crash left unsent and never a second one. Guests without a sponsor are
reported, not silently skipped. The record keeps the sponsor's address, how many guests the notice lists and,
when it has links, when they expire (`answer_by`, the disable date as the tokens carry it): the weekly report
matches the sponsors' answers to it and lists the sponsors who did not answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from shared.attestation.service import DigestLinks, digest_links
from shared.attestation.tokens import configured_links
from shared.config import Policy
from shared.core.apply import Progress, apply_actions
from shared.core.mail import Mail, send_once
from shared.graph import Graph
from shared.graph.batch import BatchRequest
from shared.stale.apply import ACTIONS_TABLE, ActionResult, Outcome, run_id_for
from shared.stale.plan import ActionKind, Plan
from shared.store import Store

SUBJECT = "Guest accounts you sponsor will be disabled on {date}"
NOTICES_IN_FLIGHT = 8
NOTICES_SUFFIX = "/notices"


class NoticeKind(StrEnum):
    NOTIFY = "notify"


@dataclass(frozen=True, slots=True)
class SponsorNotice:
    """One sponsor's notice, as an action of the run: the sponsor and the lines about their guests."""

    target_id: str  # the sponsor's id
    mail: str
    lines: tuple[str, ...]
    guests: tuple[str, ...] = ()  # the guests' ids, line by line (the attestation links)
    kind: NoticeKind = NoticeKind.NOTIFY


@dataclass(frozen=True, slots=True)
class Notice:
    sponsor: str  # mail or id, as reported
    guests: int
    outcome: str  # "sent", "already sent", "failed: …"


@dataclass(frozen=True, slots=True)
class SentNotice:
    """A notice with keep / let-go links that went out, as its record keeps it (what the report checks)."""

    sponsor_id: str
    mail: str
    guests: int
    sent_at: datetime
    answer_by: datetime  # the guests' disable date, whole seconds: every link of the notice expires then


async def notify_sponsors(
    plan: Plan,
    results: list[ActionResult],
    graph: Graph,
    store: Store,
    policy: Policy,
    *,
    now: datetime,
) -> tuple[list[Notice], list[str]]:
    """Email each sponsor of the guests flagged by this run; returns the notices and the guests that have
    no sponsor (display strings)."""
    # Flags done now or by an earlier attempt at this run: a rerun sends what a crash left unsent.
    in_effect = (Outcome.DONE, Outcome.ALREADY_DONE)
    flagged = [r.action for r in results if r.action.kind is ActionKind.FLAG and r.outcome in in_effect]
    if not flagged or not policy.stale.notify_sponsors:
        return [], []
    requests = [
        BatchRequest(str(i), "GET", f"/users/{a.target_id}/sponsors?$select=id,mail,displayName")
        for i, a in enumerate(flagged)
    ]
    responses = await graph.batch(requests)
    by_sponsor: dict[str, tuple[str, list[tuple[str, str]]]] = {}
    unsponsored = []
    for index, action in enumerate(flagged):
        response = responses.get(str(index))
        sponsors = [
            s for s in ((response.body or {}).get("value", []) if response and response.ok else []) if s.get("mail")
        ]
        if not sponsors:
            unsponsored.append(action.display)
        for sponsor in sponsors:
            line = (action.target_id, f"{action.display}: {action.reason}")
            by_sponsor.setdefault(sponsor["id"], (sponsor["mail"], []))[1].append(line)
    disable_at = now + timedelta(days=policy.stale.disable_after_days)
    disable_on = disable_at.date()
    links = configured_links()  # read before the first notice: a bad setting stops the run before any email
    subject = SUBJECT.format(date=f"{disable_on:%Y-%m-%d}")
    sender = policy.invitations.sender_mailbox

    async def carry_out(notice: SponsorNotice, progress: Progress) -> tuple[Outcome, str]:
        async def compose() -> Mail:
            attest = None
            if links is not None:
                guests = dict(zip(notice.guests, notice.lines, strict=True))
                attest = await digest_links(store, links, notice.target_id, guests, expires=disable_at)
            text = notice_text(notice.lines, disable_on=f"{disable_on:%Y-%m-%d}", links=attest, guests=notice.guests)
            return Mail(notice.mail, subject, text)

        sent_now = await send_once(graph, sender, progress, compose)
        return Outcome.DONE, "sent" if sent_now else "sent by the interrupted run"

    wanted = [
        SponsorNotice(sponsor_id, mail, tuple(line for _, line in lines), tuple(guest for guest, _ in lines))
        for sponsor_id, (mail, lines) in sorted(by_sponsor.items())
    ]
    sent = await apply_actions(
        wanted,
        carry_out,
        store=store,
        table=ACTIONS_TABLE,
        run_id=notices_run_id(plan),
        clock=lambda: now,
        limit=NOTICES_IN_FLIGHT,
        initial=lambda n: {
            "mail": n.mail,
            "guest_count": len(n.guests),
            "answer_by": disable_at.replace(microsecond=0).isoformat() if links is not None else None,
        },
    )
    notices = [Notice(r.action.mail, len(r.action.lines), NOTICE_OUTCOMES[r.outcome] + r.detail) for r in sent]
    return notices, unsponsored


def notices_run_id(plan: Plan) -> str:
    """The notices' partition of the action table: beside the run's actions, not among them."""
    return f"{run_id_for(plan)}{NOTICES_SUFFIX}"


async def sent_notices(store: Store) -> list[SentNotice]:
    """Every notice sent with links, from one query over the notice records (rows `notify:…`); notices without
    links (attestation off) and unsent ones are left out."""
    found = []
    async for record in store.query(ACTIONS_TABLE, row_prefix=f"{NoticeKind.NOTIFY.value}:"):
        data = record.data
        if not record.partition.endswith(NOTICES_SUFFIX) or data.get("state") != "done" or not data.get("answer_by"):
            continue
        found.append(
            SentNotice(
                sponsor_id=record.row.partition(":")[2].lower(),
                mail=str(data.get("mail") or ""),
                guests=int(data.get("guest_count", 0)),
                sent_at=datetime.fromisoformat(data["finished_at"]),
                answer_by=datetime.fromisoformat(data["answer_by"]),
            )
        )
    return found


NOTICE_OUTCOMES = {Outcome.DONE: "", Outcome.ALREADY_DONE: "already ", Outcome.FAILED: "failed: "}


def notice_text(
    lines: tuple[str, ...], *, disable_on: str, links: DigestLinks | None = None, guests: tuple[str, ...] = ()
) -> str:
    intro = (
        f"These guest accounts you sponsor have been inactive and will be disabled on {disable_on}, "
        "then deleted after a grace period:\n\n"
    )
    if links is None:
        return (
            intro
            + "\n".join(f"- {line}" for line in lines)
            + "\n\nIf someone still needs access, ask your identity team to record until when (an attestation), "
            "or ask the guest to sign in.\n"
        )
    listed = []
    for guest_id, line in zip(guests, lines, strict=True):
        keep, let_go = links.per_guest[guest_id]
        listed.append(f"- {line}\n  Keep: {keep}\n  Let go: {let_go}")
    text = intro + "\n".join(listed)
    if links.keep_all and links.let_go_all:
        text += f"\n\nAll of them:\n  Keep all: {links.keep_all}\n  Let go all: {links.let_go_all}"
    return text + (
        f"\n\nEach link opens a page that asks you to confirm; it works once and until {disable_on}. "
        "Keep: the guest keeps access for a period set by your identity team. Let go: the account is disabled "
        "at the next cleanup. If you do nothing, it is disabled on the date above.\n"
    )
