// The invitation drop folder on Flex Consumption: the blob trigger `invitation_file_dropped` (functions/
// invitations.py, source EventGrid; Flex has no polling blob trigger) is called by Event Grid. This template
// creates the storage account's Event Grid system topic and one event subscription: BlobCreated events for the
// container invitations-inbox, delivered to the Functions host's blobs extension endpoint, dead-lettered to
// blob with the app's identity after Event Grid's retries.
//
// Stage 2b, deployed after the code is published (docs/deploy.md step 5): the endpoint needs the host's
// blobs_extension system key, which exists only once the host has loaded a blob trigger. The key goes into the
// subscription's endpoint URL and nowhere else: Event Grid returns only the base URL on reads, and nothing is
// output. Redeploy after rotating the blobs_extension key.
// Source: https://learn.microsoft.com/azure/azure-functions/functions-event-grid-blob-trigger

@description('Function app from main.bicep (output functionAppName).')
param appName string

@description('Storage account from main.bicep (output storageAccountName).')
param storageAccountName string

@description('Name of the user-assigned identity from main.bicep (output identityName): dead-letters with it.')
param identityName string

@description('Region of the storage account (the system topic lives beside it).')
param location string = resourceGroup().location

// functions/invitations.py: INBOX and the blob trigger function's name; main.bicep declares both containers.
var functionName = 'invitation_file_dropped'
var inboxContainer = 'invitations-inbox'
var deadLetterContainer = 'invitations-inbox-deadletter'

resource app 'Microsoft.Web/sites@2024-04-01' existing = {
  name: appName
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: identityName
}

resource topic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: '${storageAccountName}-events'
  location: location
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    source: storage.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

resource inbox 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = {
  parent: topic
  name: 'invitations-inbox'
  properties: {
    destination: {
      endpointType: 'WebHook'
      properties: {
        // The host's blobs extension endpoint; the key is the extension's system key, read at deployment.
        endpointUrl: 'https://${app.properties.defaultHostName}/runtime/webhooks/blobs?functionName=Host.Functions.${functionName}&code=${listKeys('${app.id}/host/default', '2024-04-01').systemKeys.blobs_extension}'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        'Microsoft.Storage.BlobCreated'
      ]
      subjectBeginsWith: '/blobServices/default/containers/${inboxContainer}/'
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
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
  }
}
