"""Secret app settings (the notification, HR webhook and attestation secrets): each must be set, and not a Key
Vault reference the platform could not resolve. Callers read them on each use, so a rotated secret takes effect
without a restart, and add their own rule (length, format) on top. Never put the value in a message."""

from __future__ import annotations

from shared.errors import ConfigError

UNRESOLVED_REFERENCE = "@Microsoft.KeyVault("  # what an app setting holds when its reference did not resolve
KEY_VAULT_HINT = "grant the app's identity 'Key Vault Secrets User' on the vault, and check the secret's URI"


def required_secret(setting: str, value: str | None, *, unset_hint: str, error: type[ConfigError] = ConfigError) -> str:
    """`value` as given; unset, blank or an unresolved Key Vault reference → `error` naming `setting`."""
    if not (value or "").strip():
        raise error(f"{setting} is not set", hint=unset_hint)
    assert value is not None
    if value.strip().startswith(UNRESOLVED_REFERENCE):
        raise error(f"{setting} is an unresolved Key Vault reference", hint=KEY_VAULT_HINT)
    return value
