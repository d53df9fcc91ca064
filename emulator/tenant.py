"""In-memory directory: users, groups, roles, deleted items, policies, logs and the change journal.

Users live in `__slots__` objects indexed by id, userPrincipalName and mail, and in a sequence list
whose position doubles as the paging cursor, so listing 100,000 users never copies or sorts them.
Every mutation goes through a Tenant method, which writes the change journal that delta queries and
change notifications read.
"""

from __future__ import annotations

import base64
import secrets
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from emulator.clock import Clock, format_datetime
from emulator.service_principals import graph_service_principal, service_principal

DELETED_RETENTION = timedelta(days=30)  # docs/graph-contract.md#deleted-items: restorable for 30 days
SIGN_IN_LOG_RETENTION = timedelta(days=30)  # docs/graph-contract.md#sign-in-logs: 30 days on P1/P2
DELTA_TOKEN_LIFETIME = timedelta(days=7)  # docs/graph-contract.md#delta: 7 days for directory objects

GUEST, MEMBER = "Guest", "Member"
PENDING, ACCEPTED = "PendingAcceptance", "Accepted"

# Change kinds in the journal. A soft delete surfaces in delta as @removed "changed", a permanent one
# as @removed "deleted" (docs/graph-contract.md#delta); both soft delete and creation notify as "updated"
# (docs/graph-contract.md#change-notifications).
CHANGE_UPDATED, CHANGE_SOFT_DELETED, CHANGE_RESTORED, CHANGE_DELETED = (
    "updated",
    "softDeleted",
    "restored",
    "deleted",
)

SIGN_IN_FIELDS = (
    "lastSignInDateTime",
    "lastSignInRequestId",
    "lastNonInteractiveSignInDateTime",
    "lastNonInteractiveSignInRequestId",
    "lastSuccessfulSignInDateTime",
    "lastSuccessfulSignInRequestId",
)


def _key(text: str) -> str:
    """Case-insensitive index key; reuses the string when it is already lower case (saves memory)."""
    return text if text.islower() or not text else text.lower()


def new_id() -> str:
    return str(uuid.uuid4())


class User:
    """One user object. Collections are tuples (shared, cheap); dates are ISO strings that sort."""

    __slots__ = (
        "accountEnabled",
        "businessPhones",
        "companyName",
        "createdDateTime",
        "creationType",
        "deletedDateTime",
        "department",
        "displayName",
        "employeeLeaveDateTime",
        "externalUserState",
        "externalUserStateChangeDateTime",
        "extra",
        "givenName",
        "home_tenant_id",
        "id",
        "identities",
        "jobTitle",
        "mail",
        "mobilePhone",
        "officeLocation",
        "otherMails",
        "preferredLanguage",
        "seq",
        "signInSessionsValidFromDateTime",
        "sign_in",
        "sponsors",
        "surname",
        "usageLocation",
        "userPrincipalName",
        "userType",
    )

    def __init__(
        self,
        *,
        id: str,
        displayName: str | None,
        userPrincipalName: str,
        userType: str = MEMBER,
        mail: str | None = None,
        givenName: str | None = None,
        surname: str | None = None,
        jobTitle: str | None = None,
        mobilePhone: str | None = None,
        officeLocation: str | None = None,
        preferredLanguage: str | None = None,
        businessPhones: tuple[str, ...] = (),
        otherMails: tuple[str, ...] = (),
        identities: tuple[tuple[str, str, str | None], ...] = (),
        creationType: str | None = None,
        externalUserState: str | None = None,
        externalUserStateChangeDateTime: str | None = None,
        createdDateTime: str,
        accountEnabled: bool = True,
        companyName: str | None = None,
        department: str | None = None,
        employeeLeaveDateTime: str | None = None,
        usageLocation: str | None = None,
        sign_in: tuple[str | None, ...] | None = None,
        sponsors: tuple[str, ...] = (),
        home_tenant_id: str | None = None,
    ) -> None:
        self.seq = -1
        self.id = id
        self.displayName = displayName
        self.userPrincipalName = userPrincipalName
        self.userType = userType
        self.mail = mail
        self.givenName = givenName
        self.surname = surname
        self.jobTitle = jobTitle
        self.mobilePhone = mobilePhone
        self.officeLocation = officeLocation
        self.preferredLanguage = preferredLanguage
        self.businessPhones = businessPhones
        self.otherMails = otherMails
        self.identities = identities
        self.creationType = creationType
        self.externalUserState = externalUserState
        self.externalUserStateChangeDateTime = externalUserStateChangeDateTime
        self.createdDateTime = createdDateTime
        self.accountEnabled = accountEnabled
        self.companyName = companyName
        self.department = department
        self.employeeLeaveDateTime = employeeLeaveDateTime
        self.usageLocation = usageLocation
        self.signInSessionsValidFromDateTime = createdDateTime
        self.sign_in = sign_in
        self.sponsors = sponsors
        self.home_tenant_id = home_tenant_id
        self.extra: dict[str, Any] | None = None
        self.deletedDateTime: str | None = None

    def get(self, name: str) -> Any:
        """Value of a Graph property that is not stored in a slot (PATCHed extras, derived values)."""
        if name == "proxyAddresses":
            if self.extra and "proxyAddresses" in self.extra:  # seeded: Exchange or sync wrote them
                return list(self.extra["proxyAddresses"])
            return [f"SMTP:{self.mail}"] if self.mail else []
        if name == "mailNickname":
            return self.userPrincipalName.split("@", 1)[0]
        if self.extra and name in self.extra:
            return self.extra[name]
        return None

    def __repr__(self) -> str:
        return f"User({self.userPrincipalName!r}, {self.userType})"


