// Graph change notifications through Event Grid (GUESTCTL_NOTIFICATION_DELIVERY=eventgrid): Graph → partner
// topic → storage queue graph-notifications, which the app's queue worker reads (docs/redemptions.md).
//
// Two steps, because Graph creates the partner topic only when `guestctl subscriptions ensure` subscribes:
//   1. deploy with partnerTopicName empty: the partner configuration authorises Microsoft Graph;
//   2. after the subscription exists and the topic is activated (docs/deploy.md), deploy again with
//      partnerTopicName and partnerTopicSource: the topic gets the app's identity and an event subscription
//      that delivers CloudEvents into the queue, dead-lettering to blob, both with that identity.
// No new role assignment: main.bicep's identity already holds Storage Queue Data Contributor and Storage Blob
// Data Owner on the account (infra/README.md, "Role assignments").

@description('Name of the user-assigned identity from main.bicep (output identityName).')
param identityName string

@description('Storage account from main.bicep (output storageAccountName).')
param storageAccountName string

@description('Partner topic Graph created (the partnertopic in GUESTCTL_NOTIFICATION_URL). Empty: step 1 only.')
param partnerTopicName string = ''

@description('The partner topic\'s source as Graph set it (az eventgrid partner topic show --query source); kept unchanged.')
param partnerTopicSource string = ''

@description('Region of the partner topic (the location in GUESTCTL_NOTIFICATION_URL).')
param location string = resourceGroup().location

@description('Microsoft Graph API\'s partner registration id in Event Grid (from a working sample; check it with az eventgrid partner registration list).')
param graphPartnerRegistrationId string = 'c02e0126-707c-436d-b6a1-175d2748fb58'

@description('Start of the partner authorization; it lasts authorizationDays. Leave the default (now).')
param authorizationStart string = utcNow()

@description('How long Microsoft Graph may create partner topics in this resource group.')
@minValue(1)
@maxValue(365)
param authorizationDays int = 365

var queueName = 'graph-notifications'
var deadLetterContainer = 'graph-notifications-deadletter'
var secondStep = !empty(partnerTopicName)

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: identityName
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource partnerConfiguration 'Microsoft.EventGrid/partnerConfigurations@2025-02-15' = {
  name: 'default'
  location: 'global'
  properties: {
    partnerAuthorization: {
      defaultMaximumExpirationTimeInDays: authorizationDays
      authorizedPartnersList: [
        {
          partnerRegistrationImmutableId: graphPartnerRegistrationId
          partnerName: 'MicrosoftGraphAPI'
          authorizationExpirationTimeInUtc: dateTimeAdd(authorizationStart, 'P${authorizationDays}D')
        }
      ]
    }
  }
}

// The topic Graph created, given the app's identity so deliveries and dead letters need no keys.
resource partnerTopic 'Microsoft.EventGrid/partnerTopics@2025-02-15' = if (secondStep) {
  name: secondStep ? partnerTopicName : 'unused'
  location: location
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    source: partnerTopicSource
  }
}

resource toQueue 'Microsoft.EventGrid/partnerTopics/eventSubscriptions@2025-02-15' = if (secondStep) {
  parent: partnerTopic
  name: 'guestctl-to-queue'
  properties: {
    eventDeliverySchema: 'CloudEventSchemaV1_0'
    deliveryWithResourceIdentity: {
      identity: {
        type: 'UserAssigned'
        userAssignedIdentity: identity.id
      }
      destination: {
        endpointType: 'StorageQueue'
        properties: {
          resourceId: storage.id
          queueName: queueName
          queueMessageTimeToLiveInSeconds: 604800
        }
      }
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'UserAssigned'
        userAssignedIdentity: identity.id
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: storage.id
          blobContainerName: deadLetterContainer
        }
      }
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
  }
}

output partnerConfigurationName string = partnerConfiguration.name
