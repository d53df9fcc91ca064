"""BambooHR field-based (global) webhooks: a change of the monitored status field to a terminated value.

Signature (BambooHR's sample code): `X-BambooHR-Signature` = hex HMAC-SHA256(private key, raw body followed
directly by the `X-BambooHR-Timestamp` value), no separator. The timestamp is signed, so a delivery older or
newer than the Standard Webhooks tolerance (5 minutes) is refused: replay is bounded by time.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from shared.offboarding.adapters.common import MAX_ITEMS, day, json_body, native, require_hmac, text
from shared.offboarding.adapters.config import BambooHRConfig
from shared.offboarding.events import EventError, Inbound, Received
from shared.offboarding.signatures import Unauthenticated, check_age, header

SYSTEM = "bamboohr"
SECRETS_SETTING = "GUESTCTL_HR_BAMBOOHR_SECRETS"
SIGNATURE = "X-BambooHR-Signature"
TIMESTAMP = "X-BambooHR-Timestamp"


def receive(
    headers: Mapping[str, str], body: bytes, config: BambooHRConfig, keys: tuple[bytes, ...], now: datetime
) -> Received:
    """Native events for the employees whose status field changed to a terminated value."""
    stamp = header(headers, TIMESTAMP)
    if not stamp or not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
        raise Unauthenticated(f"the {TIMESTAMP} header is missing or not unix seconds")
    check_age(int(stamp), now)
    require_hmac(headers, SIGNATURE, body + stamp.encode(), keys)
    payload = json_body(body)
    employees = payload.get("employees") if isinstance(payload, dict) else None
    if not isinstance(employees, list):
        raise EventError("employees", "missing: a field-based webhook posts an employees array")
    if len(employees) > MAX_ITEMS:
        raise EventError("employees", f"{len(employees)} employees in one delivery; at most {MAX_ITEMS}")
    sent_at = datetime.fromtimestamp(int(stamp), UTC).isoformat()
    events = []
    for index, employee in enumerate(employees):
        where = f"employees[{index}]"
        fields = employee.get("fields") if isinstance(employee, dict) else None
        if not isinstance(fields, dict):
            raise EventError(f"{where}.fields", "missing: post the status, date and identifier fields")
        if text(fields.get(config.status_field)) not in config.terminated_values:
            continue
        worker = {name: value for name, field in config.identifier_fields.items() if (value := text(fields.get(field)))}
        effective = day(fields.get(config.date_field), f"{where}.fields.{config.date_field}")
        employee_key = text(employee.get("id")) or next(iter(worker.values()), "")
        event = native(
            kind=config.event_type,
            timestamp=sent_at,
            system=SYSTEM,
            tenant=config.tenant,
            event_id=employee_key or None,
            worker=worker,
            effective_date=effective,
            time_zone=config.time_zone,
            where=where,
        )
        # BambooHR sends no event id: one termination is one employee on one effective date.
        events.append(Inbound(event, f"{SYSTEM}:{employee_key}:{effective}", replayable=False))
    if not events:
        return Received(ignored=f"no employee's {config.status_field!r} changed to a terminated value")
    return Received(tuple(events))
