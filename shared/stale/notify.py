"""Sponsor notices: after guests are flagged, each sponsor gets one email listing their guests and the
date they will be disabled, so someone who knows them can speak up (and have them attested) in time.

Notices are sent at least once: each sponsor's notice has an action record under the run; a rerun sends
the ones not recorded as sent (a crash between sending and recording can repeat one notice — better than
a guest disabled without warning). Guests without a sponsor are reported, not silently skipped.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.config import Policy
from shared.errors import AlreadyExistsError, GraphError
from shared.graph import Graph
from shared.graph.batch import BatchRequest
from shared.stale.apply import ACTIONS_TABLE, ActionResult, Outcome, run_id_for
from shared.stale.plan import ActionKind, Plan
from shared.store import Store

SUBJECT = "Guest accounts you sponsor will be disabled on {date}"


@dataclass(frozen=True, slots=True)
class Notice:
    sponsor: str  # mail or id, as reported
    guests: int
    outcome: str  # "sent", "already sent", "failed: …"


async def notify_sponsors(
    plan: Plan, results: list[ActionResult], graph: Graph, store: Store, policy: Policy, *, now: datetime
) -> tuple[list[Notice], list[str]]:
    """Email each sponsor of the guests flagged by this run; returns the notices and the guests that have
    no sponsor (display strings)."""
    # Flags done now or by an earlier attempt at this run: a rerun sends what a crash left unsent.
    in_effect = (Outcome.DONE, Outcome.ALREADY_DONE)
    flagged = [r.action for r in results if r.action.kind is ActionKind.FLAG and r.outcome in in_effect]
    if not flagged or not policy.stale.notify_sponsors:
        return [], []
    sender = policy.invitations.sender_mailbox
    assert sender, "the policy requires invitations.sender_mailbox when stale.notify_sponsors is on"
    requests = [
        BatchRequest(str(i), "GET", f"/users/{a.target_id}/sponsors?$select=id,mail,displayName")
        for i, a in enumerate(flagged)
    ]
    responses = await graph.batch(requests)
    by_sponsor: dict[str, tuple[str, list[str]]] = {}
    unsponsored = []
    for index, action in enumerate(flagged):
        response = responses.get(str(index))
        sponsors = [
            s for s in ((response.body or {}).get("value", []) if response and response.ok else []) if s.get("mail")
        ]
        if not sponsors:
            unsponsored.append(action.display)
        for sponsor in sponsors:
            by_sponsor.setdefault(sponsor["id"], (sponsor["mail"], []))[1].append(f"{action.display}: {action.reason}")
    disable_on = (now + timedelta(days=policy.stale.disable_after_days)).date()
    run_id = run_id_for(plan)
    notices = []
    for sponsor_id, (mail, lines) in sorted(by_sponsor.items()):
        key = f"notify:{sponsor_id}"
        record = await store.get(ACTIONS_TABLE, run_id, key)
        if record is not None and record.data.get("state") == "done":
            notices.append(Notice(mail, len(lines), "already sent"))
            continue
        if record is None:
            with contextlib.suppress(AlreadyExistsError):
                await store.create(ACTIONS_TABLE, run_id, key, {"state": "started"})
        body = (
            f"These guest accounts you sponsor have been inactive and will be disabled on {disable_on:%Y-%m-%d}, "
            "then deleted after a grace period:\n\n"
            + "\n".join(f"- {line}" for line in lines)
            + "\n\nIf someone still needs access, ask your identity team to record until when (an attestation), "
            "or ask the guest to sign in.\n"
        )
        message = {
            "message": {
                "subject": SUBJECT.format(date=f"{disable_on:%Y-%m-%d}"),
                "body": {"contentType": "Text", "content": body},
                "toRecipients": [{"emailAddress": {"address": mail}}],
            },
            "saveToSentItems": True,
        }
        try:
            await graph.request("POST", f"/users/{sender}/sendMail", json_body=message)
        except GraphError as error:
            notices.append(Notice(mail, len(lines), f"failed: {error.one_line()}"))
            continue
        record = await store.get(ACTIONS_TABLE, run_id, key)
        if record is not None:
            await store.update(record, {"state": "done", "sent_at": now.isoformat(), "guests": len(lines)})
        notices.append(Notice(mail, len(lines), "sent"))
    return notices, unsponsored
