"""What Graph documents about each entity's properties: defaults, read-only, $filter support.

The tables here are the emulator's reading of docs/graph-contract.md#users and the advanced-queries rules. Where the
contract is silent or says "unconfirmed", the choice is listed in emulator/README.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Operators as the filter compiler names them. "null" means `eq null` / `ne null`;
# "any" means a lambda over a collection (`otherMails/any(x:x eq '...')`).
EQ, NE, NOT, IN, GE, LE, STARTS, ENDS, NULL, ANY = (
    "eq",
    "ne",
    "not",
    "in",
    "ge",
    "le",
    "startsWith",
    "endsWith",
    "null",
    "any",
)

STRING, BOOLEAN, DATETIME, COLLECTION, OBJECT, NUMBER = (
    "string",
    "boolean",
    "datetime",
    "collection",
    "object",
    "number",
)


@dataclass(frozen=True, slots=True)
class FilterRule:
    """Which operators work by default and which need `ConsistencyLevel: eventual` (advanced)."""

    default: frozenset[str]
    advanced: frozenset[str] = frozenset()
    exclusive: bool = False  # signInActivity: "not with any other filterable properties"


def rule(default: str = "", advanced: str = "", exclusive: bool = False) -> FilterRule:
    return FilterRule(frozenset(default.split()), frozenset(advanced.split()), exclusive)


@dataclass(frozen=True, slots=True)
class EntitySchema:
    """Property catalogue of one entity type as the OData layer needs it."""

    name: str  # microsoft.graph.<name>
    types: dict[str, str]  # canonical property name -> value type
    default_select: tuple[str, ...]
    filters: dict[str, FilterRule]
    single_only: frozenset[str] = frozenset()  # returned for GET /x/{id} only; 501 on lists
    path_types: dict[str, str] = field(default_factory=dict)  # types of filterable sub-properties
    lowercase: dict[str, str] = field(default_factory=dict)

    def canonical(self, name: str) -> str | None:
        """Graph property names are case-insensitive on input; return the declared spelling."""
        if not self.lowercase:
            object.__setattr__(self, "lowercase", {key.lower(): key for key in self.types})
        return self.lowercase.get(name.lower())

    def type_of(self, path: str) -> str:
        return self.path_types.get(path) or self.types.get(path, STRING)


_TEXT_DEFAULT = rule("eq in startsWith ge le", "ne not endsWith null")

USER_TYPES: dict[str, str] = {
    "id": STRING,
    "businessPhones": COLLECTION,
    "displayName": STRING,
    "givenName": STRING,
    "jobTitle": STRING,
    "mail": STRING,
    "mobilePhone": STRING,
    "officeLocation": STRING,
    "preferredLanguage": STRING,
    "surname": STRING,
    "userPrincipalName": STRING,
    "accountEnabled": BOOLEAN,
    "ageGroup": STRING,
    "assignedLicenses": COLLECTION,
    "assignedPlans": COLLECTION,
    "city": STRING,
    "companyName": STRING,
    "consentProvidedForMinor": STRING,
    "country": STRING,
    "createdDateTime": DATETIME,
    "creationType": STRING,
    "deletedDateTime": DATETIME,
    "department": STRING,
    "employeeHireDate": DATETIME,
    "employeeId": STRING,
    "employeeLeaveDateTime": DATETIME,
    "employeeOrgData": OBJECT,
    "employeeType": STRING,
    "externalUserState": STRING,
    "externalUserStateChangeDateTime": DATETIME,
    "faxNumber": STRING,
    "identities": COLLECTION,
    "imAddresses": COLLECTION,
    "isResourceAccount": BOOLEAN,
    "lastPasswordChangeDateTime": DATETIME,
    "legalAgeGroupClassification": STRING,
    "mailNickname": STRING,
    "onPremisesDistinguishedName": STRING,
    "onPremisesDomainName": STRING,
    "onPremisesImmutableId": STRING,
    "onPremisesLastSyncDateTime": DATETIME,
    "onPremisesSamAccountName": STRING,
    "onPremisesSecurityIdentifier": STRING,
    "onPremisesSyncEnabled": BOOLEAN,
    "onPremisesUserPrincipalName": STRING,
    "otherMails": COLLECTION,
    "passwordPolicies": STRING,
    "postalCode": STRING,
    "preferredDataLocation": STRING,
    "proxyAddresses": COLLECTION,
    "securityIdentifier": STRING,
    "showInAddressList": BOOLEAN,
    "signInActivity": OBJECT,
    "signInSessionsValidFromDateTime": DATETIME,
    "state": STRING,
    "streetAddress": STRING,
    "usageLocation": STRING,
    "userType": STRING,
    # Returned only when a single user is read (docs/graph-contract.md#users: 501 when selected on a list).
    "aboutMe": STRING,
    "birthday": DATETIME,
    "hireDate": DATETIME,
    "interests": COLLECTION,
    "mySite": STRING,
    "pastProjects": COLLECTION,
    "preferredName": STRING,
    "responsibilities": COLLECTION,
    "schools": COLLECTION,
    "skills": COLLECTION,
    "mailboxSettings": OBJECT,
}

USER_DEFAULT_SELECT = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)

USER_SINGLE_ONLY = frozenset(
    [
        "aboutMe",
        "birthday",
        "hireDate",
        "interests",
        "mySite",
        "pastProjects",
        "preferredName",
        "responsibilities",
        "schools",
        "skills",
        "mailboxSettings",
    ]
)

USER_FILTERS: dict[str, FilterRule] = {
    "id": rule("eq in", "ne not"),
    "userType": rule("eq in", "ne not null"),
    "creationType": rule("eq in", "ne not null"),
    # Not in the default-vs-advanced table (unconfirmed): eq/in treated as default.
    "externalUserState": rule("eq in", "ne not null"),
    # Documented operators are eq, ne, NOT, in only: no ge/le range.
    "externalUserStateChangeDateTime": rule("eq in", "ne not null"),
    "accountEnabled": rule("eq", "ne not in"),
    "mail": _TEXT_DEFAULT,
    "userPrincipalName": rule("eq in startsWith", "ne not endsWith"),
    "displayName": _TEXT_DEFAULT,
    "givenName": _TEXT_DEFAULT,
    "surname": _TEXT_DEFAULT,
    "jobTitle": _TEXT_DEFAULT,
    "mailNickname": _TEXT_DEFAULT,
    "createdDateTime": rule("eq ge le in", "ne not null"),
    "companyName": rule("", "eq ne not in startsWith endsWith null"),
    "department": rule("", "eq ne not in startsWith null"),
    "employeeType": rule("", "eq ne not in startsWith null"),
    # user resource: employeeId supports eq, ne, not, ge, le, in, startsWith and eq null; the advanced-query
    # table lists ne, not and null for it (docs/graph-contract.md#offboarding).
    "employeeId": rule("eq in startsWith ge le", "ne not null"),
    "employeeHireDate": rule("", "eq ne not ge le in null"),
    "employeeLeaveDateTime": rule("", "eq ne not ge le in null"),
    "mobilePhone": rule("", "eq ne not ge le in startsWith null"),
    "showInAddressList": rule("", "eq ne not null"),
    "usageLocation": rule("eq", "ne not ge le in startsWith null"),
    "onPremisesSyncEnabled": rule("eq", "ne not null"),
    "otherMails": rule("any", "not"),
    "proxyAddresses": rule("any", "not"),
    "identities": rule("any"),
    "signInActivity/lastSignInDateTime": rule("eq ge le", "ne not", exclusive=True),
    "signInActivity/lastNonInteractiveSignInDateTime": rule("eq ge le", "ne not", exclusive=True),
    "signInActivity/lastSuccessfulSignInDateTime": rule("eq ge le", "ne not", exclusive=True),
}

USER = EntitySchema(
    name="user",
    types=USER_TYPES,
    default_select=USER_DEFAULT_SELECT,
    filters=USER_FILTERS,
    single_only=USER_SINGLE_ONLY,
    path_types={
        "signInActivity/lastSignInDateTime": DATETIME,
        "signInActivity/lastNonInteractiveSignInDateTime": DATETIME,
        "signInActivity/lastSuccessfulSignInDateTime": DATETIME,
    },
)

# Properties PATCH /users/{id} accepts, with the type the value must have.
USER_WRITABLE: dict[str, str] = {
    "accountEnabled": BOOLEAN,
    "ageGroup": STRING,
    "businessPhones": COLLECTION,
    "city": STRING,
    "companyName": STRING,
    "country": STRING,
    "department": STRING,
    "displayName": STRING,
    "employeeHireDate": DATETIME,
    "employeeId": STRING,
    "employeeLeaveDateTime": DATETIME,
    "employeeType": STRING,
    "faxNumber": STRING,
    "givenName": STRING,
    "jobTitle": STRING,
    "mail": STRING,
    "mailNickname": STRING,
    "mobilePhone": STRING,
    "officeLocation": STRING,
    "otherMails": COLLECTION,
    "postalCode": STRING,
    "preferredLanguage": STRING,
    "showInAddressList": BOOLEAN,
    "state": STRING,
    "streetAddress": STRING,
    "surname": STRING,
    "usageLocation": STRING,
    "userPrincipalName": STRING,
    "userType": STRING,
}

GROUP_TYPES: dict[str, str] = {
    "id": STRING,
    "classification": STRING,
    "createdDateTime": DATETIME,
    "deletedDateTime": DATETIME,
    "description": STRING,
    "displayName": STRING,
    "expirationDateTime": DATETIME,
    "groupTypes": COLLECTION,
    "isAssignableToRole": BOOLEAN,
    "mail": STRING,
    "mailEnabled": BOOLEAN,
    "mailNickname": STRING,
    "membershipRule": STRING,
    "membershipRuleProcessingState": STRING,
    "onPremisesSyncEnabled": BOOLEAN,
    "proxyAddresses": COLLECTION,
    "renewedDateTime": DATETIME,
    "resourceProvisioningOptions": COLLECTION,
    "securityEnabled": BOOLEAN,
    "securityIdentifier": STRING,
    "visibility": STRING,
}

GROUP_DEFAULT_SELECT = tuple(
    [
        "id",
        "deletedDateTime",
        "classification",
        "createdDateTime",
        "description",
        "displayName",
        "expirationDateTime",
        "groupTypes",
        "isAssignableToRole",
        "mail",
        "mailEnabled",
        "mailNickname",
        "membershipRule",
        "membershipRuleProcessingState",
        "onPremisesSyncEnabled",
        "proxyAddresses",
        "renewedDateTime",
        "resourceProvisioningOptions",
        "securityEnabled",
        "securityIdentifier",
        "visibility",
    ]
)

GROUP = EntitySchema(
    name="group",
    types=GROUP_TYPES,
    default_select=GROUP_DEFAULT_SELECT,
    filters={
        "id": rule("eq in", "ne not"),
        "displayName": _TEXT_DEFAULT,
        "mail": _TEXT_DEFAULT,
        "mailNickname": _TEXT_DEFAULT,
        "mailEnabled": rule("eq", "ne not null"),
        "securityEnabled": rule("eq in", "ne not"),
        "isAssignableToRole": rule("eq", "ne not null"),
        "createdDateTime": rule("", "eq ne not ge le in null"),
        "groupTypes": rule("any", "not"),
        "resourceProvisioningOptions": rule("any", "not"),
        "proxyAddresses": rule("any", "not"),
    },
)

# /auditLogs/signIns: documented filters only (docs/graph-contract.md#sign-in-logs). crossTenantAccessType,
# homeTenantId, resourceTenantId and userType are undocumented as filters and rejected ("Invalid filter clause").
SIGN_IN_TYPES: dict[str, str] = {
    "id": STRING,
    "createdDateTime": DATETIME,
    "userDisplayName": STRING,
    "userPrincipalName": STRING,
    "userId": STRING,
    "appId": STRING,
    "appDisplayName": STRING,
    "ipAddress": STRING,
    "clientAppUsed": STRING,
    "correlationId": STRING,
    "conditionalAccessStatus": STRING,
    "isInteractive": BOOLEAN,
    "riskDetail": STRING,
    "riskLevelAggregated": STRING,
    "riskLevelDuringSignIn": STRING,
    "riskState": STRING,
    "resourceDisplayName": STRING,
    "resourceId": STRING,
    "status": OBJECT,
    "status/errorCode": NUMBER,
    "authenticationRequirement": STRING,
    "authenticationDetails": COLLECTION,
    "crossTenantAccessType": STRING,
    "homeTenantId": STRING,
    "homeTenantName": STRING,
    "resourceTenantId": STRING,
    "userType": STRING,
    "signInEventTypes": COLLECTION,
    "location": OBJECT,
    "deviceDetail": OBJECT,
}

SIGN_IN = EntitySchema(
    name="signIn",
    types=SIGN_IN_TYPES,
    default_select=tuple(name for name in SIGN_IN_TYPES if "/" not in name),
    filters={
        "createdDateTime": rule("eq ge le"),
        "userId": rule("eq"),
        "userPrincipalName": rule("eq startsWith"),
        "userDisplayName": rule("eq startsWith"),
        "appId": rule("eq"),
        "appDisplayName": rule("eq startsWith"),
        "id": rule("eq"),
        "status/errorCode": rule("eq"),
        "ipAddress": rule("eq startsWith"),
        "signInEventTypes": rule("any"),
        "resourceId": rule("eq"),
        "correlationId": rule("eq"),
    },
)

# /roleManagement/directory: unifiedRoleAssignment, unifiedRoleEligibilitySchedule, unifiedRoleDefinition.
# Filterable properties and operators as their resource pages document them (eq/in on the ids and scopes);
# anything else is refused with 400 Request_UnsupportedQuery (the exact code is unconfirmed, see README).
ROLE_ASSIGNMENT_TYPES: dict[str, str] = {
    "id": STRING,
    "principalId": STRING,
    "roleDefinitionId": STRING,
    "directoryScopeId": STRING,
    "appScopeId": STRING,
}

ROLE_ASSIGNMENT = EntitySchema(
    name="unifiedRoleAssignment",
    types=ROLE_ASSIGNMENT_TYPES,
    default_select=tuple(ROLE_ASSIGNMENT_TYPES),
    filters={
        "principalId": rule("eq in"),
        "roleDefinitionId": rule("eq in"),
        "directoryScopeId": rule("eq in"),
        "appScopeId": rule("eq in"),
    },
)

ROLE_ELIGIBILITY_TYPES: dict[str, str] = {
    **ROLE_ASSIGNMENT_TYPES,
    "createdUsing": STRING,
    "createdDateTime": DATETIME,
    "modifiedDateTime": DATETIME,
    "status": STRING,
    "memberType": STRING,
    "scheduleInfo": OBJECT,
}

ROLE_ELIGIBILITY = EntitySchema(
    name="unifiedRoleEligibilitySchedule",
    types=ROLE_ELIGIBILITY_TYPES,
    default_select=tuple(ROLE_ELIGIBILITY_TYPES),
    filters={
        "id": rule("eq"),
        "principalId": rule("eq in"),
        "roleDefinitionId": rule("eq in"),
        "directoryScopeId": rule("eq"),
        "appScopeId": rule("eq"),
        "memberType": rule("eq"),
        "status": rule("eq"),
    },
)

ROLE_DEFINITION_TYPES: dict[str, str] = {
    "id": STRING,
    "description": STRING,
    "displayName": STRING,
    "isBuiltIn": BOOLEAN,
    "isEnabled": BOOLEAN,
    "resourceScopes": COLLECTION,
    "templateId": STRING,
    "version": STRING,
    "rolePermissions": COLLECTION,
}

ROLE_DEFINITION = EntitySchema(
    name="unifiedRoleDefinition",
    types=ROLE_DEFINITION_TYPES,
    default_select=tuple(ROLE_DEFINITION_TYPES),
    filters={
        "id": rule("eq in"),
        "displayName": rule("eq in startsWith"),
        "isBuiltIn": rule("eq"),
        "templateId": rule("eq in"),
    },
)
