"""Azure credentials for Graph and for the state store, chosen by GUESTCTL_AUTH.

azure-identity's async credentials: a managed identity in Azure, DefaultAzureCredential on a workstation
(Azure CLI login, environment certificate/secret, ...). A static token exists only for the loopback
Graph emulator and is refused anywhere else (GraphOptions checks the URL).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
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


def emulator_token_for(tenant_id: str) -> str:
    """An unsigned JWT naming `tenant_id` (`tid`): what the loopback emulator reads to answer from a partner's
    tenant, as Graph answers a token Entra issued for that tenant (emulator/partner_directory.py)."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part({'tid': tenant_id, 'aud': 'https://graph.microsoft.com'})}."


def token_tenant(token: str) -> str | None:
    """The `tid` claim of an access token (read, not verified: Graph verifies it), or None when it has none."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return None
    tid = claims.get("tid") if isinstance(claims, dict) else None
    return str(tid).lower() if tid else None


class TenantCredential:
    """Tokens of our app for another tenant (a partner's, where our multi-tenant app is consented).

    azure-identity credentials take the tenant per request (`get_token(..., tenant_id=)`, allowed by
    `additionally_allowed_tenants`). A credential that ignores it (a managed identity: single-tenant) would
    hand back a token for OUR tenant, and Graph would answer from our directory: each token's `tid` is
    checked, and a token for another tenant is refused.
    """

    def __init__(self, inner: Any, tenant_id: str) -> None:
        self._inner = inner
        self.tenant_id = tenant_id.lower()

    async def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        token = await self._inner.get_token(*scopes, **{**kwargs, "tenant_id": self.tenant_id})
        issued_for = token_tenant(token.token)
        if issued_for is not None and issued_for != self.tenant_id:
            raise CredentialError(
                f"the credential gave a token for tenant {issued_for}, not for {self.tenant_id}",
                hint="use an app registration's secret or certificate (AZURE_CLIENT_ID, AZURE_CLIENT_SECRET or "
                "AZURE_CLIENT_CERTIFICATE_PATH) with GUESTCTL_AUTH=default: see docs/partners.md",
            )
        return token

    async def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if close is not None:
            await close()


def app_client_id(client_id: str | None) -> str | None:
    """Our app's client id as the partner's admin must consent to it: GUESTCTL_CLIENT_ID, else AZURE_CLIENT_ID."""
    return client_id or os.environ.get("AZURE_CLIENT_ID") or None


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
