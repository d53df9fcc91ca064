"""Service principals: Microsoft Graph's own (with its application permissions as appRoles) and the ones tests add
for an app or managed identity, whose app-role assignments `GET /servicePrincipals/{id}/appRoleAssignments` lists.

Graph's app-role ids are Microsoft's ("All permissions and IDs" in the Microsoft Graph permissions reference,
https://learn.microsoft.com/en-us/graph/permissions-reference#all-permissions-and-ids); they are the same in every
tenant. Only the application permissions guestctl and its tests name are here.
"""

from __future__ import annotations

from typing import Any

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"

# Application permission (appRole value) → appRole id on Microsoft Graph's service principal.
GRAPH_APP_ROLES: dict[str, str] = {
    "AppRoleAssignment.ReadWrite.All": "06b708a9-e830-4db3-a914-8e69da51d44f",
    "Application.Read.All": "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30",
    "Application.ReadWrite.All": "1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9",
    "AuditLog.Read.All": "b0afded3-3588-46d8-8b3d-9842eff778da",
    "Channel.Create": "f3a65bd4-b703-46df-8f7e-0174fea562aa",
    "Channel.Delete.All": "6a118a39-1227-45d4-af0c-ea7b40d210bc",
    "Channel.ReadBasic.All": "59a6b24b-4225-4393-8165-ebaec5f55d7a",
    "ChannelMember.Read.All": "3b55498e-47ec-484f-8136-9013221c06a9",
    "ChannelMember.ReadWrite.All": "35930dcf-aceb-4bd1-b99a-8ffed403c974",
    "CrossTenantInformation.ReadBasic.All": "cac88765-0581-4025-9725-5ebc13f729ee",
    "Directory.Read.All": "7ab1d382-f21e-4acd-a863-ba3e13f7da61",
    "Directory.ReadWrite.All": "19dbc75e-c2e2-444c-a770-ec69d8559fc7",
    "Group.Read.All": "5b567255-7703-4780-807c-7be8301ae99b",
    "Group.ReadWrite.All": "62a82d76-70ea-41e2-9197-370581804d09",
    "GroupMember.Read.All": "98830695-27a2-44f7-8c18-0c3ebc9698f6",
    "GroupMember.ReadWrite.All": "dbaae8cf-10b5-4b86-a4a1-f871c94c6695",
    "Mail.ReadWrite": "e2a3a72e-5f79-4c64-b1b1-878b674786c9",
    "Mail.Send": "b633e1c5-b582-4048-a93e-9f11b44c7e96",
    "Policy.Read.All": "246dd0d5-5bd0-4def-940b-0421030a5b68",
    "Policy.ReadWrite.CrossTenantAccess": "338163d7-f101-4c92-94ba-ca46fe52447c",
    "RoleManagement.Read.Directory": "483bed4a-2ad3-4361-a73b-c83ccdbdc53c",
    "User.DeleteRestore.All": "eccc023d-eccf-4e7b-9683-8813ab36cecc",
    "User.EnableDisableAccount.All": "3011c876-62b7-4ada-afa2-506cbbecc68c",
    "User.Invite.All": "09850681-111b-4a89-9bed-3f2cae46d706",
    "User.Read.All": "df021288-bdef-4463-88db-98f22de89214",
    "User.ReadWrite.All": "741f803b-c850-494e-b5df-cde7c675a1ca",
}

# servicePrincipal's properties (https://learn.microsoft.com/en-us/graph/api/resources/serviceprincipal), all
# present in answers, null or empty when unset.
SERVICE_PRINCIPAL_FIELDS = (
    "id",
    "deletedDateTime",
    "accountEnabled",
    "addIns",
    "alternativeNames",
    "appDescription",
    "appDisplayName",
    "appId",
    "applicationTemplateId",
    "appOwnerOrganizationId",
    "appRoleAssignmentRequired",
    "appRoles",
    "description",
    "disabledByMicrosoftStatus",
    "displayName",
    "homepage",
    "info",
    "keyCredentials",
    "loginUrl",
    "logoutUrl",
    "notes",
    "notificationEmailAddresses",
    "oauth2PermissionScopes",
    "passwordCredentials",
    "preferredSingleSignOnMode",
    "preferredTokenSigningKeyThumbprint",
    "replyUrls",
    "resourceSpecificApplicationPermissions",
    "samlSingleSignOnSettings",
    "servicePrincipalNames",
    "servicePrincipalType",
    "signInAudience",
    "tags",
    "tokenEncryptionKeyId",
    "verifiedPublisher",
)
_LISTS = {
    "addIns",
    "alternativeNames",
    "appRoles",
    "keyCredentials",
    "notificationEmailAddresses",
    "oauth2PermissionScopes",
    "passwordCredentials",
    "replyUrls",
    "resourceSpecificApplicationPermissions",
    "servicePrincipalNames",
    "tags",
}
MICROSOFT_TENANT = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"  # appOwnerOrganizationId of Microsoft's first-party apps


def service_principal(
    object_id: str, app_id: str, display_name: str, *, kind: str = "Application", owner: str | None = None
) -> dict[str, Any]:
    record: dict[str, Any] = {name: ([] if name in _LISTS else None) for name in SERVICE_PRINCIPAL_FIELDS}
    record.update(
        id=object_id,
        accountEnabled=True,
        appId=app_id,
        appDisplayName=display_name if kind == "Application" else None,
        appOwnerOrganizationId=owner,
        appRoleAssignmentRequired=False,
        displayName=display_name,
        servicePrincipalNames=[app_id],
        servicePrincipalType=kind,
        signInAudience="AzureADMultipleOrgs" if kind == "Application" else None,
        verifiedPublisher={"displayName": None, "verifiedPublisherId": None, "addedDateTime": None},
    )
    return record


def graph_service_principal(object_id: str) -> dict[str, Any]:
    """Microsoft Graph's service principal, with its application permissions as appRoles."""
    record = service_principal(object_id, GRAPH_APP_ID, "Microsoft Graph", owner=MICROSOFT_TENANT)
    record["servicePrincipalNames"] = [GRAPH_APP_ID, "https://graph.microsoft.com"]
    record["appRoles"] = [
        {
            "allowedMemberTypes": ["Application"],
            "description": None,
            "displayName": value,
            "id": role_id,
            "isEnabled": True,
            "origin": "Application",
            "value": value,
        }
        for value, role_id in sorted(GRAPH_APP_ROLES.items())
    ]
    return record
