// guestctl on Azure Functions Flex Consumption: one user-assigned identity for everything, no storage keys,
// no secrets in the template. What each part is and why: infra/README.md. Deploy: docs/deploy.md.
//
// Stage 1 of 3: this file. Stage 2: graph.bicep (the identity's Graph application permissions). Stage 3
// (only with GUESTCTL_NOTIFICATION_DELIVERY=eventgrid): eventgrid.bicep, after Graph created the partner topic.

@description('Region of every resource (one that offers Flex Consumption).')
param location string = resourceGroup().location

@description('Function app name: also its host name, <name>.azurewebsites.net.')
param appName string = 'guestctl-${uniqueString(resourceGroup().id)}'

@description('Storage account name: 3-24 lowercase letters and digits, unique in Azure.')
@minLength(3)
@maxLength(24)
param storageAccountName string = 'guestctl${uniqueString(resourceGroup().id)}'

@description('Key Vault name: 3-24 letters, digits and hyphens, unique in Azure.')
@minLength(3)
@maxLength(24)
param keyVaultName string = 'guestctl-${uniqueString(resourceGroup().id)}'

@description('Storage redundancy. Geo-zone-redundant keeps the audit log through a zone or region outage.')
@allowed(['Standard_GZRS', 'Standard_RAGZRS', 'Standard_GRS', 'Standard_RAGRS'])
param storageSku string = 'Standard_GZRS'

@description('GUESTCTL_CLOUD: which Microsoft Graph national cloud guestctl talks to.')
@allowed(['global', 'usgov', 'usgov-dod', 'china'])
param cloud string = 'global'

@description('GUESTCTL_STATE_PREFIX: prefix of the table names (several deployments in one account).')
param statePrefix string = 'guestctl'

@description('GUESTCTL_TENANT_SIZE: Graph throttling size class of the tenant (S <50 users, M 50-500, L >500).')
@allowed(['S', 'M', 'L'])
param tenantSize string = 'L'

@description('GUESTCTL_PAUSED: true stops every change to the tenant and disables the queue workers, so queued work waits in its queue (docs/operations.md, "Pause everything"). A redeployment sets what you pass: keep passing true while paused.')
param paused bool = false

@description('GUESTCTL_POLICY: the reviewed policy file inside the deployed package (scripts/package --policy ships it as policy.yaml). Empty: the built-in safe defaults.')
param policyPath string = ''

@description('GUESTCTL_SWEEP_MODE: timer sweeps keep their plan for review (plan) or apply it (apply).')
@allowed(['plan', 'apply'])
param sweepMode string = 'plan'

@description('GUESTCTL_SWEEP_SCHEDULE: NCRONTAB (UTC; Flex has no time zones) of the stale-guest sweep.')
param sweepSchedule string = '0 0 6 * * 1'

@description('GUESTCTL_REPORT_SCHEDULE: NCRONTAB (UTC) of the weekly report, after the sweep.')
param reportSchedule string = '0 0 7 * * 1'

@description('GUESTCTL_RENEW_SCHEDULE: NCRONTAB (UTC) of the Graph subscription renewal (subscriptions last under 3 days).')
param renewSchedule string = '0 30 */12 * * *'

@description('GUESTCTL_DELTA_SCHEDULE: NCRONTAB (UTC) of the delta round run even without notifications.')
param deltaSchedule string = '0 0 */6 * * *'

@description('GUESTCTL_REMINDERS_SCHEDULE: NCRONTAB (UTC) of the invitation reminders.')
param remindersSchedule string = '0 0 9 * * *'

@description('GUESTCTL_HR_REQUEUE_SCHEDULE: NCRONTAB (UTC) of the requeue of HR events that lost their queue message.')
param hrRequeueSchedule string = '0 */5 * * * *'

@description('GUESTCTL_HR_DUE_SCHEDULE: NCRONTAB (UTC) of the timer queueing scheduled HR events once due.')
param hrDueSchedule string = '0 */15 * * * *'

@description('GUESTCTL_PARTNER_DISCOVERY_SCHEDULE: NCRONTAB (UTC) of the daily partner discovery.')
param partnerDiscoverySchedule string = '0 0 5 * * *'

