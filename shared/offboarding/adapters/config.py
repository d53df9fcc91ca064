"""What each HR adapter reads from its sender's payload: field names and "terminated" values per tenant.

These are data, not code: HR tenants rename fields and choose their own status values, so the policy holds
them (`offboarding.adapters.<system>`; defaults follow each vendor's documented names, docs/offboarding.md).
Strict like the policy: an unknown key is an error, so a misspelt field name is caught when the policy loads.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from shared.offboarding.events import IDENTIFIER_ORDER, EventType, zone_of

FieldName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
# A dotted path into a JSON payload ("data.employeeId"); each part is one object key.
Path = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^.]+(\.[^.]+)*$")]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    time_zone: str = Field(
        "UTC", description="IANA zone of the dates this system sends without one (the tenant's HR zone)"
    )
    tenant: str | None = Field(None, max_length=256, description="recorded as the event's source.tenant")

    @field_validator("time_zone")
    @classmethod
    def _an_iana_zone(cls, value: str) -> str:
        zone_of(value)
        return value


def _native_identifiers(value: dict[str, str]) -> dict[str, str]:
    unknown = sorted(set(value) - set(IDENTIFIER_ORDER))
    if unknown:
        raise ValueError(f"unknown identifier {unknown[0]!r}: use {', '.join(IDENTIFIER_ORDER)}")
    if not value:
        raise ValueError(f"name at least one of {', '.join(IDENTIFIER_ORDER)}")
    return value


# native identifier (entraObjectId, userPrincipalName, email, employeeId) → where the sender puts it
IdentifierFields = Annotated[dict[str, FieldName], AfterValidator(_native_identifiers)]
IdentifierPaths = Annotated[dict[str, Path], AfterValidator(_native_identifiers)]


class BambooHRConfig(_Config):
    """A BambooHR field-based (global) webhook: `employees[].fields` keyed by field names or their aliases."""

    status_field: FieldName = Field("Employment Status", description="the monitored field that says terminated")
    terminated_values: list[FieldName] = Field(["Terminated"], min_length=1, description="its terminated values")
    date_field: FieldName = Field("Employment Status: Date", description="the field holding the effective date")
    identifier_fields: IdentifierFields = Field(
        {"email": "Work Email", "employeeId": "Employee #"},
        description="native identifier → the posted field holding it",
    )
    event_type: EventType = Field(EventType.TERMINATED, description="what a terminated status means here")


class HiBobConfig(_Config):
    """A HiBob webhook (v2, thin): event types mapped to native ones; identifiers read from dotted paths."""

    events: dict[str, EventType] = Field(
        {"employee.left": EventType.TERMINATED},
        min_length=1,
        description="HiBob event type → native type; other types are acknowledged and ignored",
    )
    identifier_paths: IdentifierPaths = Field(
        {"employeeId": "data.employeeId"}, description="native identifier → dotted path in the payload"
    )
    id_path: Path = Field("data.employeeId", description="the worker's key in the dedupe key")


class DeelConfig(_Config):
    """A Deel webhook `{data, timestamp}`: the event type, ids and dates read from dotted paths."""

    event_type_path: Path = Field("data.meta.event_type", description="where the Deel event type is")
    events: dict[str, EventType] = Field(
        {"contract.terminated": EventType.CONTRACT_ENDED},
        min_length=1,
        description="Deel event type → native type; other types are acknowledged and ignored",
    )
    event_id_path: Path = Field("data.meta.tracking_id", description="Deel's id of the event (the dedupe key)")
    identifier_paths: IdentifierPaths = Field(
        {"email": "data.resource.worker.email", "employeeId": "data.resource.worker.id"},
        description="native identifier → dotted path in the payload",
    )
    effective_date_path: Path = Field(
        "data.resource.termination_date", description="the contract's end date; absent → the event's own date"
    )


class SuccessFactorsConfig(_Config):
    """SAP SuccessFactors Event Notification Subscription (SOAP `ExternalEvent`), sent with HTTP Basic."""

    username: str = Field("successfactors", min_length=1, max_length=128, description="the Basic user name")
    termination_types: list[FieldName] = Field(
        ["com.successfactors.Employment.AssignmentInformation.Termination"],
        min_length=1,
        description="externalEventMeta/type values that mean terminated",
    )
    event_type: EventType = Field(EventType.TERMINATED, description="what such an event means here")
    employee_id_key: FieldName = Field("userId", description="the entity key that holds the employee id")


class AdaptersConfig(BaseModel):
    """`offboarding.adapters`: one block per HR system."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bamboohr: BambooHRConfig = BambooHRConfig()
    hibob: HiBobConfig = HiBobConfig()
    deel: DeelConfig = DeelConfig()
    successfactors: SuccessFactorsConfig = SuccessFactorsConfig()
