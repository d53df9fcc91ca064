"""Deel webhooks `{data, timestamp}`: the contract event types the config maps to native events.

Signature (Deel's docs): `x-deel-signature` = hex HMAC-SHA256(signing key, "POST" followed by the raw body).
`x-deel-hmac-label` names the key Deel signed with; with at most two keys configured every key is tried, so
the label is not needed to choose one. The signature carries no timestamp: the events are `replayable`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from shared.offboarding.adapters.common import day, json_body, local_day, moment, native, pick, require_hmac, text
from shared.offboarding.adapters.config import DeelConfig
from shared.offboarding.events import EventError, Inbound, Received

SYSTEM = "deel"
SECRETS_SETTING = "GUESTCTL_HR_DEEL_SECRETS"
SIGNATURE = "x-deel-signature"


def receive(
    headers: Mapping[str, str], body: bytes, config: DeelConfig, keys: tuple[bytes, ...], now: datetime
) -> Received:
    """The native event for a mapped Deel event type; other types are acknowledged and ignored."""
    require_hmac(headers, SIGNATURE, b"POST" + body, keys)
    payload = json_body(body)
    if not isinstance(payload, dict):
        raise EventError("", "the body must be a JSON object")
    kind = text(pick(payload, config.event_type_path))
    if kind is None:
        raise EventError(config.event_type_path, "missing: Deel names the event type here")
    native_kind = config.events.get(kind)
    if native_kind is None:
        return Received(ignored=f"Deel event type {kind[:64]!r} is not mapped (offboarding.adapters.deel.events)")
    event_id = text(pick(payload, config.event_id_path))
    if event_id is None:
        raise EventError(config.event_id_path, "missing: Deel's event id is the dedupe key")
    happened = moment(payload.get("timestamp"), "timestamp")
    ends = pick(payload, config.effective_date_path)
    effective = day(ends, config.effective_date_path) if ends is not None else local_day(happened, config.time_zone)
    worker = {name: value for name, path in config.identifier_paths.items() if (value := text(pick(payload, path)))}
    event = native(
        kind=native_kind,
        timestamp=happened.isoformat(),
        system=SYSTEM,
        tenant=config.tenant or text(pick(payload, "data.meta.organization_id")),
        event_id=event_id,
        worker=worker,
        effective_date=effective,
        time_zone=config.time_zone,
        where="",
    )
    return Received((Inbound(event, f"{SYSTEM}:{event_id}", replayable=True),))
