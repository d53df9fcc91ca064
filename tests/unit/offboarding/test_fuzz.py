"""Whatever arrives, the inbound layer answers with a documented rejection (401 or 400) or a result: never a crash."""

from __future__ import annotations

import base64
import contextlib
import hmac
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.offboarding.adapters.config import AdaptersConfig
from shared.offboarding.adapters.registry import ADAPTERS, receive_from
from shared.offboarding.events import EventError, parse_event
from shared.offboarding.signatures import Unauthenticated, parse_secrets, sign, verify

NOW = datetime(2026, 12, 1, 9, 20, tzinfo=UTC)
SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
KEYS = parse_secrets(SECRET)
NAMES = st.sampled_from(
    [
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "X-BambooHR-Signature",
        "X-BambooHR-Timestamp",
        "Bob-Signature",
        "x-deel-signature",
        "Authorization",
    ]
)
VALUES = st.one_of(
    st.text(max_size=80),
    st.from_regex(r"v1,[A-Za-z0-9+/=]{0,60}( v1,[A-Za-z0-9+/=@]{0,60})?", fullmatch=True),
    st.from_regex(r"[0-9]{0,14}", fullmatch=True),
    st.just("Basic " + base64.b64encode(b"successfactors:key").decode()),
)
HEADERS = st.dictionaries(NAMES, VALUES, max_size=5)
BODIES = st.one_of(
    st.binary(max_size=300),
    st.just(b'{"employees":[{"id":"1","fields":{"Employment Status":"Terminated"}}]}'),
    st.just(b'{"type":"employee.left","triggeredAt":"0001-01-01T00:00:00+14:00","data":{"employeeId":1}}'),
    st.just(b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>"),
    st.text(max_size=200).map(str.encode),
)


def authentic(system: str, body: bytes) -> dict[str, str]:
    """Headers that pass `system`'s authentication for `body` (key b"key"), so the body is parsed too."""
    stamp = str(int(NOW.timestamp()))
    return {
        "bamboohr": {"X-BambooHR-Timestamp": stamp, "X-BambooHR-Signature": _mac(body + stamp.encode())},
        "hibob": {"Bob-Signature": _mac(body, "sha512")},
        "deel": {"x-deel-signature": _mac(b"POST" + body)},
        "successfactors": {"Authorization": "Basic " + base64.b64encode(b"successfactors:key").decode()},
    }[system]


def _mac(message: bytes, algorithm: str = "sha256") -> str:
    return hmac.new(b"key", message, algorithm).hexdigest()


@settings(max_examples=120, deadline=None)
@given(headers=HEADERS, body=BODIES, system=st.sampled_from(sorted(ADAPTERS)), signed=st.booleans())
def test_adapters_only_reject_as_documented(headers: dict[str, str], body: bytes, system: str, signed: bool) -> None:
    if signed:
        headers = authentic(system, body)
    with contextlib.suppress(Unauthenticated, EventError):
        receive_from(system, headers, body, AdaptersConfig(), (b"key",), NOW)


@settings(max_examples=100, deadline=None)
@given(headers=HEADERS, body=BODIES)
def test_native_route_only_rejects_as_documented(headers: dict[str, str], body: bytes) -> None:
    with contextlib.suppress(Unauthenticated):
        verify(KEYS, headers, body, NOW)
    try:  # past a valid signature, the body is the parser's: 400 or an event
        signed = sign(SECRET, "msg_1", int(NOW.timestamp()), body)
        verify(KEYS, signed, body, NOW)
        parse_event(body)
    except EventError:
        pass
