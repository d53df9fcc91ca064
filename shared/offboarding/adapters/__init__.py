"""HR systems' own webhooks turned into native HR events: one pure module per system (docs/offboarding.md)."""
