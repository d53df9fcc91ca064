"""Things that happen to a tenant outside Graph calls: sign-ins (activity and log) and redemption."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from emulator.clock import format_datetime, parse_datetime
from emulator.policy import direct_connect_refusal, effective
from emulator.seed import MFA_HOME, MSA_TENANT_ID, TEAMS_APP_ID, make_sign_in
from emulator.tenant import MEMBER, Tenant

DIRECT = "b2bDirectConnect"
MFA_NOT_TRUSTED = 90071  # AADSTS90071: MFA is required and the partner's MFA is not accepted (inboundTrust)


def direct_connect_outcome(tenant: Tenant, home_tenant_id: str, user_id: str) -> tuple[int, str | None]:
    """The error code (0: success) of a B2B direct connect sign-in, and where a required MFA was satisfied.

    In order (docs/graph-contract.md#cross-tenant-access): the partner's outbound and our inbound settings
    (500212, 500213); then, when Conditional Access requires MFA of external users, our effective
    `inboundTrust.isMfaAccepted` for the partner (90071 unless true). A direct connect user has no account
    here to do MFA in, so a required MFA can only be the claim their home tenant put in the token.
    """
    refusal = direct_connect_refusal(tenant, home_tenant_id, user_id)
    if refusal is not None:
        return refusal, None
    if not tenant.external_mfa_required:
        return 0, None
    trust = effective(tenant.policy_default, tenant.policy_partners.get(home_tenant_id.lower()), "inboundTrust")
    return (0 if (trust or {}).get("isMfaAccepted") is True else MFA_NOT_TRUSTED), MFA_HOME


def record_sign_in(
    tenant: Tenant,
    *,
    user_id: str,
    at: datetime | str | None = None,
    interactive: bool = True,
    success: bool | None = None,
    cross_tenant_access_type: str | None = None,
    home_tenant_id: str | None = None,
    app_id: str = TEAMS_APP_ID,
    error_code: int | None = None,
) -> dict[str, Any]:
    """Record a sign-in: updates the user's signInActivity (if the user lives here) and the sign-in log.

    A B2B direct-connect sign-in has no user object here: pass the home-tenant object id and tenant. Without
    `success` and `error_code` its outcome follows both tenants' settings (`direct_connect_outcome`); any
    other sign-in succeeds unless told otherwise.
    """
    mfa: str | None = None
    if success is None and error_code is None:
        if user_id.lower() not in tenant.users and (cross_tenant_access_type or DIRECT) == DIRECT and home_tenant_id:
            error_code, mfa = direct_connect_outcome(tenant, home_tenant_id, user_id.lower())
            success = error_code == 0
        else:
            success = True
    elif success is None:
        success = error_code == 0
    when = parse_datetime(at) if isinstance(at, str) else at or tenant.now()
    stamp = format_datetime(when)
    request_id = str(uuid.uuid4())
    user = tenant.users.get(user_id.lower())
    if user is not None:
        values = list(user.sign_in or (None,) * 6)
        if interactive:
            values[0], values[1] = stamp, request_id
        else:
            values[2], values[3] = stamp, request_id
        if success:
            values[4], values[5] = stamp, request_id
        tenant.set_sign_in(user, tuple(values))
        access = cross_tenant_access_type or ("b2bCollaboration" if user.creationType == "Invitation" else "none")
        home = home_tenant_id or user.home_tenant_id or (tenant.id if access == "none" else MSA_TENANT_ID)
        display, principal, user_type = (
            user.displayName,
            user.userPrincipalName,
            ("member" if user.userType == MEMBER else "guest"),
        )
    else:
        if not home_tenant_id:
            raise ValueError("a sign-in by a user who has no object here needs home_tenant_id")
        external = tenant.external_tenants.get(home_tenant_id.lower())
        profile = external.users.get(user_id.lower(), {}) if external else {}
        access = cross_tenant_access_type or DIRECT
        home = home_tenant_id.lower()
        display, principal, user_type = profile.get("displayName"), profile.get("mail"), "guest"
    entry = make_sign_in(
        tenant,
        entry_id=str(uuid.uuid4()),
        created=stamp,
        user_id=user_id.lower(),
        display_name=display,
        principal_name=principal,
        access_type=access,
        home_tenant_id=home,
        user_type=user_type,
        error_code=error_code if error_code is not None else (0 if success else 50126),
        app_id=app_id,
        correlation_id=request_id,
        interactive=interactive,
        mfa=mfa,
    )
    tenant.add_sign_in(entry)
    return entry
