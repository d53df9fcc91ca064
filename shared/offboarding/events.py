"""The native HR event (docs/offboarding.md#the-inbound-contract): parsed once, from the raw bytes, into a record.

A body is `{type, timestamp, data}` as Standard Webhooks recommends. Every adapter turns its vendor's
payload into the same record through the same validation, so the planner downstream sees one shape. A
body that does not fit is an `EventError` whose message names the field path and never quotes the body.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from shared.errors import InputError, cap

MAX_REASON_CHARS = 500  # free text: kept for people, never used for a decision
MAX_PATH_PART_CHARS = 64  # a field path may contain a sender's unknown key: never a megabyte of it

# How later code looks a worker up: the first identifier given, in this order, decides (docs/offboarding.md).
IDENTIFIER_ORDER = ("entraObjectId", "userPrincipalName", "email", "employeeId")

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]
Address = Annotated[str, StringConstraints(strip_whitespace=True, max_length=256, pattern=r"^[^@\s]+@[^@\s]+$")]
Guid = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    ),
]
SystemName = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
# An IANA name, never a path: ZoneInfo("/etc/passwd") would otherwise probe the file system.
_ZONE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+){0,2}$")


class EventError(InputError):
    """The body is not a valid HR event. `path` is the field (`data.worker`), `problem` what is wrong with it."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(
            f"{path}: {problem}" if path else problem,
            hint="see docs/hr-event.schema.json for the native event, docs/offboarding.md for each adapter",
        )
        self.path = path
        self.problem = problem


class _At(ValueError):
    """A rule across fields: says which field it is about, so the error's path is that field's."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(problem)
        self.path = path


class EventType(StrEnum):
    TERMINATED = "worker.terminated"  # an employee or worker leaves
    CONTRACT_ENDED = "worker.contract_ended"  # a contractor's contract ends
    TERMINATION_CANCELLED = "worker.termination_cancelled"  # before the date: cancels; after: restores
    REHIRED = "worker.rehired"  # restores what an earlier termination did


ENDING = frozenset({EventType.TERMINATED, EventType.CONTRACT_ENDED})


class _Model(BaseModel):
    # Strict: "true" is not a boolean and 42 is not a name. Unknown keys are refused: a misspelt identifier
    # ("employeeID") must fail loudly, not be ignored into "no identifier given".
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)


class Worker(_Model):
    """Who the event is about: at least one identifier; later code matches them in `IDENTIFIER_ORDER`."""

    model_config = ConfigDict(json_schema_extra={"anyOf": [{"required": [name]} for name in IDENTIFIER_ORDER]})

    entra_object_id: Guid | None = Field(None, alias="entraObjectId", description="the user's Entra object id")
    user_principal_name: Address | None = Field(None, alias="userPrincipalName")
    email: Address | None = Field(None, description="the mail address (for a guest: the one it was invited with)")
    employee_id: Text | None = Field(None, alias="employeeId", description="the HR system's employee id")

    @model_validator(mode="after")
    def _needs_an_identifier(self) -> Worker:
        if not self.identifiers():
            raise ValueError(f"needs at least one of {', '.join(IDENTIFIER_ORDER)}")
        return self

    def identifiers(self) -> tuple[tuple[str, str], ...]:
        """(name, value) of each identifier given, strongest first (`IDENTIFIER_ORDER`)."""
        values = (self.entra_object_id, self.user_principal_name, self.email, self.employee_id)
        return tuple((name, value) for name, value in zip(IDENTIFIER_ORDER, values, strict=True) if value)


class Source(_Model):
    """Provenance for the audit log: which system, which of its tenants, which of its events."""

    system: SystemName = Field(description="the sending system, e.g. workday, bamboohr, hibob")
    tenant: Text | None = Field(None, description="the customer's account in that system")
    event_id: Text | None = Field(None, alias="eventId", description="the system's own id of the event")


class EventData(_Model):
    source: Source
    worker: Worker
    effective_date: date | None = Field(
        None,
        alias="effectiveDate",
        description="the day the change takes effect (ISO date), in effectiveTimeZone; required unless the type "
        "is worker.termination_cancelled",
    )
    effective_time_zone: str | None = Field(
        None,
        alias="effectiveTimeZone",
        description="IANA time zone of effectiveDate, e.g. Europe/Berlin; required with it",
        examples=["Europe/Berlin", "UTC"],
    )
    last_day_of_work: date | None = Field(None, alias="lastDayOfWork", description="informational")
    reason: str | None = Field(
        None, max_length=MAX_REASON_CHARS, description="free text for people; never used for a decision"
    )
    sponsor_of: StrictBool = Field(
        False, alias="sponsorOf", description="hint: this person sponsors guests; re-assign them"
    )

    @field_validator("effective_time_zone")
    @classmethod
    def _an_iana_zone(cls, value: str | None) -> str | None:
        if value is not None:
            zone_of(value)
        return value

    @model_validator(mode="after")
    def _zone_with_date(self) -> EventData:
        if self.effective_date is not None and self.effective_time_zone is None:
            raise _At("data.effectiveTimeZone", "required with effectiveDate (an IANA name such as Europe/Berlin)")
        return self


class HrEvent(_Model):
    """One HR event, as the native contract has it (docs/hr-event.schema.json is generated from this)."""

    type: EventType
    timestamp: AwareDatetime = Field(description="when the HR event happened (ISO 8601 with an offset)")
    data: EventData

    @model_validator(mode="after")
    def _date_when_needed(self) -> HrEvent:
        if self.data.effective_date is None and self.type is not EventType.TERMINATION_CANCELLED:
            raise _At("data.effectiveDate", f"required for {self.type.value}")
        try:
            self.due_at  # noqa: B018 - a date at the calendar's edge cannot be moved into UTC
        except OverflowError:
            raise _At("data.effectiveDate", "out of range") from None
        return self

    @property
    def due_at(self) -> datetime:
        """The UTC instant the action becomes due: the start (00:00) of `effectiveDate` in `effectiveTimeZone`
        (where midnight does not exist that day, the first instant of the day); a cancellation without a
        date is due when it happened. Functions run in UTC, so the zone is what makes "on the 1st" right."""
        data = self.data
        if data.effective_date is None or data.effective_time_zone is None:
            return self.timestamp.astimezone(UTC)
        # fold=0 at a gap is the offset before the jump, which gives the instant the day really starts.
        local = datetime.combine(data.effective_date, time(0), tzinfo=zone_of(data.effective_time_zone))
        return local.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Inbound:
    """One event as received, with what the receiver needs to store it once and act on it safely."""

    event: HrEvent
    dedupe_key: str  # "<system>:<the sender's event key>": the same delivery again must map to the same key
    replayable: bool  # the sender's authentication carries no timestamp: never delete at once for it


@dataclass(frozen=True, slots=True)
class Received:
    """What one request carried: events to store, or why there is nothing to do (a ping, not a termination)."""

    events: tuple[Inbound, ...] = ()
    ignored: str | None = None


def zone_of(name: str) -> ZoneInfo:
    """The IANA zone `name`, or ValueError saying it is not one."""
    if len(name) > 64 or not _ZONE_NAME.match(name):
        raise ValueError("not an IANA time zone name (like Europe/Berlin)")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError("not an IANA time zone name (like Europe/Berlin)") from None


def parse_event(body: bytes) -> HrEvent:
    """The native event in `body` (UTF-8 JSON), or EventError with the field path."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise EventError("", "the body is not UTF-8") from None
    try:
        return HrEvent.model_validate_json(text)
    except ValidationError as error:
        raise _event_error(error) from None


