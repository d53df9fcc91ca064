"""HiBob webhooks (v2, thin): `employee.left` and the other types the config maps to native events.

Signature (HiBob's docs): `Bob-Signature` = HMAC-SHA512(secret, raw body), base64. Hex is accepted as
well because HiBob's general webhook guide does not state the encoding; both are encodings of the same
64-byte MAC, so accepting either adds no way to forge one. The signature carries no timestamp: a captured
delivery can be replayed, so the events are `replayable` (bounded by the dedupe store; never deleted at once).
HiBob sends "Ping test" when a webhook is set up: acknowledged (2xx) with no event, before the signature is
checked, because the docs do not say the ping is signed and it can change nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from shared.offboarding.adapters.common import day, json_body, local_day, moment, native, pick, require_hmac, text
from shared.offboarding.adapters.config import HiBobConfig
from shared.offboarding.events import EventError, Inbound, Received

SYSTEM = "hibob"
SECRETS_SETTING = "GUESTCTL_HR_HIBOB_SECRETS"
SIGNATURE = "Bob-Signature"
PINGS = (b'"Ping test"', b"Ping test", b'{"text":"Ping test"}', b'{"text": "Ping test"}')


def receive(
    headers: Mapping[str, str], body: bytes, config: HiBobConfig, keys: tuple[bytes, ...], now: datetime
) -> Received:
    """The native event for a mapped HiBob event type; other types are acknowledged and ignored."""
    if body.strip() in PINGS:
        return Received(ignored="HiBob's setup ping")
    require_hmac(headers, SIGNATURE, body, keys, algorithm="sha512", encodings=("base64", "hex"))
    payload = json_body(body)
    if not isinstance(payload, dict):
        raise EventError("", "the body must be a JSON object")
    kind = text(payload.get("type"))
    if kind is None:
        raise EventError("type", "missing: HiBob names the event type here")
    native_kind = config.events.get(kind)
    if native_kind is None:
        return Received(ignored=f"HiBob event type {kind[:64]!r} is not mapped (offboarding.adapters.hibob.events)")
    triggered_at = moment(payload.get("triggeredAt"), "triggeredAt")
    worker = {name: value for name, path in config.identifier_paths.items() if (value := text(pick(payload, path)))}
    worker_key = text(pick(payload, config.id_path)) or next(iter(worker.values()), "")
    # employee.left fires once the lifecycle entry is effective: the day it fired is the effective date.
    effective = day(local_day(triggered_at, config.time_zone), "triggeredAt")
    event = native(
        kind=native_kind,
        timestamp=triggered_at.isoformat(),
        system=SYSTEM,
        tenant=config.tenant or text(payload.get("companyId")),
        event_id=None,
        worker=worker,
        effective_date=effective,
        time_zone=config.time_zone,
        where="",
    )
    # No event id in the v2 payload: the event type, the worker and when it fired identify it.
    return Received((Inbound(event, f"{SYSTEM}:{kind}:{worker_key}:{triggered_at.isoformat()}", replayable=True),))