@description('GUESTCTL_PARTNER_VERIFICATION_SCHEDULE: NCRONTAB (UTC) of partner verification, after discovery.')
param partnerVerificationSchedule string = '0 30 5 * * *'

@description('GUESTCTL_NOTIFICATION_DELIVERY: Graph change notifications to our webhook, or via Event Grid to a queue.')
@allowed(['webhook', 'eventgrid'])
param notificationDelivery string = 'webhook'

@description('GUESTCTL_NOTIFICATION_URL: webhook URL with its function key, or the EventGrid: URL. Empty: set it after the first deployment (docs/redemptions.md).')
param notificationUrl string = ''

@description('HR receivers to turn on (/api/hr/<route>); each reads its secrets from Key Vault. Empty: HR webhooks off.')
@allowed(['events', 'bamboohr', 'deel', 'hibob', 'successfactors'])
param hrReceivers array = []

@description('GUESTCTL_ATTESTATION_URL: the app\'s https base URL for sponsor links. Empty: notices without links.')
param attestationUrl string = ''

@description('Who gets the alerts (docs/operations.md, "What each alert means"). Empty: alerts fire in the portal only.')
param alertEmail string = ''

@description('Log Analytics retention in days.')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

// The platform's minimum: throughput is capped in the app (shared Graph budget), not by scale-out.
var maximumInstanceCount = 40
var deploymentContainer = 'app-package'

// Every name the app uses (the test tests/unit/test_infra.py checks these against the code).
// The host moves a message to `<queue>-poison` after maxDequeueCount tries, and our workers park messages that
// can never succeed there (functions/queues.py); blob-trigger failures go to webjobs-blobtrigger-poison.
var queueNames = [
  'invitations-rows'
  'invitations-rows-poison'
  'stale-sweeps'
  'stale-sweeps-poison'
  'graph-notifications'
  'graph-notifications-poison'
  'partner-retirements'
  'partner-retirements-poison'
  'hr-events'
  'hr-events-poison'
  'webjobs-blobtrigger-poison'
]
var containerNames = [
  'app-package' // deploymentContainer
  'invitations-inbox'
  'invitations-inbox-deadletter' // blobtrigger.bicep: drop-folder events Event Grid could not deliver
  'reports'
  'graph-notifications-deadletter'
  'azure-webjobs-hosts'
  'azure-webjobs-secrets'
]
// shared/store/registry.py TABLES; created here with the prefix so the app never needs to create tables.
var tableNames = [
  'audit'
  'leases'
  'signingkeys'
  'pacing'
  'scans'
  'staleprogress'
  'staleplans'
  'staleactions'
  'staleguests'
  'invitations'
  'invitebatches'
  'inviteresults'
  'redemptions'
  'deltasync'
  'subscriptions'
  'reminderactions'
  'tenantlookups'
  'partnerdiscovery'
  'partnertrustactions'
  'partnersignins'
  'partnerretireplans'
  'partnerretireactions'
  'partnermigrateactions'
  'offboardactions'
  'offboardings'
  'hrevents'
  'reportsnapshots'
  'attestations'
]

