"""Project-wide fixtures."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.support.scripted_server import Handler, ScriptedServer


@pytest.fixture
def scripted_server() -> Iterator[Callable[[Handler], ScriptedServer]]:
    """Start loopback servers with a scripted handler; all are stopped after the test."""
    servers: list[ScriptedServer] = []
    contexts = []

    def start(handler: Handler) -> ScriptedServer:
        server = ScriptedServer(handler)
        context = server.running()
        context.__enter__()
        servers.append(server)
        contexts.append(context)
        return server

    yield start
    for context in contexts:
        context.__exit__(None, None, None)
