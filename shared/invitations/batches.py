"""Invitation batches for the Functions app: accept a file, queue its rows, work chunks, report status.

An uploaded file is checked whole before anything is queued (columns, addresses, duplicates, the policy's
domain lists): a bad row refuses the upload with every row's reason, so a half-queued batch never exists.
Accepted rows travel in chunks through a storage queue; each chunk is planned and applied by
`service.work_chunk`, whose per-row stages make at-least-once queue delivery safe. Every row's result is
kept under the batch so `batch_status` can count them and list the failures.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import msgspec

from shared.clock import Clock, utc_now
from shared.config import Policy
from shared.errors import InputError, RetryLaterError, UnknownItemError
from shared.invitations.apply import BATCH_PARTITION, BATCHES_TABLE, OK_RESULTS, InvitationResult, RowResult
from shared.invitations.rows import InvitationRow, cut, parse_rows, shown
from shared.invitations.rules import domain_block_reason, normalise_email, row_problem
from shared.queue_messages import decode_message as decode_queue_message
from shared.store import Store
from shared.store.registry import INVITE_RESULTS

RESULTS_TABLE = INVITE_RESULTS
ROWS_PER_MESSAGE = 20  # one $batch of lookups per chunk
# A queue message holds 64 KiB, 48 KiB before base64 (host.json messageEncoding): a chunk also ends early
# when its JSON would pass this. Every accepted row fits (rules.MAX_ROW_BYTES) with room for the envelope.
MAX_MESSAGE_BYTES = 46_000
MAX_SOURCE_CHARS = 1_024  # a blob name's limit; the source is shown in the batch status
MAX_REASONS_SHOWN = 200
RETRY_HINT = "the queue will deliver the chunk again"


def check_upload(content: bytes, *, name: str, json_lines: bool, policy: Policy) -> list[InvitationRow]:
    """The rows of an upload, or InputError listing every row that cannot be invited as given."""
    rows = parse_rows(content, name=name, json_lines=json_lines)
    first_row_of: dict[str, int] = {}
    reasons = []
    for row in rows:
        problem = row_problem(row)
        if problem is None:
            key = normalise_email(row.email)
            if key in first_row_of:
                problem = f"duplicate of row {first_row_of[key]}"
            else:
                first_row_of[key] = row.row
                problem = domain_block_reason(key, policy.invitations)
        if problem:
            reasons.append(f"row {row.row} ({cut(row.email) or 'no email'}): {problem}")
    if reasons:
        shown = reasons[:MAX_REASONS_SHOWN]
        more = f"; and {len(reasons) - len(shown)} more" if len(reasons) > len(shown) else ""
        raise InputError(
            f"{name}: {len(reasons)} row(s) cannot be invited: " + "; ".join(shown) + more,
            hint="fix these rows and upload the file again; nothing was queued",
        )
    return rows


async def submit_batch(
    store: Store, rows: list[InvitationRow], *, batch_id: str, source: str, clock: Clock = utc_now
) -> list[str]:
    """Record the batch and return the queue messages that carry its rows (JSON text, one per chunk)."""
    existing = await store.get(BATCHES_TABLE, BATCH_PARTITION, batch_id)
    data = {"source": source, "rows": len(rows), "status": "queued", "submitted_at": clock().isoformat()}
    if existing is None:
        await store.create(BATCHES_TABLE, BATCH_PARTITION, batch_id, data)
    envelope = {"batch_id": batch_id, "source": cut(source, MAX_SOURCE_CHARS)}
    base = len(json.dumps({**envelope, "rows": []}, ensure_ascii=False).encode())
    messages: list[str] = []
    chunk: list[dict[str, Any]] = []
    size = base
    for row in rows:
        fields = asdict(row)
        row_size = len(json.dumps(fields, ensure_ascii=False).encode()) + 2  # and ", " between rows
        if chunk and (len(chunk) == ROWS_PER_MESSAGE or size + row_size > MAX_MESSAGE_BYTES):
            messages.append(json.dumps({**envelope, "rows": chunk}, ensure_ascii=False))
            chunk, size = [], base
        chunk.append(fields)
        size += row_size
    if chunk:
        messages.append(json.dumps({**envelope, "rows": chunk}, ensure_ascii=False))
    return messages


class QueuedRow(msgspec.Struct, forbid_unknown_fields=True):
    """One row as `submit_batch` queues it (the fields of InvitationRow)."""

    row: int
    email: str
    display_name: str | None = None
    redirect_url: str | None = None
    groups: tuple[str, ...] = ()
    sponsors: tuple[str, ...] = ()
    message: str | None = None
    send_email: bool | None = None
    problems: tuple[str, ...] = ()


class RowsMessage(msgspec.Struct, forbid_unknown_fields=True):
    """A queue message of `invitations-rows`: one chunk of one batch."""

    batch_id: str
    source: str
    rows: list[QueuedRow]


def decode_chunk(message: bytes | str) -> RowsMessage:
    """The chunk a queue message carries, or InputError saying what is wrong with it (never worth a retry)."""
    chunk = decode_queue_message(message, RowsMessage, "invitations")
    if not chunk.batch_id or not chunk.rows:
        raise InputError("malformed invitations queue message: no batch_id or no rows")
    return chunk


def chunk_rows(chunk: RowsMessage) -> list[InvitationRow]:
    return [InvitationRow(**msgspec.structs.asdict(r)) for r in chunk.rows]


async def record_results(store: Store, batch_id: str, results: list[RowResult]) -> None:
    """Keep each row's result under the batch for `batch_status`; RetryLaterError if any failed for now.
    A row an earlier delivery finished is recorded with that delivery's result (invited, adopted), read
    from the row's own record: the earlier delivery may have died before it recorded it."""
    for result in results:
        kept = result.finished or result
        data = {**kept.to_json(), "email": cut(kept.email, 256)}
        await store.upsert(RESULTS_TABLE, batch_id, f"{kept.row:07d}", data)
    transient = [r for r in results if r.transient]
    if transient:
        # Hand the chunk back to the queue: finished rows are skipped on the next delivery, and after
        # maxDequeueCount tries the message is kept in the poison queue.
        raise RetryLaterError(
            f"{len(transient)} row(s) of batch {batch_id} failed for now, e.g. row "
            f"{transient[0].row}: {transient[0].reason}",
            hint=RETRY_HINT,
        )


async def batch_status(store: Store, batch_id: str) -> dict[str, Any]:
    """Counts per outcome (rows not yet worked are `pending`) and the rows that did not succeed."""
    batch = await store.get(BATCHES_TABLE, BATCH_PARTITION, batch_id)
    if batch is None:
        raise UnknownItemError(
            f"no invitation batch {shown(batch_id)}", hint="use the batch_id returned when it was submitted"
        )
    counts: dict[str, int] = {}
    problems = []
    done = 0
    async for record in store.query(RESULTS_TABLE, batch_id):
        done += 1
        outcome = record.data["outcome"]
        counts[outcome] = counts.get(outcome, 0) + 1
        if InvitationResult(outcome) not in OK_RESULTS:
            problems.append(record.data)
    total = batch.data.get("rows", done)
    counts["pending"] = max(total - done, 0)
    return {
        "batch_id": batch_id,
        "source": batch.data.get("source"),
        "submitted_at": batch.data.get("submitted_at"),
        "rows": total,
        "complete": done >= total,
        "counts": counts,
        "not_done": problems,
    }
