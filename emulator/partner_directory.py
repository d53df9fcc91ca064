"""A partner tenant's directory, served to an access token issued for that tenant.

A multi-tenant app consented in a partner's tenant gets tokens for that tenant (their `tid` claim), and
Graph answers such a token from the partner's directory. The emulator has no token endpoint: a bearer token
that is a JWT (signature not checked) whose payload's `tid` names an external tenant selects that tenant.
Any other token (not a JWT, no `tid`, or our own tenant's id) is served from the emulated tenant as before.

What the partner's tenant answers (docs: emulator/README.md, "Partner tenants"):
- its admin has not consented to the app (`appConsented` false, the default) → 401
  `InvalidAuthenticationToken` with the AADSTS65001 text. Real Entra refuses earlier, when the token is
  requested; this is the stand-in.
- `GET /users` with the real /users query handling ($filter eq/in on mail and userPrincipalName with
  their limits, $select, $top, paging) over the external tenant's users, all `userType` Member;
- anything else → 403 `Authorization_RequestDenied`: the app holds only User.Read.All there.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from emulator.errors import GraphError
from emulator.http import Ctx, Reply
from emulator.tenant import ExternalTenant, Tenant

DENIED = GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")


def token_tenant(headers: dict[str, str]) -> str | None:
    """The `tid` claim of the bearer token when it is a JWT (lower case), else None."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    parts = token.strip().split(".")
    if scheme.lower() != "bearer" or len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return None
    tid = payload.get("tid") if isinstance(payload, dict) else None
    return str(tid).lower() if tid else None


def partner_of(ctx: Ctx) -> ExternalTenant | None:
    """The external tenant the request's token was issued for; None: our own tenant serves it."""
    tid = token_tenant(ctx.headers)
    tenant = ctx.tenant
    if tid is None or tid == tenant.id.lower():
        return None
    external = tenant.external_tenants.get(tid)
    if external is None:
        raise GraphError(
            401,
            "InvalidAuthenticationToken",
            f"Access token validation failure. The token was issued for tenant '{tid}', unknown here.",
        )
    return external


async def serve(ctx: Ctx, external: ExternalTenant) -> Reply:
    """Answer one request made with a token for `external` (see the module docstring)."""
    from emulator.routes.users import list_users

    if not external.app_consented:
        raise GraphError(
            401,
            "InvalidAuthenticationToken",
            f"AADSTS65001: The user or administrator has not consented to use the application in tenant "
            f"'{external.tenant_id}'. Send an interactive authorization request for this user and resource.",
        )
    if ctx.method != "GET" or ctx.path.rstrip("/").lower() != "/users":
        raise DENIED
    view = Ctx(
        state=_PartnerState(ctx.state, directory(ctx.tenant, external)),  # type: ignore[arg-type]
        method=ctx.method,
        path=ctx.path,
        query=ctx.query,
        headers=ctx.headers,
        body=ctx.body,
        base=ctx.base,
        request_id=ctx.request_id,
        client_request_id=ctx.client_request_id,
        in_batch=ctx.in_batch,
    )
    view.app_id = ctx.app_id
    return await list_users(view)


def directory(ours: Tenant, external: ExternalTenant) -> Tenant:
    """The partner's users as a directory of their own (rebuilt per request: the profiles are small and the
    tests change them); its epoch is derived, so its skip tokens stay valid from one request to the next."""
    from emulator.seed import make_user

    tenant = Tenant(
        tenant_id=external.tenant_id,
        domain=external.default_domain,
        display_name=external.display_name,
        verified_domains=external.domains,
        clock=ours.clock,
    )
    tenant.epoch = hashlib.sha256(f"{ours.epoch}/{external.tenant_id}".encode()).hexdigest()[:8]
    for user_id, profile in external.users.items():
        fields: dict[str, Any] = {k: v for k, v in profile.items() if k != "userType"}
        make_user(tenant, id=user_id, **fields)
    return tenant


class _PartnerState:
    """The emulator state as the /users handler sees it for a partner's request: their directory, our
    settings, and a cache of counts of its own (cache keys would otherwise mix the two tenants)."""

    def __init__(self, state: Any, tenant: Tenant) -> None:
        self._state = state
        self.tenant = tenant
        self.count_cache: dict[Any, Any] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._state, name)
