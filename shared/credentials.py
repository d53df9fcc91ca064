"""Azure credentials for Graph and for the state store, chosen by GUESTCTL_AUTH.

azure-identity's async credentials: a managed identity in Azure, DefaultAzureCredential on a workstation
(Azure CLI login, environment certificate/secret, ...). A static token exists only for the loopback
Graph emulator and is refused anywhere else (GraphOptions checks the URL).
"""

from __future__ import annotations

import time
from typing import Any, Literal

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

    if auth == "managed-identity":
        return ManagedIdentityCredential(client_id=client_id)
    return DefaultAzureCredential(
        authority=authority,
        managed_identity_client_id=client_id,
        additionally_allowed_tenants=[tenant_id] if tenant_id else [],
    )