@dataclass(slots=True)
class Group:
    id: str
    displayName: str
    createdDateTime: str
    description: str | None = None
    mail: str | None = None
    mailEnabled: bool = False
    mailNickname: str | None = None
    securityEnabled: bool = True
    groupTypes: tuple[str, ...] = ()
    resourceProvisioningOptions: tuple[str, ...] = ()
    membershipRule: str | None = None
    isAssignableToRole: bool | None = None
    visibility: str | None = None
    members: dict[str, None] = field(default_factory=dict)  # insertion-ordered set of object ids
    owners: dict[str, None] = field(default_factory=dict)  # likewise; a team's owners are its members too
    seq: int = -1

    @property
    def is_dynamic(self) -> bool:
        return "DynamicMembership" in self.groupTypes

    @property
    def is_team(self) -> bool:
        return "Team" in self.resourceProvisioningOptions

    def get(self, name: str) -> Any:
        if name == "membershipRuleProcessingState":
            return "On" if self.is_dynamic else None
        if name == "proxyAddresses":
            return [f"SMTP:{self.mail}"] if self.mail else []
        if name in (
            "classification",
            "deletedDateTime",
            "expirationDateTime",
            "onPremisesSyncEnabled",
            "securityIdentifier",
        ):
            return None
        if name == "renewedDateTime":
            return self.createdDateTime
        return getattr(self, name, None)


@dataclass(slots=True)
class DirectoryRole:
    id: str
    displayName: str
    description: str
    roleTemplateId: str
    privileged: bool  # admin roles: app-only callers cannot delete their holders (docs/graph-contract.md#offboarding)
    members: dict[str, None] = field(default_factory=dict)


@dataclass(slots=True)
class RoleDefinition:
    """A unifiedRoleDefinition: a built-in role (id = its template id) or a custom role."""

    id: str
    displayName: str
    description: str
    isBuiltIn: bool
    templateId: str
    isEnabled: bool = True
    allowedResourceActions: tuple[str, ...] = ()


@dataclass(slots=True)
class RoleAssignment:
    """A unifiedRoleAssignment that is NOT an activated tenant-wide directoryRole membership.

    Custom-role assignments and assignments scoped to an administrative unit live here; they never
    show up in /directoryRoles/{id}/members or memberOf. Activated memberships are derived from
    `DirectoryRole.members` when /roleManagement is listed (see `Tenant.unified_role_assignments`).
    """

    id: str
    principalId: str
    roleDefinitionId: str
    directoryScopeId: str = "/"
    appScopeId: str | None = None


