"""Teams channels and channel members, including B2B direct-connect members of shared channels."""

from __future__ import annotations

import base64
import re
from typing import Any

from emulator.errors import GraphError, bad_request, not_found
from emulator.http import Cost, Ctx, Reply, Route, json_reply, no_content
from emulator.policy import direct_connect_refusal
from emulator.routes.common import page_of
from emulator.tenant import GUEST, Channel, ConversationMember, Group

TEAMS = Cost(1, 0, service=None)  # Teams has its own limits, not emulated
MEMBER_TYPE = "#microsoft.graph.aadUserConversationMember"
_BIND = re.compile(r"/users(?:\('(?P<quoted>[^']+)'\)|/(?P<plain>[^/?]+))/?$", re.IGNORECASE)


def _team(ctx: Ctx) -> Group:
    group = ctx.tenant.groups.get(ctx.params["team_id"].lower())
    if group is None or not group.is_team:
        raise not_found("team", ctx.params["team_id"])
    return group


def _channel(ctx: Ctx) -> Channel:
    team = _team(ctx)
    channel = ctx.tenant.channels.get(ctx.params["channel_id"].lower())
    if channel is None or channel.team_id != team.id:
        raise not_found("channel", ctx.params["channel_id"])
    return channel


def _channel_json(ctx: Ctx, channel: Channel) -> dict[str, Any]:
    return {
        "id": channel.id,
        "createdDateTime": channel.createdDateTime,
        "displayName": channel.displayName,
        "description": channel.description,
        "isFavoriteByDefault": None,
        "email": None,
        "webUrl": f"https://teams.microsoft.com/l/channel/{channel.id}",
        "membershipType": channel.membershipType,
        "tenantId": ctx.tenant.id,
    }


def _member_json(member: ConversationMember) -> dict[str, Any]:
    return {
        "@odata.type": MEMBER_TYPE,
        "id": member.id,
        "roles": list(member.roles),
        "displayName": member.displayName,
        "visibleHistoryStartDateTime": member.visibleHistoryStartDateTime,
        "userId": member.userId,
        "email": member.email,
        "tenantId": member.tenantId,
    }


async def get_team(ctx: Ctx) -> Reply:
    team = _team(ctx)
    return json_reply(
        {
            "@odata.context": ctx.context_url("teams/$entity"),
            "id": team.id,
            "displayName": team.displayName,
            "description": team.description,
            "isArchived": False,
            "visibility": (team.visibility or "private").lower(),
            "tenantId": ctx.tenant.id,
        }
    )


async def list_channels(ctx: Ctx) -> Reply:
    team = _team(ctx)
    channels = [c for c in ctx.tenant.channels.values() if c.team_id == team.id]
    text = ctx.options.get("$filter")
    if text:
        match = re.fullmatch(r"\s*membershipType\s+eq\s+'(\w+)'\s*", text, re.IGNORECASE)
        if match is None:
            raise bad_request("The emulator supports $filter=membershipType eq '...' on channels only.")
        channels = [c for c in channels if c.membershipType == match.group(1)]
    return json_reply(
        {
            "@odata.context": ctx.context_url(f"teams('{team.id}')/channels"),
            "value": [_channel_json(ctx, c) for c in channels],
        }
    )


async def get_channel(ctx: Ctx) -> Reply:
    channel = _channel(ctx)
    return json_reply({"@odata.context": ctx.context_url("teams/channels/$entity"), **_channel_json(ctx, channel)})


async def list_channel_members(ctx: Ctx) -> Reply:
    channel = _channel(ctx)
    members = list(channel.members.values())
    return page_of(ctx, members, _member_json, context="teams/channels/members")