// Log search alerts over the workspace (docs/operations.md, "What each alert means", lists the same names; a test
// keeps the two equal). Each query is on what the app logs; more rows than `threshold` in `windowSize` fires.
var alerts = [
  {
    name: 'message-parked'
    severity: 2
    windowSize: 'PT15M'
    threshold: 0
    query: 'AppTraces | where Message has "rejected without retry"'
  }
  {
    name: 'message-poisoned'
    severity: 2
    windowSize: 'PT15M'
    threshold: 0
    query: 'AppTraces | where Message has "MaxDequeueCount"'
  }
  {
    name: 'function-failures'
    severity: 2
    windowSize: 'PT15M'
    threshold: 0
    query: 'AppRequests | where Success == false'
  }
  {
    name: 'plan-refused'
    severity: 2
    windowSize: 'PT15M'
    threshold: 0
    query: 'AppTraces | where SeverityLevel >= 2 and Message has "refused" and Message has_any ("stale-guest", "partner retirement")'
  }
  {
    name: 'graph-throttling-sustained'
    severity: 2
    windowSize: 'PT30M'
    threshold: 50
    query: 'AppTraces | where Message has "Graph throttled"'
  }
  {
    name: 'webhook-401-burst'
    severity: 2
    windowSize: 'PT15M'
    threshold: 10
    query: 'union (AppTraces | where Message has "refused (401)"), (AppRequests | where ResultCode == "401")'
  }
  {
    name: 'notifications-dropped'
    severity: 3
    windowSize: 'PT15M'
    threshold: 0
    query: 'AppTraces | where Message has "notifications dropped"'
  }
  {
    name: 'subscription-renewal-failed'
    severity: 1
    windowSize: 'PT15M'
    threshold: 0
    query: 'AppRequests | where OperationName == "renew_subscriptions" and Success == false'
  }
  {
    name: 'hr-event-stuck'
    severity: 2
    windowSize: 'PT15M'
    threshold: 0
    query: 'AppTraces | where Message has "is still received after"'
  }
  {
    name: 'run-overlap'
    severity: 3
    windowSize: 'PT15M'
    threshold: 0
    query: 'AppTraces | where Message has "was taken over by another run"'
  }
  {
    name: 'shared-budget-degraded'
    severity: 3
    windowSize: 'PT15M'
    threshold: 0
    query: 'AppTraces | where Message has "shared Graph budget: the store failed"'
  }
  {
    name: 'paused'
    severity: 4
    windowSize: 'PT15M'
    threshold: 0
    query: 'AppTraces | where Message has "skipped: GUESTCTL_PAUSED is true"'
  }
]

// Key Vault secret names (values are set by the operator, never by a template: docs/deploy.md).
var hrSecretNames = {
  events: 'hr-webhook-secrets'
  bamboohr: 'hr-bamboohr-secrets'
  deel: 'hr-deel-secrets'
  hibob: 'hr-hibob-secrets'
  successfactors: 'hr-successfactors-secrets'
}
var vaultReference = '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName='

// -- identity ------------------------------------------------------------------------------------------------
resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: '${appName}-id'
  location: location
}

// -- monitoring ----------------------------------------------------------------------------------------------
resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${appName}-logs'
  location: location
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: logRetentionDays
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: '${appName}-ai'
  location: location
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    DisableLocalAuth: true
  }
}

