"""POST /invitations: create or re-invite a guest, with Graph's email rules and an observable outbox."""

from __future__ import annotations

import re
import secrets
from typing import Any
from urllib.parse import quote, urlparse

from emulator.errors import GraphError, bad_request
from emulator.http import Ctx, Reply, Route, json_reply
from emulator.policy import allows_user, effective
from emulator.tenant import ACCEPTED, GUEST, MEMBER, PENDING, Tenant, User, new_id

# docs/graph-contract.md#invitations: characters not permitted in invitedUserEmailAddress.
FORBIDDEN_CHARACTERS = set('~!#$%^&*()+=[]{}\\/|;:"<>?,')
CONSUMER_DOMAINS = {"outlook.com", "hotmail.com", "live.com", "msn.com", "passport.com"}
INVITATION_SENDER = "Invites@microsoft.com"
_DOMAIN = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$")


def email_problem(address: Any) -> str | None:
    """Why an address breaks Graph's invitation rules, or None when it is acceptable."""
    if not isinstance(address, str) or not address:
        return "invitedUserEmailAddress is required."
    if address.count("@") != 1:
        return "The email address must contain exactly one '@'."
    local, domain = address.split("@")
    if not local:
        return "The user name of the email address is empty."
    bad = sorted({c for c in local if c in FORBIDDEN_CHARACTERS or c.isspace()})
    if bad:
        return f"The user name of the email address contains characters that are not permitted: {''.join(bad)}"
    if local[0] in ".-" or local[-1] in ".-":
        return "A '.' or '-' is not permitted at the start or end of the user name."
    if not _DOMAIN.match(domain):
        return f"The domain '{domain}' is not a valid domain name."
    return None


def guest_user_principal_name(tenant: Tenant, address: str) -> str:
    alias = address.replace("@", "_")
    candidate = f"{alias}#EXT#@{tenant.domain}"
    counter = 1
    while candidate.lower() in tenant.by_upn:
        candidate = f"{alias}{counter}#EXT#@{tenant.domain}"
        counter += 1
    return candidate


def home_identity(tenant: Tenant, address: str) -> tuple[str, str, str | None]:
    """The federated identity a guest gets on redemption, by where their address lives."""
    domain = address.rsplit("@", 1)[-1].lower()
    if tenant.external_tenant_for_domain(domain) is not None:
        return ("federated", "ExternalAzureAD", None)
    if domain in CONSUMER_DOMAINS:
        return ("federated", "MicrosoftAccount", None)  # issuer string unconfirmed (docs/graph-contract.md#users)
    return ("federated", "mail", address)  # email one-time passcode; issuer unconfirmed


def redeem_url(tenant: Tenant, user: User, code: str) -> str:
    inner = f"https://invitations.microsoft.com/redeem/?tenant={tenant.id}&user={user.id}&ticket={code}&ver=2.0"
    return f"https://login.microsoftonline.com/redeem?rd={quote(inner, safe='')}"


def _check_cc(info: Any) -> list[dict[str, Any]]:
    if info is None:
        return []
    if not isinstance(info, dict):
        raise bad_request("invitedUserMessageInfo must be an object.", code="BadRequest")
    cc = info.get("ccRecipients") or []
    if not isinstance(cc, list):
        raise bad_request("ccRecipients must be an array.", code="BadRequest")
    if len(cc) > 1:
        raise bad_request("Currently only 1 additional recipient is supported in ccRecipients.", code="BadRequest")
    return cc


def _blocked_by_policy(tenant: Tenant, address: str) -> bool:
    external = tenant.external_tenant_for_domain(address.rsplit("@", 1)[-1])
    if external is None:
        return False
    setting = effective(
        tenant.policy_default, tenant.policy_partners.get(external.tenant_id), "b2bCollaborationInbound"
    )
    return not allows_user(setting, set())


