"""Which Microsoft Graph application permissions each capability needs, and their app-role ids.

The same two maps are in infra/graph.bicep (which grants them to the managed identity) and in
docs/permissions.md's "Every call, checked" table (which the integration tests prove); tests/unit/test_permissions.py
keeps the three equal. `guestctl permissions check` (shared/cli_permissions.py) compares a deployed identity's
app-role assignments with them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.graph import Graph

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"  # Microsoft Graph's application (client) id, in every tenant

# Application permission → its app-role id on Microsoft Graph's service principal (the same in every tenant),
# from Microsoft's "All permissions and IDs" table (docs/permissions.md#app-role-ids says where each comes from).
APP_ROLE_IDS: dict[str, str] = {
    "Application.Read.All": "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30",
    "AuditLog.Read.All": "b0afded3-3588-46d8-8b3d-9842eff778da",
    "Channel.Create": "f3a65bd4-b703-46df-8f7e-0174fea562aa",
    "Channel.Delete.All": "6a118a39-1227-45d4-af0c-ea7b40d210bc",
    "Channel.ReadBasic.All": "59a6b24b-4225-4393-8165-ebaec5f55d7a",
    "ChannelMember.Read.All": "3b55498e-47ec-484f-8136-9013221c06a9",
    "ChannelMember.ReadWrite.All": "35930dcf-aceb-4bd1-b99a-8ffed403c974",
    "CrossTenantInformation.ReadBasic.All": "cac88765-0581-4025-9725-5ebc13f729ee",
    "Directory.Read.All": "7ab1d382-f21e-4acd-a863-ba3e13f7da61",
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

# Capability → the least-privileged permission of every call it makes (docs/permissions.md#every-call-checked).
CAPABILITY_PERMISSIONS: dict[str, frozenset[str]] = {
    "invitations": frozenset(
        {
            "User.Read.All",
            "GroupMember.Read.All",
            "User.Invite.All",
            "GroupMember.ReadWrite.All",
            "User.ReadWrite.All",
            "Mail.ReadWrite",
            "Mail.Send",
        }
    ),
    "sweeps": frozenset(
        {
            "User.Read.All",
            "AuditLog.Read.All",
            "RoleManagement.Read.Directory",
            "GroupMember.Read.All",
            "User.EnableDisableAccount.All",
            "User.DeleteRestore.All",
            "Mail.ReadWrite",
            "Mail.Send",
        }
    ),
    "redemptions": frozenset({"User.Read.All", "User.Invite.All", "Mail.ReadWrite", "Mail.Send"}),
    "offboarding": frozenset(
        {
            "User.Read.All",
            "GroupMember.Read.All",
            "User.EnableDisableAccount.All",
            "User.DeleteRestore.All",
            "GroupMember.ReadWrite.All",
            "User.ReadWrite.All",
            "ChannelMember.ReadWrite.All",
            "Mail.ReadWrite",
            "Mail.Send",
        }
    ),
    "partners": frozenset(
        {
            "User.Read.All",
            "AuditLog.Read.All",
            "Directory.Read.All",
            "GroupMember.Read.All",
            "RoleManagement.Read.Directory",
            "CrossTenantInformation.ReadBasic.All",
            "Policy.Read.All",
            "Policy.ReadWrite.CrossTenantAccess",
            "Channel.ReadBasic.All",
            "ChannelMember.Read.All",
            "ChannelMember.ReadWrite.All",
            "Channel.Create",
            "Channel.Delete.All",
            "User.EnableDisableAccount.All",
            "User.DeleteRestore.All",
        }
    ),
    "reports": frozenset({"User.Read.All", "Mail.Send"}),
    "attestation": frozenset({"User.Read.All"}),
    "permissions_check": frozenset({"Application.Read.All"}),
}

# What infra/graph.bicep grants when its parameters are left alone: everything but partners (it writes cross-tenant
# policy and Teams channels) and permissions_check (it reads every app's registration).
DEFAULT_CAPABILITIES: tuple[str, ...] = (
    "invitations",
    "sweeps",
    "redemptions",
    "offboarding",
    "reports",
    "attestation",
)


def required_permissions(capabilities: Iterable[str]) -> frozenset[str]:
    """The union of the capabilities' permissions; an unknown capability is a KeyError (callers check names)."""
    needed: set[str] = set()
    for capability in capabilities:
        needed |= CAPABILITY_PERMISSIONS[capability]
    return frozenset(needed)


@dataclass(frozen=True)
class PermissionCheck:
    """A deployed identity's Graph application permissions against what the enabled capabilities need."""

    identity: str  # the service principal's display name and object id
    capabilities: tuple[str, ...]
    required: frozenset[str]
    granted: frozenset[str]
    unknown_role_ids: frozenset[str]  # granted app roles Microsoft Graph's service principal does not name
    id_mismatches: dict[str, str]  # permission → the tenant's id, where it differs from APP_ROLE_IDS

    @property
    def missing(self) -> list[str]:
        return sorted(self.required - self.granted)

    @property
    def excessive(self) -> list[str]:
        return sorted(self.granted - self.required)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.excessive and not self.unknown_role_ids

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "identity": self.identity,
            "capabilities": list(self.capabilities),
            "required": sorted(self.required),
            "granted": sorted(self.granted),
            "missing": self.missing,
            "excessive": self.excessive,
            "unknown_role_ids": sorted(self.unknown_role_ids),
            "id_mismatches": self.id_mismatches,
        }


async def check_permissions(graph: Graph, client_id: str, capabilities: Sequence[str]) -> PermissionCheck:
    """Read the identity's app-role assignments on Microsoft Graph (Application.Read.All) and name them by Graph's
    own service principal, so a wrong id in APP_ROLE_IDS shows up as a mismatch instead of a false verdict."""
    identity = await graph.get_json(f"/servicePrincipals(appId='{client_id}')", params={"$select": "id,displayName"})
    resource = await graph.get_json(f"/servicePrincipals(appId='{GRAPH_APP_ID}')", params={"$select": "id,appRoles"})
    names = {role["id"]: role["value"] for role in resource.get("appRoles") or []}
    granted: set[str] = set()
    unknown: set[str] = set()
    async for page in graph.pages(f"/servicePrincipals/{identity['id']}/appRoleAssignments"):
        for assignment in page.items:
            if assignment.get("resourceId") != resource["id"]:
                continue  # another API's roles: not ours to judge
            name = names.get(assignment["appRoleId"])
            if name:
                granted.add(name)
            else:
                unknown.add(assignment["appRoleId"])
    by_name = {value: role_id for role_id, value in names.items()}
    mismatches = {p: by_name[p] for p, role_id in APP_ROLE_IDS.items() if p in by_name and by_name[p] != role_id}
    return PermissionCheck(
        identity=f"{identity.get('displayName') or '?'} ({identity['id']})",
        capabilities=tuple(capabilities),
        required=required_permissions(capabilities),
        granted=frozenset(granted),
        unknown_role_ids=frozenset(unknown),
        id_mismatches=mismatches,
    )
