"""The native HR event: what it accepts, the instant it becomes due, and errors that name the field."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shared.offboarding.events import EventError, EventType, hr_event_json_schema, parse_event

ROOT = Path(__file__).resolve().parents[3]
EVENT: dict[str, Any] = {
    "type": "worker.terminated",
    "timestamp": "2026-11-27T10:00:00Z",
    "data": {
        "source": {"system": "workday", "tenant": "acme", "eventId": "e-1"},
        "worker": {"email": "jane@partner.example", "employeeId": "E123"},
        "effectiveDate": "2026-12-01",
        "effectiveTimeZone": "Europe/Berlin",
        "lastDayOfWork": "2026-11-30",
        "reason": "contract_end",
        "sponsorOf": True,
    },
}


def body(change: Any = None) -> bytes:
    event = copy.deepcopy(EVENT)
    if change:
        change(event)
    return json.dumps(event).encode()


def test_a_complete_event() -> None:
    event = parse_event(body())
    assert event.type is EventType.TERMINATED
    assert event.data.worker.identifiers() == (("email", "jane@partner.example"), ("employeeId", "E123"))
    assert event.data.sponsor_of is True
    assert event.data.source.event_id == "e-1"


def test_identifiers_come_strongest_first() -> None:
    worker = {
        "employeeId": "E1",
        "email": "a@b.example",
        "userPrincipalName": "a@contoso.example",
        "entraObjectId": "0f8fad5b-d9cb-469f-a165-70867728950e",
    }
    event = parse_event(body(lambda e: e["data"].update(worker=worker)))
    assert [name for name, _ in event.data.worker.identifiers()] == [
        "entraObjectId",
        "userPrincipalName",
        "email",
        "employeeId",
    ]


@pytest.mark.parametrize(
    ("day", "zone", "due"),
    [
        pytest.param("2026-12-01", "Europe/Berlin", datetime(2026, 11, 30, 23, tzinfo=UTC), id="berlin-winter"),
        pytest.param("2026-07-01", "Europe/Berlin", datetime(2026, 6, 30, 22, tzinfo=UTC), id="berlin-summer"),
        pytest.param("2026-12-01", "America/Los_Angeles", datetime(2026, 12, 1, 8, tzinfo=UTC), id="los-angeles"),
        pytest.param("2026-12-01", "UTC", datetime(2026, 12, 1, tzinfo=UTC), id="utc"),
        # São Paulo skipped midnight on 2018-11-04 (00:00 → 01:00 -02): the day began at 03:00 UTC.
        pytest.param("2018-11-04", "America/Sao_Paulo", datetime(2018, 11, 4, 3, tzinfo=UTC), id="midnight-skipped"),
    ],
)
def test_due_at_is_the_start_of_the_day_in_its_zone(day: str, zone: str, due: datetime) -> None:
    event = parse_event(body(lambda e: e["data"].update(effectiveDate=day, effectiveTimeZone=zone)))
    assert event.due_at == due


def test_a_cancellation_needs_no_date_and_is_due_when_it_happened() -> None:
    def cancel(event: dict[str, Any]) -> None:
        event["type"] = "worker.termination_cancelled"
        del event["data"]["effectiveDate"], event["data"]["effectiveTimeZone"]

    assert parse_event(body(cancel)).due_at == datetime(2026, 11, 27, 10, tzinfo=UTC)


def drop(*path: str) -> Any:
    def change(event: dict[str, Any]) -> None:
        target = event
        for part in path[:-1]:
            target = target[part]
        del target[path[-1]]

    return change


@pytest.mark.parametrize(
    ("change", "path", "problem"),
    [
        pytest.param(
            lambda e: e["data"].update(worker={}),
            "data.worker",
            "needs at least one of entraObjectId, userPrincipalName, email, employeeId",
            id="no-identifier",
        ),
        pytest.param(lambda e: e.update(type="worker.updated"), "type", "not an event type", id="unknown-type"),
        pytest.param(drop("type"), "type", "Field required", id="no-type"),
        pytest.param(
            drop("data", "effectiveDate"), "data.effectiveDate", "required for worker.terminated", id="no-date"
        ),
        pytest.param(
            drop("data", "effectiveTimeZone"),
            "data.effectiveTimeZone",
            "required with effectiveDate",
            id="date-without-zone",
        ),
        pytest.param(
            lambda e: e["data"].update(effectiveTimeZone="Mars/Olympus"),
            "data.effectiveTimeZone",
            "not an IANA",
            id="unknown-zone",
        ),
        pytest.param(
            lambda e: e["data"].update(effectiveTimeZone="../../etc/passwd"),
            "data.effectiveTimeZone",
            "not an IANA",
            id="zone-is-a-path",
        ),
        pytest.param(
            lambda e: e["data"].update(effectiveDate="01.12.2026"), "data.effectiveDate", "date", id="not-iso-date"
        ),
        pytest.param(
            lambda e: e["data"].update(effectiveDate="0001-01-01", effectiveTimeZone="Asia/Tokyo"),
            "data.effectiveDate",
            "out of range",
            id="date-at-calendar-edge",
        ),
        pytest.param(
            lambda e: e.update(timestamp="2026-11-27T10:00:00"), "timestamp", "timezone", id="timestamp-without-offset"
        ),
        pytest.param(
            lambda e: e["data"]["worker"].update(employeeID="E1"),
            "data.worker.employeeID",
            "not a field",
            id="misspelt-identifier",
        ),
        pytest.param(
            lambda e: e["data"]["worker"].update(entraObjectId="not-a-guid"),
            "data.worker.entraObjectId",
            "not a GUID",
            id="bad-object-id",
        ),
        pytest.param(
            lambda e: e["data"]["worker"].update(email="jane"),
            "data.worker.email",
            "not a mail address",
            id="bad-email",
        ),
        pytest.param(
            lambda e: e["data"]["worker"].update(employeeId=123),
            "data.worker.employeeId",
            "string",
            id="number-for-text",
        ),
        pytest.param(lambda e: e["data"].update(sponsorOf="yes"), "data.sponsorOf", "boolean", id="text-for-bool"),
        pytest.param(lambda e: e["data"].update(reason="x" * 501), "data.reason", "at most 500", id="reason-capped"),
        pytest.param(drop("data", "source"), "data.source", "Field required", id="no-provenance"),
        pytest.param(
            lambda e: e["data"]["source"].update(system="Work Day"),
            "data.source.system",
            "lowercase",
            id="bad-system-name",
        ),
    ],
)
def test_errors_name_the_field(change: Any, path: str, problem: str) -> None:
    with pytest.raises(EventError) as refused:
        parse_event(body(change))
    assert refused.value.path == path
    assert problem in refused.value.problem
    assert refused.value.http_status == 400


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        pytest.param(b"\xff{}", "not UTF-8", id="not-utf8"),
        pytest.param(b"{", "not valid JSON", id="not-json"),
        pytest.param(b"[" * 100_000, "not valid JSON", id="nested-too-deep"),
        pytest.param(b"[]", "must be a JSON object", id="array"),
        pytest.param(b"", "not valid JSON", id="empty"),
    ],
)
def test_unreadable_bodies(raw: bytes, problem: str) -> None:
    with pytest.raises(EventError) as refused:
        parse_event(raw)
    assert problem in refused.value.problem


def test_an_error_never_quotes_the_body() -> None:
    secret_ish = "ssn-123-45-6789"
    with pytest.raises(EventError) as refused:
        parse_event(body(lambda e: e["data"]["worker"].update(email=secret_ish)))
    assert secret_ish not in refused.value.one_line()


def test_committed_json_schema_matches_the_model() -> None:
    committed = json.loads((ROOT / "docs" / "hr-event.schema.json").read_text())
    assert committed == hr_event_json_schema(), "run: python -m shared.offboarding.events > docs/hr-event.schema.json"


@pytest.mark.parametrize(
    ("named", "identifier"),
    [
        ("0f8fad5b-d9cb-469f-a165-70867728950e", ("entraObjectId", "0f8fad5b-d9cb-469f-a165-70867728950e")),
        ("jane@partner.example", ("email", "jane@partner.example")),
        ("jane_x.example#EXT#@contoso.example", ("userPrincipalName", "jane_x.example#EXT#@contoso.example")),
        ("jane", None),  # `guestctl offboard jane`: one line, exit 2 (it was an unexpected ValidationError, exit 70)
        ("two words@x.example", None),
    ],
)
def test_a_worker_named_on_the_command_line(named: str, identifier: tuple[str, str] | None) -> None:
    from shared.errors import InputError
    from shared.offboarding.service import worker_of

    if identifier is None:
        with pytest.raises(InputError, match="is not an object id, a userPrincipalName or an email address"):
            worker_of(named)
    else:
        assert worker_of(named).identifiers() == (identifier,)
