"""Fixtures for the emulator's own tests: one server per session, a fresh small tenant per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from emulator.testing import EmulatorServer
from tests.support.emulator import TOKEN, StaticToken, small_tenant


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[EmulatorServer]:
    with EmulatorServer(small_tenant()) as server:
        yield server


@pytest.fixture
def emulator(emulator_server: EmulatorServer) -> EmulatorServer:
    """The running emulator, reset to a fresh small tenant with limits and faults off."""
    emulator_server.reset(small_tenant())
    return emulator_server


@pytest.fixture
def graph_http(emulator: EmulatorServer) -> Iterator[httpx.Client]:
    """Plain httpx against /v1.0 with a bearer token."""
    with httpx.Client(base_url=emulator.base_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30.0) as client:
        yield client


@pytest.fixture
async def graph_client(emulator: EmulatorServer) -> AsyncIterator[Any]:
    """The real msgraph-sdk client, built as docs/architecture.md#library-facts describes, pointed at the emulator."""
    from kiota_authentication_azure.azure_identity_authentication_provider import (
        AzureIdentityAuthenticationProvider,
    )
    from kiota_http.middleware.options import RetryHandlerOption
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph.graph_request_adapter import options as graph_default_options
    from msgraph_core import GraphClientFactory

    http = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=5.0))
    http = GraphClientFactory.create_with_default_middleware(
        client=http,
        options={**graph_default_options, RetryHandlerOption.get_key(): RetryHandlerOption(should_retry=False)},
    )
    auth = AzureIdentityAuthenticationProvider(
        StaticToken(), scopes=["https://graph.microsoft.com/.default"], allowed_hosts=["127.0.0.1"]
    )
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = emulator.base_url.rstrip("/")
    client = GraphServiceClient(request_adapter=adapter)
    try:
        yield client
    finally:
        await http.aclose()


# Azurite (session) for the Event Grid tests, which read what the emulator writes into storage queues.
from tests.support.azurite import azurite  # noqa: E402

__all__ = ["azurite"]
