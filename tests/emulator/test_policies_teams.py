"""Cross-tenant access policy, tenant lookups, Teams shared-channel members (direct connect), sendMail."""

from __future__ import annotations

import httpx
import pytest

from emulator.testing import EmulatorServer

PARTNERS = "/policies/crossTenantAccessPolicy/partners"
ALLOW_ALL = {
    "usersAndGroups": {"accessType": "allowed", "targets": [{"target": "AllUsers", "targetType": "user"}]},
    "applications": {"accessType": "allowed", "targets": [{"target": "Office365", "targetType": "application"}]},
}


def partner(emulator: EmulatorServer, direct_connect_outbound: bool = True) -> dict:
    return next(
        p for p in emulator.control.ground_truth()["partners"] if p["directConnectOutbound"] is direct_connect_outbound
    )


def test_default_policy_shape(graph_http: httpx.Client) -> None:
    policy = graph_http.get("/policies/crossTenantAccessPolicy/default").json()
    assert policy["isServiceDefault"] is True
    assert policy["b2bCollaborationInbound"]["usersAndGroups"]["accessType"] == "allowed"
    assert policy["b2bDirectConnectInbound"]["usersAndGroups"]["accessType"] == "blocked"
    assert policy["b2bDirectConnectOutbound"]["usersAndGroups"]["accessType"] == "blocked"
    assert policy["automaticUserConsentSettings"] == {"inboundAllowed": False, "outboundAllowed": False}
    assert set(policy["inboundTrust"]) == {
        "isMfaAccepted",
        "isCompliantDeviceAccepted",
        "isHybridAzureADJoinedDeviceAccepted",
    }


def test_partner_crud_with_nulls_inheriting(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    tenant_id = partner(emulator)["tenantId"]
    created = graph_http.post(PARTNERS, json={"tenantId": tenant_id, "b2bDirectConnectInbound": ALLOW_ALL})
    assert created.status_code == 201
    body = created.json()
    assert body["tenantId"] == tenant_id
    assert body["b2bCollaborationInbound"] is None
    assert body["inboundTrust"] is None
    assert graph_http.post(PARTNERS, json={"tenantId": tenant_id}).status_code == 409
    assert (
        graph_http.patch(f"{PARTNERS}/{tenant_id}", json={"inboundTrust": {"isMfaAccepted": True}}).status_code == 204
    )
    assert graph_http.get(f"{PARTNERS}/{tenant_id}").json()["inboundTrust"] == {"isMfaAccepted": True}
    assert [p["tenantId"] for p in graph_http.get(PARTNERS).json()["value"]] == [tenant_id]
    assert graph_http.delete(f"{PARTNERS}/{tenant_id}").status_code == 204
    assert graph_http.get(f"{PARTNERS}/{tenant_id}").status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"tenantId": "not-a-guid"}, id="tenantId-must-be-a-guid"),
        pytest.param(
            {
                "tenantId": "11111111-1111-1111-1111-111111111111",
                "b2bDirectConnectInbound": {"usersAndGroups": {"accessType": "maybe", "targets": []}},
            },
            id="accessType-allowed-or-blocked",
        ),
        pytest.param(
            {
                "tenantId": "11111111-1111-1111-1111-111111111111",
                "b2bDirectConnectInbound": {"usersAndGroups": {"accessType": "allowed", "targets": [{"target": "x"}]}},
            },
            id="target-needs-targetType",
        ),
        pytest.param({"tenantId": "11111111-1111-1111-1111-111111111111", "colour": "blue"}, id="unknown-property"),
    ],
)
def test_invalid_partner_configurations(graph_http: httpx.Client, body: dict) -> None:
    assert graph_http.post(PARTNERS, json=body).status_code == 400


