"""What the offboarding rules see: the worker, their direct groups, the guests they sponsor, their manager.

Small immutable records decoded straight from Graph's JSON (msgspec), fields named as Graph names them. The
worker itself is the stale capability's `Guest` record (it carries userType and accountEnabled, and the
exemption rules take it), so one decoder serves both capabilities.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from shared.stale.records import Guest

# The worker as the rules need them; employeeId only to say which identifier matched.
PERSON_SELECT = "id,displayName,mail,userPrincipalName,userType,accountEnabled,employeeId"
GROUP_SELECT = "id,displayName,groupTypes,isAssignableToRole"
SPONSORED_SELECT = "id,displayName,mail,userPrincipalName,userType"
MANAGER_SELECT = "id,displayName,mail,userPrincipalName,accountEnabled,userType"

Person = Guest  # a user of any userType: the worker, a manager, the fallback sponsor


class Ref(msgspec.Struct, frozen=True, gc=False):
    id: str


class Group(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """A group the worker is a direct member of (`memberOf/microsoft.graph.group`)."""

    id: str
    display_name: str | None = msgspec.field(default=None, name="displayName")
    group_types: list[str] = msgspec.field(default_factory=list, name="groupTypes")
    role_assignable: bool | None = msgspec.field(default=None, name="isAssignableToRole")

    @property
    def dynamic(self) -> bool:
        return "DynamicMembership" in self.group_types


class Sponsored(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """A guest and its sponsors (`$expand=sponsors($select=id)`): users or groups, by id."""

    id: str
    display_name: str | None = msgspec.field(default=None, name="displayName")
    mail: str | None = None
    user_principal_name: str | None = msgspec.field(default=None, name="userPrincipalName")
    user_type: str | None = msgspec.field(default=None, name="userType")
    sponsors: list[Ref] = msgspec.field(default_factory=list)

    @property
    def sponsor_ids(self) -> frozenset[str]:
        return frozenset(s.id.lower() for s in self.sponsors)

    @property
    def display(self) -> str:
        return self.mail or self.user_principal_name or self.display_name or self.id


person_decoder = msgspec.json.Decoder(Person)


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything `plan_offboarding` decides from; `review` set means nobody is acted on."""

    identifier: tuple[str, str]  # (name, value) that was matched
    worker: Person | None = None
    review: str | None = None
    exempt: str | None = None  # an exemption protecting the worker (directory role, exemptions.*)
    groups: tuple[Group, ...] = ()
    sponsored: tuple[Sponsored, ...] = ()
    manager: Person | None = None
    fallback: Person | None = None
    channels: tuple[dict[str, Any], ...] = ()  # direct connect memberships guestctl added (migration audit)