def event_from(value: dict[str, Any], *, where: str = "") -> HrEvent:
    """An event built by an adapter (JSON values), through exactly the validation of the native route.
    `where` prefixes the path so an error points at the vendor's item (`employees[2]: data.worker: …`)."""
    try:
        return HrEvent.model_validate_json(json.dumps(value))
    except ValidationError as error:
        raise _event_error(error, where) from None


def hr_event_json_schema() -> dict[str, Any]:
    """JSON Schema of the native event (docs/hr-event.schema.json), generated from the model."""
    schema = HrEvent.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "guestctl HR event"
    return schema


# What a pattern means, by field: pydantic's own message would quote the regular expression.
_PATTERN_MEANS = {
    "entraObjectId": "not a GUID (an Entra object id)",
    "userPrincipalName": "not a user principal name (name@domain)",
    "email": "not a mail address (name@domain)",
    "system": "lowercase letters, digits and _ . - only",
}


def _event_error(error: ValidationError, where: str = "") -> EventError:
    problems = error.errors(include_url=False, include_input=False)
    first = problems[0]
    path = ".".join(cap(str(part), MAX_PATH_PART_CHARS) for part in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, _At):
        path, message = cause.path, str(cause)
    elif first["type"] == "json_invalid":
        path, message = "", "the body is not valid JSON"
    elif first["type"] == "model_type" and not first["loc"]:
        message = "the body must be a JSON object {type, timestamp, data}"
    elif first["type"] == "string_pattern_mismatch" and first["loc"][-1] in _PATTERN_MEANS:
        message = _PATTERN_MEANS[str(first["loc"][-1])]
    elif first["type"] == "enum" and first["loc"] == ("type",):
        message = f"not an event type guestctl handles (expected one of {', '.join(t.value for t in EventType)})"
    elif first["type"] == "extra_forbidden":
        message = "not a field of the HR event (see docs/hr-event.schema.json)"
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})"
    if where:
        path = f"{where}: {path}" if path else where
    return EventError(path, message)


if __name__ == "__main__":  # python -m shared.offboarding.events > docs/hr-event.schema.json
    print(json.dumps(hr_event_json_schema(), indent=2))