// -- storage -------------------------------------------------------------------------------------------------
resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: storageAccountName
  location: location
  kind: 'StorageV2'
  sku: {
    name: storageSku
  }
  //checkov:skip=CKV_AZURE_43:the name is computed ('guestctl' + uniqueString(), 21 lowercase letters and digits, unique per resource group) and checkov cannot evaluate uniqueString(); @minLength/@maxLength bound an override.
  //checkov:skip=CKV_AZURE_35:Flex without VNet integration reaches its host storage over the public endpoint; access is by Entra identity only (allowSharedKeyAccess false). Add VNet integration + private endpoints to deny the network.
  //checkov:skip=CKV_AZURE_59:same reason as CKV_AZURE_35: the public endpoint is needed without VNet integration; shared keys are off, so only RBAC identities get in.
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    defaultToOAuthAuthentication: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
        }
        file: {
          enabled: true
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [for name in containerNames: {
  parent: blobService
  name: name
  properties: {
    publicAccess: 'None'
  }
}]

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [for name in queueNames: {
  parent: queueService
  name: name
}]

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [for name in tableNames: {
  parent: tableService
  name: '${statePrefix}${name}'
}]

// -- secrets -------------------------------------------------------------------------------------------------
resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: keyVaultName
  location: location
  //checkov:skip=CKV_AZURE_109:Flex Consumption cannot resolve Key Vault references against a network-restricted vault (even with VNet integration), so the vault firewall stays open; access is RBAC-only (Key Vault Secrets User for the app's identity).
  //checkov:skip=CKV_AZURE_189:same reason as CKV_AZURE_109: public network access is needed for Flex Key Vault references.
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

// -- the app -------------------------------------------------------------------------------------------------
resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: '${appName}-plan'
  location: location
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  //checkov:skip=CKV_AZURE_225:zone redundancy on Flex needs at least 2 always-ready instances per scale group, doubling the idle cost; one always-ready http instance is what the webhooks need.
  properties: {
    reserved: true
  }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: appName
  location: location
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  //checkov:skip=CKV_AZURE_222:the Graph change-notification and HR webhooks must be reachable by Graph and the HR systems; each route needs a function key or signature. With Event Grid delivery and an HR gateway this can become Disabled.
  //checkov:skip=CKV_AZURE_17:Graph and the HR systems do not present client certificates, and Flex has no platform certificate features; requests are authenticated by function keys and HMAC signatures.
  //checkov:skip=CKV_AZURE_212:numberOfWorkers (failover instances) is not a Flex concept; Flex scales per function group.
  //checkov:skip=CKV_AZURE_213:healthCheckPath is an App Service feature whose Flex support is unverified; /api/health needs a function key, so a platform probe would get 401.
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    keyVaultReferenceIdentity: identity.id
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: [
        // host storage and every binding connection ("AzureWebJobsStorage"): identity, no keys
        {
          name: 'AzureWebJobsStorage__accountName'
          value: storage.name
        }
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: identity.properties.clientId
        }
        // monitoring: Entra-authenticated ingestion (local auth is off), OpenTelemetry from the Python worker
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: appInsights.properties.ConnectionString
        }
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'Authorization=AAD;ClientId=${identity.properties.clientId}'
        }
        {
          name: 'PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY'
          value: 'true'
        }
        // azure-identity's ManagedIdentityCredential picks the user-assigned identity by this
        {
          name: 'AZURE_CLIENT_ID'
          value: identity.properties.clientId
        }
        // guestctl (shared/config.py Settings; docs/deploy.md)
        {
          name: 'GUESTCTL_CLOUD'
          value: cloud
        }
        {
          name: 'GUESTCTL_AUTH'
          value: 'managed-identity'
        }
        {
          name: 'GUESTCTL_TENANT_ID'
          value: tenant().tenantId
        }
        {
          name: 'GUESTCTL_CLIENT_ID'
          value: identity.properties.clientId
        }
        {
          name: 'GUESTCTL_STATE'
          value: 'https://${storage.name}.table.${environment().suffixes.storage}'
        }
        {
          name: 'GUESTCTL_STATE_PREFIX'
          value: statePrefix
        }
        {
          name: 'GUESTCTL_TENANT_SIZE'
          value: tenantSize
        }
        {
          name: 'GUESTCTL_INSTANCES_ASSUMED'
          value: string(maximumInstanceCount)
        }
        {
          name: 'GUESTCTL_PAUSED'
          value: paused ? 'true' : 'false'
        }
        {
          name: 'GUESTCTL_POLICY'
          value: policyPath
        }
        // While paused the host starts no listener for the queue workers (https://learn.microsoft.com/azure/
        // azure-functions/disable-function): their messages stay queued instead of being handed back until they
        // reach maxDequeueCount and the poison queue. Timers and receivers stay on; GUESTCTL_PAUSED stops timers.
        {
          name: 'AzureWebJobs.invite_rows.Disabled'
          value: paused ? 'true' : 'false'
        }
        {
          name: 'AzureWebJobs.continue_stale_sweep.Disabled'
          value: paused ? 'true' : 'false'
        }
        {
          name: 'AzureWebJobs.apply_partner_retirement.Disabled'
          value: paused ? 'true' : 'false'
        }
        {
          name: 'AzureWebJobs.hr_events_worker.Disabled'
          value: paused ? 'true' : 'false'
        }
        {
          name: 'AzureWebJobs.graph_notifications_worker.Disabled'
          value: paused ? 'true' : 'false'
        }
        {
          name: 'GUESTCTL_SWEEP_MODE'
          value: sweepMode
        }
        {
          name: 'GUESTCTL_SWEEP_SCHEDULE'
          value: sweepSchedule
        }
        {
          name: 'GUESTCTL_REPORT_SCHEDULE'
          value: reportSchedule
        }
        {
          name: 'GUESTCTL_RENEW_SCHEDULE'
          value: renewSchedule
        }
        {
          name: 'GUESTCTL_DELTA_SCHEDULE'
          value: deltaSchedule
        }
        {
          name: 'GUESTCTL_REMINDERS_SCHEDULE'
          value: remindersSchedule
        }
        {
          name: 'GUESTCTL_HR_REQUEUE_SCHEDULE'
          value: hrRequeueSchedule
        }
        {
          name: 'GUESTCTL_HR_DUE_SCHEDULE'
          value: hrDueSchedule
        }
        {
          name: 'GUESTCTL_PARTNER_DISCOVERY_SCHEDULE'
          value: partnerDiscoverySchedule
        }
        {
          name: 'GUESTCTL_PARTNER_VERIFICATION_SCHEDULE'
          value: partnerVerificationSchedule
        }
        {
          name: 'GUESTCTL_NOTIFICATION_DELIVERY'
          value: notificationDelivery
        }
        {
          name: 'GUESTCTL_NOTIFICATION_URL'
          value: notificationUrl
        }
        // secrets: Key Vault references resolved with the user-assigned identity (keyVaultReferenceIdentity);
        // an empty value turns the receiver off (GET /api/health says "off")
        {
          name: 'GUESTCTL_NOTIFICATION_SECRET'
          value: '${vaultReference}notification-secret)'
        }
        {
          name: 'GUESTCTL_HR_WEBHOOK_SECRETS'
          value: contains(hrReceivers, 'events') ? '${vaultReference}${hrSecretNames.events})' : ''
        }
        {
          name: 'GUESTCTL_HR_BAMBOOHR_SECRETS'
          value: contains(hrReceivers, 'bamboohr') ? '${vaultReference}${hrSecretNames.bamboohr})' : ''
        }
        {
          name: 'GUESTCTL_HR_DEEL_SECRETS'
          value: contains(hrReceivers, 'deel') ? '${vaultReference}${hrSecretNames.deel})' : ''
        }
        {
          name: 'GUESTCTL_HR_HIBOB_SECRETS'
          value: contains(hrReceivers, 'hibob') ? '${vaultReference}${hrSecretNames.hibob})' : ''
        }
        {
          name: 'GUESTCTL_HR_SUCCESSFACTORS_SECRETS'
          value: contains(hrReceivers, 'successfactors') ? '${vaultReference}${hrSecretNames.successfactors})' : ''
        }
        {
          name: 'GUESTCTL_ATTESTATION_URL'
          value: attestationUrl
        }
        {
          name: 'GUESTCTL_ATTESTATION_SECRET'
          value: empty(attestationUrl) ? '' : '${vaultReference}attestation-secret)'
        }
      ]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainer}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identity.id
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: 2048
        alwaysReady: [
          {
            name: 'http'
            instanceCount: 1
          }
        ]
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
  dependsOn: [
    containers
    queues
    tables
    blobOwner
    queueContributor
    tableContributor
    secretsUser
    metricsPublisher
  ]
}

