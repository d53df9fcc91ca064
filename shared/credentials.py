"""Azure credentials for Graph and for the state store, chosen by GUESTCTL_AUTH.

azure-identity's async credentials: a managed identity in Azure, DefaultAzureCredential on a workstation
(Azure CLI login, environment certificate/secret, ...). A static token exists only for the loopback
Graph emulator and is refused anywhere else (GraphOptions checks the URL).
"""

from __future__ import annotations

import time
from typing import Any, Literal

from shared.errors import ConfigError, CredentialError, cap

AuthMode = Literal["default", "managed-identity", "emulator"]


class StaticTokenCredential:
    """A fixed bearer token for the loopback emulator (the only place a static token is allowed)."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self._token, int(time.time()) + 3600)

    async def close(self) -> None:
        return None


def azure_credential(auth: AuthMode, *, client_id: str | None, tenant_id: str | None, authority: str) -> Any:
    """The async token credential for `auth`; "emulator" falls back to DefaultAzureCredential here
    because only the Graph emulator accepts a static token (Azure Storage never does)."""
    from azure.identity.aio import DefaultAzureCredential, ManagedIdentityCredential

    try:
        if auth == "managed-identity":
            return ManagedIdentityCredential(client_id=client_id)
        return DefaultAzureCredential(
            authority=authority,
            managed_identity_client_id=client_id,
            additionally_allowed_tenants=[tenant_id] if tenant_id else [],
        )
    except ValueError as error:  # azure-identity refuses its own AZURE_* settings (AZURE_TOKEN_CREDENTIALS=...)
        raise ConfigError(
            f"Azure credential settings are not usable: {cap(str(error), 300)}",
            hint="fix or unset the AZURE_* environment variable it names",
        ) from None


_HOW_TO_AUTHENTICATE = {
    "default": (
        "run `az login`, set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET "
        "(or AZURE_CLIENT_CERTIFICATE_PATH), or use a managed identity (GUESTCTL_AUTH=managed-identity)"
    ),
    "managed-identity": (
        "run where a managed identity is assigned (Azure Functions, a VM); for a user-assigned one set "
        "GUESTCTL_CLIENT_ID to its client id; on a workstation use GUESTCTL_AUTH=default and `az login`"
    ),
    "emulator": "run `az login`, or set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET",
}


def credential_error(error: BaseException, auth: AuthMode, *, purpose: str) -> CredentialError | None:
    """azure-identity's authentication failure as a one-line `CredentialError`; None for anything else.

    Only the first line of azure-identity's message is kept: DefaultAzureCredential's lists every
    credential it tried (kilobytes of troubleshooting links). Its first line names no secret.
    """
    from azure.core.exceptions import ClientAuthenticationError

    if not isinstance(error, ClientAuthenticationError):
        return None
    first_line = (str(error.message or error).strip().splitlines() or [type(error).__name__])[0]
    return CredentialError(
        f"no Azure credential for {purpose} (GUESTCTL_AUTH={auth}): {cap(first_line, 200)}",
        hint=_HOW_TO_AUTHENTICATE[auth],
    )
