// Microsoft Graph application permissions for guestctl's managed identity: exactly the least-privileged set
// docs/permissions.md proves for the capabilities switched on below, and no more. Separate from main.bicep: the
// Graph extension needs its own deployer permissions (AppRoleAssignment.ReadWrite.All + Application.Read.All)
// and does not support what-if. infra/README.md ("graph.bicep") says how to deploy it.
//
// The two maps are literal (no lambdas: checkov's parser cannot read them) and tests/unit/test_permissions.py
// keeps them equal to shared/permissions.py and to docs/permissions.md.

extension microsoftGraphV1

@description('Object (principal) id of the managed identity\'s service principal: main.bicep\'s identity principalId.')
param principalId string

@description('Invite guests (docs/invitations.md).')
param invitations bool = true

@description('Stale-guest sweeps: disable, delete, restore, sponsor notices (docs/stale.md).')
param sweeps bool = true

@description('Redemption tracking and reminders (docs/redemptions.md).')
param redemptions bool = true

@description('Offboard guest workers from HR events (docs/offboarding.md).')
param offboarding bool = true

@description('Partner discovery, verification, retirement, cross-tenant trust and shared-channel migration (docs/partners.md). Writes cross-tenant access policy and Teams channels: off unless asked for.')
param partners bool = false

@description('The weekly report (docs/reports.md).')
param reports bool = true

@description('Sponsor attestation (docs/attestation.md).')
param attestation bool = true

@description('`guestctl permissions check` with this identity: reads every app\'s service principal (Application.Read.All). Off unless asked for.')
param permissionsCheck bool = false

// Permission → app-role id on Microsoft Graph's service principal (the same in every tenant; docs/permissions.md#app-role-ids).
var appRoleIds = {
  'Application.Read.All': '9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30'
  'AuditLog.Read.All': 'b0afded3-3588-46d8-8b3d-9842eff778da'
  'Channel.Create': 'f3a65bd4-b703-46df-8f7e-0174fea562aa'
  'Channel.Delete.All': '6a118a39-1227-45d4-af0c-ea7b40d210bc'
  'Channel.ReadBasic.All': '59a6b24b-4225-4393-8165-ebaec5f55d7a'
  'ChannelMember.Read.All': '3b55498e-47ec-484f-8136-9013221c06a9'
  'ChannelMember.ReadWrite.All': '35930dcf-aceb-4bd1-b99a-8ffed403c974'
  'CrossTenantInformation.ReadBasic.All': 'cac88765-0581-4025-9725-5ebc13f729ee'
  'Directory.Read.All': '7ab1d382-f21e-4acd-a863-ba3e13f7da61'
  'GroupMember.Read.All': '98830695-27a2-44f7-8c18-0c3ebc9698f6'
  'GroupMember.ReadWrite.All': 'dbaae8cf-10b5-4b86-a4a1-f871c94c6695'
  'Mail.ReadWrite': 'e2a3a72e-5f79-4c64-b1b1-878b674786c9'
  'Mail.Send': 'b633e1c5-b582-4048-a93e-9f11b44c7e96'
  'Policy.Read.All': '246dd0d5-5bd0-4def-940b-0421030a5b68'
  'Policy.ReadWrite.CrossTenantAccess': '338163d7-f101-4c92-94ba-ca46fe52447c'
  'RoleManagement.Read.Directory': '483bed4a-2ad3-4361-a73b-c83ccdbdc53c'
  'User.DeleteRestore.All': 'eccc023d-eccf-4e7b-9683-8813ab36cecc'
  'User.EnableDisableAccount.All': '3011c876-62b7-4ada-afa2-506cbbecc68c'
  'User.Invite.All': '09850681-111b-4a89-9bed-3f2cae46d706'
  'User.Read.All': 'df021288-bdef-4463-88db-98f22de89214'
  'User.ReadWrite.All': '741f803b-c850-494e-b5df-cde7c675a1ca'
}

// Capability → the least-privileged permission of every Graph call it makes (docs/permissions.md#every-call-checked).
var capabilityPermissions = {
  invitations: [
    'GroupMember.Read.All'
    'GroupMember.ReadWrite.All'
    'Mail.ReadWrite'
    'Mail.Send'
    'User.Invite.All'
    'User.Read.All'
    'User.ReadWrite.All'
  ]
  sweeps: [
    'AuditLog.Read.All'
    'GroupMember.Read.All'
    'Mail.ReadWrite'
    'Mail.Send'
    'RoleManagement.Read.Directory'
    'User.DeleteRestore.All'
    'User.EnableDisableAccount.All'
    'User.Read.All'
  ]
  redemptions: [
    'Mail.ReadWrite'
    'Mail.Send'
    'User.Invite.All'
    'User.Read.All'
  ]
  offboarding: [
    'ChannelMember.ReadWrite.All'
    'GroupMember.Read.All'
    'GroupMember.ReadWrite.All'
    'Mail.ReadWrite'
    'Mail.Send'
    'User.DeleteRestore.All'
    'User.EnableDisableAccount.All'
    'User.Read.All'
    'User.ReadWrite.All'
  ]
  partners: [
    'AuditLog.Read.All'
    'Channel.Create'
    'Channel.Delete.All'
    'Channel.ReadBasic.All'
    'ChannelMember.Read.All'
    'ChannelMember.ReadWrite.All'
    'CrossTenantInformation.ReadBasic.All'
    'Directory.Read.All'
    'GroupMember.Read.All'
    'Policy.Read.All'
    'Policy.ReadWrite.CrossTenantAccess'
    'RoleManagement.Read.Directory'
    'User.DeleteRestore.All'
    'User.EnableDisableAccount.All'
    'User.Read.All'
  ]
  reports: [
    'Mail.Send'
    'User.Read.All'
  ]
  attestation: [
    'User.Read.All'
  ]
  permissions_check: [
    'Application.Read.All'
  ]
}


// The union of the enabled capabilities' permissions, each once.
var granted = union(
  invitations ? capabilityPermissions.invitations : [],
  sweeps ? capabilityPermissions.sweeps : [],
  redemptions ? capabilityPermissions.redemptions : [],
  offboarding ? capabilityPermissions.offboarding : [],
  partners ? capabilityPermissions.partners : [],
  reports ? capabilityPermissions.reports : [],
  attestation ? capabilityPermissions.attestation : [],
  permissionsCheck ? capabilityPermissions.permissions_check : []
)

resource graph 'Microsoft.Graph/servicePrincipals@v1.0' existing = {
  appId: '00000003-0000-0000-c000-000000000000'
}

resource grants 'Microsoft.Graph/appRoleAssignedTo@v1.0' = [
  for permission in granted: {
    principalId: principalId
    resourceId: graph.id
    appRoleId: appRoleIds[permission]
  }
]

output grantedPermissions array = granted
