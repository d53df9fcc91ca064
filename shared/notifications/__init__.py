"""Graph change notifications: the webhook's request path (`inbox`), subscriptions and the queue worker."""
