"""SAP SuccessFactors Event Notification Subscription: the SOAP `ExternalEvent` for a termination.

SuccessFactors signs no body: the endpoint authenticates it with HTTP Basic (user name in the config, the
password a secret setting), compared in constant time. Nothing in that is bound to a time, so the events are
`replayable`. The XML is parsed with defusedxml with DTDs refused outright (and entities, external references):
a body carrying any of them is refused as bad input, so no entity is ever expanded and no file is ever read.
The event is thin: the termination type, the effective start date and the `userId` entity key.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from datetime import datetime
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from shared.offboarding.adapters.common import MAX_ITEMS, day, native
from shared.offboarding.adapters.config import SuccessFactorsConfig
from shared.offboarding.events import EventError, Inbound, Received
from shared.offboarding.signatures import Unauthenticated, header

SYSTEM = "successfactors"
SECRETS_SETTING = "GUESTCTL_HR_SUCCESSFACTORS_SECRETS"


def receive(
    headers: Mapping[str, str], body: bytes, config: SuccessFactorsConfig, keys: tuple[bytes, ...], now: datetime
) -> Received:
    """Native events for the termination events in one `ExternalEvent`; other types are acknowledged."""
    authenticate(header(headers, "Authorization"), config.username, keys)
    root = parse_xml(body)
    soap_body = _child(root, "Body")  # a SOAP envelope, or the ExternalEvent on its own
    external = _child(soap_body, "ExternalEvent") if soap_body is not None else _named(root, "ExternalEvent")
    meta = _child(external, "externalEventMeta") if external is not None else None
    if external is None or meta is None:
        raise EventError("ExternalEvent.externalEventMeta", "missing: not a SuccessFactors ExternalEvent")
    kind = _text(meta, "type")
    if kind not in config.termination_types:
        return Received(ignored=f"SuccessFactors event type {(kind or '')[:100]!r} is not a termination type")
    event_id = _text(meta, "externalEventId")
    if event_id is None:
        raise EventError("ExternalEvent.externalEventMeta.externalEventId", "missing: it is the dedupe key")
    items = _children(_child(external, "events"), "event")
    if not items or len(items) > MAX_ITEMS:
        raise EventError("ExternalEvent.events", f"needs 1 to {MAX_ITEMS} event elements (got {len(items)})")
    sent_at = now.isoformat()
    found = []
    for index, item in enumerate(items):
        where = f"ExternalEvent.events.event[{index}]"
        entity_keys = _children(_child(item, "entityKeys"), "entityKey")
        keys_of = {_text(key, "name"): _text(key, "value") for key in entity_keys}
        employee = keys_of.get(config.employee_id_key)
        if not employee:
            raise EventError(f"{where}.entityKeys", f"no {config.employee_id_key!r} entity key")
        effective = day(_text(item, "effectiveStartDate"), f"{where}.effectiveStartDate")
        hr_event = native(
            kind=config.event_type,
            timestamp=sent_at,
            system=SYSTEM,
            tenant=config.tenant or _text(meta, "companyId"),
            event_id=event_id,
            worker={"employeeId": employee},
            effective_date=effective,
            time_zone=config.time_zone,
            where=where,
        )
        found.append(Inbound(hr_event, f"{SYSTEM}:{event_id}:{employee}", replayable=True))
    return Received(tuple(found))


def authenticate(authorization: str | None, username: str, keys: tuple[bytes, ...]) -> None:
    """Unauthenticated unless `authorization` is Basic with `username` and one of the passwords in `keys`."""
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise Unauthenticated("no HTTP Basic Authorization header")
    try:
        given = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise Unauthenticated("the Basic credentials are not base64") from None
    # Compared whole ("user:password") against each configured password, in constant time each.
    matches = [hmac.compare_digest(given, username.encode() + b":" + key) for key in keys]
    if not any(matches):
        raise Unauthenticated("the Basic credentials do not match")


def parse_xml(body: bytes) -> Element:
    """The XML document in `body`, or EventError: DTDs, entities and external references are refused."""
    try:
        return fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise EventError("", "the XML declares a DTD, an entity or an external reference; none is accepted") from None
    except (ParseError, ValueError, RecursionError):
        raise EventError("", "the body is not well-formed XML") from None


def _local(tag: object) -> str:
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _children(parent: Element | None, name: str) -> list[Element]:
    return [child for child in parent if _local(child.tag) == name] if parent is not None else []


def _child(parent: Element | None, name: str) -> Element | None:
    found = _children(parent, name)
    return found[0] if found else None


def _named(element: Element, name: str) -> Element | None:
    return element if _local(element.tag) == name else None


def _text(parent: Element | None, name: str) -> str | None:
    child = _child(parent, name)
    return (child.text or "").strip() or None if child is not None else None