// -- alerts ----------------------------------------------------------------------------------------------------
resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: '${appName}-alerts'
  location: 'global'
  properties: {
    groupShortName: 'guestctl'
    enabled: true
    emailReceivers: empty(alertEmail) ? [] : [
      {
        name: 'operators'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

resource alertRules 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = [for alert in alerts: {
  name: '${appName}-${alert.name}'
  location: location
  properties: {
    displayName: '${appName}: ${alert.name}'
    description: 'guestctl alert ${alert.name}: what it means and what to do are in docs/operations.md'
    severity: alert.severity
    enabled: true
    scopes: [
      workspace.id
    ]
    evaluationFrequency: 'PT15M'
    windowSize: alert.windowSize
    criteria: {
      allOf: [
        {
          query: alert.query
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: alert.threshold
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}]

// -- data-plane roles (infra/README.md, "Role assignments"): the identity, on each resource, nothing broader --
resource blobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b')
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b')
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource queueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, '974c5e8b-45b9-4653-ba55-5f855dd0fb88')
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '974c5e8b-45b9-4653-ba55-5f855dd0fb88')
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource tableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3')
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3')
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, identity.id, '4633458b-17de-408a-b874-0445c86b69e6')
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '4633458b-17de-408a-b874-0445c86b69e6')
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, identity.id, '3913510d-42f4-4e42-8a64-420c390055eb')
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '3913510d-42f4-4e42-8a64-420c390055eb')
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// -- for the next stages (graph.bicep, eventgrid.bicep) and docs/deploy.md; no keys or secrets --------------
output identityName string = identity.name
output identityPrincipalId string = identity.properties.principalId
output identityClientId string = identity.properties.clientId
output functionAppName string = app.name
output functionAppHostName string = app.properties.defaultHostName
output storageAccountName string = storage.name
output keyVaultName string = vault.name
output applicationInsightsName string = appInsights.name
