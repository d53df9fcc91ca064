"""Project-wide fixtures: the Graph emulator (one server per session, a fresh tenant per test), a Graph
client pointed at it, one Azurite per session (`azurite`), and scripted loopback servers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import azure.functions as func
import pytest

from emulator.seed import seed_tenant
from emulator.testing import EmulatorServer
from shared.graph import Graph
from tests.support.azurite import azurite
from tests.support.graph import emulator_graph
from tests.support.scripted_server import Handler, ScriptedServer

__all__ = ["azurite"]


@pytest.fixture(scope="session")
def emulator_session() -> Iterator[EmulatorServer]:
    with EmulatorServer(seed_tenant("demo")) as server:
        yield server


@pytest.fixture
def emulator(emulator_session: EmulatorServer) -> EmulatorServer:
    """The running emulator with a fresh demo tenant, limits and faults off. Tests may reset it further."""
    emulator_session.reset(seed_tenant("demo"))
    return emulator_session


@pytest.fixture
async def graph(emulator: EmulatorServer) -> AsyncIterator[Graph]:
    """Our real Graph client (kiota adapter, pacer, retry) against the emulator."""
    client = emulator_graph(emulator.base_url)
    yield client
    await client.close()


@pytest.fixture(scope="session")
def functions() -> dict[str, func.FunctionBuilder]:
    """The Functions app indexed once per session: a second get_functions() raises
    (docs/architecture.md#library-facts)."""
    import function_app

    return {f.get_function_name(): f for f in function_app.app.get_functions()}


@pytest.fixture
def scripted_server() -> Iterator[Callable[[Handler], ScriptedServer]]:
    """Start loopback servers with a scripted handler; all are stopped after the test."""
    contexts = []

    def start(handler: Handler) -> ScriptedServer:
        server = ScriptedServer(handler)
        context = server.running()
        context.__enter__()
        contexts.append(context)
        return server

    yield start
    for context in contexts:
        context.__exit__(None, None, None)
