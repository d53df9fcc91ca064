"""Pure: the document for a partner's admin — what they must set in their tenant for B2B direct connect with
us, why, and how to check it worked — as Markdown and as HTML, from one list of blocks.

Direct connect works only when both tenants allow it: we allow their users inbound (our policy), they
allow the same users outbound to us. Nothing here calls Graph; the service gives our tenant's name.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from typing import Any

from shared.config import PartnerTrust
from shared.partners.trust import b2b_setting

Block = tuple[str, Any]  # ("h1" | "h2" | "p" | "ul" | "code", text or list of texts)


@dataclass(frozen=True, slots=True)
class Parties:
    our_tenant_id: str
    our_name: str
    partner_tenant_id: str
    partner_name: str


def _who(scope_users: Any, groups: list[str], side: str) -> list[str]:
    if scope_users == "all":
        return [f"all users of {side}"]
    return [f"user `{user}`" for user in scope_users] + [f"group `{group}`" for group in groups]


def instruction_blocks(parties: Parties, entry: PartnerTrust) -> list[Block]:
    """What the partner's admin reads, in order."""
    us, them = parties.our_name, parties.partner_name
    outbound = b2b_setting(entry.inbound)  # their outbound mirrors our inbound: the same users, our apps
    body: dict[str, Any] = {"tenantId": parties.our_tenant_id, "b2bDirectConnectOutbound": outbound}
    if entry.outbound is not None:
        body["b2bDirectConnectInbound"] = b2b_setting(entry.outbound)
    who = _who(entry.inbound.users, entry.inbound.groups, "your tenant")
    blocks: list[Block] = [
        ("h1", f"B2B direct connect between {them} and {us}: what to set in your tenant"),
        (
            "p",
            f"{us} (tenant id `{parties.our_tenant_id}`) invites your users to Teams shared channels through "
            "Microsoft Entra B2B direct connect. Your users keep signing in with their own account in your "
            "tenant: no guest account is created for them in ours. Direct connect works only when both tenants "
            f"allow it: {us} has allowed your users inbound; you allow them outbound to {us}.",
        ),
        ("h2", "Our tenant"),
        ("ul", [f"Tenant id: `{parties.our_tenant_id}`", f"Name: {us}"]),
        ("h2", "What to set"),
        (
            "p",
            "In the Microsoft Entra admin center: External Identities → Cross-tenant access settings → "
            f"Organizational settings → Add organization → `{parties.our_tenant_id}`. Then, under B2B direct "
            "connect → Outbound access:",
        ),
        (
            "ul",
            [
                "Users and groups: Allow access, applied to " + ", ".join(who),
                "External applications: Allow access, applied to "
                + ", ".join(f"`{app}`" for app in entry.inbound.applications),
            ],
        ),
    ]
    if entry.outbound is not None:
        ours = _who(entry.outbound.users, entry.outbound.groups, us)
        blocks.append(
            (
                "p",
                f"{us} also lets its own users into your shared channels: under B2B direct connect → Inbound "
                f"access, allow {', '.join(ours)} (their object ids are in our tenant), and the applications "
                + ", ".join(f"`{app}`" for app in entry.outbound.applications)
                + ".",
            )
        )
    blocks += [
        (
            "p",
            "The same with Microsoft Graph (permission `Policy.ReadWrite.CrossTenantAccess`): "
            "`POST /policies/crossTenantAccessPolicy/partners` with this body, or, if you already have a "
            f"configuration for our tenant, `PATCH /policies/crossTenantAccessPolicy/partners/{parties.our_tenant_id}` "
            "with the same body without `tenantId`:",
        ),
        ("code", json.dumps(body, indent=2)),
        ("h2", "Why"),
        ("ul", _why(entry, us)),
        ("h2", "How to check it worked"),
        (
            "ul",
            [
                f"`GET /policies/crossTenantAccessPolicy/partners/{parties.our_tenant_id}` in your tenant shows "
                "`b2bDirectConnectOutbound` as above.",
                f"Tell {us}; one of the users in scope is then added to a shared channel in our tenant and sees it "
                "in Teams under their own account, with no tenant switch.",
                "Your sign-in logs show that user's sign-in with cross-tenant access type "
                f"`b2bDirectConnect` and resource tenant `{parties.our_tenant_id}`.",
                "A user who cannot be added or cannot open the channel is not in the users and groups you allowed.",
            ],
        ),
    ]
    return blocks


def _why(entry: PartnerTrust, us: str) -> list[str]:
    reasons = [
        "Direct connect replaces guest accounts: your people keep one identity, and leavers lose access when "
        "you disable them in your tenant.",
        "It works for Teams shared channels only, and only when both organisations allow it.",
    ]
    if entry.trust is not None and entry.trust.mfa:
        reasons.append(f"{us} accepts the multifactor authentication your users do in your tenant: no second prompt.")
    if entry.trust is not None and (entry.trust.compliant_device or entry.trust.hybrid_joined):
        reasons.append(f"{us} accepts your device compliance or hybrid join claims for its Conditional Access.")
    return reasons


_INLINE_CODE = re.compile(r"`([^`]+)`")


def to_markdown(blocks: list[Block]) -> str:
    lines: list[str] = []
    for kind, value in blocks:
        if kind == "h1":
            lines += [f"# {value}", ""]
        elif kind == "h2":
            lines += [f"## {value}", ""]
        elif kind == "ul":
            lines += [f"- {item}" for item in value] + [""]
        elif kind == "code":
            lines += ["```json", value, "```", ""]
        else:
            lines += [value, ""]
    return "\n".join(lines)


def _inline(text: str) -> str:
    return _INLINE_CODE.sub(lambda m: f"<code>{m.group(1)}</code>", html.escape(text, quote=False))


def to_html(blocks: list[Block]) -> str:
    title = html.escape(next((value for kind, value in blocks if kind == "h1"), "Instructions"))
    parts = [f'<!doctype html>\n<html lang="en">\n<head><meta charset="utf-8"><title>{title}</title></head>\n<body>']
    for kind, value in blocks:
        if kind in ("h1", "h2", "p"):
            parts.append(f"<{kind}>{_inline(value)}</{kind}>")
        elif kind == "ul":
            parts.append("<ul>" + "".join(f"<li>{_inline(item)}</li>" for item in value) + "</ul>")
        elif kind == "code":
            parts.append(f"<pre><code>{html.escape(value, quote=False)}</code></pre>")
    parts.append("</body>\n</html>\n")
    return "\n".join(parts)