async def add_channel_member(ctx: Ctx) -> Reply:
    channel = _channel(ctx)
    tenant = ctx.tenant
    payload = ctx.json_object()
    if payload.get("@odata.type") != MEMBER_TYPE:
        raise bad_request(f"@odata.type must be '{MEMBER_TYPE}'.", code="BadRequest")
    roles = payload.get("roles", [])
    if roles not in ([], ["owner"]):
        raise bad_request('roles must be [] or ["owner"].', code="BadRequest")
    if channel.membershipType not in ("private", "shared"):
        raise bad_request("Members can be added only to private and shared channels.", code="BadRequest")
    bind = payload.get("user@odata.bind")
    match = _BIND.search(bind) if isinstance(bind, str) else None
    if match is None:
        raise bad_request(
            "user@odata.bind must reference https://graph.microsoft.com/v1.0/users('{id}').", code="BadRequest"
        )
    user_key = (match.group("quoted") or match.group("plain")).lower()
    home_tenant = str(payload.get("tenantId") or tenant.id).lower()
    if home_tenant == tenant.id:
        user = tenant.find_user(user_key)
        if user is None:
            raise not_found("user", user_key)
        if channel.membershipType == "shared" and user.userType == GUEST:
            # B2B direct connect overview: guest users can't see or participate in shared channels.
            raise GraphError(
                403,
                "Forbidden",
                "Guest users can't be added to shared channels; add the user's "
                "home-tenant identity with tenantId (B2B direct connect) instead.",
            )
        team = tenant.groups[channel.team_id]
        if channel.membershipType == "private" and user.id not in team.members:
            raise bad_request("Private channel members must be members of the team.", code="BadRequest")
        user_id, display_name, email = user.id, user.displayName, user.mail
    else:
        if channel.membershipType != "shared":
            raise bad_request("Users from another tenant can be added to shared channels only.", code="BadRequest")
        external = tenant.external_tenants.get(home_tenant)
        if external is None:
            raise not_found("tenant", home_tenant)
        profile = external.users.get(user_key)
        if profile is None:
            raise not_found("user", user_key)
        if direct_connect_refusal(tenant, home_tenant, user_key) is not None:
            # Direct connect needs our inbound and the partner's outbound settings
            # (docs/graph-contract.md#cross-tenant-access).
            raise GraphError(
                403,
                "Forbidden",
                "B2B direct connect is not allowed between the tenants: both "
                "organizations must allow it in their cross-tenant access settings.",
            )
        user_id, display_name, email = user_key, profile["displayName"], profile["mail"]
    for existing in channel.members.values():
        if existing.userId == user_id and existing.tenantId == home_tenant:
            raise GraphError(409, "Conflict", "The user is already a member of the channel.")
    membership_id = base64.urlsafe_b64encode(f"{channel.id}#{home_tenant}#{user_id}".encode()).decode().rstrip("=")
    member = ConversationMember(
        id=membership_id,
        userId=user_id,
        displayName=display_name,
        email=email,
        tenantId=home_tenant,
        roles=tuple(roles),
        visibleHistoryStartDateTime="0001-01-01T00:00:00Z",
    )
    channel.members[membership_id.lower()] = member
    return json_reply(
        {"@odata.context": ctx.context_url("teams/channels/members/$entity"), **_member_json(member)}, 201
    )


async def remove_channel_member(ctx: Ctx) -> Reply:
    channel = _channel(ctx)
    key = ctx.params["membership_id"].lower()
    if key not in channel.members:
        raise not_found("conversationMember", ctx.params["membership_id"])
    del channel.members[key]
    return no_content()


async def shared_with_teams(ctx: Ctx) -> Reply:
    channel = _channel(ctx)
    if channel.membershipType != "shared":
        raise bad_request("sharedWithTeams is available on shared channels only.", code="BadRequest")
    team = ctx.tenant.groups[channel.team_id]
    return json_reply(
        {
            "@odata.context": ctx.context_url("teams/channels/sharedWithTeams"),
            "value": [{"id": team.id, "tenantId": ctx.tenant.id, "displayName": team.displayName, "isHostTeam": True}],
        }
    )


ROUTES = [
    Route("GET", "/teams/{team_id}", get_team, TEAMS),
    Route("GET", "/teams/{team_id}/channels", list_channels, TEAMS),
    Route("GET", "/teams/{team_id}/channels/{channel_id}", get_channel, TEAMS),
    Route("GET", "/teams/{team_id}/channels/{channel_id}/members", list_channel_members, TEAMS),
    Route("POST", "/teams/{team_id}/channels/{channel_id}/members", add_channel_member, TEAMS),
    Route("DELETE", "/teams/{team_id}/channels/{channel_id}/members/{membership_id}", remove_channel_member, TEAMS),
    Route("GET", "/teams/{team_id}/channels/{channel_id}/sharedwithteams", shared_with_teams, TEAMS),
]
