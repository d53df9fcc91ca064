"""Bulk guest invitations: a file of rows → invited, grouped, sponsored guests, once each.

fetch (directory lookups) → plan (pure, one outcome per row) → apply (the core applier, per-row stages)
→ report. Names only: each is imported from its module on first use, so the pure rules and row parsing
load without the Graph client or the store.
"""

from __future__ import annotations

from shared.core.names import names_from

_HOMES = {
    "InvitationRow": "rows",
    "parse_rows": "rows",
    "read_rows": "rows",
    "InvitationOutcome": "plan",
    "InvitationPlan": "plan",
    "RowPlan": "plan",
    "InvitationResult": "apply",
    "InvitationStage": "apply",
    "Mailer": "apply",
    "RowResult": "apply",
    "apply_invitations": "apply",
    "InvitationRun": "service",
    "SubmittedBatch": "service",
    "batch_id_for": "service",
    "invite_rows": "service",
    "plan_and_apply": "service",
    "plan_rows": "service",
    "status_of_batch": "service",
    "submit_file": "service",
    "work_chunk": "service",
}

__all__ = sorted(_HOMES)

__getattr__ = names_from(__name__, _HOMES)
