"""Graph client construction: clouds, endpoint rules, one client per process and event loop."""

from __future__ import annotations

import asyncio

import pytest

from shared.config import load_settings
from shared.credentials import StaticTokenCredential, TenantCredential, emulator_token_for, token_tenant
from shared.errors import ConfigError, CredentialError
from shared.graph import GraphOptions, get_graph, graph_options, tenant_graph
from shared.graph.client import build_url
from shared.graph.errors import redact_url


@pytest.mark.parametrize(
    ("cloud", "base_url", "scope"),
    [
        pytest.param("global", "https://graph.microsoft.com/v1.0", "https://graph.microsoft.com/.default", id="global"),
        pytest.param("usgov", "https://graph.microsoft.us/v1.0", "https://graph.microsoft.us/.default", id="us-gov-l4"),
        pytest.param(
            "usgov-dod",
            "https://dod-graph.microsoft.us/v1.0",
            "https://dod-graph.microsoft.us/.default",
            id="us-dod-l5",
        ),
        pytest.param(
            "china",
            "https://microsoftgraph.chinacloudapi.cn/v1.0",
            "https://microsoftgraph.chinacloudapi.cn/.default",
            id="china",
        ),
    ],
)
def test_cloud_endpoints(cloud: str, base_url: str, scope: str) -> None:
    options = graph_options(load_settings(cloud=cloud))
    assert (options.base_url, options.cloud.scope) == (base_url, scope)


def test_graph_url_overrides_the_cloud_and_sizes_the_budget() -> None:
    options = graph_options(
        load_settings(graph_url="http://127.0.0.1:8765/v1.0", auth="emulator", tenant_size="S", budget_fraction=0.5)
    )
    assert options.base_url == "http://127.0.0.1:8765/v1.0"
    assert options.host == "127.0.0.1"
    assert (options.budget.resource_units, options.budget.writes) == (1750, 1500)


@pytest.mark.parametrize(
    ("base_url", "auth", "message"),
    [
        pytest.param("http://graph.microsoft.com/v1.0", "default", "plain http", id="http-to-real-graph"),
        pytest.param("https://graph.microsoft.com/v1.0", "emulator", "static token", id="static-token-to-real-graph"),
        pytest.param("graph.microsoft.com", "default", "not an absolute", id="no-scheme"),
    ],
)
def test_unsafe_endpoints_are_refused(base_url: str, auth: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        GraphOptions(base_url=base_url, auth=auth)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("path", "params", "expected"),
    [
        pytest.param("/users", None, "https://g/v1.0/users", id="plain"),
        pytest.param(
            "users",
            {"$filter": "userType eq 'Guest'", "$top": 500},
            "https://g/v1.0/users?$filter=userType%20eq%20'Guest'&$top=500",
            id="odata-names-keep-dollar-values-encoded",
        ),
        pytest.param(
            "/users",
            {"$select": ["id", "mail"], "$count": True},
            "https://g/v1.0/users?$select=id,mail&$count=true",
            id="lists-and-bools",
        ),
        pytest.param("https://g/v1.0/users?$skiptoken=abc", None, "https://g/v1.0/users?$skiptoken=abc", id="absolute"),
        pytest.param(
            "/users",
            {"$filter": "mail eq 'o''neil+x@fabrikam.com'"},
            "https://g/v1.0/users?$filter=mail%20eq%20'o''neil%2Bx@fabrikam.com'",
            id="plus-is-encoded",
        ),
    ],
)
def test_build_url(path: str, params: dict | None, expected: str) -> None:
    assert build_url("https://g/v1.0", path, params) == expected


def test_one_client_per_process_and_event_loop() -> None:
    settings = load_settings(graph_url="http://127.0.0.1:9/v1.0", auth="emulator")

    async def twice() -> tuple[object, object]:
        return get_graph(settings), get_graph(settings)

    first, same = asyncio.run(twice())
    (other_loop, _) = asyncio.run(twice())
    assert first is same
    assert other_loop is not first, "an httpx pool cannot outlive its event loop"


@pytest.mark.parametrize(
    ("url", "logged"),
    [
        pytest.param(
            "https://graph.microsoft.com/v1.0/users?$top=999&$skiptoken=RFNwdAIAAQAAACpVc2VyXzE",
            "https://graph.microsoft.com/v1.0/users?$top=999&$skiptoken=RFNwdAIA…",
            id="skiptoken",
        ),
        pytest.param(
            "https://graph.microsoft.com/v1.0/users/delta?$deltatoken=abcdefghijklmnop",
            "https://graph.microsoft.com/v1.0/users/delta?$deltatoken=abcdefgh…",
            id="deltatoken",
        ),
        pytest.param(
            "https://h/v1.0/users?%24skip=123456789012&x=1", "https://h/v1.0/users?%24skip=12345678…&x=1", id="skip"
        ),
        pytest.param("https://h/v1.0/users?$skiptoken=short", "https://h/v1.0/users?$skiptoken=short", id="short"),
        pytest.param("https://h/v1.0/users?$filter=x eq 'y'", "https://h/v1.0/users?$filter=x eq 'y'", id="untouched"),
    ],
)
def test_cursors_are_shortened_in_logged_urls(url: str, logged: str) -> None:
    assert redact_url(url) == logged


PARTNER = "aaaaaaaa-0000-4000-8000-000000000001"


def test_a_partner_tenant_client_refuses_a_managed_identity() -> None:
    options = GraphOptions(base_url="https://graph.microsoft.com/v1.0", auth="managed-identity")
    with pytest.raises(ConfigError, match="a managed identity gets tokens for its own tenant only"):
        tenant_graph(options, PARTNER)


async def test_a_token_issued_for_another_tenant_is_refused() -> None:
    """A credential that ignores the tenant asked for (ours instead of the partner's) is caught by `tid`."""
    ours = TenantCredential(StaticTokenCredential(emulator_token_for("bbbbbbbb-0000-4000-8000-000000000001")), PARTNER)
    with pytest.raises(CredentialError, match=f"a token for tenant bbbbbbbb-.*, not for {PARTNER}"):
        await ours.get_token("https://graph.microsoft.com/.default")
    theirs = TenantCredential(StaticTokenCredential(emulator_token_for(PARTNER.upper())), PARTNER)
    assert token_tenant((await theirs.get_token("https://graph.microsoft.com/.default")).token) == PARTNER
