"""Bulk guest invitations: a file of rows → invited, grouped, sponsored guests, once each.

fetch (directory lookups) → plan (pure, one outcome per row) → apply (idempotent per row) → report.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from shared.config import Policy
from shared.graph import Graph
from shared.invitations.apply import Mailer, Result, RowResult, apply_invitations
from shared.invitations.fetch import fetch_directory
from shared.invitations.plan import InvitationPlan, Outcome, RowPlan, plan_invitations
from shared.invitations.rows import InvitationRow, parse_rows, read_rows

__all__ = [
    "InvitationPlan",
    "InvitationRow",
    "Mailer",
    "Outcome",
    "Result",
    "RowPlan",
    "RowResult",
    "apply_invitations",
    "batch_id_for",
    "parse_rows",
    "plan_rows",
    "read_rows",
]


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