@dataclass(slots=True)
class RoleEligibility:
    """A PIM eligibility (unifiedRoleEligibilitySchedule): the principal may activate the role."""

    id: str
    principalId: str
    roleDefinitionId: str
    directoryScopeId: str
    createdDateTime: str
    startDateTime: str
    endDateTime: str | None = None  # None: noExpiration
    appScopeId: str | None = None
    memberType: str = "Direct"
    status: str = "Provisioned"


def directory_assignment_id(role_definition_id: str, principal_id: str) -> str:
    """Entra's id of a tenant-wide directory assignment: base64url of both GUIDs (little-endian) + "-1"."""
    raw = uuid.UUID(role_definition_id).bytes_le + uuid.UUID(principal_id).bytes_le
    return base64.urlsafe_b64encode(raw).decode().rstrip("=") + "-1"


@dataclass(slots=True)
class ConversationMember:
    id: str
    userId: str
    displayName: str | None
    email: str | None
    tenantId: str
    roles: tuple[str, ...]
    visibleHistoryStartDateTime: str


@dataclass(slots=True)
class Channel:
    id: str
    team_id: str
    displayName: str
    membershipType: str  # standard | private | shared
    createdDateTime: str
    description: str | None = None
    members: dict[str, ConversationMember] = field(default_factory=dict)


@dataclass(slots=True)
class ExternalTenant:
    """A partner organisation's home tenant, as far as lookups and direct connect need it."""

    tenant_id: str
    display_name: str
    default_domain: str
    domains: tuple[str, ...]
    direct_connect_outbound: bool = False  # the partner's own outbound setting for our tenant
    # home object id -> profile: displayName, mail; optional userPrincipalName (default: mail), otherMails,
    # accountEnabled (default true)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    app_consented: bool = False  # their admin consented our multi-tenant app (emulator/partner_directory.py)


@dataclass(slots=True)
class DeletedUser:
    user: User
    deleted_at: datetime
    groups: tuple[str, ...]
    roles: tuple[str, ...]
    assignments: tuple[RoleAssignment, ...] = ()
    eligibilities: tuple[RoleEligibility, ...] = ()


@dataclass(slots=True)
class Change:
    user_id: str
    kind: str
    props: frozenset[str] | None  # None: every property (creation, restore)
    at: datetime


