"""Stale-guest detection and staged removal: fetch (scan) → plan (pure) → apply (guarded) → report.

Names only: each is imported from its module on first use, so `import shared.stale.rules` (pure) does not
load the Graph client or the store.
"""

from __future__ import annotations

from shared.core.names import names_from

_HOMES = {
    "Action": "plan",
    "ActionKind": "plan",
    "Plan": "plan",
    "Category": "rules",
    "ActionResult": "apply",
    "Outcome": "apply",
    "apply_plan": "apply",
    "check_applicable": "apply",
    "check_saved_plan": "apply",
    "outcome_counts": "apply",
    "run_id_for": "apply",
    "count_guests": "fetch",
    "PROGRESS_TABLE": "sweep",
    "discard_sweep": "sweep",
    "exemptions_now": "sweep",
    "plan_sweep": "sweep",
    "plan_tenant": "sweep",
    "resumable_sweep": "sweep",
    "sweep_progress": "sweep",
    "PLANS_TABLE": "plans",
    "load_plan": "plans",
    "plan_file_json": "plans",
    "read_plan_file": "plans",
    "save_plan": "plans",
}

__all__ = sorted(_HOMES)

__getattr__ = names_from(__name__, _HOMES)