def test_policy_object_is_limited_to_25_kb(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    targets = [{"target": f"{i:08d}-0000-0000-0000-000000000000", "targetType": "group"} for i in range(400)]
    setting = {"usersAndGroups": {"accessType": "allowed", "targets": targets}}
    response = graph_http.post(
        PARTNERS, json={"tenantId": partner(emulator)["tenantId"], "b2bDirectConnectInbound": setting}
    )
    assert response.status_code == 400
    assert "object limit" in response.json()["error"]["message"]
    small = {"usersAndGroups": {"accessType": "allowed", "targets": targets[:20]}}
    assert (
        graph_http.post(
            PARTNERS, json={"tenantId": partner(emulator)["tenantId"], "b2bDirectConnectInbound": small}
        ).status_code
        == 201
    )


def test_identity_synchronization_must_be_deleted_first(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    tenant_id = partner(emulator)["tenantId"]
    graph_http.post(PARTNERS, json={"tenantId": tenant_id})
    sync = f"{PARTNERS}/{tenant_id}/identitySynchronization"
    assert (
        graph_http.put(
            sync, json={"displayName": "Fabrikam sync", "userSyncInbound": {"isSyncAllowed": True}}
        ).status_code
        == 204
    )
    assert graph_http.get(sync).json()["userSyncInbound"] == {"isSyncAllowed": True}
    assert graph_http.delete(f"{PARTNERS}/{tenant_id}").status_code == 400
    assert graph_http.delete(sync).status_code == 204
    assert graph_http.delete(f"{PARTNERS}/{tenant_id}").status_code == 204


def test_tenant_lookups(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    known = partner(emulator)
    by_domain = graph_http.get(
        f"/tenantRelationships/findTenantInformationByDomainName(domainName='{known['domain']}')"
    ).json()
    assert by_domain["tenantId"] == known["tenantId"]
    assert by_domain["defaultDomainName"] == known["domain"]
    by_id = graph_http.get(
        f"/tenantRelationships/findTenantInformationByTenantId(tenantId='{known['tenantId']}')"
    ).json()
    assert by_id["displayName"] == known["displayName"]
    unknown = graph_http.get("/tenantRelationships/findTenantInformationByDomainName(domainName='nowhere.example')")
    assert unknown.status_code == 404


# ---- Teams channels ------------------------------------------------------------------------------


def channel(emulator: EmulatorServer, name: str) -> tuple[str, str]:
    groups = emulator.control.ground_truth()["groups"]
    team_name = name.split("/")[0]
    return groups[team_name], groups[name]


def add_member(
    client: httpx.Client,
    team: str,
    channel_id: str,
    user: str,
    tenant_id: str | None = None,
    roles: list[str] | None = None,
) -> httpx.Response:
    body: dict = {
        "@odata.type": "#microsoft.graph.aadUserConversationMember",
        "roles": roles or [],
        "user@odata.bind": f"https://graph.microsoft.com/v1.0/users('{user}')",
    }
    if tenant_id:
        body["tenantId"] = tenant_id
    return client.post(f"/teams/{team}/channels/{channel_id}/members", json=body)


def test_channels_have_membership_types(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    team, _ = channel(emulator, "Project Phoenix/General")
    channels = graph_http.get(f"/teams/{team}/channels").json()["value"]
    assert {c["membershipType"] for c in channels} == {"standard", "private", "shared"}
    shared = graph_http.get(f"/teams/{team}/channels", params={"$filter": "membershipType eq 'shared'"}).json()
    assert [c["displayName"] for c in shared["value"]] == ["Phoenix Partners"]


def test_external_member_needs_both_tenants_to_allow_direct_connect(
    emulator: EmulatorServer, graph_http: httpx.Client
) -> None:
    team, shared = channel(emulator, "Project Phoenix/Phoenix Partners")
    org = partner(emulator, direct_connect_outbound=True)
    home_user = next(e for e in emulator.control.external_tenants() if e["tenantId"] == org["tenantId"])["users"][0]
    blocked = add_member(graph_http, team, shared, home_user["id"], org["tenantId"])
    assert blocked.status_code == 403  # our default blocks B2B direct connect inbound
    graph_http.post(PARTNERS, json={"tenantId": org["tenantId"], "b2bDirectConnectInbound": ALLOW_ALL})
    added = add_member(graph_http, team, shared, home_user["id"], org["tenantId"])
    assert added.status_code == 201, added.text
    member = added.json()
    assert member["tenantId"] == org["tenantId"]
    assert member["userId"] == home_user["id"]
    assert member["email"] == home_user["mail"]
    members = graph_http.get(f"/teams/{team}/channels/{shared}/members").json()["value"]
    assert home_user["id"] in [m["userId"] for m in members]
    assert add_member(graph_http, team, shared, home_user["id"], org["tenantId"]).status_code == 409
    assert graph_http.delete(f"/teams/{team}/channels/{shared}/members/{member['id']}").status_code == 204


def test_partner_outbound_setting_is_needed_too(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    team, shared = channel(emulator, "Project Phoenix/Phoenix Partners")
    org = partner(emulator, direct_connect_outbound=False)
    home_user = next(e for e in emulator.control.external_tenants() if e["tenantId"] == org["tenantId"])["users"][0]
    graph_http.post(PARTNERS, json={"tenantId": org["tenantId"], "b2bDirectConnectInbound": ALLOW_ALL})
    assert add_member(graph_http, team, shared, home_user["id"], org["tenantId"]).status_code == 403
    emulator.control.set_partner_outbound(org["tenantId"], True)
    assert add_member(graph_http, team, shared, home_user["id"], org["tenantId"]).status_code == 201


@pytest.mark.parametrize(
    ("channel_name", "who", "roles", "status"),
    [
        pytest.param("Project Phoenix/General", "member", [], 400, id="standard-channel-refuses-members"),
        pytest.param("Project Phoenix/Phoenix Partners", "guest", [], 403, id="guests-cannot-join-shared-channels"),
        pytest.param("Project Phoenix/Phoenix Partners", "member", ["guest"], 400, id="roles-owner-or-empty"),
        pytest.param("Project Phoenix/Phoenix Partners", "member", ["owner"], 201, id="owner-role-ok"),
        pytest.param("Project Phoenix/Phoenix Design", "outsider", [], 400, id="private-channel-needs-team-membership"),
    ],
)
def test_channel_membership_rules(
    emulator: EmulatorServer, graph_http: httpx.Client, channel_name: str, who: str, roles: list[str], status: int
) -> None:
    team, channel_id = channel(emulator, channel_name)
    tenant = emulator.tenant
    team_members = tenant.groups[team].members
    if who == "member":
        user = next(
            u.id
            for u in tenant.users.values()
            if u.userType == "Member"
            and u.id in team_members
            and not any(m.userId == u.id for m in tenant.channels[channel_id].members.values())
        )
    elif who == "guest":
        user = next(u.id for u in tenant.users.values() if u.userType == "Guest")
    else:
        user = next(u.id for u in tenant.users.values() if u.userType == "Member" and u.id not in team_members)
    assert add_member(graph_http, team, channel_id, user, roles=roles).status_code == status


def new_channel(name: str, kind: str = "shared", owners: tuple[str, ...] = ()) -> dict:
    members = [
        {
            "@odata.type": "#microsoft.graph.aadUserConversationMember",
            "user@odata.bind": f"https://graph.microsoft.com/v1.0/users('{owner}')",
            "roles": ["owner"],
        }
        for owner in owners
    ]
    return {"displayName": name, "description": "with the partner", "membershipType": kind, "members": members}


def test_create_shared_channel_with_its_owner_then_delete(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    team, _ = channel(emulator, "Project Phoenix/General")
    owners = graph_http.get(f"/groups/{team}/owners/microsoft.graph.user", params={"$select": "id"}).json()["value"]
    owner = owners[0]["id"]
    assert owner in emulator.tenant.groups[team].members  # a team's owner is one of its members
    created = graph_http.post(f"/teams/{team}/channels", json=new_channel("Fabrikam Partners", owners=(owner,)))
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["id"].startswith("19:")
    assert body["id"].endswith("@thread.tacv2")
    assert {k: body[k] for k in ("displayName", "description", "membershipType")} == {
        "displayName": "Fabrikam Partners",
        "description": "with the partner",
        "membershipType": "shared",
    }
    assert {"createdDateTime", "isFavoriteByDefault", "email", "webUrl", "tenantId"} <= set(body)
    members = graph_http.get(f"/teams/{team}/channels/{body['id']}/members").json()["value"]
    assert [(m["userId"], m["roles"]) for m in members] == [(owner, ["owner"])]
    again = graph_http.post(f"/teams/{team}/channels", json=new_channel("fabrikam PARTNERS", owners=(owner,)))
    assert (again.status_code, again.json()["error"]["code"]) == (400, "NameAlreadyExists")

    assert graph_http.delete(f"/teams/{team}/channels/{body['id']}").status_code == 204
    assert graph_http.get(f"/teams/{team}/channels/{body['id']}").status_code == 404
    reused = graph_http.post(f"/teams/{team}/channels", json=new_channel("Fabrikam Partners", owners=(owner,)))
    assert reused.status_code == 400  # Teams keeps a deleted channel's name


@pytest.mark.parametrize(
    ("body", "who"),
    [
        pytest.param(new_channel("No owner"), (), id="shared-needs-an-owner-app-only"),
        pytest.param(new_channel("No owner", kind="private"), (), id="private-needs-an-owner-app-only"),
        pytest.param(new_channel("Two owners"), ("owner", "member"), id="shared-one-owner-only"),
        pytest.param(new_channel("Outsider"), ("outsider",), id="owner-must-be-a-team-member"),
        pytest.param(new_channel("x" * 51), ("owner",), id="name-at-most-50"),
        pytest.param(new_channel("Phoenix Partners"), ("owner",), id="name-taken"),
        pytest.param(new_channel("Odd", kind="secret"), ("owner",), id="membership-type"),
    ],
)
def test_create_channel_refusals(
    emulator: EmulatorServer, graph_http: httpx.Client, body: dict, who: tuple[str, ...]
) -> None:
    team, _ = channel(emulator, "Project Phoenix/General")
    group = emulator.tenant.groups[team]
    owner = next(iter(group.owners))
    member = next(m for m in group.members if m != owner)
    outsider = next(u.id for u in emulator.tenant.users.values() if u.id not in group.members)
    named = {"owner": owner, "member": member, "outsider": outsider}
    template = new_channel("t", owners=("x",))["members"][0]
    members = [{**template, "user@odata.bind": f"https://graph.microsoft.com/v1.0/users('{named[w]}')"} for w in who]
    before = len(emulator.tenant.channels)
    assert graph_http.post(f"/teams/{team}/channels", json={**body, "members": members}).status_code == 400
    assert len(emulator.tenant.channels) == before


# ---- sendMail ------------------------------------------------------------------------------------


def test_send_mail_is_202_and_lands_in_the_outbox(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    sender = emulator.control.ground_truth()["members"][3]
    message = {
        "subject": "Weekly guest report",
        "body": {"contentType": "HTML", "content": "<p>3 stale</p>"},
        "toRecipients": [{"emailAddress": {"address": "it@contoso.com"}}],
        "attachments": [
            {
                "@odata.type": "#microsoft.graph.fileAttachment",
                "name": "report.csv",
                "contentType": "text/csv",
                "contentBytes": "aWQsbWFpbAo=",
            }
        ],
    }
    response = graph_http.post(f"/users/{sender}/sendMail", json={"message": message, "saveToSentItems": False})
    assert response.status_code == 202
    assert response.content == b""
    [mail] = emulator.control.outbox(kind="mail")
    assert mail["to"] == ["it@contoso.com"]
    assert mail["subject"] == "Weekly guest report"
    assert mail["attachments"] == [{"name": "report.csv", "contentType": "text/csv", "size": 8}]
    assert mail["saveToSentItems"] is False


@pytest.mark.parametrize(
    ("sender_kind", "message", "status"),
    [
        pytest.param(
            "guest", {"toRecipients": [{"emailAddress": {"address": "a@b.com"}}]}, 404, id="guests-have-no-mailbox"
        ),
        pytest.param("member", {"subject": "no recipients"}, 400, id="recipients-required"),
        pytest.param(
            "member",
            {"toRecipients": [{"emailAddress": {"address": "not-an-address"}}]},
            400,
            id="recipient-must-be-an-address",
        ),
    ],
)
def test_send_mail_errors(
    emulator: EmulatorServer, graph_http: httpx.Client, sender_kind: str, message: dict, status: int
) -> None:
    truth = emulator.control.ground_truth()
    sender = truth["members"][3] if sender_kind == "member" else next(iter(truth["guest_kinds"]))
    assert graph_http.post(f"/users/{sender}/sendMail", json={"message": message}).status_code == status
    assert emulator.control.outbox(kind="mail") == []
