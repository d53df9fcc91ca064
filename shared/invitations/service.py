"""What the CLI, the Functions triggers and the demo call: typed results, one way to invite.

A batch is named by its file's content (`batch_id_for`), so the same file is the same batch wherever it
comes from — `guestctl invite`, an HTTP upload, a dropped blob — and its rows' records repeat: a rerun
invites nobody again.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.clock import Clock, utc_now
from shared.config import Policy, Settings, load_policy
from shared.errors import RetryLaterError
from shared.graph import Graph, get_graph, graph_options
from shared.invitations.apply import Mailer, RowResult, apply_invitations
from shared.invitations.batches import (
    RETRY_HINT,
    batch_status,
    check_upload,
    chunk_rows,
    decode_chunk,
    record_results,
    submit_batch,
)
from shared.invitations.fetch import fetch_directory
from shared.invitations.plan import InvitationPlan, plan_invitations
from shared.invitations.rows import InvitationRow
from shared.store import Store, open_state
from shared.store.lease import LeaseHeldError


def batch_id_for(content: bytes) -> str:
    """The same file is the same batch: its rows' idempotency keys repeat, so a rerun invites nobody again."""
    return "inv-" + hashlib.sha256(content).hexdigest()[:16]


async def plan_rows(
    rows: list[InvitationRow],
    graph: Graph,
    policy: Policy,
    *,
    batch_id: str,
    source: str,
    tenant_id: str | None,
    now: datetime,
    resend: bool = False,
) -> InvitationPlan:
    """Look the rows up in the directory and plan them (no writes)."""
    directory = await fetch_directory(graph, rows)
    return plan_invitations(
        rows,
        directory,
        policy.invitations,
        batch_id=batch_id,
        source=source,
        tenant_id=tenant_id,
        policy_digest=policy.digest(),
        now=now,
        resend=resend,
    )


@dataclass(frozen=True, slots=True)
class InvitationRun:
    """A planned batch and, once applied, one result per row."""

    plan: InvitationPlan
    results: list[RowResult] | None = None  # None: planned only, nothing was changed

    def rows_json(self) -> list[dict[str, Any]]:
        if self.results is not None:
            return [r.to_json() for r in self.results]
        return [
            {"row": r.row, "email": r.email, "outcome": r.outcome.value, "user_id": r.user_id, "reason": r.reason}
            for r in self.plan.rows
        ]

    def counts(self) -> dict[str, int]:
        if self.results is None:
            return self.plan.counts()
        return dict(Counter(r.result.value for r in self.results))


async def plan_and_apply(
    rows: list[InvitationRow],
    graph: Graph,
    store: Store,
    policy: Policy,
    *,
    batch_id: str,
    source: str,
    tenant_id: str | None,
    actor: str,
    clock: Clock = utc_now,
    resend: bool = False,
    on_row_done: Callable[[RowResult], None] | None = None,
) -> InvitationRun:
    """Plan the rows against the directory now and apply the plan: the one way rows are invited."""
    plan = await plan_rows(
        rows, graph, policy, batch_id=batch_id, source=source, tenant_id=tenant_id, now=clock(), resend=resend
    )
    sender = policy.invitations.sender_mailbox
    mailer = Mailer(sender) if sender else None
    results = await apply_invitations(
        plan, graph, store, mailer=mailer, actor=actor, clock=clock, on_row_done=on_row_done
    )
    return InvitationRun(plan, results)


async def invite_rows(
    settings: Settings,
    rows: list[InvitationRow],
    *,
    batch_id: str,
    source: str,
    apply: bool,
    actor: str,
    resend: bool = False,
    policy: Policy | None = None,
    on_row_done: Callable[[RowResult], None] | None = None,
) -> InvitationRun:
    """Plan the rows (no writes), or with `apply` plan and invite them: `guestctl invite`."""
    policy = policy or load_policy(settings.policy)
    graph = Graph(graph_options(settings))
    try:
        if not apply:
            plan = await plan_rows(
                rows,
                graph,
                policy,
                batch_id=batch_id,
                source=source,
                tenant_id=settings.tenant_id,
                now=utc_now(),
                resend=resend,
            )
            return InvitationRun(plan)
        async with open_state(settings) as store:
            return await plan_and_apply(
                rows,
                graph,
                store,
                policy,
                batch_id=batch_id,
                source=source,
                tenant_id=settings.tenant_id,
                actor=actor,
                resend=resend,
                on_row_done=on_row_done,
            )
    finally:
        await graph.close()


@dataclass(frozen=True, slots=True)
class SubmittedBatch:
    batch_id: str
    rows: int
    messages: list[str]  # the queue messages carrying the rows


async def submit_file(settings: Settings, content: bytes, *, name: str, json_lines: bool) -> SubmittedBatch:
    """Check an uploaded file whole and record its batch; the caller queues the messages."""
    policy = load_policy(settings.policy)
    rows = check_upload(content, name=name, json_lines=json_lines, policy=policy)
    batch_id = batch_id_for(content)
    async with open_state(settings) as store:
        messages = await submit_batch(store, rows, batch_id=batch_id, source=name)
    return SubmittedBatch(batch_id, len(rows), messages)


async def work_chunk(settings: Settings, message: bytes | str, *, actor: str) -> None:
    """Plan and apply one queued chunk and record each row's result: safe to run twice on the same message.

    RetryLaterError when rows failed for now (or an earlier delivery of the chunk is still at work); an
    InputError (a malformed message) or a ConfigError (settings, policy, sender mailbox) never passes.
    """
    chunk = decode_chunk(message)
    policy = load_policy(settings.policy)
    async with open_state(settings) as store:
        try:
            run = await plan_and_apply(
                chunk_rows(chunk),
                get_graph(settings),
                store,
                policy,
                batch_id=chunk.batch_id,
                source=chunk.source,
                tenant_id=None,
                actor=actor,
            )
        except LeaseHeldError as error:
            raise RetryLaterError(f"batch {chunk.batch_id}: {error.one_line()}", hint=RETRY_HINT) from None
        await record_results(store, chunk.batch_id, run.results or [])


async def status_of_batch(settings: Settings, batch_id: str) -> dict[str, Any]:
    """Counts per outcome and the rows that did not succeed (UnknownItemError for an unknown batch)."""
    async with open_state(settings) as store:
        return await batch_status(store, batch_id)
