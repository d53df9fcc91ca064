"""The real msgraph-sdk against the emulator over HTTP: request builders, raw bytes, models, errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from emulator.testing import EmulatorServer
from tests.support.emulator import guest_ids


def error_map() -> dict[str, Any]:
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError

    return {"XXX": ODataError}


async def raw(client: Any, info: Any) -> dict[str, Any]:
    return json.loads(await client.request_adapter.send_primitive_async(info, "bytes", error_map()))


async def test_listing_guests_as_bytes_through_the_request_builder(emulator: EmulatorServer, graph_client: Any) -> None:
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from kiota_abstractions.method import Method
    from kiota_abstractions.request_information import RequestInformation
    from msgraph.generated.users.users_request_builder import UsersRequestBuilder

    query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
        filter="userType eq 'Guest'", select=["id", "mail", "externalUserState", "signInActivity"], top=25
    )
    info = graph_client.users.to_get_request_information(RequestConfiguration(query_parameters=query))
    body = await raw(graph_client, info)
    seen = [u["id"] for u in body["value"]]
    while "@odata.nextLink" in body:
        body = await raw(graph_client, RequestInformation(Method.GET, body["@odata.nextLink"]))
        seen += [u["id"] for u in body["value"]]
    assert sorted(seen) == sorted(guest_ids(emulator.tenant))
    [first, *_] = emulator.control.requests(path="/v1.0/users")
    assert first["query"]["$select"] == "id,mail,externalUserState,signInActivity"
    assert first["headers"]["authorization"] == "Bearer ***"


async def test_advanced_query_with_consistency_level_header(emulator: EmulatorServer, graph_client: Any) -> None:
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph.generated.users.users_request_builder import UsersRequestBuilder

    query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
        filter="endsWith(mail,'@fabrikam.com')", count=True, select=["id"], top=999
    )
    config = RequestConfiguration(query_parameters=query)
    config.headers.add("ConsistencyLevel", "eventual")
    body = await raw(graph_client, graph_client.users.to_get_request_information(config))
    expected = [u for u in emulator.tenant.users.values() if (u.mail or "").endswith("@fabrikam.com")]
    assert body["@odata.count"] == len(expected) == len(body["value"])


async def test_missing_header_surfaces_as_odata_error(graph_client: Any) -> None:
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError
    from msgraph.generated.users.users_request_builder import UsersRequestBuilder

    query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(filter="userType ne 'Guest'")
    with pytest.raises(ODataError) as raised:
        await raw(
            graph_client, graph_client.users.to_get_request_information(RequestConfiguration(query_parameters=query))
        )
    assert raised.value.response_status_code == 400
    assert raised.value.error.code == "Request_UnsupportedQuery"


async def test_single_user_deserialises_into_the_sdk_model(emulator: EmulatorServer, graph_client: Any) -> None:
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder

    kinds = emulator.control.ground_truth()["guest_kinds"]
    guest_id = next(i for i, k in kinds.items() if k == "active")
    guest = emulator.tenant.users[guest_id]
    query = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(
        select=["id", "userType", "externalUserState", "signInActivity", "identities", "createdDateTime"]
    )
    # By userPrincipalName: the SDK must encode '#' in the path.
    user = await graph_client.users.by_user_id(guest.userPrincipalName).get(
        RequestConfiguration(query_parameters=query)
    )
    assert user.id == guest_id
    assert user.user_type == "Guest"
    assert user.external_user_state == "Accepted"
    assert user.sign_in_activity.last_successful_sign_in_date_time.isoformat().startswith(guest.sign_in[4][:19])
    issuer = {"aad": "ExternalAzureAD", "msa": "MicrosoftAccount", "otp": "mail"}[
        emulator.control.ground_truth()["identity_kinds"][guest_id]
    ]
    assert issuer in {i.issuer for i in user.identities}
    assert user.created_date_time.tzinfo is not None


async def test_not_found_raises_odata_error_with_graph_code(graph_client: Any) -> None:
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError

    with pytest.raises(ODataError) as raised:
        await graph_client.users.by_user_id("00000000-0000-0000-0000-000000000000").get()
    assert raised.value.response_status_code == 404
    assert raised.value.error.code == "Request_ResourceNotFound"
    assert raised.value.error.inner_error is not None


async def test_invitation_through_the_sdk_model(emulator: EmulatorServer, graph_client: Any) -> None:
    from msgraph.generated.models.invitation import Invitation

    created = await graph_client.invitations.post(
        Invitation(
            invited_user_email_address="lou@fabrikam.com",
            invite_redirect_url="https://myapps.microsoft.com",
            send_invitation_message=True,
            invited_user_display_name="Lou",
        )
    )
    assert created.status == "PendingAcceptance"
    assert created.invite_redeem_url.startswith("https://login.microsoftonline.com/redeem")
    assert created.invited_user.id in emulator.tenant.users
    assert len(emulator.control.outbox(kind="invitation")) == 1


async def test_patch_and_membership_ref_through_the_sdk(emulator: EmulatorServer, graph_client: Any) -> None:
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError
    from msgraph.generated.models.reference_create import ReferenceCreate
    from msgraph.generated.models.user import User

    guest = next(u.id for u in emulator.tenant.users.values() if u.userType == "Guest")
    await graph_client.users.by_user_id(guest).patch(User(account_enabled=False))
    assert emulator.tenant.users[guest].accountEnabled is False
    group = emulator.control.ground_truth()["groups"]["Executives"]
    reference = ReferenceCreate(odata_id=f"https://graph.microsoft.com/v1.0/directoryObjects/{guest}")
    await graph_client.groups.by_group_id(group).members.ref.post(reference)
    with pytest.raises(ODataError) as raised:
        await graph_client.groups.by_group_id(group).members.ref.post(reference)
    assert raised.value.response_status_code == 400
    await graph_client.groups.by_group_id(group).members.by_directory_object_id(guest).ref.delete()
    assert guest not in emulator.tenant.groups[group].members


async def test_check_member_groups_through_the_sdk(emulator: EmulatorServer, graph_client: Any) -> None:
    from msgraph.generated.users.item.check_member_groups.check_member_groups_post_request_body import (
        CheckMemberGroupsPostRequestBody,
    )

    groups = emulator.control.ground_truth()["groups"]
    member = next(iter(emulator.tenant.groups[groups["Executives"]].members))
    result = await graph_client.users.by_user_id(member).check_member_groups.post(
        CheckMemberGroupsPostRequestBody(group_ids=[groups["Executives"], groups["Finance Partners"]])
    )
    assert result.value == [groups["Executives"]]


async def test_delta_through_the_sdk_uses_the_delta_function_path(emulator: EmulatorServer, graph_client: Any) -> None:
    from kiota_abstractions.method import Method
    from kiota_abstractions.request_information import RequestInformation

    body = await raw(graph_client, graph_client.users.delta.to_get_request_information())
    count = len(body["value"])
    while "@odata.nextLink" in body:
        body = await raw(graph_client, RequestInformation(Method.GET, body["@odata.nextLink"]))
        count += len(body["value"])
    assert count == len(emulator.tenant.users)
    assert "@odata.deltaLink" in body
    assert emulator.control.requests(path="/v1.0/users/delta()")


async def test_batch_as_raw_json_through_the_adapter(emulator: EmulatorServer, graph_client: Any) -> None:
    from kiota_abstractions.method import Method
    from kiota_abstractions.request_information import RequestInformation

    guest = next(u.id for u in emulator.tenant.users.values() if u.userType == "Guest")
    info = RequestInformation(Method.POST, f"{emulator.base_url}/$batch")
    payload = {
        "requests": [
            {"id": "1", "method": "GET", "url": f"/users/{guest}?$select=id"},
            {"id": "2", "method": "GET", "url": "/users/does-not-exist"},
        ]
    }
    info.set_stream_content(json.dumps(payload).encode(), "application/json")
    body = await raw(graph_client, info)
    statuses = {r["id"]: r["status"] for r in body["responses"]}
    assert statuses == {"1": 200, "2": 404}


async def test_throttling_surfaces_with_retry_after_when_the_retry_handler_is_off(
    emulator: EmulatorServer, graph_client: Any
) -> None:
    from kiota_abstractions.api_error import APIError

    emulator.control.set_limits(enabled=True, ru_quota={"S": 2, "M": 2, "L": 2})
    guest = next(u.id for u in emulator.tenant.users.values() if u.userType == "Guest")
    await graph_client.users.by_user_id(guest).get()
    await graph_client.users.by_user_id(guest).get()
    with pytest.raises(APIError) as raised:
        await graph_client.users.by_user_id(guest).get()
    assert raised.value.response_status_code == 429
    headers = {k.lower(): v for k, v in raised.value.response_headers.items()}
    assert int(headers["retry-after"]) >= 1
    assert len(emulator.control.requests(path=f"/v1.0/users/{guest}")) == 3  # nothing retried behind our back


async def test_send_mail_through_the_sdk(emulator: EmulatorServer, graph_client: Any) -> None:
    from msgraph.generated.models.email_address import EmailAddress
    from msgraph.generated.models.item_body import ItemBody
    from msgraph.generated.models.message import Message
    from msgraph.generated.models.recipient import Recipient
    from msgraph.generated.users.item.send_mail.send_mail_post_request_body import SendMailPostRequestBody

    sender = emulator.control.ground_truth()["members"][3]
    message = Message(
        subject="Guest report",
        body=ItemBody(content="hello"),
        to_recipients=[Recipient(email_address=EmailAddress(address="it@contoso.com"))],
    )
    await graph_client.users.by_user_id(sender).send_mail.post(SendMailPostRequestBody(message=message))
    [mail] = emulator.control.outbox(kind="mail")
    assert mail["to"] == ["it@contoso.com"]
    assert mail["subject"] == "Guest report"
