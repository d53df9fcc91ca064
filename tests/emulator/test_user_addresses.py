"""Every address Graph holds for a user: seeded otherMails and proxyAddresses, and the filters that find them.

Also the limit on `or` alternatives: Graph refuses more than 15 in one chain or `in` list unless the query is
an advanced one.
"""

from __future__ import annotations

import httpx
import pytest

from emulator.testing import EmulatorServer

EVENTUAL = {"ConsistencyLevel": "eventual"}
SELECT = "id,mail,otherMails,proxyAddresses,identities"


@pytest.fixture
def aliased(emulator: EmulatorServer) -> dict[str, str]:
    """One member with Exchange aliases, one guest with an extra otherMails entry and an email-OTP identity."""
    member = emulator.control.create_user(
        userType="Member",
        mail="ann@contoso.example",
        proxyAddresses=["SMTP:ann@contoso.example", "smtp:ann.lee@contoso.example", "X500:/o=Ex/cn=ann"],
    )
    guest = emulator.control.create_user(
        userType="Guest",
        mail="bo@fabrikam.example",
        otherMails=["bo@fabrikam.example", "bo.private@mail.example"],
        identities=[{"signInType": "federated", "issuer": "mail", "issuerAssignedId": "bo.otp@mail.example"}],
    )
    return {"member": member["id"], "guest": guest["id"]}


def _ids(graph_http: httpx.Client, text: str) -> list[str]:
    response = graph_http.get("/users", params={"$filter": text, "$select": SELECT})
    assert response.status_code == 200, response.text
    return [u["id"] for u in response.json()["value"]]


def test_seeded_proxy_addresses_and_other_mails_are_returned(aliased: dict[str, str], graph_http: httpx.Client) -> None:
    member = graph_http.get(f"/users/{aliased['member']}", params={"$select": SELECT}).json()
    assert member["proxyAddresses"] == [
        "SMTP:ann@contoso.example",
        "smtp:ann.lee@contoso.example",
        "X500:/o=Ex/cn=ann",
    ]
    guest = graph_http.get(f"/users/{aliased['guest']}", params={"$select": SELECT}).json()
    assert guest["otherMails"] == ["bo@fabrikam.example", "bo.private@mail.example"]
    assert guest["identities"] == [
        {"signInType": "federated", "issuer": "mail", "issuerAssignedId": "bo.otp@mail.example"}
    ]
    assert guest["proxyAddresses"] == ["SMTP:bo@fabrikam.example"]  # derived from mail when not seeded


@pytest.mark.parametrize(
    ("text", "who"),
    [
        pytest.param("proxyAddresses/any(p:p eq 'smtp:ann.lee@contoso.example')", "member", id="proxy-secondary"),
        pytest.param("proxyAddresses/any(p:p eq 'SMTP:ANN.LEE@contoso.example')", "member", id="proxy-prefix-case"),
        pytest.param("proxyAddresses/any(p:p eq 'smtp:ann@contoso.example')", "member", id="proxy-primary-lower"),
        pytest.param("otherMails/any(x:x eq 'Bo.Private@mail.example')", "guest", id="otherMails-case"),
        pytest.param(
            "identities/any(i:i/issuer eq 'mail' and i/issuerAssignedId eq 'bo.otp@mail.example')",
            "guest",
            id="identity-mail-issuer",
        ),
        pytest.param(
            "otherMails/any(x:x eq 'nobody@mail.example') or otherMails/any(x:x eq 'bo.private@mail.example')",
            "guest",
            id="or-of-lambdas",
        ),
        pytest.param("mail eq 'ann.lee@contoso.example'", None, id="alias-is-not-mail"),
    ],
)
def test_address_filters_find_the_holder(
    aliased: dict[str, str], graph_http: httpx.Client, text: str, who: str | None
) -> None:
    assert _ids(graph_http, text) == ([aliased[who]] if who else [])


def test_identity_filter_needs_the_issuer(aliased: dict[str, str], graph_http: httpx.Client) -> None:
    response = graph_http.get(
        "/users", params={"$filter": "identities/any(i:i/issuerAssignedId eq 'bo.otp@mail.example')"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "Request_UnsupportedQuery"


def _chain(count: int) -> str:
    return " or ".join(f"otherMails/any(x:x eq 'a{i}@mail.example')" for i in range(count))


def _in_list(count: int) -> str:
    return "mail in (" + ",".join(f"'a{i}@mail.example'" for i in range(count)) + ")"


@pytest.mark.parametrize(
    ("text", "eventual", "status"),
    [
        pytest.param(_in_list(15), False, 200, id="in-15-ok"),
        pytest.param(_in_list(16), False, 400, id="in-16-refused"),
        pytest.param(_chain(15), False, 200, id="or-15-ok"),
        pytest.param(_chain(16), False, 400, id="or-16-refused"),
        pytest.param(f"userType eq 'Guest' and ({_chain(16)})", False, 400, id="nested-or-16-refused"),
        pytest.param(_in_list(16), True, 200, id="in-16-advanced-ok"),
    ],
)
def test_at_most_15_or_alternatives_by_default(
    graph_http: httpx.Client, text: str, eventual: bool, status: int
) -> None:
    params = {"$filter": text, **({"$count": "true"} if eventual else {})}
    response = graph_http.get("/users", params=params, headers=EVENTUAL if eventual else {})
    assert response.status_code == status, response.text
    if status == 400:
        assert response.json()["error"]["code"] == "Request_UnsupportedQuery"
        assert "Max allowed: 15" in response.json()["error"]["message"]


def test_groups_have_the_same_limit(graph_http: httpx.Client) -> None:
    names = ",".join(f"'g{i}'" for i in range(16))
    response = graph_http.get("/groups", params={"$filter": f"displayName in ({names})"})
    assert response.status_code == 400