class Tenant:
    """The whole directory of one emulated tenant."""

    def __init__(
        self,
        *,
        tenant_id: str | None = None,
        domain: str = "contoso.onmicrosoft.com",
        display_name: str = "Contoso",
        verified_domains: Iterable[str] = ("contoso.com",),
        clock: Clock | None = None,
    ) -> None:
        self.id = tenant_id or new_id()
        self.domain = domain
        self.display_name = display_name
        self.verified_domains = tuple(verified_domains)
        self.clock = clock or Clock()
        self.epoch = secrets.token_hex(4)  # tokens from another tenant instance are rejected
        self.lock = threading.RLock()
        self.sign_in_activity_available = True  # False: tenant without Entra ID P1/P2
        self.pim_available = True  # False: tenant without Entra ID P2 / ID Governance (no PIM)
        # True: a Conditional Access policy requires MFA of external users (B2B direct connect sign-ins then
        # need inboundTrust.isMfaAccepted, else AADSTS90071)
        self.external_mfa_required = False

        self.user_slots: list[User | None] = []
        self.users: dict[str, User] = {}
        self.by_upn: dict[str, User] = {}
        self.by_mail: dict[str, User] = {}
        self.deleted: dict[str, DeletedUser] = {}

        self.groups: dict[str, Group] = {}
        self.group_slots: list[Group | None] = []
        self.member_of: dict[str, tuple[str, ...]] = {}  # object id -> group ids (direct); tuples are small
        self.managers: dict[str, str] = {}  # user id -> manager's object id (GET/PUT /users/{id}/manager)
        self.roles: dict[str, DirectoryRole] = {}
        self.role_of: dict[str, set[str]] = {}  # object id -> role ids (activated directoryRoles only)
        self.role_definitions: dict[str, RoleDefinition] = {}  # built-in (by template id) and custom
        self.role_assignments: dict[str, RoleAssignment] = {}  # scoped and custom-role assignments
        self.role_eligibilities: dict[str, RoleEligibility] = {}  # PIM eligibility schedules
        self.channels: dict[str, Channel] = {}  # channel id -> channel (team id on the channel)
        self.deleted_channels: dict[str, Channel] = {}  # their names stay taken in their team (Teams keeps them)

        self.external_tenants: dict[str, ExternalTenant] = {}
        self.app_role_assignments: dict[str, list[dict[str, Any]]] = {}  # principal id -> appRoleAssignments
        graph_sp = graph_service_principal(new_id())
        self.service_principals: dict[str, dict[str, Any]] = {graph_sp["id"]: graph_sp}  # object id -> record
        self.invitations: dict[str, dict[str, Any]] = {}  # redeem code -> invitation record
        self.outbox: list[dict[str, Any]] = []
        self.drafts: dict[str, dict[str, Any]] = {}  # message id -> draft (in its mailbox's Drafts folder)
        self.sign_ins: list[dict[str, Any]] = []  # ascending createdDateTime
        self.ground_truth: dict[str, Any] = {}

        self.policy_default: dict[str, Any] = {}
        self.policy_partners: dict[str, dict[str, Any]] = {}
        self.identity_sync: dict[str, dict[str, Any]] = {}
        self.subscriptions: dict[str, dict[str, Any]] = {}

        self.changes: list[Change] = []
        self.changes_base = 0  # journal sequence number of changes[0]
        self.version = 0  # bumped on every mutation; caches ($count) key on it
        self.listeners: list[Callable[[Change], None]] = []

    # ---- time ---------------------------------------------------------------------------------
    def now(self) -> datetime:
        return self.clock.now()

    def now_iso(self) -> str:
        return format_datetime(self.clock.now())

    @property
    def size_class(self) -> str:
        """Throttling size class (docs/graph-contract.md#throttling): S < 50 users, M 50–500, L > 500."""
        count = len(self.users)
        if count < 50:
            return "S"
        if count <= 500:
            return "M"
        return "L"

    # ---- journal ------------------------------------------------------------------------------
    @property
    def journal_position(self) -> int:
        return self.changes_base + len(self.changes)

    def record(self, user_id: str, kind: str, props: frozenset[str] | None) -> None:
        change = Change(user_id, kind, props, self.now())
        self.changes.append(change)
        self.version += 1
        self._prune_journal(change.at)
        for listener in list(self.listeners):
            listener(change)

    def _prune_journal(self, now: datetime) -> None:
        # Changes older than a delta token can live are never read again (tokens expire first).
        if len(self.changes) < 4096 or now - self.changes[0].at <= DELTA_TOKEN_LIFETIME + timedelta(days=1):
            return
        cutoff = now - DELTA_TOKEN_LIFETIME - timedelta(days=1)
        keep = next((i for i, c in enumerate(self.changes) if c.at > cutoff), len(self.changes))
        del self.changes[:keep]
        self.changes_base += keep

    def journal_reset(self) -> None:
        """Forget changes made while building the tenant: its initial state is not a change."""
        self.changes.clear()
        self.changes_base = 0

    def changes_since(self, position: int) -> Iterator[tuple[int, Change]]:
        start = max(position - self.changes_base, 0)
        for offset in range(start, len(self.changes)):
            yield self.changes_base + offset, self.changes[offset]

    # ---- users --------------------------------------------------------------------------------
    def find_user(self, key: str) -> User | None:
        """Look a user up by object id or userPrincipalName, as `/users/{id | userPrincipalName}`."""
        user = self.users.get(key) or self.users.get(key.lower())
        if user is None:
            user = self.by_upn.get(key.lower())
        return user

    def find_user_by_address(self, address: str) -> User | None:
        """A user whose mail, otherMails or UPN is this address (proxyAddresses conflict check)."""
        lowered = address.lower()
        user = self.by_mail.get(lowered) or self.by_upn.get(lowered)
        if user is not None:
            return user
        for candidate in self.users.values():
            if any(other.lower() == lowered for other in candidate.otherMails):
                return candidate
        return None

    def add_user(self, user: User, *, record: bool = True) -> User:
        with self.lock:
            user.seq = len(self.user_slots)
            self.user_slots.append(user)
            self._index(user)
            self.version += 1
            if record:
                self.record(user.id, CHANGE_UPDATED, None)
            return user

    def _index(self, user: User) -> None:
        self.users[user.id] = user
        self.by_upn[_key(user.userPrincipalName)] = user
        if user.mail:
            self.by_mail[_key(user.mail)] = user

    def _unindex(self, user: User) -> None:
        self.users.pop(user.id, None)
        if self.by_upn.get(_key(user.userPrincipalName)) is user:
            del self.by_upn[_key(user.userPrincipalName)]
        if user.mail and self.by_mail.get(_key(user.mail)) is user:
            del self.by_mail[_key(user.mail)]

    def update_user(self, user: User, values: dict[str, Any], *, record: bool = True) -> frozenset[str]:
        """Apply property values; returns the names whose value actually changed."""
        with self.lock:
            changed: set[str] = set()
            reindex = False
            for name, value in values.items():
                if isinstance(value, list):
                    value = tuple(value)
                if name in User.__slots__ and name not in ("extra", "seq", "sign_in", "home_tenant_id"):
                    if getattr(user, name) != value:
                        if name in ("mail", "userPrincipalName"):
                            reindex = True
                        changed.add(name)
                        if name in ("mail", "userPrincipalName"):
                            self._unindex(user)
                        setattr(user, name, value)
                        if name in ("mail", "userPrincipalName"):
                            self._index(user)
                else:
                    current = user.extra.get(name) if user.extra else None
                    if current != value:
                        if user.extra is None:
                            user.extra = {}
                        user.extra[name] = value
                        changed.add(name)
            if "externalUserState" in changed:
                user.externalUserStateChangeDateTime = self.now_iso()
                changed.add("externalUserStateChangeDateTime")
            if reindex:
                self._index(user)
            if changed:
                self.version += 1
                if record:
                    self.record(user.id, CHANGE_UPDATED, frozenset(changed))
            return frozenset(changed)

    def set_sign_in(self, user: User, values: tuple[str | None, ...] | None) -> None:
        """signInActivity is not a tracked directory change: no journal entry, no notification."""
        with self.lock:
            user.sign_in = values
            self.version += 1

    def soft_delete_user(self, user: User) -> DeletedUser:
        with self.lock:
            groups = tuple(self.member_of.get(user.id, ()))
            roles = tuple(self.role_of.get(user.id, ()))
            for group_id in groups:
                self.groups[group_id].members.pop(user.id, None)
            for role_id in roles:
                self.roles[role_id].members.pop(user.id, None)
            self.member_of.pop(user.id, None)
            self.role_of.pop(user.id, None)
            assignments = tuple(a for a in self.role_assignments.values() if a.principalId == user.id)
            eligibilities = tuple(e for e in self.role_eligibilities.values() if e.principalId == user.id)
            for assignment in assignments:
                del self.role_assignments[assignment.id]
            for eligibility in eligibilities:
                del self.role_eligibilities[eligibility.id]
            for channel in self.channels.values():
                for membership_id, member in list(channel.members.items()):
                    if member.userId == user.id and member.tenantId == self.id:
                        del channel.members[membership_id]
            self._unindex(user)
            self.user_slots[user.seq] = None
            now = self.now()
            user.deletedDateTime = format_datetime(now)
            entry = DeletedUser(user, now, groups, roles, assignments, eligibilities)
            self.deleted[user.id] = entry
            self.version += 1
            self.record(user.id, CHANGE_SOFT_DELETED, None)
            return entry

    def restore_user(self, user_id: str) -> User:
        with self.lock:
            entry = self.deleted.pop(user_id)
            user = entry.user
            user.deletedDateTime = None
            self.user_slots[user.seq] = user
            self._index(user)
            for group_id in entry.groups:
                if group_id in self.groups:
                    self.add_member(self.groups[group_id], user.id)
            for role_id in entry.roles:
                if role_id in self.roles:
                    self.roles[role_id].members[user.id] = None
                    self.role_of.setdefault(user.id, set()).add(role_id)
            for assignment in entry.assignments:
                if assignment.roleDefinitionId in self.role_definitions:
                    self.role_assignments[assignment.id] = assignment
            for eligibility in entry.eligibilities:
                if eligibility.roleDefinitionId in self.role_definitions:
                    self.role_eligibilities[eligibility.id] = eligibility
            self.version += 1
            self.record(user.id, CHANGE_RESTORED, None)
            return user

    def purge_user(self, user_id: str) -> None:
        with self.lock:
            self.deleted.pop(user_id)
            for group in self.groups.values():  # sponsors pointing at the user disappear too
                group.members.pop(user_id, None)
            self.version += 1
            self.record(user_id, CHANGE_DELETED, None)

    def expire_deleted(self) -> int:
        """Permanently delete soft-deleted users past the 30-day retention."""
        if not self.deleted:
            return 0
        cutoff = self.now() - DELETED_RETENTION
        expired = [uid for uid, entry in self.deleted.items() if entry.deleted_at <= cutoff]
        for user_id in expired:
            self.purge_user(user_id)
        return len(expired)

    def iter_users(self, start: int = 0) -> Iterator[User]:
        slots = self.user_slots
        for index in range(start, len(slots)):
            user = slots[index]
            if user is not None:
                yield user

    # ---- groups and roles ---------------------------------------------------------------------
    def add_group(self, group: Group) -> Group:
        with self.lock:
            group.seq = len(self.group_slots)
            self.group_slots.append(group)
            self.groups[group.id] = group
            self.version += 1
            return group

    def add_member(self, group: Group, object_id: str) -> None:
        with self.lock:
            group.members[object_id] = None
            parents = self.member_of.get(object_id, ())
            if group.id not in parents:
                self.member_of[object_id] = (*parents, group.id)
            self.version += 1

    def remove_member(self, group: Group, object_id: str) -> None:
        with self.lock:
            group.members.pop(object_id, None)
            parents = self.member_of.get(object_id)
            if parents is not None:
                self.member_of[object_id] = tuple(g for g in parents if g != group.id)
            self.version += 1

    def add_role(self, role: DirectoryRole) -> DirectoryRole:
        """An activated directoryRole; its built-in role definition (id = template id) comes with it."""
        self.roles[role.id] = role
        template = role.roleTemplateId.lower()
        if template not in self.role_definitions:
            self.role_definitions[template] = RoleDefinition(
                template, role.displayName, role.description, True, template
            )
        return role

    def add_role_definition(self, definition: RoleDefinition) -> RoleDefinition:
        """A built-in role that is not activated, or a custom role (`isBuiltIn=False`)."""
        with self.lock:
            definition.id = definition.id.lower()
            self.role_definitions[definition.id] = definition
            self.version += 1
            return definition

    def role_definition(self, role: DirectoryRole | RoleDefinition | str) -> RoleDefinition:
        """The role definition for a directoryRole, a definition, or an id / template id / display name."""
        if isinstance(role, RoleDefinition):
            key = role.id
        elif isinstance(role, DirectoryRole):
            key = role.roleTemplateId
        else:
            key = role
        found = self.role_definitions.get(key.lower())
        if found is None and key.lower() in self.roles:
            found = self.role_definitions.get(self.roles[key.lower()].roleTemplateId.lower())
        if found is None:
            found = next((d for d in self.role_definitions.values() if d.displayName.lower() == key.lower()), None)
        if found is None:
            raise KeyError(f"no role definition {key!r}")
        return found

    def _principal(self, principal_id: str) -> str:
        """A user or role-assignable group id, lower-cased; KeyError / ValueError otherwise."""
        principal_id = principal_id.lower()
        if principal_id in self.users:
            return principal_id
        group = self.groups.get(principal_id)
        if group is None:
            raise KeyError(f"no user or group {principal_id!r}")
        if not group.isAssignableToRole:
            raise ValueError(f"group {group.displayName!r} is not role-assignable (isAssignableToRole)")
        return principal_id

    def assign_role_scoped(
        self,
        role: DirectoryRole | RoleDefinition | str,
        principal_id: str,
        directory_scope_id: str = "/",
        *,
        assignment_id: str | None = None,
    ) -> RoleAssignment:
        """A role assignment that is not an activated directoryRole membership: an administrative-unit
        scope (`/administrativeUnits/{id}`) of any role, or a custom role at any scope. It appears in
        /roleManagement/directory/roleAssignments only (never in /directoryRoles/{id}/members)."""
        with self.lock:
            definition = self.role_definition(role)
            principal = self._principal(principal_id)
            if directory_scope_id == "/" and definition.isBuiltIn:
                raise ValueError(
                    "a tenant-wide built-in role assignment is a directoryRole membership: use assign_role"
                )
            for existing in self.role_assignments.values():
                if (existing.principalId, existing.roleDefinitionId, existing.directoryScopeId) == (
                    principal,
                    definition.id,
                    directory_scope_id,
                ):
                    return existing
            assignment = RoleAssignment(assignment_id or new_id(), principal, definition.id, directory_scope_id)
            self.role_assignments[assignment.id] = assignment
            self.version += 1
            return assignment

    def make_eligible(
        self,
        role: DirectoryRole | RoleDefinition | str,
        principal_id: str,
        directory_scope_id: str = "/",
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        eligibility_id: str | None = None,
    ) -> RoleEligibility:
        """A PIM eligible assignment (Entra ID P2): listed by roleEligibilitySchedules until `end`
        (None: no expiration); not a directoryRole membership until activated."""
        with self.lock:
            definition = self.role_definition(role)
            principal = self._principal(principal_id)
            now = self.now_iso()
            begins = format_datetime(start) if start is not None else now
            eligibility = RoleEligibility(
                id=eligibility_id or new_id(),
                principalId=principal,
                roleDefinitionId=definition.id,
                directoryScopeId=directory_scope_id,
                createdDateTime=min(now, begins),
                startDateTime=begins,
                endDateTime=format_datetime(end) if end is not None else None,
            )
            self.role_eligibilities[eligibility.id] = eligibility
            self.version += 1
            return eligibility

    def unified_role_assignments(self) -> list[RoleAssignment]:
        """Every role assignment as /roleManagement sees it: each activated directoryRole membership
        (tenant-wide, roleDefinitionId = the role's template id), then scoped and custom ones."""
        derived = [
            RoleAssignment(
                directory_assignment_id(role.roleTemplateId, member), member, role.roleTemplateId.lower(), "/"
            )
            for role in self.roles.values()
            for member in role.members
        ]
        return [*derived, *self.role_assignments.values()]

    def current_eligibilities(self) -> list[RoleEligibility]:
        """Eligibility schedules not yet expired on the virtual clock."""
        now = self.now_iso()
        return [e for e in self.role_eligibilities.values() if e.endDateTime is None or e.endDateTime > now]

    def all_role_principals(self, *, expand_groups: bool = False) -> set[str]:
        """Every principal id holding a role in any form: activated directoryRole membership, scoped or
        custom-role assignment, or a current PIM eligibility. `expand_groups`: add the transitive
        members of role-assignable groups that hold one."""
        principals = {member for role in self.roles.values() for member in role.members}
        principals.update(a.principalId for a in self.role_assignments.values())
        principals.update(e.principalId for e in self.current_eligibilities())
        if expand_groups:
            frontier = [p for p in principals if p in self.groups]
            seen: set[str] = set()
            while frontier:
                group_id = frontier.pop()
                if group_id in seen:
                    continue
                seen.add(group_id)
                for member in self.groups[group_id].members:
                    principals.add(member)
                    if member in self.groups:
                        frontier.append(member)
        return principals

    def assign_role(self, role: DirectoryRole, object_id: str) -> None:
        with self.lock:
            role.members[object_id] = None
            self.role_of.setdefault(object_id, set()).add(role.id)
            self.version += 1

    def transitive_groups(self, object_id: str) -> list[str]:
        """Group ids the object belongs to directly or through nested groups, nearest first."""
        seen: dict[str, None] = {}
        frontier = list(self.member_of.get(object_id, ()))
        while frontier:
            group_id = frontier.pop(0)
            if group_id in seen:
                continue
            seen[group_id] = None
            frontier.extend(self.member_of.get(group_id, ()))
        return list(seen)

    def transitive_roles(self, object_id: str) -> list[str]:
        ids = [object_id, *self.transitive_groups(object_id)]
        roles: dict[str, None] = {}
        for member_id in ids:
            for role_id in self.role_of.get(member_id, ()):
                roles[role_id] = None
        return list(roles)

    def holds_privileged_role(self, object_id: str) -> bool:
        return any(self.roles[r].privileged for r in self.transitive_roles(object_id))

    def find_object(self, object_id: str) -> User | Group | DirectoryRole | None:
        return self.users.get(object_id) or self.groups.get(object_id) or self.roles.get(object_id)

    # ---- app role assignments -----------------------------------------------------------------
    def assign_app_role(
        self,
        principal_id: str,
        *,
        resource_id: str,
        resource_display_name: str,
        app_role_id: str = "00000000-0000-0000-0000-000000000000",
    ) -> dict[str, Any]:
        """An appRoleAssignment of a user or group to an app (its service principal `resource_id`).

        The default `appRoleId` (all zeros) is Graph's "default access" role, for apps that declare none.
        """
        sp = self.service_principals.get(principal_id.lower())
        principal = self.find_object(principal_id)
        if sp is not None:
            name, object_id, kind = sp["displayName"], sp["id"], "ServicePrincipal"
        elif principal is None or isinstance(principal, DirectoryRole):
            raise KeyError(f"no user, group or service principal {principal_id}")
        else:
            name, object_id = principal.displayName, principal.id
            kind = "Group" if isinstance(principal, Group) else "User"
        assignment = {
            "id": new_id(),
            "appRoleId": app_role_id,
            "createdDateTime": self.now_iso(),
            "deletedDateTime": None,
            "principalDisplayName": name,
            "principalId": object_id,
            "principalType": kind,
            "resourceDisplayName": resource_display_name,
            "resourceId": resource_id,
        }
        with self.lock:
            self.app_role_assignments.setdefault(object_id, []).append(assignment)
            self.version += 1
        return assignment

    def add_service_principal(self, app_id: str, display_name: str, kind: str = "ManagedIdentity") -> dict[str, Any]:
        """A service principal for an app or managed identity (kind: Application, ManagedIdentity)."""
        record = service_principal(new_id(), app_id.lower(), display_name, kind=kind)
        with self.lock:
            self.service_principals[record["id"]] = record
            self.version += 1
        return record

    def service_principal_by_app_id(self, app_id: str) -> dict[str, Any] | None:
        return next((sp for sp in self.service_principals.values() if sp["appId"] == app_id.lower()), None)

    def app_roles_of_user(self, user_id: str) -> list[dict[str, Any]]:
        """A user's own assignments, then those of the groups it is a direct member of (as Graph lists them)."""
        found = list(self.app_role_assignments.get(user_id, ()))
        for group_id in self.member_of.get(user_id, ()):
            found += self.app_role_assignments.get(group_id, ())
        return found

    # ---- partner organisations ----------------------------------------------------------------
    def add_external_tenant(self, external: ExternalTenant) -> ExternalTenant:
        self.external_tenants[external.tenant_id] = external
        return external

    def external_tenant_for_domain(self, domain: str) -> ExternalTenant | None:
        lowered = domain.lower()
        for external in self.external_tenants.values():
            if lowered in external.domains:
                return external
        return None

    # ---- sign-in log --------------------------------------------------------------------------
    def add_sign_in(self, entry: dict[str, Any]) -> None:
        with self.lock:
            log = self.sign_ins
            if log and log[-1]["createdDateTime"] > entry["createdDateTime"]:
                index = len(log)
                while index > 0 and log[index - 1]["createdDateTime"] > entry["createdDateTime"]:
                    index -= 1
                log.insert(index, entry)
            else:
                log.append(entry)
