"""POST /invitations: created guest, re-invitation, outbox, email rules, members, redemption, reset."""

from __future__ import annotations

import httpx
import pytest

from emulator.testing import EmulatorServer

REDIRECT = "https://myapps.microsoft.com"


def invite(client: httpx.Client, address: str, **extra: object) -> httpx.Response:
    return client.post(
        "/invitations", json={"invitedUserEmailAddress": address, "inviteRedirectUrl": REDIRECT, **extra}
    )


def test_invitation_creates_a_pending_guest(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    response = invite(graph_http, "ann.lee@fabrikam.com", invitedUserDisplayName="Ann Lee")
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "PendingAcceptance"
    assert body["inviteRedeemUrl"].startswith("https://login.microsoftonline.com/redeem?")
    assert body["id"] != body["invitedUser"]["id"]
    user = graph_http.get(
        f"/users/{body['invitedUser']['id']}",
        params={
            "$select": "id,userType,creationType,externalUserState,userPrincipalName,mail,otherMails,identities,"
            "externalUserStateChangeDateTime,createdDateTime,displayName"
        },
    ).json()
    assert user["userType"] == "Guest"
    assert user["creationType"] == "Invitation"
    assert user["externalUserState"] == "PendingAcceptance"
    assert user["userPrincipalName"] == f"ann.lee_fabrikam.com#EXT#@{emulator.tenant.domain}"
    assert user["mail"] == "ann.lee@fabrikam.com"
    assert user["otherMails"] == ["ann.lee@fabrikam.com"]
    assert user["createdDateTime"] == user["externalUserStateChangeDateTime"]
    assert user["displayName"] == "Ann Lee"


def test_reinviting_returns_the_same_user_and_a_new_url(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    first = invite(graph_http, "ann.lee@fabrikam.com").json()
    users_before = len(emulator.tenant.users)
    second = invite(graph_http, "Ann.Lee@Fabrikam.com").json()
    assert second["invitedUser"]["id"] == first["invitedUser"]["id"]
    assert second["inviteRedeemUrl"] != first["inviteRedeemUrl"]
    assert len(emulator.tenant.users) == users_before


@pytest.mark.parametrize(
    ("send", "emails"),
    [
        pytest.param(True, 1, id="sendInvitationMessage-true-sends"),
        pytest.param(False, 0, id="sendInvitationMessage-false-sends-none"),
        pytest.param(None, 0, id="sendInvitationMessage-defaults-to-false"),
    ],
)
def test_outbox_counts_only_invitation_emails_actually_sent(
    emulator: EmulatorServer, graph_http: httpx.Client, send: bool | None, emails: int
) -> None:
    extra = {} if send is None else {"sendInvitationMessage": send}
    body = invite(graph_http, "bo@northwindtraders.com", **extra).json()
    sent = emulator.control.outbox(kind="invitation")
    assert len(sent) == emails
    if emails:
        assert sent[0]["to"] == ["bo@northwindtraders.com"]
        assert sent[0]["from"] == "Invites@microsoft.com"
        assert sent[0]["inviteRedeemUrl"] == body["inviteRedeemUrl"]


def test_custom_message_is_dropped_for_app_only_callers(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    invite(
        graph_http,
        "cy@fabrikam.com",
        sendInvitationMessage=True,
        invitedUserMessageInfo={"customizedMessageBody": "Welcome aboard!"},
    )
    [sent] = emulator.control.outbox(kind="invitation")
    assert sent["customizedMessageBody"] is None
    assert sent["customMessageDropped"] is True


def test_only_one_cc_recipient_is_supported(graph_http: httpx.Client) -> None:
    cc = [{"emailAddress": {"address": f"cc{i}@contoso.com"}} for i in range(2)]
    response = invite(graph_http, "dee@fabrikam.com", invitedUserMessageInfo={"ccRecipients": cc})
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("address", "ok"),
    [
        pytest.param("ann.lee@fabrikam.com", True, id="plain"),
        pytest.param("ann_lee@fabrikam.com", True, id="underscore-anywhere"),
        pytest.param("_ann@fabrikam.com", True, id="underscore-at-start"),
        pytest.param("ann-lee@fabrikam.com", True, id="hyphen-inside"),
        pytest.param("-ann@fabrikam.com", False, id="hyphen-at-start"),
        pytest.param("ann-@fabrikam.com", False, id="hyphen-at-end"),
        pytest.param(".ann@fabrikam.com", False, id="dot-at-start"),
        pytest.param("ann.@fabrikam.com", False, id="dot-at-end"),
        *[pytest.param(f"a{c}b@fabrikam.com", False, id=f"forbidden-{c}") for c in '~!#$%^&*()+=[]{}\\/|;:"<>?,'],
        pytest.param("ann lee@fabrikam.com", False, id="space"),
        pytest.param("ann@@fabrikam.com", False, id="two-at-signs"),
        pytest.param("ann@fabrikam", False, id="domain-without-dot"),
        pytest.param("", False, id="empty"),
    ],
)
def test_email_rules(graph_http: httpx.Client, address: str, ok: bool) -> None:
    response = invite(graph_http, address)
    assert response.status_code == (201 if ok else 400), response.text


@pytest.mark.parametrize("missing", ["invitedUserEmailAddress", "inviteRedirectUrl"])
def test_required_fields(graph_http: httpx.Client, missing: str) -> None:
    body = {"invitedUserEmailAddress": "eve@fabrikam.com", "inviteRedirectUrl": REDIRECT}
    del body[missing]
    assert graph_http.post("/invitations", json=body).status_code == 400


def test_inviting_a_members_address_is_refused(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    member = next(u for u in emulator.tenant.users.values() if u.userType == "Member" and u.creationType is None)
    response = invite(graph_http, member.mail)
    assert response.status_code == 400
    assert member.userPrincipalName in response.json()["error"]["message"]


def test_redemption_accepts_and_adds_the_home_identity(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    body = invite(graph_http, "fay@fabrikam.com").json()
    emulator.control.redeem(invite_redeem_url=body["inviteRedeemUrl"])
    user = graph_http.get(
        f"/users/{body['invitedUser']['id']}", params={"$select": "id,externalUserState,identities"}
    ).json()
    assert user["externalUserState"] == "Accepted"
    assert {"signInType": "federated", "issuer": "ExternalAzureAD", "issuerAssignedId": None} in user["identities"]


@pytest.mark.parametrize(
    ("domain", "issuer"),
    [
        pytest.param("outlook.com", "MicrosoftAccount", id="msa"),
        pytest.param("gmail.com", "mail", id="email-one-time-passcode"),
    ],
)
def test_identity_issuer_follows_the_home_of_the_address(
    emulator: EmulatorServer, graph_http: httpx.Client, domain: str, issuer: str
) -> None:
    body = invite(graph_http, f"gil@{domain}").json()
    emulator.control.redeem(body["invitedUser"]["id"])
    identities = emulator.tenant.users[body["invitedUser"]["id"]].identities
    assert any(i[0] == "federated" and i[1] == issuer for i in identities)


def test_reset_redemption_keeps_the_object_and_needs_its_id(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    body = invite(graph_http, "hal@fabrikam.com").json()
    user_id = body["invitedUser"]["id"]
    emulator.control.redeem(user_id)
    assert invite(graph_http, "hal.new@fabrikam.com", resetRedemption=True).status_code == 400
    again = invite(graph_http, "hal.new@fabrikam.com", resetRedemption=True, invitedUser={"id": user_id})
    assert again.status_code == 201
    assert again.json()["invitedUser"]["id"] == user_id
    user = emulator.tenant.users[user_id]
    assert user.externalUserState == "PendingAcceptance"
    assert user.mail == "hal.new@fabrikam.com"


def test_invitation_sponsors_are_set(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    sponsor = next(u for u in emulator.tenant.users.values() if u.userType == "Member")
    body = invite(graph_http, "ida@fabrikam.com", invitedUserSponsors=[{"id": sponsor.id}]).json()
    sponsors = graph_http.get(f"/users/{body['invitedUser']['id']}/sponsors").json()["value"]
    assert [s["id"] for s in sponsors] == [sponsor.id]


def test_cross_tenant_settings_can_block_an_invitation(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    partner = emulator.control.ground_truth()["partners"][0]
    blocked = {"usersAndGroups": {"accessType": "blocked", "targets": [{"target": "AllUsers", "targetType": "user"}]}}
    created = graph_http.post(
        "/policies/crossTenantAccessPolicy/partners",
        json={"tenantId": partner["tenantId"], "b2bCollaborationInbound": blocked},
    )
    assert created.status_code == 201
    response = invite(graph_http, f"jo@{partner['domain']}")
    assert response.status_code == 400
    assert "cross-tenant access settings" in response.json()["error"]["message"]


def test_reinviting_a_pending_guest_gives_a_fresh_url_that_redeems_the_same_user(
    emulator: EmulatorServer, graph_http: httpx.Client
) -> None:
    guest = next(
        u
        for u in emulator.tenant.users.values()
        if u.userType == "Guest" and u.externalUserState == "PendingAcceptance"
    )
    users_before = len(emulator.tenant.users)
    emulator.control.set_clock(frozen=True)
    redeemed_at = emulator.control.clock()["now"]
    again = invite(graph_http, guest.mail).json()
    assert again["invitedUser"]["id"] == guest.id
    assert len(emulator.tenant.users) == users_before
    redeemed = emulator.control.redeem(invite_redeem_url=again["inviteRedeemUrl"])
    assert redeemed == {"id": guest.id, "externalUserState": "Accepted"}
    user = graph_http.get(f"/users/{guest.id}", params={"$select": "externalUserState,externalUserStateChangeDateTime"})
    assert user.json()["externalUserState"] == "Accepted"
    assert user.json()["externalUserStateChangeDateTime"] == redeemed_at
