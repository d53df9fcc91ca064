"""Teams channels and channel members, including B2B direct-connect members of shared channels."""

from __future__ import annotations

import base64
import re
from typing import Any

from emulator.errors import GraphError, bad_request, not_found
from emulator.http import Cost, Ctx, Reply, Route, json_reply, no_content
from emulator.policy import direct_connect_refusal
from emulator.routes.common import page_of
from emulator.tenant import GUEST, Channel, ConversationMember, Group, new_id

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


MEMBERSHIP_TYPES = ("standard", "private", "shared")
MAX_CHANNEL_NAME = 50  # Create channel: "the maximum length of the channel's displayName is 50 characters"


def _user_bound(ctx: Ctx, member: Any) -> str:
    """The id of the user an initial channel member names (`user@odata.bind`)."""
    bind = member.get("user@odata.bind") if isinstance(member, dict) else None
    match = _BIND.search(bind) if isinstance(bind, str) else None
    if match is None or member.get("@odata.type") != MEMBER_TYPE:
        raise bad_request(
            f"Each member must be a '{MEMBER_TYPE}' with user@odata.bind "
            "https://graph.microsoft.com/v1.0/users('{id}').",
            code="BadRequest",
        )
    user = ctx.tenant.find_user((match.group("quoted") or match.group("plain")).lower())
    if user is None:
        raise not_found("user", match.group("quoted") or match.group("plain"))
    return user.id


async def create_channel(ctx: Ctx) -> Reply:
    """POST /teams/{id}/channels: standard, private or shared; app-only private/shared need their owner."""
    team = _team(ctx)
    tenant = ctx.tenant
    payload = ctx.json_object()
    name = payload.get("displayName")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_CHANNEL_NAME:
        raise bad_request(f"displayName is required and at most {MAX_CHANNEL_NAME} characters.", code="BadRequest")
    kind = payload.get("membershipType", "standard")
    if kind not in MEMBERSHIP_TYPES:
        raise bad_request(f"membershipType must be one of {', '.join(MEMBERSHIP_TYPES)}.", code="BadRequest")
    description = payload.get("description")
    if description is not None and not isinstance(description, str):
        raise bad_request("description must be a string.", code="BadRequest")
    members = payload.get("members") or []
    if not isinstance(members, list) or (members and kind == "standard"):
        raise bad_request("members can be given for private and shared channels only.", code="BadRequest")
    initial: dict[str, tuple[str, ...]] = {}
    for member in members:
        roles = member.get("roles", []) if isinstance(member, dict) else None
        if roles not in ([], ["owner"]):
            raise bad_request('roles must be [] or ["owner"].', code="BadRequest")
        user_id = _user_bound(ctx, member)
        if user_id not in team.members:
            raise bad_request("Channel members must be members of the team.", code="BadRequest")
        initial[user_id] = tuple(roles)
    owners = sum(1 for roles in initial.values() if roles)
    if kind != "standard" and owners == 0:
        # App-only: the request must name the channel's owner (Create channel, application permissions).
        raise bad_request(
            f"A {kind} channel created with application permissions needs an owner in members.", code="BadRequest"
        )
    if kind == "shared" and owners > 1:
        raise bad_request("A shared channel can be created with only one owner.", code="BadRequest")
    taken = (*tenant.channels.values(), *tenant.deleted_channels.values())
    if any(c.team_id == team.id and c.displayName.lower() == name.lower() for c in taken):
        raise bad_request("Channel name already existed, please use other name", code="NameAlreadyExists")
    channel_id = f"19:{new_id().replace('-', '')}@thread.tacv2"
    channel = Channel(channel_id, team.id, name, kind, tenant.now_iso(), description)
    for user_id, roles in initial.items():
        user = tenant.users[user_id]
        membership_id = base64.urlsafe_b64encode(f"{channel_id}#{tenant.id}#{user_id}".encode()).decode().rstrip("=")
        channel.members[membership_id.lower()] = ConversationMember(
            membership_id, user_id, user.displayName, user.mail, tenant.id, roles, "0001-01-01T00:00:00Z"
        )
    tenant.channels[channel_id] = channel
    context = ctx.context_url(f"teams('{team.id}')/channels/$entity")
    return json_reply({"@odata.context": context, **_channel_json(ctx, channel)}, 201)


async def delete_channel(ctx: Ctx) -> Reply:
    """DELETE /teams/{id}/channels/{id}: 204; the name stays taken in the team (Teams keeps deleted channels)."""
    channel = _channel(ctx)
    if channel.displayName == "General" and channel.membershipType == "standard":
        raise bad_request("The General channel cannot be deleted.", code="BadRequest")
    ctx.tenant.deleted_channels[channel.id] = ctx.tenant.channels.pop(channel.id)
    return no_content()


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
    Route("POST", "/teams/{team_id}/channels", create_channel, TEAMS),
    Route("DELETE", "/teams/{team_id}/channels/{channel_id}", delete_channel, TEAMS),
    Route("GET", "/teams/{team_id}/channels/{channel_id}", get_channel, TEAMS),
    Route("GET", "/teams/{team_id}/channels/{channel_id}/members", list_channel_members, TEAMS),
    Route("POST", "/teams/{team_id}/channels/{channel_id}/members", add_channel_member, TEAMS),
    Route("DELETE", "/teams/{team_id}/channels/{channel_id}/members/{membership_id}", remove_channel_member, TEAMS),
    Route("GET", "/teams/{team_id}/channels/{channel_id}/sharedwithteams", shared_with_teams, TEAMS),
]
