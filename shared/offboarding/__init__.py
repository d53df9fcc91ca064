"""HR offboarding: signed HR events in (native Standard Webhooks or a vendor adapter), guests handled.

Names only: each is imported from its module on first use, so the request path loads nothing it does not use.
"""

from __future__ import annotations

from shared.core.names import names_from

_HOMES = {
    "EventError": "events",
    "EventType": "events",
    "HrEvent": "events",
    "IDENTIFIER_ORDER": "events",
    "Inbound": "events",
    "Received": "events",
    "hr_event_json_schema": "events",
    "parse_event": "events",
    "Offboarded": "service",
    "apply_offboarding": "service",
    "cancel_or_restore": "service",
    "carry_out_due": "service",
    "handle_event": "service",
    "plan_offboarding_for": "service",
    "process_event": "service",
    "run_due": "service",
    "Action": "plan",
    "ActionKind": "plan",
    "Plan": "plan",
    "plan_offboarding": "plan",
    "RESTORABLE": "apply",
    "RunState": "ledger",
    "unsponsored_guests": "ledger",
    "SECRETS_SETTING": "signatures",
    "Unauthenticated": "signatures",
    "parse_secrets": "signatures",
    "sign": "signatures",
    "verify": "signatures",
}

__all__ = sorted(_HOMES)

__getattr__ = names_from(__name__, _HOMES)