async def create_invitation(ctx: Ctx) -> Reply:
    payload = ctx.json_object()
    tenant = ctx.tenant
    address = payload.get("invitedUserEmailAddress")
    problem = email_problem(address)
    if problem:
        raise bad_request(f"The invited user email address is invalid. {problem}", code="BadRequest")
    redirect = payload.get("inviteRedirectUrl")
    if not isinstance(redirect, str) or urlparse(redirect).scheme not in ("http", "https"):
        raise bad_request("inviteRedirectUrl is required and must be an absolute http(s) URL.", code="BadRequest")
    send_message = payload.get("sendInvitationMessage", False)
    if not isinstance(send_message, bool):
        raise bad_request("sendInvitationMessage must be a boolean.", code="BadRequest")
    user_type = payload.get("invitedUserType") or GUEST
    if user_type not in (GUEST, MEMBER):
        raise bad_request("invitedUserType must be 'Guest' or 'Member'.", code="BadRequest")
    info = payload.get("invitedUserMessageInfo")
    cc = _check_cc(info)
    reset = payload.get("resetRedemption", False) is True
    sponsors = _sponsor_ids(tenant, payload.get("invitedUserSponsors"))
    if _blocked_by_policy(tenant, address):
        raise GraphError(
            400,
            "BadRequest",
            "This invitation is blocked by cross-tenant access settings. Admins in "
            "both your organization and the invited user's organization must configure cross-tenant "
            "access settings to allow the invitation.",
        )

    if reset:
        invited = payload.get("invitedUser") or {}
        user_id = invited.get("id") if isinstance(invited, dict) else None
        if not user_id:
            raise bad_request("invitedUser.id is required when resetRedemption is true.", code="BadRequest")
        user = tenant.users.get(str(user_id).lower())
        if user is None or user.creationType != "Invitation":
            raise bad_request(f"The user '{user_id}' is not an invited external user.", code="BadRequest")
        tenant.update_user(
            user,
            {
                "externalUserState": PENDING,
                "mail": address,
                "otherMails": tuple(dict.fromkeys([*user.otherMails, address])),
            },
        )
        user.identities = tuple(i for i in user.identities if i[0] != "federated")
    else:
        user = tenant.find_user_by_address(address)
        if user is not None and user.userType == MEMBER:
            # A proxyAddresses conflict with an existing user blocks the invitation (Entra troubleshooting).
            raise bad_request(
                f"The invited user already exists in this directory as a member ({user.userPrincipalName}); "
                "its address conflicts with the proxyAddresses of an existing user.",
                code="BadRequest",
            )
        if user is None:
            user = _create_guest(tenant, address, payload, user_type, sponsors)
        elif sponsors:
            user.sponsors = tuple(dict.fromkeys([*user.sponsors, *sponsors]))

    code = secrets.token_urlsafe(12)
    invitation_id = new_id()
    url = redeem_url(tenant, user, code)
    tenant.invitations[code] = {
        "invitationId": invitation_id,
        "userId": user.id,
        "email": address,
        "createdDateTime": tenant.now_iso(),
        "redeemed": False,
    }
    custom_body = info.get("customizedMessageBody") if isinstance(info, dict) else None
    if send_message:
        tenant.outbox.append(
            {
                "kind": "invitation",
                "from": INVITATION_SENDER,
                "to": [address],
                "cc": [r.get("emailAddress", {}).get("address") for r in cc if isinstance(r, dict)],
                "subject": f"{tenant.display_name} invited you to access applications within their organization",
                "inviteRedeemUrl": url,
                "userId": user.id,
                # An app-only caller's custom message is not included in Microsoft's email
                # (docs/graph-contract.md#invitations).
                "customizedMessageBody": None,
                "customMessageDropped": bool(custom_body),
                "messageLanguage": (info or {}).get("messageLanguage") or "en-US",
                "sentDateTime": tenant.now_iso(),
            }
        )
    body = {
        "@odata.context": ctx.context_url("invitations/$entity"),
        "id": invitation_id,
        "inviteRedeemUrl": url,
        "invitedUserDisplayName": payload.get("invitedUserDisplayName") or user.displayName,
        "invitedUserType": user.userType,
        "invitedUserEmailAddress": address,
        "sendInvitationMessage": send_message,
        "resetRedemption": reset,
        "inviteRedirectUrl": redirect,
        # observed "always PendingAcceptance" (docs/graph-contract.md#invitations); track externalUserState
        "status": PENDING,
        "invitedUserMessageInfo": {
            "messageLanguage": (info or {}).get("messageLanguage"),
            "customizedMessageBody": custom_body,
            "ccRecipients": cc,
        },
        "invitedUser": {"id": user.id, "userPrincipalName": user.userPrincipalName},
    }
    return json_reply(body, 201)


def _sponsor_ids(tenant: Tenant, value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad_request("invitedUserSponsors must be an array of directory objects.", code="BadRequest")
    ids: list[str] = []
    for item in value:
        sponsor_id = str((item or {}).get("id", "")).lower() if isinstance(item, dict) else ""
        if tenant.users.get(sponsor_id) is None and tenant.groups.get(sponsor_id) is None:
            raise bad_request(f"Sponsor '{sponsor_id}' does not exist.", code="BadRequest")
        ids.append(sponsor_id)
    return ids


def _create_guest(tenant: Tenant, address: str, payload: dict[str, Any], user_type: str, sponsors: list[str]) -> User:
    upn = guest_user_principal_name(tenant, address)
    display_name = payload.get("invitedUserDisplayName") or address.split("@")[0]
    now = tenant.now_iso()
    external = tenant.external_tenant_for_domain(address.rsplit("@", 1)[-1])
    user = User(
        id=new_id(),
        displayName=display_name,
        userPrincipalName=upn,
        userType=user_type,
        mail=address,
        otherMails=(address,),
        identities=(("userPrincipalName", tenant.domain, upn),),
        creationType="Invitation",
        externalUserState=PENDING,
        externalUserStateChangeDateTime=now,
        createdDateTime=now,
        sponsors=tuple(sponsors),
        home_tenant_id=external.tenant_id if external else None,
    )
    return tenant.add_user(user)


def redeem(tenant: Tenant, user: User) -> None:
    """What the guest's interactive redemption does (no Graph API exists for it, docs/graph-contract.md#invitations)."""
    if user.externalUserState == ACCEPTED:
        return
    identity = home_identity(tenant, user.mail or user.userPrincipalName)
    tenant.update_user(user, {"externalUserState": ACCEPTED})
    if identity not in user.identities:
        user.identities = (*user.identities, identity)
    for record in tenant.invitations.values():
        if record["userId"] == user.id:
            record["redeemed"] = True


ROUTES = [Route("POST", "/invitations", create_invitation)]
